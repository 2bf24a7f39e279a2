"""knnlab.metrics"""

__all__: list[str] = []
# kNN-based generative metrics (hubness method)
from knnlab.metrics.fid import feature_statistics, fid, frechet_distance, kid  # noqa: E402
from knnlab.metrics.novelty import (  # noqa: E402
    NearestTraining,
    memorization_rate,
    nearest_training,
    novelty_figure_data,
    plot_novelty,
)
from knnlab.metrics.prdc import density_coverage, prdc, precision_recall  # noqa: E402

__all__ += [
    "NearestTraining",
    "density_coverage",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "kid",
    "memorization_rate",
    "nearest_training",
    "novelty_figure_data",
    "plot_novelty",
    "prdc",
    "precision_recall",
]
