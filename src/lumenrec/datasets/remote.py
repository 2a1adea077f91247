"""Fetch the public dataset files (GroupLens zips, S3-Rec/P5/SiReN files), checksum-verified.

Never called implicitly: :func:`lumenrec.datasets.load` downloads only with
``download=True``. Every file is checked against the sha256 recorded in the dataset's
PROVENANCE (the GroupLens zips additionally against the md5 GroupLens publishes beside
them); nothing unverified is kept. Zip members are streamed to fixed file names inside the
dataset folder, and any member whose name would escape that folder is refused.
Files that were derived for this project (``item_text.jsonl.gz``, ``item_asin_map.tsv``)
have no public download; place them manually.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lumenrec.datasets._registry import get_spec, resolve_data_dir
from lumenrec.errors import DataError
from lumenrec.types import PathLike

__all__ = ["SOURCES", "RemoteFile", "RemoteZip", "download", "extract_zip"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_S3REC = "https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec"
_S3REC_AT = f"{_S3REC}/e6c774da92dba847b00ac89e8bfc5c55cc44d378/data"
_P5 = "https://raw.githubusercontent.com/Wenyueh/LLM-RecSys-ID"
_SIREN = "https://raw.githubusercontent.com/woni-seo/SiReN-reco/eab6aaba5247bfd18ffa15f22bb3428505436041/ml-1m"
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class RemoteFile:
    """One file: ``url`` is saved as ``target`` in the dataset folder if its sha256 matches."""

    url: str
    target: str
    sha256: str


@dataclass(frozen=True)
class RemoteZip:
    """A zip archive; ``members`` maps member path → (target file name, sha256)."""

    url: str
    md5: str | None
    members: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def _ml_zip(name: str, md5: str, files: dict[str, str]) -> RemoteZip:
    return RemoteZip(
        f"{_GROUPLENS}/{name}.zip", md5, {f"{name}/{f}": (f, sha) for f, sha in files.items()}
    )


def _s3rec(*files: tuple[str, str]) -> list[RemoteFile]:
    return [RemoteFile(f"{_S3REC_AT}/{f}", f, sha) for f, sha in files]


#: Dataset name → what to fetch. Hashes are those in each dataset's PROVENANCE.md.
SOURCES: dict[str, list[RemoteFile | RemoteZip]] = {
    "ml-100k": [
        _ml_zip(
            "ml-100k",
            "0e33842e24a9c977be4e0107933c0723",
            {
                "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
                "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
                "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
                "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
                "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
            },
        )
    ],
    "ml-1m": [
        _ml_zip(
            "ml-1m",
            "c4d9eecfca2ab87c1945afe126590906",
            {
                "ratings.dat": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
                "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
                "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
                "README": "2d5ddce86ccbd247207456165827b4b9ddf27282bca93807d4c763e28414f133",
            },
        )
    ],
    "ml-1m-processed": [
        RemoteFile(f"{_SIREN}/test_1m{v}.dat", f"test_1m{v}.dat", sha)
        for v, sha in enumerate(
            (
                "0ceed1eae31fa0f3dd8bea5209336b7b9456830ef26ae8f74a39f3b9b64a5268",
                "92b945ad0ed8e8b0cefd8bced7f7e112147965d40385d75cb33182c0cfbd6dd5",
                "bc0e086ea8eb19b6fe301dc5e10abb30549191827cc439cb8148dbff206d5da0",
                "ac94bfcdaecb002b545b9815e2360ad5bb4d3d1a2ef608e7b7e05ceb043a0113",
                "619d54e035569f3ba67b4b9b8e580cef3d773ad2b6d99eecc2483e631334a55d",
            ),
            start=1,
        )
    ],
    "amazon-beauty": [
        *_s3rec(
            ("Beauty.txt", "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8"),
            (
                "Beauty_item2attributes.json",
                "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
            ),
        ),
        RemoteFile(
            f"{_P5}/377977a29e68e18842ffa06e96e8be05825dd524/data/beauty/datamaps.json",
            "datamaps.json",
            "715ab04838ff1ba21238475ed453a89e8c30aa6214b904d27a79e4168fc7b612",
        ),
    ],
    "amazon-sports": [
        *_s3rec(
            (
                "Sports_and_Outdoors.txt",
                "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
            ),
            (
                "Sports_and_Outdoors_item2attributes.json",
                "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b",
            ),
        ),
        RemoteFile(
            f"{_P5}/d5d5e8b2471fe074308d2a2615f40e0a879eb8be/data/sports/datamaps.json",
            "datamaps.json",
            "4a4d9785ab99a89a499f25023892a647a2280086041c9c9d7169c9dc2ee0b715",
        ),
    ],
    "amazon-toys": _s3rec(
        ("Toys_and_Games.txt", "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f"),
        (
            "Toys_and_Games_item2attributes.json",
            "d371acd25101eedac04afc727626464b7acec770c4eda708705d51eb76eb1ad0",
        ),
    ),
    "yelp": _s3rec(
        ("Yelp.txt", "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed"),
        (
            "Yelp_item2attributes.json",
            "f25acd5e1e680e0b22fd4e3f4fb6be4b2a7461e9222610616e3e1ee6702dd58d",
        ),
    ),
    "lastfm": [
        *_s3rec(
            ("LastFM.txt", "9ded486adb5b0fe9dc761950afa0a9a05e93ff018992e0c52bf11afec529f802"),
            (
                "LastFM_item2attributes.json",
                "a4ccd678dc9ff6d43fe5073f491db5c9b02eb98dfa4f8c0382913a784be217ef",
            ),
        ),
        RemoteFile(
            f"{_S3REC}/cdd51db97d11a1026071d16dbd81a6fb7cb7012f/data/LastFM_sample.txt",
            "LastFM_sample.txt",
            "60194cc2e4fd1aa8b5dc8872e1f3af9c6abd09c39d478d3df9337cb97e6e2f0d",
        ),
    ],
}


def download(
    name: str, data_dir: PathLike | None = None, *, timeout: float = 60.0, force: bool = False
) -> Path:
    """Download (and verify) the public files of dataset ``name`` into ``<data_dir>/<name>/``.

    Files already present with the right checksum are kept (unless ``force``).

    Parameters
    ----------
    name : str
        A dataset name from :func:`lumenrec.datasets.available`.
    data_dir : str or PathLike, optional
        Default: ``$LUMENREC_DATA_DIR``, else ``~/.lumenrec/data``.
    timeout : float
        Seconds per network operation.
    force : bool
        Re-download even when verified files are present.

    Returns
    -------
    Path
        The dataset folder.

    Raises
    ------
    DataError
        Network failure ("offline?"), checksum mismatch, unsafe zip member.
    ConfigError
        Unknown dataset name.
    """
    get_spec(name)
    folder = resolve_data_dir(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for source in SOURCES.get(name, []):
        if isinstance(source, RemoteZip):
            _get_zip(source, folder, timeout=timeout, force=force)
        elif force or not _verified(folder / source.target, source.sha256):
            _fetch(source.url, folder / source.target, sha256=source.sha256, timeout=timeout)
    log.info("dataset %s is in %s", name, folder)
    return folder


def extract_zip(
    archive: PathLike, dest: PathLike, members: Mapping[str, str] | None = None
) -> list[Path]:
    """Extract regular files from ``archive`` into ``dest``, refusing path traversal.

    Parameters
    ----------
    archive : str or PathLike
        A zip file.
    dest : str or PathLike
        Target folder.
    members : mapping of str to str, optional
        Member path → file name inside ``dest``; other members are skipped. Default:
        every file member under its own (relative) path.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        A member name is absolute, contains ``..`` or would resolve outside ``dest``;
        an expected member is absent; the file is not a zip.
    """
    root = Path(os.fspath(dest)).resolve()
    written = []
    try:
        with zipfile.ZipFile(os.fspath(archive)) as zf:
            names = {info.filename: info for info in zf.infolist()}
            wanted = members or {n: n for n, info in names.items() if not info.is_dir()}
            absent = [m for m in wanted if m not in names]
            if absent:
                msg = f"{archive} lacks the expected member(s) {absent}"
                raise DataError(msg)
            for member, target_name in wanted.items():
                target = _safe_target(root, member, target_name, archive)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(names[member]) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                written.append(target)
    except zipfile.BadZipFile as err:
        msg = f"{archive} is not a valid zip file ({err})"
        raise DataError(msg) from err
    return written


# -- internals -------------------------------------------------------------------------------
def _safe_target(root: Path, member: str, target_name: str, archive: PathLike) -> Path:
    for candidate in (member, target_name):
        parts = PurePosixPath(candidate.replace("\\", "/")).parts
        if not parts or candidate.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            msg = f"refusing to extract {member!r} from {archive}: unsafe path {candidate!r}"
            raise DataError(msg)
    target = (root / target_name).resolve()
    if not target.is_relative_to(root):
        msg = f"refusing to extract {member!r} from {archive}: it would be written outside {root}"
        raise DataError(msg)
    return target


def _get_zip(source: RemoteZip, folder: Path, *, timeout: float, force: bool) -> None:
    if not force and all(_verified(folder / t, sha) for t, sha in source.members.values()):
        return
    archive = folder / (Path(source.url).name + ".part")
    try:
        _fetch(source.url, archive, md5=source.md5, timeout=timeout, keep_name=True)
        staging = folder / ".extract"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            mapping = {m: t for m, (t, _) in source.members.items()}
            extract_zip(archive, staging, mapping)
            for target, sha in source.members.values():
                got = _sha256(staging / target)
                if got != sha:
                    msg = (
                        f"checksum mismatch for {target} in {source.url}: expected sha256 {sha}, "
                        f"got {got}; nothing was saved"
                    )
                    raise DataError(msg)
            for target, _ in source.members.values():
                os.replace(staging / target, folder / target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        archive.unlink(missing_ok=True)


def _fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float,
    keep_name: bool = False,
) -> None:
    """Stream ``url`` to ``dest`` (via a ``.part`` file), verifying the given digest."""
    tmp = dest if keep_name else dest.with_name(dest.name + ".part")
    h = hashlib.sha256() if sha256 else hashlib.md5(usedforsecurity=False)
    log.info("downloading %s", url)
    request = urllib.request.Request(url, headers={"User-Agent": "lumenrec"})
    try:
        out = tmp.open("wb")
    except OSError as err:
        msg = f"cannot write {tmp} ({err}); pass a writable data_dir"
        raise DataError(msg) from err
    with out:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        except (OSError, http.client.HTTPException, ValueError) as err:
            failure: BaseException | None = err
        else:
            failure = None
    if failure is not None:
        tmp.unlink(missing_ok=True)
        msg = (
            f"could not download {url} (offline?): {type(failure).__name__}: {failure}; "
            f"place the files in {dest.parent} manually"
        )
        raise DataError(msg) from failure
    expected = sha256 or md5
    if expected and h.hexdigest() != expected:
        tmp.unlink(missing_ok=True)
        kind = "sha256" if sha256 else "md5"
        msg = (
            f"checksum mismatch for {url}: expected {kind} {expected}, got {h.hexdigest()}; "
            "the download was discarded (changed upstream file, proxy or captive-portal page?)"
        )
        raise DataError(msg)
    if not keep_name:
        os.replace(tmp, dest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path) == sha256
