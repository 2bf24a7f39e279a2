"""knnlab.n3: Neural Nearest Neighbors Networks (Plötz & Roth, NeurIPS 2018): denoising and
super-resolution (N3Net, N3NetSR, with DnCNN and VDSR baselines)."""

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

# models, published checkpoints, denoising and evaluation; correspondence classification
from knnlab.n3.cnnet import CNNet, CNNetConfig, N3CNNet, N3CNNetConfig, context_norm
from knnlab.n3.denoise import Denoiser, denoise_tiled, load_denoiser
from knnlab.n3.dncnn import DnCNN, DnCNNConfig
from knnlab.n3.n3net import N3Net, N3NetConfig
from knnlab.n3.n3net_sr import N3NetSR, N3NetSRConfig
from knnlab.n3.pretrained import resolve_official_checkpoint
from knnlab.n3.set_block import SetN3Aggregation, set_n3_aggregate
from knnlab.n3.superres import Upscaler, load_upscaler
from knnlab.n3.vdsr import VDSR, VDSRConfig

__all__ += [
    "VDSR",
    "Denoiser",
    "DnCNN",
    "DnCNNConfig",
    "N3Net",
    "N3NetConfig",
    "N3NetSR",
    "N3NetSRConfig",
    "Upscaler",
    "VDSRConfig",
    "denoise_tiled",
    "load_denoiser",
    "load_upscaler",
    "resolve_official_checkpoint",
]

__all__ += [
    "CNNet",
    "CNNetConfig",
    "N3CNNet",
    "N3CNNetConfig",
    "SetN3Aggregation",
    "context_norm",
    "set_n3_aggregate",
]
