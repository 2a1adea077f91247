"""On-disk embedding cache (SQLite, WAL) keyed by (encoder fingerprint, sha256 of the text)."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lumenrec.encoders.base import TextEncoder, check_batch_size, check_texts
from lumenrec.errors import ArtifactError, DataError
from lumenrec.types import PathLike

__all__ = ["CachedEncoder", "EmbeddingCache", "text_sha256"]

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1
_CHUNK = 500  # keys per SELECT ... IN (...) (well under SQLite's variable limit)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, text_sha256)
) WITHOUT ROWID;
"""


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 bytes of ``text`` (the cache's text key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings stored on disk so that each (encoder, text) pair is encoded once.

    One SQLite file (WAL journal, ``busy_timeout``) with a table ``embeddings(fingerprint,
    text_sha256, dim, vector)``; vectors are raw little-endian float32 bytes (no pickle).
    Every call opens its own short-lived connection, so an instance may be shared by
    threads, survives ``fork``, and several processes can read and write the same file at
    once: a write is one ``BEGIN IMMEDIATE`` transaction of ``INSERT OR IGNORE`` rows (two
    processes that encode the same text store it once; deterministic encoders give the
    same row either way).

    Parameters
    ----------
    path : str or PathLike
        The SQLite file; created (with its folder) if absent.
    timeout : float
        Seconds to wait for another writer's lock before failing.

    Raises
    ------
    ArtifactError
        The file exists but is not a LumenRec embedding cache (or is corrupt).

    Examples
    --------
    >>> from lumenrec.encoders import EmbeddingCache, HashingEncoder
    >>> cache = EmbeddingCache(tmp_path / "emb.sqlite")  # doctest: +SKIP
    >>> vectors = cache.get_or_encode(HashingEncoder(), ["a red lipstick"])  # doctest: +SKIP

    Stability: stable.
    """

    def __init__(self, path: PathLike, *, timeout: float = 30.0) -> None:
        self.path = Path(os.fspath(path))
        self.timeout = float(timeout)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
                con.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(_SCHEMA_VERSION),),
                )
                row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            except sqlite3.DatabaseError as err:
                msg = f"embedding cache {self.path} is not a readable SQLite cache ({err})"
                raise ArtifactError(msg) from err
        if row is None or int(row[0]) > _SCHEMA_VERSION:
            msg = (
                f"embedding cache {self.path} has schema version {row and row[0]}, newer than "
                f"this LumenRec supports ({_SCHEMA_VERSION}); use another file"
            )
            raise ArtifactError(msg)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------
    def get(self, fingerprint: str, keys: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """Stored vectors for the given text hashes (missing keys are absent from the result).

        Parameters
        ----------
        fingerprint : str
            Encoder fingerprint.
        keys : sequence of str
            Text hashes (:func:`text_sha256`).

        Returns
        -------
        dict of str to ndarray of shape (dim,), float32
        """
        found: dict[str, NDArray[np.float32]] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as con:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    "SELECT text_sha256, dim, vector FROM embeddings "
                    f"WHERE fingerprint = ? AND text_sha256 IN ({marks})",
                    (fingerprint, *chunk),
                )
                for key, dim, blob in rows:
                    found[key] = self._decode(fingerprint, key, dim, blob)
        return found

    def count(self, fingerprint: str | None = None) -> int:
        """Number of stored vectors, for one fingerprint or in total."""
        with self._connect() as con:
            if fingerprint is None:
                row = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            else:
                row = con.execute(
                    "SELECT COUNT(*) FROM embeddings WHERE fingerprint = ?", (fingerprint,)
                ).fetchone()
        return int(row[0])

    def __len__(self) -> int:
        return self.count()

    def fingerprints(self) -> list[str]:
        """The distinct encoder fingerprints with stored vectors, sorted."""
        with self._connect() as con:
            rows = con.execute("SELECT DISTINCT fingerprint FROM embeddings ORDER BY fingerprint")
            return [r[0] for r in rows]

    # -- writing ---------------------------------------------------------------------------
    def put(self, fingerprint: str, keys: Sequence[str], vectors: NDArray[np.floating]) -> int:
        """Store vectors in one transaction; keys already present are left unchanged.

        Parameters
        ----------
        fingerprint : str
        keys : sequence of str, length m
            Text hashes (:func:`text_sha256`).
        vectors : ndarray of shape (m, dim), float32

        Returns
        -------
        int
            Rows actually inserted.
        """
        arr = np.asarray(vectors, dtype="<f4")
        if arr.ndim != 2 or arr.shape[0] != len(keys):
            msg = f"vectors has shape {arr.shape} but there are {len(keys)} keys"
            raise DataError(msg)
        dim = int(arr.shape[1])
        rows = [(fingerprint, k, dim, arr[i].tobytes()) for i, k in enumerate(keys)]
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                before = con.total_changes
                con.executemany(
                    "INSERT OR IGNORE INTO embeddings(fingerprint, text_sha256, dim, vector) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                inserted = con.total_changes - before
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return inserted

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete the vectors of one fingerprint (or all); returns the number removed."""
        with self._connect() as con:
            if fingerprint is None:
                cur = con.execute("DELETE FROM embeddings")
            else:
                cur = con.execute("DELETE FROM embeddings WHERE fingerprint = ?", (fingerprint,))
            con.commit()
            return int(cur.rowcount)

    # -- the main entry point --------------------------------------------------------------
    def get_or_encode(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool | None = None,
    ) -> NDArray[np.float32]:
        """Vectors of ``texts`` under ``encoder``: cached rows are read, only misses are encoded.

        Identical texts are encoded once; new vectors are stored in one transaction.

        Parameters
        ----------
        encoder : TextEncoder
            Its ``fingerprint`` selects the cache entries.
        texts : sequence of str, length n
        batch_size : int
            Passed to ``encoder.encode`` for the misses.
        progress : bool, optional
            Passed to ``encoder.encode`` for the misses.

        Returns
        -------
        ndarray of shape (n, encoder.dim), float32
            C-contiguous, in the order of ``texts``.

        Raises
        ------
        DataError
            ``texts`` holds a non-string (named by position).
        ArtifactError
            A stored row has the wrong size for its dimension (a corrupt cache).
        """
        items = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        fingerprint, dim = encoder.fingerprint, int(encoder.dim)
        keys = [text_sha256(t) for t in items]
        out = np.empty((len(items), dim), dtype=np.float32)
        if not items:
            return out
        found = self.get(fingerprint, keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, items, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        log.debug(
            "embedding cache %s: %d texts, %d unique hits, %d to encode (%s)",
            self.path.name,
            len(items),
            len(found),
            len(missing),
            fingerprint,
        )
        if missing:
            new = np.asarray(
                encoder.encode(list(missing.values()), batch_size=batch_size, progress=progress)
            )
            if new.shape != (len(missing), dim):
                msg = (
                    f"encoder {fingerprint!r} returned shape {new.shape} for {len(missing)} "
                    f"texts; expected ({len(missing)}, {dim})"
                )
                raise DataError(msg)
            new = new.astype(np.float32, copy=False)
            self.put(fingerprint, list(missing), new)
            found.update(zip(missing, new, strict=True))
        for row, key in enumerate(keys):
            vec = found[key]
            if vec.shape != (dim,):
                msg = (
                    f"embedding cache {self.path}: stored dim {vec.shape[0]} for {fingerprint!r} "
                    f"differs from encoder.dim {dim}; clear it with cache.clear({fingerprint!r})"
                )
                raise ArtifactError(msg)
            out[row] = vec
        return out

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as err:
            msg = f"cannot open embedding cache {self.path}: {err}"
            raise ArtifactError(msg) from err
        try:
            try:
                con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                con.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.DatabaseError as err:
                msg = f"embedding cache {self.path} is not a readable SQLite cache ({err})"
                raise ArtifactError(msg) from err
            yield con
        finally:
            con.close()

    def _decode(self, fingerprint: str, key: str, dim: int, blob: bytes) -> NDArray[np.float32]:
        if len(blob) != 4 * dim:
            msg = (
                f"embedding cache {self.path}: row ({fingerprint!r}, {key[:12]}…) has "
                f"{len(blob)} bytes for dim {dim}; the file is corrupt"
            )
            raise ArtifactError(msg)
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)


class CachedEncoder:
    """A :class:`TextEncoder` that reads and fills an :class:`EmbeddingCache` around another.

    Parameters
    ----------
    encoder : TextEncoder
        The encoder whose vectors are cached; its fingerprint is reused unchanged.
    cache : EmbeddingCache or str or PathLike
        A cache, or the path of its file.

    Examples
    --------
    >>> enc = CachedEncoder(HashingEncoder(), tmp_path / "emb.sqlite")  # doctest: +SKIP
    >>> enc.encode(titles)  # encodes every title once  # doctest: +SKIP
    >>> enc.encode(titles + ["new item"])  # encodes one  # doctest: +SKIP

    Stability: stable.
    """

    def __init__(self, encoder: TextEncoder, cache: EmbeddingCache | PathLike) -> None:
        self.encoder = encoder
        self.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.fingerprint: str = encoder.fingerprint
        self.dim: int = int(encoder.dim)

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, {self.cache!r})"

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Like ``encoder.encode``, reading cached rows and encoding only the misses.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
        """
        return self.cache.get_or_encode(
            self.encoder, texts, batch_size=batch_size, progress=progress
        )
