"""knnlab.knn: exact and approximate k-nearest-neighbour search under squared L2.

    >>> from knnlab.knn import search
    >>> dist, idx = search(x, x, k=5, exclude_self=True)   # (N, 5) each, exact, ties by lower index

See :mod:`knnlab.knn.core` for how exactness is guaranteed and bounded memory is kept.
"""

from knnlab.knn.core import (
    APPROXIMATE_BACKENDS,
    BACKENDS,
    DEFAULT_MEMORY_BUDGET,
    EXACT_BACKENDS,
    search,
    set_default_memory_budget,
)

__all__ = [
    "APPROXIMATE_BACKENDS",
    "BACKENDS",
    "DEFAULT_MEMORY_BUDGET",
    "EXACT_BACKENDS",
    "search",
    "set_default_memory_budget",
]
