"""LumenRec: a recommendation engine with a pretrained language model at its heart."""

from lumenrec.data import Dataset, IdIndex, from_pandas, read_interactions
from lumenrec.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    FitError,
    LumenError,
    MissingDependencyError,
    NotFittedError,
    UnknownIdError,
)
from lumenrec.models import BaseRecommender, MostPopular, Recommender
from lumenrec.types import Recommendations

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "BaseRecommender",
    "ConfigError",
    "DataError",
    "Dataset",
    "FitError",
    "IdIndex",
    "LumenError",
    "MissingDependencyError",
    "MostPopular",
    "NotFittedError",
    "Recommendations",
    "Recommender",
    "UnknownIdError",
    "__version__",
    "from_pandas",
    "read_interactions",
]
