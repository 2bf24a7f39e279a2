"""knnlab.data: image files, named data sets, patch datasets, degradations and downloads.

>>> from knnlab.data import read_image, load_images, add_gaussian_noise
>>> clean = load_images("Set12", channels=1)[0]           # (1, 256, 256) float32 in [0, 1]
>>> noisy = add_gaussian_noise(clean, 25, generator=torch.Generator().manual_seed(0))

Downloads: ``knnlab.data.download.download(url, dest, sha256=...)`` and :func:`fetch_dataset`.
"""

from knnlab.data.datasets import DATASETS, dataset_dir, load_images, load_mnist
from knnlab.data.degrade import add_gaussian_noise, add_poisson_gaussian_noise, imresize, rgb_to_y
from knnlab.data.download import SOURCES, DownloadError, fetch_dataset
from knnlab.data.images import IMAGE_EXTENSIONS, list_images, read_image, write_image
from knnlab.data.patches import ImageFolderDataset, PatchDataset

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "DownloadError",
    "ImageFolderDataset",
    "PatchDataset",
    "add_gaussian_noise",
    "add_poisson_gaussian_noise",
    "dataset_dir",
    "fetch_dataset",
    "imresize",
    "list_images",
    "load_images",
    "load_mnist",
    "read_image",
    "rgb_to_y",
    "write_image",
]
