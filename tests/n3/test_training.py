"""The denoiser training recipe learns: a short run, with BatchNorm statistics recalibrated as the
training command does, beats the noisy input by a clear margin in eval mode."""

import pytest
import torch
import torch.nn.functional as F

from knnlab.n3.dncnn import DnCNN, DnCNNConfig
from knnlab.n3.training import denoise_loss, parameter_groups, recalibrate_batchnorm


def _smooth_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Piecewise-smooth test images in [0, 1]: blurred random fields plus a step edge."""
    x = torch.rand(n, 1, size // 4, size // 4, generator=generator)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    edge = (torch.arange(size) > size // 2).float().view(1, 1, 1, size)
    return (0.6 * x + 0.4 * edge).clamp(0, 1)


@pytest.mark.slow
def test_recipe_loss_and_groups_learn_to_denoise():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = DnCNN(DnCNNConfig(depth=5, features=24))
    opt = torch.optim.Adam(parameter_groups(net, 1e-4), lr=1e-3)
    sigma = 25 / 255
    for _ in range(80):
        clean = _smooth_images(8, 32, g)
        loss = denoise_loss(net(clean + sigma * torch.randn_like(clean)), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # as `knnlab train denoise` does: running BatchNorm statistics from training batches (the
    # released momentum of 0.001 leaves them near their initial values after a short run)
    batches = [_smooth_images(8, 32, g) for _ in range(8)]
    recalibrate_batchnorm(net, [b + sigma * torch.randn(b.shape, generator=g) for b in batches])
    net.eval()
    clean = _smooth_images(8, 32, g)
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    with torch.no_grad():
        mse_out = (net(noisy) - clean).pow(2).mean()
    mse_in = (noisy - clean).pow(2).mean()
    gain_db = 10 * torch.log10(mse_in / mse_out)
    assert gain_db > 3.0, f"training gained only {gain_db:.2f} dB over the noisy input"
