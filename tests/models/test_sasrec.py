"""SASRec behaviour: sequence handling, planted next-item structure, early stopping, the
text-unified variant (cold items), fold-in by sequence, persistence and devices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lumenrec.data import Dataset, IdIndex
from lumenrec.errors import ConfigError, DataError

pytest.importorskip("torch")

from lumenrec.models.sasrec import SASRec, tail_matrix  # noqa: E402

SMALL = {
    "refit": False,
    "n_factors": 32,
    "n_layers": 1,
    "dropout": 0.1,
    "batch_size": 32,
    "learning_rate": 0.01,
    "random_state": 0,
    "device": "cpu",
}


def cycle_data(n_users: int = 150, n_items: int = 30, length: int = 8, seed: int = 0) -> Dataset:
    """Each user walks the item cycle ``i → i + 1 (mod n_items)`` from a random start."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_items, n_users)
    users = np.repeat(np.arange(n_users), length)
    items = (starts[:, None] + np.arange(length)).ravel() % n_items
    stamps = np.tile(np.arange(length), n_users) + 1_000
    return Dataset(
        IdIndex(range(n_users)), IdIndex(range(n_items)), users, items, timestamps=stamps
    )


@pytest.fixture(scope="module")
def cycle_model() -> tuple[SASRec, Dataset]:
    data = cycle_data()
    return SASRec(n_epochs=40, eval_every=5, patience=0, loss="ce", **SMALL).fit(data), data


def test_tail_matrix_right_aligns_and_shifts():
    indptr = np.array([0, 3, 3, 8])
    items = np.array([5, 6, 7, 1, 2, 3, 4, 9])
    out = tail_matrix(indptr, items, np.array([3, 3, 7]), width=3)
    np.testing.assert_array_equal(out, [[6, 7, 8], [0, 0, 0], [3, 4, 5]])


def test_learns_the_next_item_of_a_cycle(cycle_model):
    model, data = cycle_model
    last = np.array([data.item_idx[data.user_idx == u][-1] for u in range(data.n_users)])
    top = model.recommend(np.arange(data.n_users), k=1).items[:, 0]
    assert (top == (last + 1) % data.n_items).mean() >= 0.95


def test_validation_history_and_best_epoch(cycle_model):
    model, _ = cycle_model
    hist = model.history_
    assert hist["epochs_run"] == 40 and 1 <= hist["best_epoch"] <= 40
    assert hist["best_valid_ndcg@10"] > 0.8  # the held-out last step is predictable
    assert hist["mean_epoch_seconds"] > 0


def test_early_stopping_stops_and_keeps_the_best():
    data = cycle_data()
    model = SASRec(n_epochs=200, eval_every=1, patience=2, **SMALL)
    model.fit(data)
    assert model.history_["stopped_early"] and model.history_["epochs_run"] < 200
    assert model.history_["best_epoch"] <= model.history_["epochs_run"] - 2


def test_sequences_follow_timestamps_not_log_order():
    data = cycle_data(n_users=120)
    rng = np.random.default_rng(1)
    perm = rng.permutation(data.n_events)  # same events, shuffled log; timestamps keep order
    shuffled = Dataset(
        data.users,
        data.items,
        data.user_idx[perm],
        data.item_idx[perm],
        timestamps=data.timestamps[perm],
    )
    a = SASRec(n_epochs=3, **SMALL).fit(data)
    b = SASRec(n_epochs=3, **SMALL).fit(shuffled)
    np.testing.assert_array_equal(a.sequences_, b.sequences_)
    np.testing.assert_allclose(a.user_vectors_, b.user_vectors_, rtol=1e-5, atol=1e-6)


def test_same_seed_same_model(clusters):
    a = SASRec(n_epochs=3, **SMALL).fit(clusters)
    b = SASRec(n_epochs=3, **SMALL).fit(clusters)
    np.testing.assert_array_equal(a.user_vectors_, b.user_vectors_)
    c = SASRec(n_epochs=3, **{**SMALL, "random_state": 1}).fit(clusters)
    assert not np.allclose(a.item_vectors_, c.item_vectors_)


def test_score_sequences_matches_known_users_and_history_order(cycle_model):
    model, data = cycle_model
    seqs = [data.item_idx[data.user_idx == u] for u in (0, 5)]
    np.testing.assert_allclose(
        model.score_sequences(seqs), model.score(np.array([0, 5])), rtol=1e-4, atol=1e-4
    )
    # score_history orders each row by its stored values (positions here)
    rows = [np.zeros(len(s), int) + r for r, s in enumerate(seqs)]
    vals = [np.arange(1, len(s) + 1, dtype=float) for s in seqs]
    hist = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(seqs))),
        shape=(2, data.n_items),
    )
    np.testing.assert_allclose(model.score_history(hist), model.score_sequences(seqs), rtol=1e-5)
    recs = model.recommend_history(hist, k=1)
    assert recs.items[0, 0] == (seqs[0][-1] + 1) % data.n_items
    assert np.isnan(model.score_sequences([[]])).all()
    with pytest.raises(DataError, match="sequences"):
        model.score_sequences([[0, data.n_items]])


def test_save_load_round_trip_and_torch_free_scoring(cycle_model, tmp_path: Path):
    model, _ = cycle_model
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").is_file()
    loaded = SASRec.load(tmp_path / "m")
    users = np.arange(10)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_allclose(
        loaded.score_sequences([[1, 2, 3]]), model.score_sequences([[1, 2, 3]]), rtol=1e-5
    )
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from lumenrec.models.sasrec import SASRec\n"
        f"m = SASRec.load({str(tmp_path / 'm')!r})\n"
        "print(m.recommend(np.arange(3), k=2).items.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == model.recommend(np.arange(3), k=2).items.tolist()


def test_checkpoint_dir_holds_the_best_weights(tmp_path: Path):
    data = cycle_data(n_users=60)
    model = SASRec(n_epochs=4, eval_every=2, checkpoint_dir=str(tmp_path / "ck"), **SMALL).fit(data)
    meta = json.loads((tmp_path / "ck" / "best.json").read_text())
    assert meta["epoch"] == model.history_["best_epoch"]
    from safetensors.numpy import load_file

    weights = load_file(str(tmp_path / "ck" / "best.safetensors"))
    np.testing.assert_array_equal(weights["tower.ids.weight"], model.weights_["tower.ids.weight"])


def test_text_unified_places_cold_items_by_text(clusters):
    model = SASRec(n_epochs=30, text_encoder="hashing", **SMALL).fit(clusters)
    model.score_sequences([[0, 1]])  # builds and caches the network before add_items
    assert model.text_embeddings_.shape[0] == clusters.n_items
    topics = clusters.catalog["topic"].to_numpy()
    user_topic = clusters.user_attributes["topic"].to_numpy()
    recs = model.recommend(np.arange(clusters.n_users), k=5)
    assert (topics[recs.items] == user_topic[:, None]).mean() >= 0.8
    # new items: a copy of each topic's first item text, recommended to that topic's users
    names = sorted(set(topics))
    first = [int(np.flatnonzero(topics == t)[0]) for t in names]
    new_rows = clusters.catalog.iloc[first].copy()
    new = model.add_items(new_rows)
    assert list(new) == list(range(clusters.n_items, clusters.n_items + 4))
    scores = model.score(np.arange(clusters.n_users), new)
    own = scores[np.arange(clusters.n_users), [names.index(t) for t in user_topic]]
    assert (own >= scores.max(axis=1) - 1e-6).mean() >= 0.75  # chance: 0.25
    assert model.recommend(np.arange(2), k=3, candidates=new).items.min() >= clusters.n_items
    # a sequence holding a new item: the cached network must have been rebuilt for it
    assert np.isfinite(model.score_sequences([[0, int(new[0])]])).all()


def test_id_only_and_text_errors(clusters):
    model = SASRec(n_epochs=1, **SMALL).fit(clusters)
    with pytest.raises(ConfigError, match="text_encoder"):
        model.add_items(["a new item"])
    with pytest.raises(DataError, match="catalogue"):
        SASRec(n_epochs=1, text_encoder="hashing", **SMALL).fit(clusters.matrix)
    with pytest.raises(ConfigError, match="n_heads"):
        SASRec(n_epochs=1, **{**SMALL, "n_heads": 3}).fit(clusters)
    with pytest.raises(ConfigError, match="loss"):
        SASRec(loss="hinge").fit(clusters)
    single = Dataset(IdIndex([0, 1]), IdIndex([0, 1]), np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(DataError, match="two or more"):
        SASRec(n_epochs=1, **SMALL).fit(single)


@pytest.mark.parametrize("loss", ["sampled", "bce"])
def test_other_losses_learn_the_cycle(loss):
    data = cycle_data()
    model = SASRec(n_epochs=40, loss=loss, n_negatives=16, patience=0, **SMALL).fit(data)
    last = np.array([data.item_idx[data.user_idx == u][-1] for u in range(data.n_users)])
    top = model.recommend(np.arange(data.n_users), k=1).items[:, 0]
    assert (top == (last + 1) % data.n_items).mean() >= 0.9


def test_catalogue_dataframe_without_text_fields_is_clear():
    data = cycle_data(n_users=20)
    data.catalog = pd.DataFrame(index=pd.Index(range(30), name="item_id"))
    with pytest.raises(DataError):
        SASRec(n_epochs=1, text_encoder="hashing", **SMALL).fit(data)


@pytest.mark.gpu
def test_gpu_training_loads_on_cpu(tmp_path: Path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    data = cycle_data()
    model = SASRec(n_epochs=40, loss="ce", **{**SMALL, "device": "cuda"}).fit(data)
    model.save(tmp_path / "gpu")
    loaded = SASRec.load(tmp_path / "gpu")
    np.testing.assert_array_equal(loaded.score(np.arange(5)), model.score(np.arange(5)))
    np.testing.assert_allclose(
        loaded.score_sequences([[1, 2, 3]]),
        model.score_sequences([[1, 2, 3]]),
        rtol=1e-3,
        atol=1e-3,
    )


def test_refit_trains_on_the_held_out_events_for_the_best_epoch_count():
    data = cycle_data(n_users=40, n_items=60, length=4)
    # item 59 only ever appears as some users' last event: held out, unless refit
    plain = SASRec(n_epochs=6, eval_every=2, **SMALL).fit(data)
    refit = SASRec(n_epochs=6, eval_every=2, **{**SMALL, "refit": True}).fit(data)
    last = {int(data.item_idx[data.user_idx == u][-1]) for u in range(data.n_users)}
    only_last = sorted(last - set(np.asarray(plain.sequences_[:, :-1]).ravel() - 1))
    assert only_last and not plain.item_has_id_[only_last].any()
    assert refit.item_has_id_[only_last].all()
    assert (
        refit.history_["refit_epochs"]
        == refit.history_["best_epoch"]
        == plain.history_["best_epoch"]
    )


def test_corrupt_weights_file_is_an_artifact_error(cycle_model, tmp_path: Path):
    import hashlib

    from lumenrec.errors import ArtifactError

    model, _ = cycle_model
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    weights.write_bytes(b"not a safetensors file")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["files"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="weights.safetensors"):
        SASRec.load(tmp_path / "m")
