"""Evaluation: accuracy metrics for rankings and ratings, plus beyond-accuracy metrics."""

from __future__ import annotations

from lumenrec.evaluation.beyond import (
    catalog_coverage,
    exposure_by_group,
    gini_exposure,
    intra_list_diversity,
    novelty,
    popularity_bias,
)
from lumenrec.evaluation.metrics import (
    RANKING_METRICS,
    evaluate_rankings,
    f1_at_k,
    hit_matrix,
    hit_rate_at_k,
    mae,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
    summarize,
)

__all__ = [
    "RANKING_METRICS",
    "catalog_coverage",
    "evaluate_rankings",
    "exposure_by_group",
    "f1_at_k",
    "gini_exposure",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "summarize",
]
