"""knnlab.n3.real: N³Net for real camera noise (Plötz & Roth, NeurIPS 2018, Sec. 5.3).

The Poisson–Gaussian noise model and the released training recipe (:mod:`.noise`), noise-level-aware
N³Net and DnCNN configurations (:mod:`.models`), training (:mod:`.training`), a noise-level-function
estimator for blind use (:mod:`.nlf`), evaluation on real photographs (:mod:`.evaluate`) and the
``real-noise`` experiment.
"""

from knnlab.n3.real.models import N3NET_REAL_PRESETS, dncnn_real_config, n3net_real_config
from knnlab.n3.real.noise import (
    noise_level_input,
    raw_like,
    real_noise_batch,
    sample_noise_levels,
    to_gray,
)

__all__ = [
    "N3NET_REAL_PRESETS",
    "dncnn_real_config",
    "n3net_real_config",
    "noise_level_input",
    "raw_like",
    "real_noise_batch",
    "sample_noise_levels",
    "to_gray",
]
