"""Small planted catalogues for the re-ranking tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.rerank import Candidates, ItemFeatures


def random_features(rng: np.random.Generator, n_items: int = 300) -> ItemFeatures:
    emb = rng.normal(size=(n_items, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cats = sp.random(n_items, 6, density=0.3, random_state=1, format="csr", dtype=np.float32)
    cats.data[:] = 1.0
    return ItemFeatures(
        popularity=rng.integers(0, 50, n_items).astype(np.float32),
        embeddings=emb,
        categories=cats,
        category_names=tuple(f"g{j}" for j in range(6)),
        providers=rng.integers(-1, 12, n_items).astype(np.int32),
        provider_names=tuple(f"p{j}" for j in range(12)),
    )


def random_candidates(rng: np.random.Generator, n_items: int = 300, n: int = 60) -> Candidates:
    items = rng.choice(n_items, n, replace=False)
    scores = np.sort(rng.random(n))[::-1]
    return Candidates(items, scores, rng.choice(n_items, 20, replace=False))


@pytest.fixture
def features(rng: np.random.Generator) -> ItemFeatures:
    return random_features(rng)


@pytest.fixture
def cands(rng: np.random.Generator) -> Candidates:
    return random_candidates(rng)
