"""Artifacts without pickle: a directory with ``manifest.json`` + ``arrays.npz``.

The manifest records the format version, library versions, the class (checked against
:data:`ALLOWED_CLASSES` before anything is imported), the constructor parameters, JSON
state, and the sha256 of every file. Writes go to a temporary sibling directory that is
fsynced and renamed into place, so a crash never leaves a half-written artifact at ``path``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from lumenrec.errors import ArtifactError, ArtifactVersionWarning
from lumenrec.types import PathLike

__all__ = ["ALLOWED_CLASSES", "FORMAT_VERSION", "read_artifact", "write_artifact"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1

#: The only classes ``load`` will instantiate (module path → class name). Explicit on purpose.
ALLOWED_CLASSES: frozenset[str] = frozenset(
    {
        "lumenrec.models.popularity.MostPopular",
        "lumenrec.models.itemknn.ItemKNN",
        "lumenrec.models.ease.EASE",
        "lumenrec.models.als.ImplicitALS",
        "lumenrec.models.bpr.BPR",
        "lumenrec.models.multvae.MultVAE",
        "lumenrec.models.lightgcn.LightGCN",
        "lumenrec.models.sasrec.SASRec",
        "lumenrec.models.debiased.DebiasedMF",
        "lumenrec.privacy.private_counts.PrivatePopularity",
        "lumenrec.privacy.private_counts.PrivateItemKNN",
        "lumenrec.privacy.private_ease.PrivateEASE",
        # the paths these three were saved under before the split (re-exported there)
        "lumenrec.privacy.private_models.PrivatePopularity",
        "lumenrec.privacy.private_models.PrivateItemKNN",
        "lumenrec.privacy.private_models.PrivateEASE",
        "lumenrec.privacy.private_models.PrivateMF",
        "lumenrec.privacy.private_models.PrivateRatingMF",
        "lumenrec.privacy.private_rating.PrivateRatingALS",
        "lumenrec.models.content.ContentRecommender",
        "lumenrec.models.adapter.TextAdapter",
        "lumenrec.fusion.hybrid.HybridRecommender",
        "lumenrec.pipeline.RecommendPipeline",
    }
)
_SPARSE_TAG = "__csr__"


def library_versions() -> dict[str, str]:
    """Versions of LumenRec and its numeric dependencies (for manifests and results)."""
    import scipy

    from lumenrec import __version__

    out = {"lumenrec": __version__, "numpy": np.__version__, "scipy": scipy.__version__}
    try:  # torch is optional
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _flatten(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            flat[f"{name}{_SPARSE_TAG}data"] = csr.data
            flat[f"{name}{_SPARSE_TAG}indices"] = csr.indices
            flat[f"{name}{_SPARSE_TAG}indptr"] = csr.indptr
            flat[f"{name}{_SPARSE_TAG}shape"] = np.asarray(csr.shape, dtype=np.int64)
        else:
            arr = np.asarray(value)
            if arr.dtype == object:
                msg = f"array {name!r} has dtype object, which cannot be saved without pickle"
                raise ArtifactError(msg)
            flat[name] = arr
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sparse_names = {k.split(_SPARSE_TAG)[0] for k in flat if _SPARSE_TAG in k}
    for name in sparse_names:
        p = f"{name}{_SPARSE_TAG}"
        shape = tuple(int(x) for x in flat[p + "shape"])
        out[name] = sp.csr_matrix(
            (flat[p + "data"], flat[p + "indices"], flat[p + "indptr"]), shape=shape
        )
    for key, arr in flat.items():
        if _SPARSE_TAG not in key:
            out[key] = arr
    return out


def write_artifact(
    path: PathLike,
    *,
    cls: type,
    params: dict[str, Any],
    arrays: dict[str, Any],
    state: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
    children: dict[str, Callable[[Path], object]] | None = None,
) -> Path:
    """Write an artifact directory atomically and return its path.

    Parameters
    ----------
    cls : type
        The object's class; must be in :data:`ALLOWED_CLASSES`.
    params : dict
        JSON-serialisable constructor parameters.
    arrays : dict of str → ndarray or scipy sparse
        Numeric state, stored in ``arrays.npz`` (sparse matrices as CSR parts).
    state : dict, optional
        Extra JSON-serialisable state.
    extra_files : dict of str → bytes, optional
        Further files (e.g. ``weights.safetensors``); names must be plain file names.
    children : dict of str → callable(path), optional
        Composite artifacts: each callable writes a child artifact into the given
        sub-directory (inside the temporary directory, so the whole tree appears at once).
        Children verify themselves when loaded; the manifest lists them under ``children``.
    """
    target = Path(os.fspath(path))
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    if qualname not in ALLOWED_CLASSES:
        msg = f"{qualname} is not in persistence.ALLOWED_CLASSES; add it there to make it saveable"
        raise ArtifactError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        np.savez(tmp / "arrays.npz", **_flatten(arrays))
        for fname, blob in (extra_files or {}).items():
            if Path(fname).name != fname or fname in ("manifest.json", "arrays.npz"):
                msg = f"invalid artifact file name {fname!r}"
                raise ArtifactError(msg)
            (tmp / fname).write_bytes(blob)
        for child, write in (children or {}).items():
            if Path(child).name != child or child in ("manifest.json", "arrays.npz"):
                msg = f"invalid child artifact name {child!r}"
                raise ArtifactError(msg)
            write(tmp / child)
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}
        manifest = {
            "format_version": FORMAT_VERSION,
            "class": qualname,
            "params": params,
            "state": state or {},
            "versions": library_versions(),
            "files": files,
            "children": sorted(children or {}),
            "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            msg = f"parameters/state of {qualname} are not JSON-serialisable: {err}"
            raise ArtifactError(msg) from err
        (tmp / "manifest.json").write_text(text)
        for f in tmp.iterdir():
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved %s to %s", qualname, target)
    return target


def read_artifact(path: PathLike) -> tuple[type, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read and verify an artifact: ``(cls, params, arrays, manifest)``.

    Raises
    ------
    ArtifactError
        Missing directory or manifest, sha256 mismatch, a newer format version, a class
        outside the allow-list, or an unreadable array file (pickled content included).
    """
    root = Path(os.fspath(path))
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        msg = f"no model at {root}: manifest.json not found"
        raise ArtifactError(msg)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"model at {root} is corrupt: manifest.json is not valid JSON ({err})"
        raise ArtifactError(msg) from err
    fmt = manifest.get("format_version")
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        msg = f"model at {root} was written by a newer version (format {fmt} > {FORMAT_VERSION}); upgrade lumenrec"
        raise ArtifactError(msg)
    for fname, digest in manifest.get("files", {}).items():
        fpath = root / fname
        if Path(fname).name != fname or not fpath.is_file():
            msg = f"model at {root} is corrupt: {fname} is missing"
            raise ArtifactError(msg)
        if _sha256(fpath) != digest:
            msg = f"model at {root} is corrupt: sha256 mismatch for {fname}"
            raise ArtifactError(msg)
    qualname = manifest.get("class", "")
    if qualname not in ALLOWED_CLASSES:
        msg = f"model at {root} names class {qualname!r}, which is not allowed to load"
        raise ArtifactError(msg)
    module, _, name = qualname.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    try:
        with np.load(root / "arrays.npz", allow_pickle=False) as npz:
            arrays = _unflatten({k: npz[k] for k in npz.files})
    except (ValueError, OSError, EOFError) as err:
        msg = f"model at {root} is corrupt: arrays.npz cannot be read without pickle ({err})"
        raise ArtifactError(msg) from err
    saved = manifest.get("versions", {}).get("lumenrec")
    from lumenrec import __version__

    if saved != __version__:
        warnings.warn(
            f"model at {root} was written by lumenrec {saved}, this is {__version__}",
            ArtifactVersionWarning,
            stacklevel=3,
        )
    return cls, manifest.get("params", {}), arrays, manifest


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
