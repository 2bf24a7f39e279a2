"""Small matplotlib helpers that experiments share (they return figures; they never show or save).

Example::

    fig = image_row([clean, noisy, out], ["clean", "noisy 20.2 dB", "N3Net 30.1 dB"])
    result.add_figure(fig, "images.png", caption="Set12/05.png, sigma = 25")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["image_row", "to_display"]


def to_display(image: Any) -> np.ndarray:
    """An image ``(C, H, W)`` / ``(H, W)`` tensor or array in [0, 1] as ``(H, W)`` or ``(H, W, 3)``
    float64 clipped to [0, 1], ready for ``imshow``."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"image of shape {arr.shape}: expected (H, W), (C, H, W) or (H, W, C)")
    return np.clip(arr, 0.0, 1.0)


def image_row(
    images: Sequence[Any],
    captions: Sequence[str] | None = None,
    *,
    title: str = "",
    panel_inches: float = 2.6,
) -> Any:
    """A matplotlib ``Figure`` with ``images`` side by side (no axes), each titled by its caption.

    Gray images are drawn with a fixed gray scale (0 black, 1 white) and pixels stay square and
    unsmoothed (nearest neighbour), so small images are not blurred.
    """
    from matplotlib.figure import Figure

    if not images:
        raise ValueError("image_row: give at least one image")
    caps = list(captions) if captions is not None else [""] * len(images)
    fig = Figure(figsize=(panel_inches * len(images), panel_inches + (0.6 if title else 0.35)))
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, im, cap in zip(axes, images, caps):
        arr = to_display(im)
        if arr.ndim == 2:
            ax.imshow(arr, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(arr, interpolation="nearest")
        ax.set_title(cap, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
