"""knnlab.metrics: image quality (PSNR, SSIM) and, for the generative methods, hubness metrics."""

from knnlab.metrics.image import psnr, ssim

__all__ = ["psnr", "ssim"]

# kNN-based generative metrics (hubness method)
from knnlab.metrics.fid import feature_statistics, fid, frechet_distance, kid
from knnlab.metrics.novelty import (
    NearestTraining,
    memorization_rate,
    nearest_training,
    novelty_figure_data,
    plot_novelty,
)
from knnlab.metrics.prdc import density_coverage, prdc, precision_recall

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
