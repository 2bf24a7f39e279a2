"""knnlab: nearest-neighbour methods for image restoration and generation.

Subpackages: ``knn`` (exact and approximate search), ``metrics`` (PSNR/SSIM, FID, precision/recall...),
``data`` (images, data sets, degradations), ``train`` (the training loop), and the methods ``n3``
(Neural Nearest Neighbors Networks), ``hubness`` (hubness priors for latent sampling) and ``bright``.
"""

__version__ = "0.1.0"

from knnlab.errors import DataNotFoundError, InputError, KnnlabError

__all__ = ["DataNotFoundError", "InputError", "KnnlabError", "__version__"]
