"""Readers: column checks, encodings, delimiters, bad values, duplicate policies, Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumenrec.data import from_pandas, read_catalog, read_interactions
from lumenrec.errors import DataError


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "events.csv", "user,item_id\nu1,i1\n")
    with pytest.raises(DataError) as err:
        read_interactions(path)
    text = str(err.value)
    assert str(path) in text and "['user_id']" in text and "['user', 'item_id']" in text
    data = read_interactions(path, col_user="user")
    assert data.users.ids.tolist() == ["u1"]


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.csv", "user_id,item_id,rating,comment,timestamp\nu,i,4,great,10\n")
    data = read_interactions(path)
    assert data.ratings.tolist() == [4.0] and data.timestamps.tolist() == [10]
    assert data.to_frame().columns.tolist() == ["user_id", "item_id", "rating", "timestamp"]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        read_interactions(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match=r"header\.csv: no rows"):
        read_interactions(_write(tmp_path / "header.csv", "user_id,item_id\n"))
    with pytest.raises(DataError, match="does not exist"):
        read_interactions(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_interactions(tmp_path)


def test_bad_ratings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nan\.csv: column 'rating' has NaN/inf at row 0"):
        read_interactions(_write(tmp_path / "nan.csv", "user_id,item_id,rating\nu,i,\nv,j,3\n"))
    with pytest.raises(DataError, match=r"non-numeric value 'five' at row 1"):
        read_interactions(_write(tmp_path / "txt.csv", "user_id,item_id,rating\nu,i,1\nv,j,five\n"))
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [1.0, np.inf]})
    with pytest.raises(DataError, match="NaN/inf at row 1"):
        from_pandas(df)


def test_missing_ids(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"column 'item_id' has empty/NaN values \(first at row 1\)"
    ):
        read_interactions(_write(tmp_path / "ids.csv", "user_id,item_id\nu,i\nv,\n"))


def test_timestamps(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unparsable timestamp 'yesterday' at row 1"):
        read_interactions(
            _write(tmp_path / "t.csv", "user_id,item_id,timestamp\nu,i,2020-01-01\nv,j,yesterday\n")
        )
    iso = read_interactions(
        _write(tmp_path / "iso.csv", "user_id,item_id,timestamp\nu,i,1970-01-02T00:00:00Z\n")
    )
    assert iso.timestamps.tolist() == [86_400]
    with pytest.raises(DataError, match=r"empty/NaN timestamps \(first at row 1\)"):
        read_interactions(_write(tmp_path / "gap.csv", "user_id,item_id,timestamp\nu,i,5\nv,j,\n"))


def test_datetime_column_becomes_unix_seconds() -> None:
    # regression: pandas >= 3 stores datetime64[us]; the raw integer view was taken as seconds
    for unit in ("s", "ms", "us", "ns"):
        stamps = pd.Series(pd.to_datetime(["1970-01-02", "2020-01-01"])).astype(
            f"datetime64[{unit}]"
        )
        df = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["i", "j"], "timestamp": stamps})
        assert from_pandas(df).timestamps.tolist() == [86_400, 1_577_836_800], unit
    aware = pd.Series(pd.to_datetime(["2020-01-01T01:00:00+01:00"]))
    df = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": aware})
    assert from_pandas(df).timestamps.tolist() == [1_577_836_800]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", "user_id,item_id\nu,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv is not valid UTF-8"):
        read_interactions(path)


def test_utf8_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "bom.csv", "\ufeffuser_id,item_id\nü,i\n".encode())
    data = read_interactions(path)
    assert data.users.ids.tolist() == ["ü"]


@pytest.mark.parametrize(
    ("name", "sep"), [("s.csv", ";"), ("t.tsv", "\t"), ("p.txt", "|"), ("c.csv", ",")]
)
def test_delimiter_sniffing(tmp_path: Path, name: str, sep: str) -> None:
    text = sep.join(["user_id", "item_id", "rating"]) + "\n" + sep.join(["u1", "i1", "4"]) + "\n"
    text += sep.join(["u2", "i2", "5"]) + "\n"
    data = read_interactions(_write(tmp_path / name, text))
    assert data.to_frame().values.tolist() == [["u1", "i1", 4.0], ["u2", "i2", 5.0]]


_DUP = pd.DataFrame(
    {
        "user_id": [1, 1, 2, 1],
        "item_id": [1, 1, 2, 1],
        "rating": [1.0, 5.0, 3.0, 2.0],
        "timestamp": [10, 20, 30, 40],
    }
)


@pytest.mark.parametrize(
    ("policy", "rows"),
    [
        (
            "keep",
            [["1", "1", 1.0, 10], ["1", "1", 5.0, 20], ["2", "2", 3.0, 30], ["1", "1", 2.0, 40]],
        ),
        ("last", [["2", "2", 3.0, 30], ["1", "1", 2.0, 40]]),
        ("first", [["1", "1", 1.0, 10], ["2", "2", 3.0, 30]]),
        ("sum", [["2", "2", 3.0, 30], ["1", "1", 8.0, 40]]),
        ("max", [["2", "2", 3.0, 30], ["1", "1", 5.0, 40]]),
    ],
)
def test_duplicate_policies(policy: str, rows: list[list[object]]) -> None:
    data = from_pandas(_DUP, duplicates=policy)
    assert data.to_frame().values.tolist() == rows
    # the matrix has one entry per pair; with "keep" the last event's value wins
    expected = {"keep": 2.0, "last": 2.0, "first": 1.0, "sum": 8.0, "max": 5.0}[policy]
    assert data.matrix[data.users.index("1")[0], data.items.index("1")[0]] == expected


def test_duplicate_policy_errors() -> None:
    with pytest.raises(DataError, match=r"duplicate \(user, item\) rows, e.g. user '1' item '1'"):
        from_pandas(_DUP, duplicates="error")
    with pytest.raises(DataError, match="duplicates must be one of"):
        from_pandas(_DUP, duplicates="mean")  # type: ignore[arg-type]
    no_ratings = from_pandas(_DUP[["user_id", "item_id"]], duplicates="sum")
    assert no_ratings.n_events == 2


def test_parquet_round_trip(tmp_path: Path) -> None:
    items = pd.DataFrame({"item_id": ["1", "2", "9"], "title": ["one", "two", "nine"]})
    data = from_pandas(_DUP, items=items, name="dup")
    path = tmp_path / "events.parquet"
    data.to_frame().to_parquet(path)
    back = read_interactions(path, items=items, name="dup")
    assert back.fingerprint() == data.fingerprint()
    assert back.items.ids.tolist() == ["1", "2", "9"]  # catalogue-only item kept (cold item)
    assert back.catalog.loc["9", "title"] == "nine"


def test_catalog_file(tmp_path: Path) -> None:
    _write(tmp_path / "items.csv", "item_id,title\ni1,One\ni3,Three\n")
    _write(tmp_path / "events.csv", "user_id,item_id\nu,i1\nu,i2\n")
    data = read_interactions(tmp_path / "events.csv", items=tmp_path / "items.csv")
    assert data.items.ids.tolist() == ["i1", "i2", "i3"]
    assert data.catalog["title"].tolist()[0] == "One" and pd.isna(data.catalog["title"].iloc[1])
    _write(tmp_path / "bad_items.csv", "id,title\ni1,One\n")
    with pytest.raises(DataError, match=r"bad_items\.csv: missing column 'item_id'"):
        read_catalog(tmp_path / "bad_items.csv")


# -- SERVICE.md 4.3: Parquet (or DataFrames) with the wrong dtypes ----------------------------
_GOOD = {
    "user_id": ["u1", "u2"],
    "item_id": ["i1", "i2"],
    "rating": [1.0, 2.0],
    "timestamp": [1, 2],
}
_WRONG_DTYPES = {
    "float user ids": ({"user_id": [1.5, 2.0]}, "'user_id' holds non-integral numbers"),
    "infinite user ids": ({"user_id": [np.inf, 2.0]}, "'user_id' holds infinite numbers"),
    "list item ids": ({"item_id": [[1, 2], [3]]}, "'item_id' holds list values (a nested column)"),
    "dict item ids": ({"item_id": [{"a": 1}, {"b": 2}]}, "'item_id' holds dict values"),
    "bytes user ids": ({"user_id": [b"u1", b"u2"]}, "'user_id' holds bytes"),
    "bool user ids": ({"user_id": [True, False]}, "'user_id' holds booleans"),
    "datetime item ids": (
        {"item_id": pd.to_datetime(["2020-01-01", "2020-01-02"])},
        "'item_id' holds datetime64",
    ),
    "mixed object ids": ({"item_id": ["i1", 2.5]}, "'item_id' holds float values"),
    "list ratings": ({"rating": [[1.0], [2.0]]}, "'rating' holds list values"),
    "complex ratings": ({"rating": [1 + 2j, 2 + 0j]}, "'rating' holds complex numbers"),
    "dict timestamps": ({"timestamp": [{"t": 1}, {"t": 2}]}, "'timestamp' holds dict values"),
}

_FRAME_ONLY = {"mixed object ids", "complex ratings"}


@pytest.mark.parametrize("case", sorted(_WRONG_DTYPES))
def test_parquet_with_wrong_dtypes_names_file_column_and_columns(tmp_path: Path, case) -> None:
    override, expected = _WRONG_DTYPES[case]
    path = tmp_path / "events.parquet"
    frame = pd.DataFrame({**_GOOD, **override})
    with pytest.raises(DataError) as err:
        if case in _FRAME_ONLY:  # pyarrow cannot write these; a DataFrame can still hold them
            from_pandas(frame, source=str(path))
        else:
            frame.to_parquet(path)
            read_interactions(path)
    text = str(err.value)
    assert text.startswith(f"{path}: column ") and expected in text, text
    assert "available columns: ['user_id', 'item_id', 'rating', 'timestamp']" in text
    assert "\n" not in text


def test_whole_number_and_mixed_ids_are_accepted() -> None:
    df = pd.DataFrame(
        {
            "user_id": [1.0, 2.0, 3.0],  # Parquet ints with a missing value elsewhere: floats
            "item_id": pd.Series(["i1", 7, np.int64(8)], dtype=object),
            "rating": [1, 2, 3],
        }
    )
    data = from_pandas(df)
    assert data.users.ids.tolist() == ["1", "2", "3"]
    assert data.items.ids.tolist() == ["i1", "7", "8"]
    cats = from_pandas(df.astype({"user_id": "int64"}).astype({"user_id": "category"}))
    assert cats.users.ids.tolist() == ["1", "2", "3"]
