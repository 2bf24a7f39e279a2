"""The "real-noise" demo section: a PolyU crop with noisy / BM3D / N³Net-real / ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.mark.slow
def test_section_rows(shared_datasets) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    from knnlab.data import read_image
    from knnlab.n3.real.demo import section

    res = section(quick=True, device=torch.device("cpu"), seed=0)
    assert res.skipped is None and res.figures[0].file == "images.png"
    rows = res.table("real-noise").rows
    methods = [r["method"] for r in rows]
    assert methods[0] == "noisy input" and "BM3D (estimated σ)" in methods
    # the noisy row against scikit-image on the same centre 128×128 crop of the first PolyU pair
    files = sorted((shared_datasets / "PolyU").glob("*_real.JPG"))
    noisy = read_image(files[0], channels=3).numpy()
    clean = read_image(str(files[0]).replace("_real", "_mean"), channels=3).numpy()
    h, w = noisy.shape[1:]
    sl = np.s_[:, (h - 128) // 2 : (h + 128) // 2, (w - 128) // 2 : (w + 128) // 2]
    ref = peak_signal_noise_ratio(
        clean[sl].astype(np.float64), noisy[sl].astype(np.float64), data_range=1
    )
    assert rows[0]["psnr"] == pytest.approx(ref, abs=1e-6)
