"""FairRecSys loader (tiny generated copy and the real files) and the authors' NDCG variant."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.datasets.fairrecsys import fairrecsys_metrics, load_fairrecsys
from lumenrec.errors import DataError


def _write(folder: Path, name: str = "Tiny", *, bad_group: bool = False) -> Path:
    base = folder / name
    (base / "groups" / "users" / "005").mkdir(parents=True)
    (base / "groups" / "items" / "020").mkdir(parents=True)
    (base / f"{name}_train.txt").write_text("0\t10\t4 \n0\t11\t5 \n1\t11\t3 \n2\t12\t1 \n")
    (base / f"{name}_tune.txt").write_text("1\t10\t4 \n")
    (base / f"{name}_test.txt").write_text("0\t12\t4 \n1\t13\t2 \n")
    users = base / "groups" / "users" / "005"
    (users / "active_ids.txt").write_text("0\n")
    (users / "inactive_ids.txt").write_text("1\n2\n" + ("99\n" if bad_group else ""))
    items = base / "groups" / "items" / "020"
    (items / "shorthead_items.txt").write_text("11\n")
    (items / "longtail_items.txt").write_text("10\n12\n13\n")
    return base


def test_loader_on_tiny_copy(tmp_path):
    _write(tmp_path)
    data = load_fairrecsys(tmp_path, "Tiny")
    assert (data.n_users, data.n_items) == (3, 4)
    assert (data.train.n_events, data.tune.n_events, data.test.n_events) == (4, 1, 2)
    assert data.train.users is data.test.users and data.train.items is data.tune.items
    assert data.active_users.tolist() == [0] and data.inactive_users.tolist() == [1, 2]
    assert data.short_head_items.tolist() == [1] and data.long_tail_items.tolist() == [0, 2, 3]
    assert data.item_first_seen.tolist() == [0, 1, 2]  # 10, 11, 12 in train-file order
    assert data.user_labels().tolist() == ["active", "inactive", "inactive"]
    assert data.test.items.ids[data.test.item_idx].tolist() == ["12", "13"]
    assert len(data.checksums) == 7
    split = data.as_split()
    assert split.valid is None and split.train_full is data.train and "tune" in split.extras
    same = load_fairrecsys(tmp_path / "Tiny", "Tiny")  # the dataset folder itself
    assert same.checksums == data.checksums


def test_loader_errors(tmp_path):
    with pytest.raises(DataError, match="no FairRecSys dataset 'Nope'"):
        load_fairrecsys(tmp_path, "Nope")
    _write(tmp_path, bad_group=True)
    with pytest.raises(DataError, match=r"ids \[99\] occur in none"):
        load_fairrecsys(tmp_path, "Tiny")
    other = tmp_path / "x"
    base = _write(other)
    (base / "Tiny_test.txt").write_text("0\tabc\t4\n")
    with pytest.raises(DataError, match="line 1 is not 'uid iid rating'"):
        load_fairrecsys(other, "Tiny")
    (base / "Tiny_test.txt").unlink()
    with pytest.raises(DataError, match="Tiny_test.txt not found"):
        load_fairrecsys(other, "Tiny")


def test_author_ndcg_by_hand():
    relevant = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]))
    ranked = np.array([[0, 1, 2], [1, 2, 3], [0, 1, 2]])
    out = fairrecsys_metrics(ranked, relevant, k=3)
    idcg = 1 + 1 / math.log(2) + 1 / math.log(3)
    assert out["ndcg@3"][0] == pytest.approx((1 + 1 / math.log(3)) / idcg)
    assert out["ndcg@3"][1] == 0.0 and math.isnan(out["ndcg@3"][2])
    assert out["precision@3"][:2].tolist() == pytest.approx([2 / 3, 0.0])
    assert out["recall@3"][:2].tolist() == [1.0, 0.0]
    # one relevant item at position 2 of a 10-list: (1/ln 2) / 7.1379...; IDCG ignores |rel|
    ten = fairrecsys_metrics(np.arange(10)[None, :], sp.csr_matrix(np.eye(1, 20, 1)), k=10)
    assert ten["ndcg@10"][0] == pytest.approx((1 / math.log(2)) / 7.137938133620551)
    with pytest.raises(DataError, match="shape"):
        fairrecsys_metrics(ranked, relevant, k=5)


def test_real_movielens_files_and_published_mostpop(shared_datasets):
    root = shared_datasets / "fairrecsys"
    if not (root / "MovieLens").is_dir():
        pytest.skip("fairrecsys/MovieLens not in the shared datasets")
    data = load_fairrecsys(root, "MovieLens")
    assert (data.train.n_events, data.tune.n_events, data.test.n_events) == (69500, 9929, 19858)
    assert (data.active_users.size, data.inactive_users.size) == (47, 896)
    assert (data.short_head_items.size, data.long_tail_items.size) == (269, 1080)
    # the authors' MostPop row: 10 of the top-50 by count picked by Cornac item index
    pop = np.bincount(data.train.item_idx, minlength=data.n_items).astype(np.float64)
    s = pop[data.item_first_seen]
    top50 = np.argsort(s)[::-1][:50]
    chosen = np.sort(np.argsort(-s[:50], kind="stable")[:10])
    items = data.item_first_seen[top50[chosen]]
    rel = data.test.matrix
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    ndcg = fairrecsys_metrics(np.tile(items, (users.size, 1)), rel[users], 10)["ndcg@10"]
    active = np.isin(users, data.active_users)
    assert ndcg.mean() == pytest.approx(0.08412, abs=5e-6)
    assert ndcg[active].mean() == pytest.approx(0.14857, abs=5e-6)
    assert ndcg[~active].mean() == pytest.approx(0.08072, abs=5e-6)
