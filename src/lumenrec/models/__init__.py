"""Recommender models: one file per family, all built on BaseRecommender."""

from lumenrec.models.base import BaseRecommender, Recommender, SupportsFoldIn, SupportsSimilarItems
from lumenrec.models.popularity import MostPopular

__all__ = [
    "BaseRecommender",
    "MostPopular",
    "Recommender",
    "SupportsFoldIn",
    "SupportsSimilarItems",
]
