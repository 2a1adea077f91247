"""Text-match evidence: the words and attributes of an item nearest to a user in the language
model's space.

An item's candidate phrases are its attribute values (genres, categories, brand: any
non-title text column of the catalogue, split on ``|``, ``>``, ``,`` and ``;``) and the content
words of its title. They are embedded with the text component's own encoder (through its
embedding cache when it has one) and ranked by cosine similarity to the user's query vector:
the embedding of their profile text, or the mean embedding of their history items.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["item_phrases", "nearest_phrases"]

_SPLIT = re.compile(r"\s*(?:\||>|,|;)\s*")
_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "are",
        "was",
        "were",
        "you",
        "your",
        "our",
        "its",
        "his",
        "her",
        "their",
        "not",
        "but",
        "all",
        "any",
        "can",
        "has",
        "have",
        "had",
        "will",
        "into",
        "over",
        "under",
        "more",
        "most",
        "some",
        "such",
        "than",
        "then",
        "them",
        "they",
        "one",
        "two",
        "new",
        "edition",
        "vol",
        "part",
        "inch",
        "pack",
        "set",
        "of",
        "by",
        "on",
        "in",
        "at",
        "to",
        "an",
    ]
)
_TITLE_COLUMNS = ("title", "name")
_SKIP_COLUMNS = ("asin", "imdb_url", "url", "release_date", "year", "image", "price")


def item_phrases(row: pd.Series | None, *, max_phrases: int = 24) -> list[str]:
    """Candidate phrases of one catalogue row: attribute values first, then title words.

    Parameters
    ----------
    row : Series or None
        One catalogue row (index = column names).
    max_phrases : int

    Returns
    -------
    list of str
        Distinct phrases (case-insensitive), at most ``max_phrases``.
    """
    if row is None:
        return []
    attrs: list[str] = []
    words: list[str] = []
    for column, value in row.items():
        name = str(column).lower()
        if name in _SKIP_COLUMNS or not isinstance(value, str) or not value.strip():
            continue
        if name in _TITLE_COLUMNS or name == "description":
            words.extend(w for w in _WORD.findall(value) if w.lower() not in _STOP)
        else:
            attrs.extend(p for p in _SPLIT.split(value) if p and len(p) <= 60)
    seen: set[str] = set()
    out: list[str] = []
    for phrase in [*attrs, *words]:
        key = phrase.lower()
        if key not in seen:
            seen.add(key)
            out.append(phrase)
    return out[:max_phrases]


def nearest_phrases(
    encoder: Any, phrases: Sequence[str], query: np.ndarray, top: int = 2
) -> list[tuple[str, float]]:
    """The ``top`` phrases most similar to ``query`` (cosine), best first.

    Parameters
    ----------
    encoder : TextEncoder
        Returns L2-normalised float32 rows from ``encode(list of str)``.
    phrases : sequence of str
    query : ndarray of shape (dim,), float32
        The user's vector in the same space (need not be normalised).
    top : int

    Returns
    -------
    list of (phrase, cosine similarity)
    """
    if not phrases:
        return []
    q = np.asarray(query, np.float32).ravel()
    norm = float(np.linalg.norm(q))
    if norm == 0.0 or not np.isfinite(norm):
        return []
    vectors = np.asarray(encoder.encode(list(phrases)), np.float32)
    sims = vectors @ (q / norm)
    order = np.lexsort((np.arange(len(sims)), -sims))[:top]
    return [(phrases[i], float(sims[i])) for i in order]
