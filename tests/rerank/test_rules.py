"""Business rules: pin, exclude, cap per category."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError
from lumenrec.rerank import Candidates, CapPerCategory, Exclude, ItemFeatures, Pin, parse_rerank


@pytest.fixture
def five():
    return Candidates(np.array([10, 11, 12, 13, 14]), np.array([5.0, 4, 3, 2, 1]))


@pytest.fixture
def feats():
    genre = np.array([0] * 10 + [0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    cats = sp.csr_matrix((np.ones(20, np.float32), (np.arange(20), genre)), shape=(20, 3))
    return ItemFeatures(popularity=np.ones(20), categories=cats)


def test_pin_moves_and_inserts(five, feats):
    out = Pin({13: 0, 11: 3}).rerank(five, 3, feats)
    assert out.items.tolist() == [13, 10, 12, 11, 14]
    assert out.scores.tolist() == [2, 5, 3, 4, 1]
    skipped = Pin({3: 1}).rerank(five, 3, feats)
    assert skipped.items.tolist() == five.items.tolist() and "not among" in skipped.notes[0]
    forced = Pin({3: 1, 12: 99}, force=True).rerank(five, 3, feats)
    assert forced.items.tolist() == [10, 3, 11, 13, 14, 12]
    assert forced.scores[1] == 1.0
    with pytest.raises(ConfigError, match="same position"):
        Pin({1: 0, 2: 0})
    with pytest.raises(ConfigError, match="pin position"):
        Pin({1: -1})
    with pytest.raises(ConfigError, match="catalogue"):
        Pin({50: 0}, force=True).rerank(five, 3, feats)


def test_exclude_drops(five, feats):
    out = Exclude([11, 14, 99]).rerank(five, 3, feats)
    assert out.items.tolist() == [10, 12, 13]
    with pytest.raises(ConfigError):
        Exclude("11")  # type: ignore[arg-type]


def test_cap_per_category(five, feats):
    out = CapPerCategory(2).rerank(five, 3, feats)
    assert out.feasible
    assert out.items.tolist() == [10, 11, 13, 12, 14]
    tight = CapPerCategory(1).rerank(five, 4, feats)
    assert not tight.feasible and "not reachable" in tight.notes[0]
    assert tight.items[:4].tolist() == [10, 11, 12, 13]  # filled with the best deferred
    none = CapPerCategory(1).rerank(five, 3, ItemFeatures(popularity=np.ones(20)))
    assert none.items.tolist() == five.items.tolist() and none.notes


def test_rules_from_mapping_in_a_chain(five, feats):
    chain = parse_rerank({"exclude": [10], "cap_per_category": 1, "pin": {14: 0}})
    out = chain.rerank(five, 3, feats)
    assert out.items.tolist()[:4] == [14, 11, 12, 13]
    assert not out.feasible
    assert 10 not in out.items.tolist()
