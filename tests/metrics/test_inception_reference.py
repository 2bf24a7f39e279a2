"""FID's Inception-v3 against an independent float64 forward written here from the published
graph (Szegedy et al. 2016, "Rethinking the Inception Architecture", Fig. 5-7 and Table 1, in the
variant of the TensorFlow FID graph ``pt_inception-2015-12-05`` as ported by pytorch-fid:
``FIDInceptionA/C/E_1/E_2``): average pools that exclude padding in the A, C and first E blocks,
a max pool in the last E block, BatchNorm eps 1e-3, 2048-d global average pool.

Random weights (He-scaled, random BatchNorm statistics, so no layer is an identity). The
reference reads the weights by name and implements the pools itself (no ``count_include_pad``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from knnlab.metrics.features.inception import inception_v3_fid


def _randomised(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = inception_v3_fid(pretrained=False, resize_input=False)
    sd = model.state_dict()
    for k, v in sd.items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            v.copy_(torch.randn(v.shape, generator=g) * math.sqrt(2.0 / fan_in))
        elif k.endswith("bn.weight"):
            v.copy_(0.5 + torch.rand(v.shape, generator=g))
        elif k.endswith("bn.bias"):
            v.copy_(0.1 * torch.randn(v.shape, generator=g))
        elif k.endswith("running_mean"):
            v.copy_(0.1 * torch.randn(v.shape, generator=g))
        elif k.endswith("running_var"):
            v.copy_(0.5 + torch.rand(v.shape, generator=g))
    return model.eval(), {k: v.double() for k, v in sd.items()}


class Reference:
    """float64 forward from the state dict; ``avg_excludes_pad`` and ``last_pool`` can be set
    wrong to show that the comparison sees the pooling."""

    def __init__(self, sd, avg_excludes_pad: bool = True, last_pool: str = "max") -> None:
        self.sd, self.excl, self.last_pool = sd, avg_excludes_pad, last_pool

    def conv(self, x, name, stride=1, padding=0):
        sd = self.sd
        y = F.conv2d(x, sd[f"{name}.conv.weight"], stride=stride, padding=padding)
        mean, var = sd[f"{name}.bn.running_mean"], sd[f"{name}.bn.running_var"]
        gamma, beta = sd[f"{name}.bn.weight"], sd[f"{name}.bn.bias"]
        y = (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-3)
        return torch.relu(y * gamma[:, None, None] + beta[:, None, None])

    def avg3(self, x):
        """3×3 mean, stride 1, over the pixels inside the image only (when ``excl``)."""
        s = F.pad(x, (1, 1, 1, 1))
        tot = sum(
            s[:, :, i : i + x.shape[2], j : j + x.shape[3]] for i in range(3) for j in range(3)
        )
        if not self.excl:
            return tot / 9.0
        ones = F.pad(torch.ones_like(x[:1, :1]), (1, 1, 1, 1))
        cnt = sum(
            ones[:, :, i : i + x.shape[2], j : j + x.shape[3]] for i in range(3) for j in range(3)
        )
        return tot / cnt

    @staticmethod
    def maxpool(x, k=3, stride=2, pad=0):
        s = F.pad(x, (pad,) * 4, value=-math.inf)
        win = s.unfold(2, k, stride).unfold(3, k, stride)  # (B, C, H', W', k, k)
        return win.amax((-1, -2))

    def block_a(self, x, n):
        c = self.conv
        b1 = c(x, f"{n}.branch1x1")
        b5 = c(c(x, f"{n}.branch5x5_1"), f"{n}.branch5x5_2", padding=2)
        b3 = c(c(c(x, f"{n}.branch3x3dbl_1"), f"{n}.branch3x3dbl_2", padding=1),
               f"{n}.branch3x3dbl_3", padding=1)  # fmt: skip
        bp = c(self.avg3(x), f"{n}.branch_pool")
        return torch.cat([b1, b5, b3, bp], 1)

    def block_b(self, x, n):
        c = self.conv
        b3 = c(x, f"{n}.branch3x3", stride=2)
        bd = c(c(c(x, f"{n}.branch3x3dbl_1"), f"{n}.branch3x3dbl_2", padding=1),
               f"{n}.branch3x3dbl_3", stride=2)  # fmt: skip
        return torch.cat([b3, bd, self.maxpool(x)], 1)

    def block_c(self, x, n):
        c = self.conv
        b1 = c(x, f"{n}.branch1x1")
        b7 = c(x, f"{n}.branch7x7_1")
        b7 = c(c(b7, f"{n}.branch7x7_2", padding=(0, 3)), f"{n}.branch7x7_3", padding=(3, 0))
        bd = c(x, f"{n}.branch7x7dbl_1")
        for i, p in zip((2, 3, 4, 5), ((3, 0), (0, 3), (3, 0), (0, 3)), strict=True):
            bd = c(bd, f"{n}.branch7x7dbl_{i}", padding=p)
        bp = c(self.avg3(x), f"{n}.branch_pool")
        return torch.cat([b1, b7, bd, bp], 1)

    def block_d(self, x, n):
        c = self.conv
        b3 = c(c(x, f"{n}.branch3x3_1"), f"{n}.branch3x3_2", stride=2)
        b7 = c(x, f"{n}.branch7x7x3_1")
        b7 = c(b7, f"{n}.branch7x7x3_2", padding=(0, 3))
        b7 = c(b7, f"{n}.branch7x7x3_3", padding=(3, 0))
        b7 = c(b7, f"{n}.branch7x7x3_4", stride=2)
        return torch.cat([b3, b7, self.maxpool(x)], 1)

    def block_e(self, x, n, pool):
        c = self.conv
        b1 = c(x, f"{n}.branch1x1")
        b3 = c(x, f"{n}.branch3x3_1")
        b3 = torch.cat([c(b3, f"{n}.branch3x3_2a", padding=(0, 1)),
                        c(b3, f"{n}.branch3x3_2b", padding=(1, 0))], 1)  # fmt: skip
        bd = c(c(x, f"{n}.branch3x3dbl_1"), f"{n}.branch3x3dbl_2", padding=1)
        bd = torch.cat([c(bd, f"{n}.branch3x3dbl_3a", padding=(0, 1)),
                        c(bd, f"{n}.branch3x3dbl_3b", padding=(1, 0))], 1)  # fmt: skip
        pooled = self.avg3(x) if pool == "avg" else self.maxpool(x, 3, 1, 1)
        return torch.cat([b1, b3, bd, c(pooled, f"{n}.branch_pool")], 1)

    def features(self, img):
        """``img (B, 3, H, W)`` in [0, 1], no resize -> ``(B, 2048)``."""
        c = self.conv
        x = 2.0 * img.double() - 1.0
        x = c(c(c(x, "Conv2d_1a_3x3", stride=2), "Conv2d_2a_3x3"), "Conv2d_2b_3x3", padding=1)
        x = self.maxpool(x)
        x = self.maxpool(c(c(x, "Conv2d_3b_1x1"), "Conv2d_4a_3x3"))
        for n in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
            x = self.block_a(x, n)
        x = self.block_b(x, "Mixed_6a")
        for n in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = self.block_c(x, n)
        x = self.block_d(x, "Mixed_7a")
        x = self.block_e(x, "Mixed_7b", "avg")
        x = self.block_e(x, "Mixed_7c", self.last_pool)
        assert x.shape[1] == 2048
        return x.mean((2, 3))


def _bilinear(img: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with half-pixel centres (no antialias), as F.interpolate(align_corners=False)."""

    def weights(n_in: int) -> torch.Tensor:
        src = ((torch.arange(size, dtype=torch.float64) + 0.5) * (n_in / size) - 0.5).clamp_min(0)
        i0 = src.floor().long().clamp_max(n_in - 1)
        i1 = (i0 + 1).clamp_max(n_in - 1)
        w = src - i0
        m = torch.zeros(size, n_in, dtype=torch.float64)
        m[torch.arange(size), i0] += 1 - w
        m[torch.arange(size), i1] += w
        return m

    wy, wx = weights(img.shape[2]), weights(img.shape[3])
    return torch.einsum("yh,bchw,xw->bcyx", wy, img.double(), wx)


def test_features_match_the_float64_reference_with_its_pools():
    """139×139 input (no resize): the last blocks are 3×3, so border pooling matters."""
    torch.manual_seed(0)
    model, sd = _randomised()
    x = torch.rand(2, 3, 139, 139, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model.features(x).double()
        ref = Reference(sd).features(x)
        wrong_avg = Reference(sd, avg_excludes_pad=False).features(x)
        wrong_max = Reference(sd, last_pool="avg").features(x)
    assert got.shape == (2, 2048)
    scale = ref.abs().max()
    assert scale > 1e-3  # activations did not vanish through the 94 layers
    err = (got - ref).abs().max() / scale
    assert err < 1e-4, err
    # the comparison sees each pooling rule: the wrong ones differ by far more than the error
    assert (wrong_avg - ref).abs().max() / scale > 100 * err
    assert (wrong_max - ref).abs().max() / scale > 100 * err


@pytest.mark.slow
def test_resized_gray_input_matches_the_reference_at_299():
    """A 64×64 gray image, expanded to RGB and bilinearly resized to 299×299 inside the model."""
    model, sd = _randomised(seed=2)
    model.resize_input = True
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = model.features(x).double()
        ref = Reference(sd).features(_bilinear(x.expand(-1, 3, -1, -1), 299))
    assert got.shape == (1, 2048)
    err = (got - ref).abs().max() / ref.abs().max()
    assert err < 1e-4, err
