"""IdIndex and Dataset behaviour: id round trips, matrix canonicalisation, immutability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumenrec.data import Dataset, IdIndex, from_pandas
from lumenrec.errors import DataError, UnknownIdError


def test_idindex_round_trip_and_missing():
    idx = IdIndex(["a", "b", 3], name="user")
    assert len(idx) == 3 and "3" in idx and 3 in idx
    np.testing.assert_array_equal(idx.index(["b", "3", "a"]), [1, 2, 0])
    assert idx.index(["b", "zz"], missing="ignore").tolist() == [1, -1]
    assert idx.lookup([2, -1, 0]).tolist() == ["3", None, "a"]
    with pytest.raises(UnknownIdError, match="unknown user 'zz'"):
        idx.index(["zz"])
    with pytest.raises(DataError, match="distinct"):
        IdIndex(["a", "a"])
    assert idx.extend(["c", "a"]).ids.tolist() == ["a", "b", "3", "c"]


def test_unknown_id_is_keyerror_and_dataerror():
    with pytest.raises(KeyError):
        IdIndex(["a"]).index("b")


def test_matrix_last_value_wins_and_is_canonical():
    df = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u1"],
            "item_id": ["x", "y", "x", "x"],
            "rating": [1, 2, 3, 5],
        }
    )
    data = from_pandas(df)
    m = data.matrix
    assert m.dtype == np.float32 and m.has_sorted_indices and m.shape == (2, 2)
    assert m[0, 0] == 5 and m[0, 1] == 2 and m[1, 0] == 3 and m.nnz == 3
    assert data.n_events == 4  # the log keeps every event


def test_dataset_is_immutable_and_subset_keeps_vocab():
    data = from_pandas(pd.DataFrame({"user_id": [1, 2, 2], "item_id": [7, 7, 8]}))
    with pytest.raises(ValueError):
        data.user_idx[0] = 1
    sub = data.subset(np.array([False, True, True]))
    assert sub.users == data.users and sub.items == data.items
    assert sub.matrix.shape == data.matrix.shape and sub.matrix.nnz == 2


def test_binarize_threshold_and_fingerprint():
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rating": [2.0, 4.0, 5.0]})
    data = from_pandas(df)
    b = data.binarize(threshold=3)
    assert b.ratings is None and b.n_events == 2 and set(b.matrix.data) == {1.0}
    assert data.fingerprint() == from_pandas(df).fingerprint()
    assert data.fingerprint() != b.fingerprint()
    with pytest.raises(DataError, match="needs ratings"):
        b.binarize(threshold=3)


def test_dataset_validates_arrays():
    users, items = IdIndex(["a"]), IdIndex(["x"])
    with pytest.raises(DataError, match="item_idx has"):
        Dataset(users, items, np.array([0, 0]), np.array([0]))
    with pytest.raises(DataError, match="NaN or inf"):
        Dataset(users, items, np.array([0]), np.array([0]), np.array([np.nan]))
    with pytest.raises(DataError, match=r"item_idx must lie in \[0, 1\)"):
        Dataset(users, items, np.array([0]), np.array([3]))


def test_catalog_items_without_events_join_vocab_and_text():
    df = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    cat = pd.DataFrame({"item_id": ["a", "new"], "title": ["Alpha", "Brand new"]})
    data = from_pandas(df, items=cat)
    assert data.items.ids.tolist() == ["a", "new"]
    assert data.item_text(["title"]) == ["title: Alpha", "title: Brand new"]
    with pytest.raises(DataError, match="no column"):
        data.item_text(["nope"])


def test_to_frame_round_trip(clusters):
    frame = clusters.to_frame()
    again = from_pandas(frame)
    assert again.n_events == clusters.n_events
    assert (again.matrix != clusters.matrix).nnz == 0
