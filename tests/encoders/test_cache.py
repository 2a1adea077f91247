"""EmbeddingCache / CachedEncoder: only misses are encoded, entries persist, files are safe."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lumenrec.encoders import (
    CachedEncoder,
    EmbeddingCache,
    HashingEncoder,
    TextEncoder,
    text_sha256,
)
from lumenrec.errors import ArtifactError, DataError


class SpyEncoder:
    """Wraps an encoder and records every text it is asked to encode."""

    def __init__(self, inner: TextEncoder | None = None) -> None:
        self.inner = inner or HashingEncoder(dim=32)
        self.fingerprint = self.inner.fingerprint
        self.dim = self.inner.dim
        self.calls: list[list[str]] = []

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)

    def encode(self, texts, *, batch_size=64, progress=None):
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


TEXTS = ["red lipstick", "hiking boots", "cast iron skillet", "jazz vinyl", "red lipstick"]


@pytest.fixture
def cache(tmp_path):
    return EmbeddingCache(tmp_path / "emb.sqlite")


def test_second_call_encodes_nothing(cache):
    spy = SpyEncoder()
    first = cache.get_or_encode(spy, TEXTS)
    assert len(spy.calls) == 1
    assert sorted(spy.calls[0]) == sorted(set(TEXTS))  # duplicates encoded once
    second = cache.get_or_encode(spy, TEXTS)
    assert len(spy.calls) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, spy.inner.encode(TEXTS))
    assert first.dtype == np.float32 and first.flags.c_contiguous


def test_new_text_costs_exactly_one_encode(cache):
    spy = SpyEncoder()
    cache.get_or_encode(spy, TEXTS)
    out = cache.get_or_encode(spy, [*TEXTS[:2], "new serum", *TEXTS[2:]])
    assert spy.calls[1:] == [["new serum"]]
    np.testing.assert_array_equal(out[2], spy.inner.encode(["new serum"])[0])
    np.testing.assert_array_equal(out[3:], spy.inner.encode(TEXTS[2:]))
    assert cache.count(spy.fingerprint) == len(set(TEXTS)) + 1


def test_fingerprints_keep_entries_apart(cache):
    a, b = SpyEncoder(HashingEncoder(dim=32, seed=0)), SpyEncoder(HashingEncoder(dim=32, seed=1))
    va = cache.get_or_encode(a, TEXTS)
    vb = cache.get_or_encode(b, TEXTS)
    assert a.n_encoded == b.n_encoded == len(set(TEXTS))
    assert not np.allclose(va, vb)
    assert cache.fingerprints() == sorted([a.fingerprint, b.fingerprint])
    assert cache.count() == len(cache) == 2 * len(set(TEXTS))
    assert cache.clear(a.fingerprint) == len(set(TEXTS))
    assert cache.fingerprints() == [b.fingerprint]


def test_survives_reopen(tmp_path):
    path = tmp_path / "nested" / "emb.sqlite"
    first = EmbeddingCache(path).get_or_encode(SpyEncoder(), TEXTS)
    spy = SpyEncoder()
    again = EmbeddingCache(path).get_or_encode(spy, TEXTS)
    assert spy.calls == []
    np.testing.assert_array_equal(first, again)


def test_empty_and_bad_input_encode_nothing(cache):
    spy = SpyEncoder()
    empty = cache.get_or_encode(spy, [])
    assert empty.shape == (0, spy.dim) and empty.dtype == np.float32
    with pytest.raises(DataError, match=r"texts\[2\]"):
        cache.get_or_encode(spy, ["a", "b", b"bytes"])
    assert spy.calls == []


def test_wrong_encoder_output_is_an_error(cache):
    class Broken(SpyEncoder):
        def encode(self, texts, *, batch_size=64, progress=None):
            return np.zeros((len(texts), self.dim + 1), np.float32)

    with pytest.raises(DataError, match="returned shape"):
        cache.get_or_encode(Broken(), ["x"])
    assert cache.count() == 0


def test_storage_is_raw_float32_in_wal_mode(cache):
    enc = HashingEncoder(dim=16)
    vec = cache.get_or_encode(enc, ["serum"])
    con = sqlite3.connect(cache.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        fp, key, dim, blob = con.execute(
            "SELECT fingerprint, text_sha256, dim, vector FROM embeddings"
        ).fetchone()
    finally:
        con.close()
    assert (fp, key, dim) == (enc.fingerprint, text_sha256("serum"), 16)
    np.testing.assert_array_equal(np.frombuffer(blob, dtype="<f4"), vec[0])


def test_corrupt_files_raise_artifact_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ArtifactError, match="bad.sqlite"):
        EmbeddingCache(bad)
    cache = EmbeddingCache(tmp_path / "ok.sqlite")
    enc = HashingEncoder(dim=8)
    con = sqlite3.connect(cache.path)
    con.execute(
        "INSERT INTO embeddings VALUES (?, ?, ?, ?)",
        (enc.fingerprint, text_sha256("x"), 8, b"\x00" * 5),
    )
    con.commit()
    con.close()
    with pytest.raises(ArtifactError, match="corrupt"):
        cache.get_or_encode(enc, ["x"])


def test_cached_encoder_is_a_text_encoder(tmp_path, encoder_contract):
    spy = SpyEncoder(HashingEncoder(dim=64, char_ngram_range=(3, 4)))
    cached = CachedEncoder(spy, tmp_path / "emb.sqlite")
    assert cached.fingerprint == spy.fingerprint and cached.dim == spy.dim
    encoder_contract(cached, exact=True)
    n = spy.n_encoded
    cached.encode(["Cast iron skillet for searing steak", "jazz"])
    assert spy.n_encoded == n


def test_two_processes_share_one_file(tmp_path):
    """Concurrent writers of overlapping texts: no error, one row per text, same vectors."""
    path = tmp_path / "shared.sqlite"
    EmbeddingCache(path)
    code = textwrap.dedent(
        """
        import sys
        from lumenrec.encoders import EmbeddingCache, HashingEncoder
        cache = EmbeddingCache(sys.argv[1])
        start = int(sys.argv[2])
        enc = HashingEncoder(dim=32)
        for round_ in range(20):
            texts = [f"item {i} {round_ % 5}" for i in range(start, start + 60)]
            cache.get_or_encode(enc, texts)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(s)], stderr=subprocess.PIPE)
        for s in (0, 30)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    expected = sorted({f"item {i} {r}" for i in range(90) for r in range(5)})
    cache = EmbeddingCache(path)
    enc = HashingEncoder(dim=32)
    assert cache.count(enc.fingerprint) == len(expected)
    spy = SpyEncoder(enc)
    np.testing.assert_array_equal(cache.get_or_encode(spy, expected), enc.encode(expected))
    assert spy.calls == []
