"""The super-resolution protocol: the bicubic row must reproduce the published bicubic PSNRs
(VDSR paper, Table 2) within 0.05 dB, on every data set and scale."""

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.sr_data import to_y
from knnlab.n3.sr_eval import evaluate_sr, load_sr_benchmark

# Kim et al. 2016, Table 2 (bicubic rows), typed in from the paper
PUBLISHED_BICUBIC = {
    "Set5": {2: 33.66, 3: 30.39, 4: 28.42},
    "Set14": {2: 30.24, 3: 27.55, 4: 26.00},
    "B100": {2: 29.56, 3: 27.21, 4: 25.96},
}


def _check(dataset):
    for scale, paper in PUBLISHED_BICUBIC[dataset].items():
        got = evaluate_sr(["bicubic"], dataset, scale)["results"][0]["psnr"]
        assert abs(got - paper) <= 0.05, (dataset, scale, got, paper)


def test_bicubic_set5_matches_published(shared_datasets):
    _check("Set5")


@pytest.mark.slow
def test_bicubic_set14_matches_published(shared_datasets):
    _check("Set14")


@pytest.mark.slow
def test_bicubic_b100_matches_published(shared_datasets):
    _check("B100")


def test_y_is_matlab_rgb2ycbcr_in_8_bits():
    from skimage.color import rgb2ycbcr

    rgb = torch.randint(0, 256, (3, 9, 7), generator=torch.Generator().manual_seed(0))
    ref = rgb2ycbcr(rgb.permute(1, 2, 0).numpy().astype(np.uint8))[..., 0]  # [16, 235] float
    got = to_y(rgb.float() / 255)[0].numpy() * 255
    np.testing.assert_allclose(got, np.round(ref), atol=1e-4)
    gray = torch.rand(1, 5, 5)
    assert torch.equal(to_y(gray), gray)  # a gray image is its own Y


def test_benchmark_items_are_cropped_to_the_scale(shared_datasets):
    items = load_sr_benchmark("Set5", 3, limit=2)
    assert len(items) == 2
    for _, hr, up in items:
        assert hr.shape == up.shape and hr.shape[0] == 1
        assert hr.shape[-2] % 3 == 0 and hr.shape[-1] % 3 == 0


def test_bad_benchmark_arguments(shared_datasets):
    with pytest.raises(InputError, match="--dataset 'Set7'"):
        load_sr_benchmark("Set7", 2)
    with pytest.raises(InputError, match="--scale 5"):
        load_sr_benchmark("Set5", 5)
    with pytest.raises(InputError, match="no LR files"):
        load_sr_benchmark("B100", 2, lr="file")
