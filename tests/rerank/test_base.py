"""ItemFeatures, Candidates, RerankChain and the spec parser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumenrec.errors import ConfigError, DataError
from lumenrec.rerank import (
    FAIR,
    MMR,
    Calibration,
    Candidates,
    CapPerCategory,
    Exclude,
    ItemFeatures,
    Pin,
    PopularityExposure,
    ProviderExposure,
    RerankChain,
    Reranked,
    Reranker,
    parse_rerank,
)


def test_from_catalog_parses_categories_providers_and_missing_rows():
    catalog = pd.DataFrame(
        {
            "genres": ["Drama|Comedy", ["Action", "Drama"], None],
            "brand": ["Acme", "Unknown", "Zed"],
        },
        index=["a", "b", "c"],
    )
    feats = ItemFeatures.from_catalog(
        catalog, ["b", "a", "zz", "c"], [3, 2, 1, 0], embeddings=np.ones((4, 2))
    )
    assert feats.category_names == ("Action", "Comedy", "Drama")
    assert feats.categories.toarray().tolist() == [
        [1, 0, 1],
        [0, 1, 1],
        [0, 0, 0],
        [0, 0, 0],
    ]
    assert feats.provider_names == ("Acme", "Zed")
    assert feats.providers.tolist() == [-1, 0, -1, 1]
    np.testing.assert_allclose(np.linalg.norm(feats.embeddings, axis=1), 1.0, rtol=1e-6)
    assert feats.popularity.dtype == np.float32 and feats.n_items == 4


def test_from_catalog_integer_index_explicit_columns_and_none():
    catalog = pd.DataFrame({"cat": ["x", "y"], "seller": ["s", ""]}, index=[10, 20])
    feats = ItemFeatures.from_catalog(
        catalog, ["20", "10"], [1, 1], category_column="cat", provider_column="seller"
    )
    assert feats.categories.toarray().tolist() == [[0, 1], [1, 0]]
    assert feats.providers.tolist() == [-1, 0]
    with pytest.raises(ConfigError, match="nope"):
        ItemFeatures.from_catalog(catalog, ["10"], [1], category_column="nope")
    bare = ItemFeatures.from_catalog(None, ["a"], [0])
    assert bare.categories is None and bare.providers is None and bare.embeddings is None


def test_feature_and_candidate_validation():
    with pytest.raises(DataError, match="popularity"):
        ItemFeatures(popularity=np.array([-1.0]))
    with pytest.raises(DataError, match="embeddings"):
        ItemFeatures(popularity=np.ones(3), embeddings=np.ones((2, 2)))
    with pytest.raises(DataError, match="providers"):
        ItemFeatures(popularity=np.ones(2), providers=np.array([0, -2]))
    with pytest.raises(DataError, match="scores"):
        Candidates(np.array([1, 2]), np.array([1.0]))
    with pytest.raises(DataError, match="padding"):
        Candidates(np.array([1, -1]), np.array([1.0, 0.0]))
    assert len(Candidates(np.array([3]), np.array([1.0]))) == 1


def test_every_stage_is_a_reranker():
    for stage in (
        MMR(),
        Calibration(),
        ProviderExposure(),
        PopularityExposure(),
        FAIR(),
        CapPerCategory(2),
        Exclude([1]),
        Pin({1: 0}),
        RerankChain([]),
    ):
        assert isinstance(stage, Reranker)
        assert isinstance(stage.name, str)


def test_chain_composes_feasible_and_notes(cands, features):
    mmr = MMR(0.8)
    alone = mmr.rerank(cands, 10, features)
    chained = RerankChain([mmr, Calibration(0.0)]).rerank(cands, 10, features)
    np.testing.assert_array_equal(chained.items, alone.items)
    # a later stage must not undo an earlier one: the chain's λ=0 stages keep MMR's order
    chained = RerankChain([mmr, ProviderExposure(0.0), MMR(0.0)]).rerank(cands, 10, features)
    np.testing.assert_array_equal(chained.items, alone.items)
    # scores travel with their items (input scores, not the chain's internal ones)
    lookup = dict(zip(cands.items.tolist(), cands.scores.tolist(), strict=True))
    assert chained.scores.tolist() == [lookup[i] for i in chained.items.tolist()]
    bad = RerankChain([CapPerCategory(1), MMR(0.5)]).rerank(cands, 60, features)
    assert not bad.feasible
    assert bad.notes and bad.notes[0].startswith("cap_per_category: ")


def test_chain_rejects_non_rerankers():
    with pytest.raises(ConfigError, match="not a Reranker"):
        RerankChain([object()])  # type: ignore[list-item]


def test_parse_rerank_builds_stages_in_order():
    chain = parse_rerank(" mmr=0.3, calibration=0.5 ,provider=0.2,popularity=0.3,fair=0.4")
    assert [s.name for s in chain.stages] == [
        "mmr",
        "calibration",
        "provider",
        "popularity",
        "fair",
    ]
    assert chain.stages[0].lam == 0.3 and chain.stages[4].p == 0.4
    chain = parse_rerank("cap_per_category=3,mmr=1")
    assert chain.stages[0].max_per_category == 3
    assert parse_rerank(None) is None and parse_rerank("") is None and parse_rerank({}) is None


def test_parse_rerank_mapping_rules_and_options():
    chain = parse_rerank(
        {"exclude": [4, 2], "cap_per_category": 2, "provider": 0.5, "pin": {7: 0}},
        provider={"max_share": 0.2, "min_share": 0.4},
        mmr={"ignored": "stage not in spec"},
    )
    exclude, cap, provider, pin = chain.stages
    assert exclude.items.tolist() == [2, 4] and cap.max_per_category == 2
    assert provider.max_share == 0.2 and provider.min_share == 0.4
    assert pin.pins == {7: 0}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mmr=0.3,diversify=0.2", "unknown rerank stage 'diversify'.*known: .*'calibration'"),
        ("mmr=1.5", r"mmr λ .*\[0, 1\].*1.5"),
        ("calibration=-0.1", r"calibration λ .*\[0, 1\]"),
        ("provider=abc", r"provider λ .*number.*'abc'"),
        ("mmr", "name=value"),
        ("mmr=0.1,mmr=0.2", "twice"),
        ("cap_per_category=x", "cap_per_category must be a positive int"),
        ("exclude=3", "mapping"),
        ({"mmr": True}, "mmr λ"),
        ({"cap_per_category": 0}, "cap_per_category must be >= 1"),
        ({"fair": 1.0}, "FA\\*IR needs p"),
        (3, "string, a mapping or None"),
    ],
)
def test_parse_rerank_errors_name_the_bad_part(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_rerank(spec)


def test_parse_rerank_bad_options():
    with pytest.raises(ConfigError, match="unknown rerank stage"):
        parse_rerank("mmr=0.1", diversity={"x": 1})
    with pytest.raises(ConfigError, match="bad options for rerank stage 'mmr'"):
        parse_rerank("mmr=0.1", mmr={"nope": 1})
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_rerank("mmr=0.1", mmr=0.3)  # type: ignore[arg-type]


def test_reranked_defaults():
    out = Reranked(np.array([1], dtype=np.int32), np.array([0.5], dtype=np.float32))
    assert out.feasible and out.notes == ()
