"""Named dataset loaders, the data-directory rules and the (mocked) download path."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lumenrec import datasets
from lumenrec.data import Dataset
from lumenrec.datasets import remote
from lumenrec.errors import ConfigError, DataError

_CACHE: dict[tuple[str, str], Dataset] = {}
NAMES = [
    "ml-100k", "ml-1m", "ml-1m-processed", "amazon-beauty", "amazon-toys", "amazon-sports",
    "yelp", "lastfm",
]  # fmt: skip


def _load(root: Path, name: str) -> Dataset:
    """Load a shared dataset once per module (ml-1m-processed has 1M rows)."""
    key = (str(root), name)
    if key not in _CACHE:
        _CACHE[key] = datasets.load(name, root)
    return _CACHE[key]


# -- registry and data directory -------------------------------------------------------------
def test_available_lists_every_dataset(shared_datasets: Path) -> None:
    infos = {d.name: d for d in datasets.available(shared_datasets)}
    assert list(infos) == NAMES
    assert infos["ml-100k"].present and infos["ml-100k"].files == ("u.data", "u.item", "u.user")
    assert infos["ml-1m"].present is False and infos["ml-1m"].missing == ("ratings.dat",)
    assert all(infos[n].present for n in NAMES if n != "ml-1m")
    assert infos["amazon-beauty"].path == shared_datasets / "amazon-beauty"
    assert "item_text.jsonl.gz" in infos["amazon-beauty"].optional_files


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMENREC_DATA_DIR", str(tmp_path / "env"))
    assert datasets.resolve_data_dir() == tmp_path / "env"
    assert datasets.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("LUMENREC_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.resolve_data_dir() == tmp_path / "home" / ".lumenrec" / "data"
    info = datasets.available()[0]
    assert info.path == tmp_path / "home" / ".lumenrec" / "data" / "ml-100k"
    assert not info.present and info.missing == info.files


def test_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'ml-10m'; valid: \["):
        datasets.load("ml-10m")


def test_missing_folder_message(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        datasets.load("amazon-beauty", tmp_path)
    text = str(err.value)
    assert str(tmp_path / "amazon-beauty") in text and "does not exist" in text
    assert "Beauty.txt" in text and "lumenrec.datasets.download('amazon-beauty'" in text
    assert "--download" in text
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    with pytest.raises(DataError, match=r"is missing \['u.item', 'u.user'\]"):
        datasets.load("ml-100k", tmp_path)


def test_ml1m_without_ratings_points_to_alternative(shared_datasets: Path) -> None:
    with pytest.raises(DataError) as err:
        datasets.load("ml-1m", shared_datasets)
    text = str(err.value)
    assert str(shared_datasets / "ml-1m" / "ratings.dat") in text
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in text
    assert "'ml-1m-processed'" in text


# -- MovieLens -------------------------------------------------------------------------------
def test_ml100k(shared_datasets: Path) -> None:
    ml = _load(shared_datasets, "ml-100k")
    assert (ml.n_users, ml.n_items, ml.n_events) == (943, 1_682, 100_000)
    hist = np.unique(ml.ratings, return_counts=True)
    assert dict(zip(hist[0].tolist(), hist[1].tolist(), strict=True)) == {
        1.0: 6_110, 2.0: 11_370, 3.0: 27_145, 4.0: 34_174, 5.0: 21_201,
    }  # fmt: skip
    first = ml.to_frame().iloc[0].tolist()
    assert first == ["196", "242", 3.0, 881_250_949]  # u.data line order
    assert ml.timestamps.dtype == np.int64 and ml.ratings.dtype == np.float32
    assert ml.users.ids[0] == "1" and ml.items.ids[-1] == "1682"  # numeric order
    toy = ml.catalog.loc["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["genres"] == "Animation|Children's|Comedy"
    assert toy["year"] == 1995 and str(toy["release_date"].date()) == "1995-01-01"
    assert ml.catalog.loc["543", "title"] == "Misérables, Les (1995)"  # latin-1
    assert ml.catalog.attrs["text_fields"] == ["title", "genres"]
    assert ml.item_text()[0] == "title: Toy Story (1995). genres: Animation|Children's|Comedy"
    u1 = ml.user_attributes.loc["1"]
    assert (u1["age"], u1["gender"], u1["occupation"], u1["zip_code"]) == (
        24, "M", "technician", "85711",
    )  # fmt: skip


def test_ml1m_processed(shared_datasets: Path) -> None:
    ml = _load(shared_datasets, "ml-1m-processed")
    assert (ml.n_users, ml.n_items, ml.n_events) == (6_040, 3_706, 1_000_209)
    assert ml.timestamps is None
    assert np.bincount(ml.ratings.astype(np.int64)).tolist() == [
        0, 56_174, 107_557, 261_197, 348_971, 226_310,
    ]  # fmt: skip
    assert ml.to_frame().iloc[0].tolist() == ["1", "938", 4.0]  # fold 1, first line
    assert len(np.unique(ml.user_idx.astype(np.int64) * ml.n_items + ml.item_idx)) == 1_000_209
    assert len(ml.catalog) == 3_706 and ml.catalog.loc["1", "title"] == "Toy Story (1995)"
    user = ml.user_attributes.loc["1"]
    assert (user["gender"], user["age"], user["occupation"]) == ("F", "Under 18", "K-12 student")
    assert user["age_code"] == 1 and user["occupation_code"] == 10


def test_ml1m_processed_without_sibling(shared_datasets: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m-processed"
    folder.mkdir()
    for v in range(1, 6):
        (folder / f"test_1m{v}.dat").symlink_to(shared_datasets / folder.name / f"test_1m{v}.dat")
    ml = datasets.load("ml-1m-processed", tmp_path)
    assert ml.n_events == 1_000_209 and ml.catalog is None and ml.user_attributes is None


def test_ml1m_full_release_layout(shared_datasets: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for name in ("movies.dat", "users.dat"):
        shutil.copy(shared_datasets / "ml-1m" / name, folder / name)
    (folder / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n"
    )
    ml = datasets.load("ml-1m", tmp_path)
    assert (ml.n_users, ml.n_items, ml.n_events) == (2, 3, 3)
    assert ml.timestamps.tolist() == [978_300_760, 978_302_109, 978_298_709]
    assert ml.items.ids.tolist() == ["661", "1193", "1357"]
    assert ml.catalog.loc["1193", "title"] == "One Flew Over the Cuckoo's Nest (1975)"
    assert ml.user_attributes.loc["2", "age"] == "56+"
    assert ml.user_attributes.loc["2", "occupation"] == "self-employed"
    (folder / "ratings.dat").write_text("1::1193::5\n")
    with pytest.raises(DataError, match=r"ratings.dat: line 1 has 3 fields, expected 4"):
        datasets.load("ml-1m", tmp_path)
    (folder / "ratings.dat").write_text("1::1::5::9\n1::1193::5::978300760::9\n")
    with pytest.raises(DataError, match=r"ratings.dat: line 2 has 5 fields, expected 4"):
        datasets.load("ml-1m", tmp_path)
    (folder / "ratings.dat").write_text("1::1::five::9\n")
    with pytest.raises(DataError, match=r"ratings.dat: could not parse as 4 fields"):
        datasets.load("ml-1m", tmp_path)


# -- S3-Rec sequences ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "sizes", "text"),
    [
        ("amazon-beauty", (22_363, 12_101, 198_502), ["title", "categories", "brand"]),
        ("amazon-toys", (19_412, 11_924, 167_597), ["title", "categories"]),
        ("amazon-sports", (35_598, 18_357, 296_337), []),
        ("yelp", (30_431, 20_033, 316_354), ["title", "categories"]),
        ("lastfm", (1_090, 3_646, 52_551), None),
    ],
)
def test_sequence_datasets(
    shared_datasets: Path, name: str, sizes: tuple[int, int, int], text: list[str] | None
) -> None:
    data = _load(shared_datasets, name)
    assert (data.n_users, data.n_items, data.n_events) == sizes
    assert data.ratings is None and data.timestamps is None
    assert data.items.ids[0] == "1" and data.items.ids[-1] == str(sizes[1])  # index = id - 1
    # the event log is the file: user by user, each sequence in order
    path = shared_datasets / name / datasets._registry.SPECS[name].files[0]
    lines = path.read_text().split("\n")
    first = lines[0].split()
    head = data.to_frame().iloc[: len(first) - 1]
    assert head["user_id"].tolist() == [first[0]] * (len(first) - 1)
    assert head["item_id"].tolist() == first[1:]
    last = [ln for ln in lines if ln.strip()][-1].split()
    assert data.to_frame()["item_id"].iloc[-(len(last) - 1) :].tolist() == last[1:]
    if text is None:
        assert data.catalog is None
        return
    assert data.catalog.index.tolist() == data.items.ids.tolist()  # aligned to items
    assert data.catalog.attrs["text_fields"] == text


def test_beauty_catalog_joins(shared_datasets: Path) -> None:
    data = _load(shared_datasets, "amazon-beauty")
    cat = data.catalog
    row = cat.loc["1"]
    assert row["asin"] == "B004756YJA" and row["brand"] == "OPI"
    assert row["title"] == "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce"
    assert row["categories"] == "Beauty > Makeup > Nails > Nail Polish"
    maps = json.loads((shared_datasets / "amazon-beauty" / "datamaps.json").read_text())
    assert cat["asin"].tolist() == [maps["id2item"][i] for i in data.items.ids]
    assert int(cat["title"].notna().sum()) == 12_094 and int(cat["brand"].notna().sum()) == 7_478
    assert data.user_attributes.loc["1", "reviewer_id"] == maps["id2user"]["1"]
    assert data.item_text(["title", "brand"])[0].startswith("title: OPI Nail Lacquer")


def test_toys_yelp_sports_catalogs(shared_datasets: Path) -> None:
    toys = _load(shared_datasets, "amazon-toys")
    lines = (shared_datasets / "amazon-toys" / "item_asin_map.tsv").read_text().split("\n")[1:]
    asin = dict(ln.split("\t") for ln in lines if ln)
    assert toys.catalog["asin"].tolist() == [asin[i] for i in toys.items.ids]
    assert toys.catalog.loc["2", "title"] == "LEGO Star Wars Clone Troopers vs Droidekas 75000"
    assert int(toys.catalog["title"].isna().sum()) == 59
    yelp = _load(shared_datasets, "yelp")
    assert yelp.catalog.loc["1", "title"] == "The Great Greek"  # business name
    assert yelp.catalog.loc["1", "categories"] == "Diners, Greek, Mediterranean, Restaurants"
    assert "asin" not in yelp.catalog
    sports = _load(shared_datasets, "amazon-sports")
    assert (
        list(sports.catalog.columns) == ["asin"] and sports.catalog.loc["1", "asin"] == "1881509818"
    )


def test_sequence_file_errors(tmp_path: Path) -> None:
    folder = tmp_path / "lastfm"
    folder.mkdir()
    (folder / "LastFM.txt").write_text("1 2 3\n2 x 4\n")
    with pytest.raises(DataError, match=r"LastFM.txt: line 2 is not"):
        datasets.load("lastfm", tmp_path)
    (folder / "LastFM.txt").write_text("1 2 3\n2\n")
    with pytest.raises(DataError, match=r"line 2 has a user id but no items"):
        datasets.load("lastfm", tmp_path)
    (folder / "LastFM.txt").write_text("\n")
    with pytest.raises(DataError, match="is empty"):
        datasets.load("lastfm", tmp_path)


def test_item_text_must_agree_with_id_map(tmp_path: Path) -> None:
    folder = tmp_path / "amazon-toys"
    folder.mkdir()
    (folder / "Toys_and_Games.txt").write_text("1 1 2\n2 2 1\n")
    (folder / "item_asin_map.tsv").write_text("item_id\tasin\n1\tA1\n2\tA2\n")
    rows = [{"item_id": 1, "asin": "A1", "title": "one", "categories": [["T", "X"]]},
            {"asin": "A2", "title": "two", "categories": [["T"]]}]  # fmt: skip
    with gzip.open(folder / "item_text.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    data = datasets.load("amazon-toys", tmp_path)
    assert data.catalog["title"].tolist() == ["one", "two"]  # second joined via its asin
    assert data.catalog["categories"].tolist() == ["T > X", "T"]
    rows[0]["asin"] = "A9"
    with gzip.open(folder / "item_text.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match="do not belong together"):
        datasets.load("amazon-toys", tmp_path)


# -- download (network mocked) ---------------------------------------------------------------
class _Response(io.BytesIO):
    def __enter__(self) -> _Response:
        return self


def _serve(monkeypatch: pytest.MonkeyPatch, payloads: dict[str, bytes]) -> list[str]:
    seen: list[str] = []

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> _Response:
        seen.append(request.full_url)
        assert timeout > 0
        return _Response(payloads[request.full_url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return seen


def test_download_offline_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(request: urllib.request.Request, timeout: float) -> None:
        msg = "[Errno -3] Temporary failure in name resolution"
        raise urllib.error.URLError(msg)

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        datasets.load("lastfm", tmp_path, download=True)
    text = str(err.value)
    assert "could not download https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec/" in text
    assert "(offline?)" in text and f"place the files in {tmp_path / 'lastfm'} manually" in text
    assert not any((tmp_path / "lastfm").iterdir())  # no partial files left


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = remote.SOURCES["ml-100k"][0].url
    _serve(monkeypatch, {url: b"<html>captive portal</html>"})
    with pytest.raises(DataError, match=r"checksum mismatch for .*ml-100k.zip: expected md5"):
        datasets.download("ml-100k", tmp_path)
    assert not any((tmp_path / "ml-100k").iterdir())


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_download_zip_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    udata, uitem = (
        b"1\t1\t5\t881250949\n",
        ("1|Toy Story (1995)|01-Jan-1995||u" + "|0" * 19 + "\n").encode(),
    )
    uuser = b"1|24|M|technician|85711\n"
    blob = _zip_bytes({"ml-100k/u.data": udata, "ml-100k/u.item": uitem, "ml-100k/u.user": uuser})
    sha = {
        n: hashlib.sha256(b).hexdigest()
        for n, b in [("u.data", udata), ("u.item", uitem), ("u.user", uuser)]
    }
    spec = remote.RemoteZip(
        "https://example.org/ml-100k.zip",
        hashlib.md5(blob, usedforsecurity=False).hexdigest(),
        {f"ml-100k/{n}": (n, s) for n, s in sha.items()},
    )
    monkeypatch.setitem(remote.SOURCES, "ml-100k", [spec])
    seen = _serve(monkeypatch, {spec.url: blob})
    data = datasets.load("ml-100k", tmp_path, download=True)
    assert (data.n_events, data.catalog.loc["1", "title"]) == (1, "Toy Story (1995)")
    assert sorted(p.name for p in (tmp_path / "ml-100k").iterdir()) == [
        "u.data",
        "u.item",
        "u.user",
    ]
    datasets.download("ml-100k", tmp_path)  # verified files present: no second request
    assert seen == [spec.url]
    # a plain file source
    text = b"1 1 2 3\n"
    monkeypatch.setitem(
        remote.SOURCES, "lastfm",
        [remote.RemoteFile("https://example.org/LastFM.txt", "LastFM.txt", hashlib.sha256(text).hexdigest())],
    )  # fmt: skip
    _serve(monkeypatch, {"https://example.org/LastFM.txt": text})
    assert datasets.load("lastfm", tmp_path, download=True).n_events == 3


def test_download_member_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _zip_bytes({"ml-1m/ratings.dat": b"tampered"})
    spec = remote.RemoteZip(
        "https://example.org/ml-1m.zip", None, {"ml-1m/ratings.dat": ("ratings.dat", "0" * 64)}
    )
    monkeypatch.setitem(remote.SOURCES, "ml-1m", [spec])
    _serve(monkeypatch, {spec.url: blob})
    with pytest.raises(DataError, match="checksum mismatch for ratings.dat"):
        datasets.download("ml-1m", tmp_path)
    assert not (tmp_path / "ml-1m" / "ratings.dat").exists()


@pytest.mark.parametrize(
    "evil", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt", "..\\evil.txt"]
)
def test_extract_zip_refuses_traversal(tmp_path: Path, evil: str) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_bytes({"ok.txt": b"ok", evil: b"pwned"}))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataError, match="refusing to extract"):
        remote.extract_zip(archive, dest)
    assert not (tmp_path / "evil.txt").exists()


def test_extract_zip_members_and_errors(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_bytes({"d/x.txt": b"x", "d/y.txt": b"y"}))
    out = remote.extract_zip(archive, tmp_path / "o", {"d/x.txt": "x.txt"})
    assert out == [(tmp_path / "o" / "x.txt").resolve()] and out[0].read_bytes() == b"x"
    with pytest.raises(DataError, match="lacks the expected member"):
        remote.extract_zip(archive, tmp_path / "o", {"d/z.txt": "z.txt"})
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        remote.extract_zip(tmp_path / "bad.zip", tmp_path / "o")


def test_sources_pin_provenance_hashes(shared_datasets: Path) -> None:
    """Every pinned sha256 equals the hash of the shared copy where we have the file."""
    checked = 0
    for name, sources in remote.SOURCES.items():
        for src in sources:
            files = (
                [(t, s) for t, s in src.members.values()]
                if isinstance(src, remote.RemoteZip)
                else [(src.target, src.sha256)]
            )
            for target, sha in files:
                path = shared_datasets / name / target
                if path.is_file():
                    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, path
                    checked += 1
    assert checked >= 20
