"""The Triton hash-grid kernels against the torch path, run on CPU through Triton's interpreter.

Triton reads ``TRITON_INTERPRET`` when it decorates its own library functions, that is when
``triton`` is first imported, so the interpreter cannot be switched on inside a running test
session. In a session without the variable the checks below skip and
:func:`test_kernels_in_interpreter` runs this file again in a subprocess with
``TRITON_INTERPRET=1``; with the variable set (that subprocess) they run here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from knnlab.bright.hashgrid import HashGrid, HashGridConfig, hash_grid, level_layout, n_params
from knnlab.errors import InputError

pytest.importorskip("triton")

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"
in_interpreter = pytest.mark.skipif(
    not INTERPRETED, reason="needs TRITON_INTERPRET=1 from the start: test_kernels_in_interpreter"
)


@pytest.mark.skipif(INTERPRETED, reason="already in the interpreter")
@pytest.mark.slow
def test_kernels_in_interpreter(request) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    # the checks only: this test and the compile tests are marked slow
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        __file__,
    ]
    run = subprocess.run(
        cmd, cwd=request.config.rootpath, env=env, capture_output=True, text=True, timeout=1800
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, run.stdout


@pytest.mark.skipif(INTERPRETED, reason="the interpreter does not compile")
@pytest.mark.slow
@pytest.mark.parametrize("need_x,need_p", [(True, True), (False, True)])
def test_kernels_compile_for_gpu(need_x, need_p) -> None:
    """The kernels pass Triton's compiler down to an sm_90 binary (no GPU needed to compile)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import knnlab.bright.hashgrid_triton as ht

    levels = {"scale_ptr": "*fp32", "off_ptr": "*i64", "size_ptr": "*i64", "dense_ptr": "*i32"}
    levels |= {"step_ptr": "*i64", "n": "i32", "n_levels": "i32"}
    sizes = {"D": 3, "F": 3, "FP": 4, "BLOCK": 128}
    fwd = {"x_ptr": "*fp32", "p_ptr": "*fp32", "out_ptr": "*fp32", **levels}
    bwd = {"x_ptr": "*fp32", "p_ptr": "*fp32", "go_ptr": "*fp32", "gp_ptr": "*fp32"}
    bwd |= {"gx_ptr": "*fp32", **levels}
    flags = {"NEED_X": need_x, "NEED_P": need_p}
    target = GPUTarget("cuda", 90, 32)
    for kernel, sig, consts in [
        (ht._forward_kernel, fwd, sizes),
        (ht._backward_kernel, bwd, sizes | flags),
    ]:
        sig = sig | dict.fromkeys(consts, "constexpr")
        try:
            compiled = triton.compile(ASTSource(kernel, sig, consts), target=target)
        except RuntimeError as err:  # a wheel without the CUDA toolchain (ptxas)
            if "ptxas" in str(err):
                pytest.skip(f"no ptxas: {err}")
            raise
        assert "arith.remui" in compiled.asm["ttir"]  # the modulo in uint32


@pytest.fixture
def ht():
    import knnlab.bright.hashgrid_triton as module

    assert module.triton_available(torch.zeros(1))
    return module


def _points(n, d, gen):
    x = torch.rand(n, d, generator=gen)
    x[0] = 0.0
    x[1] = 1.0  # the far corners step past the last grid row and wrap through the modulo
    x[2, 0] = 1.0
    x[3, -1] = 1.0
    return x


def _run(x, params, cfg, weights, backend, need_x=True, need_p=True):
    """Output and gradients of ``Σ out·weights`` (None for the inputs not differentiated)."""
    a = x.clone().requires_grad_(need_x)
    p = params.clone().requires_grad_(need_p)
    out = hash_grid(a, p, cfg, backend=backend)
    (out * weights).sum().backward()
    return out.detach(), a.grad, p.grad


def _assert_grad_close(got, want):
    # the input gradient sums ± terms of size |scale·f·g| over corners and levels; float32
    # rounding of those terms (in a different order) is the tolerance, relative to the largest
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))


# (d, L, F, log2 T, N_min, b, N): every case mixes dense and hashed levels
CASES = [
    (2, 4, 2, 8, 3, 1.8, 300),
    (3, 4, 2, 8, 3, 1.8, 300),
    (3, 3, 3, 7, 2, 2.0, 200),  # F = 3: a feature block padded to 4
    (1, 3, 1, 3, 3, 2.0, 100),
    (4, 2, 2, 6, 2, 1.5, 64),
]


@in_interpreter
@pytest.mark.parametrize("d,L,F,log2_t,n_min,b,n", CASES)
def test_forward_and_gradients_equal_torch(ht, d, L, F, log2_t, n_min, b, n) -> None:
    gen = torch.Generator().manual_seed(10 * d + L)
    cfg = HashGridConfig(d, L, F, log2_t, n_min, b)
    dense = [dn for *_, dn in level_layout(cfg)]
    assert any(dense) and not all(dense)
    params = torch.randn(n_params(cfg), F, generator=gen)
    x = _points(n, d, gen)
    weights = torch.randn(n, L * F, generator=gen)
    out, gx, gp = _run(x, params, cfg, weights, "triton")
    ref, rgx, rgp = _run(x, params, cfg, weights, "torch")
    assert out.shape == (n, L * F) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gp, rgp, rtol=1e-5, atol=1e-6)
    _assert_grad_close(gx, rgx)


@in_interpreter
@pytest.mark.parametrize("need_x,need_p", [(True, False), (False, True)])
def test_one_gradient_only(ht, need_x, need_p) -> None:
    gen = torch.Generator().manual_seed(5)
    cfg = HashGridConfig(2, 3, 2, 6, 3, 1.7)
    params = torch.randn(n_params(cfg), 2, generator=gen)
    x = _points(100, 2, gen)
    weights = torch.randn(100, 6, generator=gen)
    _, gx, gp = _run(x, params, cfg, weights, "triton", need_x, need_p)
    _, rgx, rgp = _run(x, params, cfg, weights, "torch", need_x, need_p)
    assert (gx is None) == (not need_x) and (gp is None) == (not need_p)
    if need_x:
        _assert_grad_close(gx, rgx)
    else:
        torch.testing.assert_close(gp, rgp, rtol=1e-5, atol=1e-6)


@in_interpreter
def test_module_backend(ht) -> None:
    gen = torch.Generator().manual_seed(2)
    grid = HashGrid(3, 3, 2, 7, 3, 1.6, backend="triton", generator=gen)
    with torch.no_grad():
        grid.params.normal_(generator=gen)
    x = _points(100, 3, gen)
    out = grid(x)
    torch.testing.assert_close(out, hash_grid(x, grid.params, grid.cfg), rtol=1e-5, atol=1e-7)
    out.square().sum().backward()
    assert grid.params.grad is not None and grid.params.grad.abs().sum() > 0


@in_interpreter
def test_errors(ht, monkeypatch) -> None:
    cfg = HashGridConfig(2, 2, 2, 6, 4)
    params = torch.zeros(n_params(cfg), 2)
    with pytest.raises(InputError, match="float32"):
        hash_grid(torch.rand(4, 2, dtype=torch.float64), params.double(), cfg, backend="triton")
    with pytest.raises(InputError, match=r"expected \(N, 2\)"):
        hash_grid(torch.rand(4, 3), params, cfg, backend="triton")
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not ht.triton_available(torch.rand(4, 2))
    with pytest.raises(InputError, match="TRITON_INTERPRET=1"):
        hash_grid(torch.rand(4, 2), params, cfg, backend="triton")
