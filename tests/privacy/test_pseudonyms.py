"""Pseudonymised ids: after a run with pseudonymisation on, no raw user id appears in the event
store, any artifact file or the captured logs, while lookups by the raw id keep working."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lumenrec.errors import ConfigError
from lumenrec.privacy.ids import Pseudonymizer, pseudonymize_dataset

pytest.importorskip("fastapi")

KEY = "a-long-test-secret-0123456789abcdef"
WRITE = "write-key-0123456789abcdef"


def _raw_dataset():
    import pandas as pd

    from lumenrec.data.synthetic import block_clusters

    base = block_clusters(n_topics=3, n_users=45, n_items=30, random_state=2)
    frame = pd.DataFrame(
        {
            "user_id": [f"alice.person{int(u)}@example.org" for u in base.user_idx],
            "item_id": base.items.ids[base.item_idx],
            "rating": base.ratings,
            "timestamp": base.timestamps,
        }
    )
    from lumenrec.data.io import from_pandas

    data = from_pandas(frame, items=base.catalog.reset_index(), name="raw")
    data.catalog.attrs["text_fields"] = ["title", "description"]
    return data


def _files_holding(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            hits += [f"{path.name}: {n}" for n in needles if n.encode() in blob]
    return hits


def test_no_raw_user_id_in_store_artifacts_or_logs(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry, ServiceSettings, create_app

    data = _raw_dataset()
    raw_ids = [str(u) for u in data.users.ids]
    pseudo = Pseudonymizer.from_secret(KEY)
    hybrid = HybridRecommender(
        {"cf": EASE(regularization=5.0), "text": ContentRecommender("hashing")}
    )
    models = tmp_path / "models"
    ModelRegistry(models).publish(RecommendPipeline.fit(hybrid, pseudonymize_dataset(data, pseudo)))
    settings = ServiceSettings(
        model_dir=models,
        db=tmp_path / "events.sqlite",
        api_key=WRITE,
        rate_limit=0,
        pseudonymize=True,
        pseudonym_key=KEY,
        explore_default="epsilon-greedy(epsilon=0.2)",
        explore_save_every=1,
    )
    auth = {"X-API-Key": WRITE}
    caplog.set_level(logging.DEBUG, logger="lumenrec")
    someone, newcomer = raw_ids[3], "bob.newcomer@example.org"
    with TestClient(create_app(settings)) as client:
        body = client.get(f"/recommend/{someone}", params={"k": 4}).json()
        assert body["user_id"] == someone and body["fallback"] is None  # found by the raw id
        assert all(x["reason"]["kind"] in ("history", "exploration") for x in body["items"])
        event = {
            "user_id": someone,
            "item_id": body["items"][0]["item_id"],
            "type": "click",
            "request_id": body["request_id"],
        }
        assert client.post("/feedback", json=event, headers=auth).status_code == 200
        client.post(
            "/feedback", json={**event, "user_id": newcomer, "request_id": None}, headers=auth
        )
        assert client.get(f"/recommend/{newcomer}").json()["fold_in"] is True
        client.post(
            "/users", json={"users": [{"user_id": newcomer, "text": "likes sports"}]}, headers=auth
        )
        nope = {"kind": "item", "value": body["items"][1]["item_id"]}
        client.post(f"/users/{someone}/not-interested", json=nope, headers=auth)
        client.put(f"/users/{someone}/settings", json={"personalised": True}, headers=auth)
        profile = client.get(f"/users/{someone}/profile").json()
        assert profile["user_id"] == someone and profile["known_to_model"]
        assert client.get(f"/explain/{someone}/{body['items'][0]['item_id']}").status_code in (
            200,
            404,
        )
        assert client.delete(f"/users/{raw_ids[5]}", headers=auth).status_code == 200
        strict = client.get("/recommend/nobody.at.all@example.org", params={"strict": True})
        assert strict.status_code == 404
    needles = [*raw_ids, newcomer]
    assert _files_holding(tmp_path, needles) == []
    assert not [n for n in needles if n in caplog.text]
    served = ModelRegistry(models).load()
    assert pseudo(someone) in served.users and someone not in served.users


def test_pseudonymizer_is_keyed_stable_and_validated():
    one, two = Pseudonymizer.from_secret(KEY), Pseudonymizer.from_secret(KEY + "x")
    assert one("u1") == one("u1") != two("u1")
    assert one("u1").startswith("p") and len(one("u1")) == 33
    assert "secret" not in repr(one)
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        Pseudonymizer.from_secret("short")
    with pytest.raises(ConfigError, match="LUMENREC_PSEUDONYM_KEY"):
        Pseudonymizer.from_env({})


def test_service_refuses_pseudonymisation_without_a_key(tmp_path):
    from lumenrec.serving import ServiceSettings

    settings = ServiceSettings(model_dir=tmp_path, db=tmp_path / "e.sqlite", pseudonymize=True)
    with pytest.raises(ConfigError, match="no HMAC key"):
        settings.pseudonymizer()


def test_rekey_moves_store_and_model_to_the_new_key(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from lumenrec.cli import app
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry
    from lumenrec.serving.store import EventStore

    new_key = KEY + "-rotated"
    old, new = Pseudonymizer.from_secret(KEY), Pseudonymizer.from_secret(new_key)
    data = _raw_dataset()
    raw_ids = [str(u) for u in data.users.ids]
    models = tmp_path / "models"
    ModelRegistry(models).publish(
        RecommendPipeline.fit(EASE(regularization=5.0), pseudonymize_dataset(data, old))
    )
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    store.add_events(
        [{"user_id": old(raw_ids[0]), "item_id": "i1", "type": "click", "value": 1.0,
          "timestamp": 1.0}]
    )  # fmt: skip
    store.add_control(old(raw_ids[0]), "item", "i2")
    store.delete_user(old(raw_ids[1]))
    store.close()
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(raw_ids))
    monkeypatch.setenv("LUMENREC_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("LUMENREC_PSEUDONYM_NEW_KEY", new_key)
    args = ["users", "rekey", "--ids", str(ids), "--db", str(db), "--model-dir", str(models)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["store"]["events"] == 1 and counts["store"]["deletions"] == 1
    assert counts["model_users_renamed"] == len(raw_ids) and counts["model_version"] == "v2"
    store = EventStore(db)
    try:
        assert store.count_events(new(raw_ids[0])) == 1 and store.count_events(old(raw_ids[0])) == 0
        assert store.user_controls(new(raw_ids[0])).items == frozenset({"i2"})
        _, _, deleted = store.user_context(new(raw_ids[1]), after_seq=0, limit=5, deleted_since=0)
        assert deleted  # the erased user stays erased under the new key
    finally:
        store.close()
    served = ModelRegistry(models).load()
    assert new(raw_ids[2]) in served.users and old(raw_ids[2]) not in served.users
    missing = CliRunner().invoke(app, ["users", "rekey", "--ids", str(tmp_path / "none.txt")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_train_pseudonymize_flag(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lumenrec.cli import app
    from lumenrec.serving import ModelRegistry

    data = _raw_dataset()
    csv = tmp_path / "ratings.csv"
    import pandas as pd

    pd.DataFrame(
        {
            "user_id": data.users.ids[data.user_idx],
            "item_id": data.items.ids[data.item_idx],
            "rating": data.ratings,
        }
    ).to_csv(csv, index=False)
    args = ["train", "--dataset", str(csv), "--model", "ease", "--out", str(tmp_path / "m")]
    monkeypatch.delenv("LUMENREC_PSEUDONYM_KEY", raising=False)
    missing = CliRunner().invoke(app, [*args, "--pseudonymize"])
    assert missing.exit_code == 2 and "LUMENREC_PSEUDONYM_KEY" in missing.output
    assert not (tmp_path / "m").exists()  # nothing half-done
    monkeypatch.setenv("LUMENREC_PSEUDONYM_KEY", KEY)
    ok = CliRunner().invoke(app, [*args, "--pseudonymize", "-q"])
    assert ok.exit_code == 0, ok.output
    assert _files_holding(tmp_path / "m", [str(u) for u in data.users.ids]) == []
    pipeline = ModelRegistry(tmp_path / "m").load()
    assert Pseudonymizer.from_secret(KEY)(str(data.users.ids[0])) in pipeline.users
    assert pipeline.metadata["pseudonymized"] is True
