"""Recommender models: one file per family, all built on BaseRecommender."""

from lumenrec.models.base import BaseRecommender, Recommender, SupportsFoldIn, SupportsSimilarItems
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.models.popularity import MostPopular

__all__ = [
    "EASE",
    "BaseRecommender",
    "ItemKNN",
    "MostPopular",
    "Recommender",
    "SupportsFoldIn",
    "SupportsSimilarItems",
]
