"""Recommender models: one file per family, all built on BaseRecommender."""

from lumenrec.models.als import ImplicitALS
from lumenrec.models.base import BaseRecommender, Recommender, SupportsFoldIn, SupportsSimilarItems
from lumenrec.models.bpr import BPR
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.models.lightgcn import LightGCN
from lumenrec.models.multvae import MultVAE
from lumenrec.models.popularity import MostPopular

__all__ = [
    "BPR",
    "BaseRecommender",
    "DebiasedMF",
    "EASE",
    "ImplicitALS",
    "ItemKNN",
    "LightGCN",
    "MostPopular",
    "MultVAE",
    "Recommender",
    "SupportsFoldIn",
    "SupportsSimilarItems",
]


def __getattr__(name: str) -> object:
    # DebiasedMF pulls in scipy.stats, whose array-API probe imports torch: loaded on demand
    # so that ``import lumenrec`` stays light and torch-free scoring keeps working
    if name == "DebiasedMF":
        from lumenrec.models.debiased import DebiasedMF

        return DebiasedMF
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
