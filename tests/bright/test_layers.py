from __future__ import annotations

import torch
import torch.nn.functional as F

from knnlab.bright.layers import (
    ModulatedConv2d,
    modulated_conv2d,
    modulated_linear,
    normalize_2nd_moment,
)


def _fused_reference(x, weight, style, demodulate, up):
    """StyleGAN2's fused path, one sample at a time: modulate and demodulate the weights."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * style[b].view(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xb = x[b : b + 1]
        if up:
            xb = F.interpolate(xb, scale_factor=2, mode="bilinear", align_corners=False)
        outs.append(F.conv2d(xb, w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


def test_modulated_conv_equals_fused_weights() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    s = torch.rand(3, 5, generator=g, dtype=torch.float64) + 0.5
    for demod in (True, False):
        for up in (False, True):
            torch.testing.assert_close(
                modulated_conv2d(x, w, s, demodulate=demod, up=up),
                _fused_reference(x, w, s, demod, up),
            )


def test_modulated_linear_per_sample() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, 5, generator=g, dtype=torch.float64)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64)
    s = torch.rand(2, 5, generator=g, dtype=torch.float64)
    out = modulated_linear(x, w, s)
    for b in range(2):
        wb = w * s[b]
        wb = wb / wb.norm(dim=1, keepdim=True)
        torch.testing.assert_close(out[b], x[b] @ wb.t())


def test_normalize_2nd_moment() -> None:
    x = torch.randn(4, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close((normalize_2nd_moment(x) ** 2).mean(1), torch.ones(4, dtype=x.dtype))


def test_module_equals_function_and_eval_is_deterministic() -> None:
    layer = ModulatedConv2d(3, 4, 8, activation=False).eval()
    with torch.no_grad():
        layer.noise_strength.fill_(0.5)
    x, s = torch.randn(2, 3, 5, 5), torch.randn(2, 8)
    ref = modulated_conv2d(x, layer.weight, layer.affine(s)) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x, s), ref)
    layer.train()
    assert not torch.allclose(layer(x, s), ref)  # noise inputs in training


def test_equalized_linear_runtime_scale_and_learning_rate() -> None:
    from knnlab.bright.layers import EqualizedLinear

    torch.manual_seed(0)
    x = torch.randn(64, 256)
    for lr_mult in (1.0, 0.01):
        layer = EqualizedLinear(256, 512, bias_init=0.5, lr_multiplier=lr_mult)
        w_eff = layer.weight * layer.weight_gain
        # the effective weights are N(0, 1/fan_in) and the bias is bias_init, whatever lr_mult
        assert abs(w_eff.std().item() * 16 - 1) < 0.02
        y = layer(x)
        torch.testing.assert_close(y, x @ w_eff.t() + 0.5)
        # one plain SGD step of size 1 on sum(y·g) moves the effective weights by
        # (lr_mult² / fan_in) · g^T x: the learning rate is scaled by lr_mult² / fan_in
        g = torch.randn_like(y)
        (y * g).sum().backward()
        with torch.no_grad():
            before = w_eff.clone()
            layer.weight -= layer.weight.grad
            moved = layer.weight * layer.weight_gain - before
        torch.testing.assert_close(moved, -(lr_mult**2 / 256) * (g.t() @ x), rtol=1e-4, atol=1e-6)
