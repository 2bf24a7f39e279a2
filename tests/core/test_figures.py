"""knnlab.figures: image layouts for display and a row of captioned images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.figures import image_row, to_display


def test_to_display_layouts_and_clipping() -> None:
    chw = torch.tensor([[[0.0, 0.5], [1.0, 2.0]]])  # (1, 2, 2)
    np.testing.assert_array_equal(to_display(chw), [[0.0, 0.5], [1.0, 1.0]])
    rgb = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) / 100.0
    np.testing.assert_array_equal(to_display(rgb), np.moveaxis(rgb, 0, -1))
    hwc = np.full((4, 5, 3), -0.5)
    np.testing.assert_array_equal(to_display(hwc), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="shape"):
        to_display(np.zeros((2, 3, 4, 5)))


def test_image_row_draws_each_image_with_its_caption() -> None:
    gray = torch.rand(1, 6, 7, generator=torch.Generator().manual_seed(0))
    rgb = torch.rand(3, 6, 7, generator=torch.Generator().manual_seed(1))
    fig = image_row([gray, rgb], ["a gray", "an rgb"], title="t")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["a gray", "an rgb"]
    shown = [np.asarray(ax.images[0].get_array()) for ax in axes]
    np.testing.assert_allclose(shown[0], gray[0].numpy())
    np.testing.assert_allclose(shown[1], rgb.permute(1, 2, 0).numpy())
    assert axes[0].images[0].get_clim() == (0.0, 1.0)
    assert axes[0].images[0].get_cmap().name == "gray"
    with pytest.raises(ValueError, match="at least one"):
        image_row([])
