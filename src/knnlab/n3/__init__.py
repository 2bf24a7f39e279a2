"""knnlab.n3: Neural Nearest Neighbors Networks (Plötz & Roth, NeurIPS 2018)."""

from knnlab.n3.aggregate import N3Aggregation, n3_aggregate
from knnlab.n3.block import N3Block
from knnlab.n3.continuous_knn import ContinuousKNN, continuous_knn, continuous_knn_weights, log1mexp
from knnlab.n3.patches import PatchGrid, min_image_size

__all__ = [
    "ContinuousKNN",
    "N3Aggregation",
    "N3Block",
    "PatchGrid",
    "continuous_knn",
    "continuous_knn_weights",
    "log1mexp",
    "min_image_size",
    "n3_aggregate",
]
