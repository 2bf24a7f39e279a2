"""The release's cosine-variant schedule against an independent evaluation of its formula."""

import math

import numpy as np
import pytest

from knnlab.bright.schedule import cosine_variant_alpha_bar, make_betas
from knnlab.errors import InputError


def _gamma(t: float, s: float = 0.2, e: float = 1.0, tau: float = 1.5) -> float:
    # written out from the formula, one scalar at a time
    v = lambda u: math.cos((u * (e - s) + s) * math.pi / 2) ** (2 * tau)  # noqa: E731
    v_start, v_end = math.cos(s * math.pi / 2) ** (2 * tau), math.cos(e * math.pi / 2) ** (2 * tau)
    return min(max((v_end - v(t)) / (v_end - v_start), 1e-9), 0.9999)


def test_cosine_variant_betas_equal_the_formula():
    steps = 1000
    betas = make_betas("cosine_variant", steps)
    assert betas.shape == (steps,) and betas.dtype == np.float64
    for i in range(steps):
        expected = min(1 - _gamma((i + 1) / steps) / _gamma(i / steps), 0.999)
        assert betas[i] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # the end points: gamma(0) clipped at 0.9999, gamma(1) at 1e-9
    assert cosine_variant_alpha_bar(0.0) == pytest.approx(0.9999)
    assert cosine_variant_alpha_bar(1.0) == pytest.approx(1e-9)
    assert np.all(np.diff(cosine_variant_alpha_bar(np.linspace(0, 1, 101))) <= 0)


def test_schedules_as_diffusers_uses_them():
    from knnlab.bright.ldm import make_scheduler

    sched = make_scheduler("cosine_variant", 1000)
    cum = np.cumprod(1 - make_betas("cosine_variant", 1000))
    np.testing.assert_allclose(sched.alphas_cumprod.numpy(), cum, rtol=2e-5, atol=1e-9)
    lin = make_betas("linear", 1000)
    assert lin[0] == pytest.approx(1e-4) and lin[-1] == pytest.approx(0.02)
    cos = make_betas("cosine", 1000)  # Nichol & Dhariwal's alpha-bar, first step
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert cos[0] == pytest.approx(1 - f(1e-3) / f(0.0), rel=1e-12)
    with pytest.raises(InputError, match="choose from"):
        make_betas("sigmoid")
