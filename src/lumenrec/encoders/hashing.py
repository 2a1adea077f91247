"""HashingEncoder: dependency-free, deterministic signed feature hashing of words and n-grams."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from lumenrec._progress import progress as _progress
from lumenrec.encoders.base import check_batch_size, check_texts, l2_normalize
from lumenrec.errors import ConfigError

__all__ = ["HashingEncoder"]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
#: Feature hashed for texts that have no word at all, so every row still has unit norm.
_EMPTY_FEATURE = "\x00<empty>"
_VERSION = 1


class HashingEncoder:
    """Signed feature hashing of word n-grams (and optionally char n-grams) into ``dim`` buckets.

    Each feature (``"w:boots"``, ``"w:hiking boots"``, ``"c:<bo"``) is hashed with
    BLAKE2b (keyed by ``seed``, never Python's salted ``hash()``), so vectors are identical
    across processes, platforms and runs. The first 8 digest bytes choose the bucket and the
    sign; counts are optionally damped (``1 + log(count)``) and each row is L2-normalised.
    Texts with no word map to one fixed unit vector. Needs no model and no optional
    dependency, which makes it the default encoder of fast tests and a usable lexical
    baseline for content models.

    Parameters
    ----------
    dim : int
        Number of buckets (output dimension).
    ngram_range : (int, int)
        Word n-gram orders, inclusive; ``(1, 2)`` is unigrams and bigrams.
    char_ngram_range : (int, int), optional
        Character n-gram orders over each word padded as ``<word>``; None (default) turns
        them off. ``(3, 5)`` helps with typos and morphology at some cost in speed.
    lowercase : bool
        Lowercase before tokenising.
    sublinear_tf : bool
        Use ``1 + log(count)`` instead of the raw count.
    seed : int
        Key of the hash; different seeds give independent hashings.

    Attributes
    ----------
    fingerprint : str
        ``"hashing:v1:d256:w1-2:c0-0:lower:sub:s0"``-style id of every option.
    dim : int

    Examples
    --------
    >>> enc = HashingEncoder(dim=64)
    >>> enc.encode(["hiking boots", "cast iron skillet"]).shape
    (2, 64)

    Stability: stable.
    """

    def __init__(
        self,
        dim: int = 256,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = None,
        lowercase: bool = True,
        sublinear_tf: bool = True,
        seed: int = 0,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            msg = f"dim must be a positive int (got {dim!r})"
            raise ConfigError(msg)
        self.dim = dim
        self.ngram_range = _check_range(ngram_range, "ngram_range")
        self.char_ngram_range = (
            None if char_ngram_range is None else _check_range(char_ngram_range, "char_ngram_range")
        )
        self.lowercase = bool(lowercase)
        self.sublinear_tf = bool(sublinear_tf)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            msg = f"seed must be a non-negative int (got {seed!r})"
            raise ConfigError(msg)
        self.seed = seed
        self._key = seed.to_bytes(8, "little")
        lo, hi = self.char_ngram_range or (0, 0)
        self.fingerprint = (
            f"hashing:v{_VERSION}:d{dim}:w{self.ngram_range[0]}-{self.ngram_range[1]}:c{lo}-{hi}"
            f":{'lower' if self.lowercase else 'case'}:{'sub' if self.sublinear_tf else 'raw'}"
            f":s{seed}"
        )

    def __repr__(self) -> str:
        return (
            f"HashingEncoder(dim={self.dim}, ngram_range={self.ngram_range}, "
            f"char_ngram_range={self.char_ngram_range}, lowercase={self.lowercase}, "
            f"sublinear_tf={self.sublinear_tf}, seed={self.seed})"
        )

    def features(self, text: str) -> list[str]:
        """The hashed features of one text, in order (for inspection and explanations).

        Parameters
        ----------
        text : str

        Returns
        -------
        list of str
            ``"w:<n-gram>"`` word features then ``"c:<n-gram>"`` character features.
        """
        if self.lowercase:
            text = text.lower()
        words = _WORD.findall(text)
        feats: list[str] = []
        lo, hi = self.ngram_range
        for n in range(lo, hi + 1):
            feats.extend("w:" + " ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        if self.char_ngram_range is not None:
            clo, chi = self.char_ngram_range
            for word in words:
                padded = f"<{word}>"
                for n in range(clo, chi + 1):
                    feats.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
        return feats

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Hash ``texts`` into vectors.

        Parameters
        ----------
        texts : sequence of str, length n
        batch_size : int
            Texts per progress-bar step (the result does not depend on it).
        progress : bool, optional
            Show a progress bar (None: when INFO logging is on and stderr is a TTY).

        Returns
        -------
        ndarray of shape (n, dim), float32
            L2-normalised rows; ``(0, dim)`` for an empty input.

        Raises
        ------
        DataError
            ``texts`` is a single string or holds a non-string (named by position).
        """
        items = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        memo: dict[str, tuple[int, float]] = {}
        starts = range(0, len(items), batch_size)
        for start in _progress(starts, total=len(starts), desc="hashing", enabled=progress):
            for row in range(start, min(start + batch_size, len(items))):
                self._fill(out[row], items[row], memo)
        return l2_normalize(out)

    # -- internals -------------------------------------------------------------------------
    def _fill(
        self, row: NDArray[np.float32], text: str, memo: dict[str, tuple[int, float]]
    ) -> None:
        counts: dict[str, int] = {}
        for feat in self.features(text) or [_EMPTY_FEATURE]:
            counts[feat] = counts.get(feat, 0) + 1
        for feat, count in counts.items():
            slot = memo.get(feat)
            if slot is None:
                slot = memo[feat] = self._hash(feat)
            bucket, sign = slot
            weight = 1.0 + np.log(count) if self.sublinear_tf else float(count)
            row[bucket] += sign * weight

    def _hash(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, key=self._key).digest()
        value = int.from_bytes(digest, "little")
        return (value >> 1) % self.dim, (1.0 if value & 1 else -1.0)


def _check_range(value: object, name: str) -> tuple[int, int]:
    ok = (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 1 <= value[0] <= value[1]
    )
    if not ok:
        msg = f"{name} must be a pair (lo, hi) of ints with 1 <= lo <= hi (got {value!r})"
        raise ConfigError(msg)
    lo, hi = value  # type: ignore[misc]
    return int(lo), int(hi)
