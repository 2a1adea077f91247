"""Per-request re-rankers: diversity (MMR), calibration, exposure fairness, business rules.

Every stage takes one request's :class:`Candidates` (dense item indices, best first), a list
length ``k`` and the catalogue's :class:`ItemFeatures`, and returns a :class:`Reranked`
list; :class:`RerankChain` composes stages and :func:`parse_rerank` builds a chain from
``"mmr=0.3,calibration=0.5,provider=0.2"``. See ``docs/reranking.md``.
"""

from lumenrec.rerank.base import Candidates, ItemFeatures, RerankChain, Reranked, Reranker
from lumenrec.rerank.calibration import Calibration, calibration_kl, genre_distribution
from lumenrec.rerank.fairness import (
    FAIR,
    PopularityExposure,
    ProviderExposure,
    popularity_buckets,
)
from lumenrec.rerank.mmr import MMR
from lumenrec.rerank.rules import CapPerCategory, Exclude, Pin
from lumenrec.rerank.spec import STAGES, parse_rerank

__all__ = [
    "FAIR",
    "MMR",
    "STAGES",
    "Calibration",
    "Candidates",
    "CapPerCategory",
    "Exclude",
    "ItemFeatures",
    "Pin",
    "PopularityExposure",
    "ProviderExposure",
    "RerankChain",
    "Reranked",
    "Reranker",
    "calibration_kl",
    "genre_distribution",
    "parse_rerank",
    "popularity_buckets",
]
