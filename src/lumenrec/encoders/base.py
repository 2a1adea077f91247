"""The TextEncoder protocol and the input checks and row normalisation every encoder shares."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lumenrec._progress import progress as _progress
from lumenrec.errors import ConfigError, DataError

__all__ = ["TextEncoder", "check_batch_size", "check_texts", "encode_sorted", "l2_normalize"]

log = logging.getLogger(__name__)


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Attributes
    ----------
    fingerprint : str
        Identifies the exact mapping text → vector (model, weights, backend, options), e.g.
        ``"st:all-MiniLM-L6-v2@0a1b2c3d4e5f:torch:norm"``. Two encoders with the same
        fingerprint give the same vectors, so it is the cache key part
        (:class:`lumenrec.encoders.EmbeddingCache`).
    dim : int
        Length of each vector.

    Stability: stable.
    """

    fingerprint: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Encode ``texts``.

        Parameters
        ----------
        texts : sequence of str, length n
        batch_size : int
            Texts per forward pass (ignored by encoders without batches).
        progress : bool, optional
            Show a progress bar; None shows one when INFO logging is on and stderr is a TTY.

        Returns
        -------
        ndarray of shape (n, dim), float32
            C-contiguous, one L2-normalised row per text; ``(0, dim)`` for an empty input.

        Raises
        ------
        DataError
            ``texts`` is a single string or holds a non-string (the message names the position).
        """
        ...


def check_texts(texts: Iterable[object], *, what: str = "texts") -> list[str]:
    """Validate an encoder input and return it as a list of str.

    Parameters
    ----------
    texts : sequence of str
        A list, tuple, numpy array or pandas Series of strings.
    what : str
        Name used in error messages.

    Raises
    ------
    DataError
        ``texts`` is a single ``str``/``bytes`` or not iterable, or an element is not a ``str``
        (the message names its position and type).
    """
    if isinstance(texts, str | bytes):
        msg = f"{what} must be a sequence of str, not a single {type(texts).__name__}; wrap it in a list"
        raise DataError(msg)
    try:
        out = list(texts)
    except TypeError as err:
        msg = f"{what} must be a sequence of str (got {type(texts).__name__})"
        raise DataError(msg) from err
    for i, text in enumerate(out):
        if not isinstance(text, str):
            msg = (
                f"{what}[{i}] must be str (got {type(text).__name__}: {text!r:.40}); "
                "fill missing values with '' or drop them first"
            )
            raise DataError(msg)
    return out


def check_batch_size(batch_size: object) -> int:
    """Return ``batch_size`` if it is a positive int, else raise :class:`ConfigError`."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        msg = f"batch_size must be a positive int (got {batch_size!r})"
        raise ConfigError(msg)
    return int(batch_size)


def l2_normalize(x: NDArray[np.floating]) -> NDArray[np.float32]:
    """Rows of ``x`` scaled to unit L2 norm (all-zero rows stay zero).

    Parameters
    ----------
    x : ndarray of shape (n, d), floating

    Returns
    -------
    ndarray of shape (n, d), float32, C-contiguous
    """
    arr = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def encode_sorted(
    texts: list[str],
    encode_batch: Callable[[list[str]], NDArray[np.floating]],
    dim: int,
    *,
    batch_size: int,
    progress: bool | None,
    desc: str = "encoding",
) -> NDArray[np.float32]:
    """Length-sorted batching: sort by length, encode each batch, put rows back in input order.

    Sorting keeps padding per batch small, which is where most transformer time goes.

    Parameters
    ----------
    texts : list of str, length n
    encode_batch : callable
        Maps a list of texts to an array of shape (len(batch), dim).
    dim : int
    batch_size : int
    progress : bool, optional
    desc : str
        Progress-bar label.

    Returns
    -------
    ndarray of shape (n, dim), float32, L2-normalised rows
    """
    n = len(texts)
    out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort([-len(t) for t in texts], kind="stable")
    starts = range(0, n, batch_size)
    for start in _progress(starts, total=len(starts), desc=desc, enabled=progress, unit="batch"):
        idx = order[start : start + batch_size]
        vectors = np.asarray(encode_batch([texts[i] for i in idx]))
        if vectors.shape != (len(idx), dim):
            msg = f"encoder returned shape {vectors.shape} for a batch of {len(idx)} (dim {dim})"
            raise RuntimeError(msg)
        out[idx] = vectors
    return l2_normalize(out)
