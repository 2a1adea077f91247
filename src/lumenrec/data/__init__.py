"""Data layer: id maps, datasets, readers, splits and planted-structure generators."""

from lumenrec.data.dataset import Dataset
from lumenrec.data.io import from_pandas, read_catalog, read_interactions
from lumenrec.data.synthetic import block_clusters, checkerboard
from lumenrec.data.vocab import IdIndex

__all__ = [
    "Dataset",
    "IdIndex",
    "block_clusters",
    "checkerboard",
    "from_pandas",
    "read_catalog",
    "read_interactions",
]
