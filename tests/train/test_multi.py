"""MultiTrainer in one process: gradient accumulation, lr multipliers, precision, phases, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from knnlab.errors import InputError
from knnlab.train import (
    MultiTrainer,
    Phase,
    StepBatchSampler,
    TrainConfig,
    lr_scaled_groups,
    resolve_precision,
    split_batch,
)


class Linear3(torch.utils.data.Dataset):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g, dtype=torch.float64)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(
        steps=5, batch_size=8, log_every=1, checkpoint_every=None, out_dir=tmp_path,
        device="cpu", seed=2, tensorboard=False,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def _mse(m, batch, ctx):
    x, y = batch
    return (m["f"](x).squeeze(-1) - y).pow(2).mean(), {}


@pytest.mark.parametrize("accum", [1, 4])
def test_gradient_accumulation_equals_hand_computed_big_batch_sgd(tmp_path: Path, accum) -> None:
    data = Linear3()
    model = nn.Linear(3, 1).double()
    w0, b0 = model.weight.detach().clone()[0], model.bias.detach().clone()[0]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = _cfg(tmp_path, accum_steps=accum)
    MultiTrainer({"f": model}, {"f": opt}, [Phase("fit", "f", _mse)], cfg, data).fit()
    # the reference: plain SGD on the whole global batch, gradient of the MSE by hand
    sampler = StepBatchSampler(len(data), 8, cfg.seed, 0, cfg.steps)
    w, b = w0.clone(), b0.clone()
    for step in range(cfg.steps):
        idx = sampler.global_batch_at(step)
        x, y = data.x[idx], data.y[idx]
        r = x @ w + b - y
        w, b = w - 0.1 * (2 * (r[:, None] * x).mean(0)), b - 0.1 * 2 * r.mean()
    torch.testing.assert_close(model.weight.detach()[0], w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.bias.detach()[0], b, rtol=1e-12, atol=1e-12)


def test_lr_multipliers_are_in_the_param_groups_and_scale_adams_first_step(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("mapping", nn.Linear(3, 3))
    model.add_module("head", nn.Linear(3, 1))
    groups = lr_scaled_groups(model, {"mapping": 0.1})
    assert [(g["name"], g["lr_scale"], len(g["params"])) for g in groups] == [
        ("rest", 1.0, 2),
        ("mapping", 0.1, 2),
    ]
    opt = torch.optim.Adam(groups, lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]

    def loss(m, batch, ctx):
        x, y = batch
        return (m["f"](x.float()).squeeze(-1) - y.float()).pow(2).mean(), {}

    cfg = _cfg(tmp_path, steps=1)
    MultiTrainer({"f": model}, {"f": opt}, [Phase("fit", "f", loss)], cfg, Linear3()).fit()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-3])
    # Adam's first step moves every parameter with a non-zero gradient by lr (|m/sqrt(v)| = 1)
    moved = [(p.detach() - q).abs() for p, q in zip(model.parameters(), before)]
    torch.testing.assert_close(moved[0], torch.full_like(moved[0], 1e-3), rtol=1e-3, atol=1e-7)
    torch.testing.assert_close(moved[2], torch.full_like(moved[2], 1e-2), rtol=1e-3, atol=1e-7)
    with pytest.raises(InputError, match="nope"):
        lr_scaled_groups(model, {"nope": 0.5})


def test_lazy_phase_runs_every_n_steps_with_its_loss_scaled(tmp_path) -> None:
    calls: list[int] = []
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def reg(m, batch, ctx):
        calls.append(ctx.step)
        return m["f"].weight.pow(2).sum(), {}  # gradient 2w; scaled by every = 4 -> 8w

    MultiTrainer({"f": model}, {"f": opt}, [Phase("reg", "f", reg, every=4)], _cfg(tmp_path, steps=9),
                 Linear3()).fit()  # fmt: skip
    assert calls == [0, 4, 8]
    assert float(model.weight.detach()) == pytest.approx((1 - 0.01 * 8) ** 3, rel=1e-6)


def test_phases_only_train_their_optimisers_parameters(tmp_path) -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(3, 3).double(), nn.Linear(3, 1).double()
    b_before = [p.detach().clone() for p in b.parameters()]
    seen: list[bool] = []

    def loss(m, batch, ctx):
        x, y = batch
        seen.append(any(p.requires_grad for p in m["b"].parameters()))
        return (m["b"](m["a"](x)).squeeze(-1) - y).pow(2).mean(), {}

    opts = {
        "a": torch.optim.SGD(a.parameters(), lr=0.1),
        "b": torch.optim.SGD(b.parameters(), lr=0.1),
    }
    MultiTrainer({"a": a, "b": b}, opts, [Phase("A", "a", loss)], _cfg(tmp_path, steps=2),
                 Linear3()).fit()  # fmt: skip
    assert seen == [False, False]
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), b_before))
    assert all(p.requires_grad for p in b.parameters())  # restored after the step


def test_ctx_randn_does_not_depend_on_rank_or_micro_batch_split() -> None:
    from knnlab.train import StepContext

    def draw(lo: int, hi: int) -> torch.Tensor:
        ctx = StepContext(3, "G", 1, 0, lo, hi, 8, 7, torch.device("cpu"))
        return torch.cat([ctx.randn(5), ctx.randn(2)], 1)

    whole = draw(0, 8)
    torch.testing.assert_close(torch.cat([draw(0, 2), draw(2, 6), draw(6, 8)]), whole)
    assert not torch.equal(whole[:, :2], whole[:, 5:])  # successive draws differ


def test_precision_on_cpu(tmp_path) -> None:
    assert resolve_precision("auto", torch.device("cpu")) is None
    assert resolve_precision("fp32", torch.device("cpu")) is None
    with pytest.raises(InputError, match="fp16"):
        resolve_precision("fp16", torch.device("cpu"))
    dtypes: list[torch.dtype] = []
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def loss(m, batch, ctx):
        x, y = batch
        out = m["f"](x.float()).squeeze(-1)
        dtypes.append(out.dtype)
        return F.mse_loss(out.float(), y.float()), {}

    tr = MultiTrainer({"f": model}, {"f": opt}, [Phase("fit", "f", loss)],
                      _cfg(tmp_path, steps=2, precision="bf16"), Linear3())  # fmt: skip
    tr.fit()
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert tr.scalers == {}  # GradScaler only for fp16 on CUDA
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_split_batch_and_errors(tmp_path) -> None:
    parts = split_batch((torch.arange(6), {"a": torch.ones(6, 2)}), 3)
    assert [p[0].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert parts[1][1]["a"].shape == (2, 2)
    with pytest.raises(InputError, match="split"):
        split_batch(torch.ones(5), 2)
    m = nn.Linear(3, 1)
    opt = {"f": torch.optim.SGD(m.parameters(), lr=0.1)}
    with pytest.raises(InputError, match="optimizer='g'"):
        MultiTrainer({"f": m}, opt, [Phase("x", "g", _mse)], _cfg(tmp_path), Linear3())
    with pytest.raises(InputError, match="accum_steps=3"):
        MultiTrainer(
            {"f": m}, opt, [Phase("x", "f", _mse)], _cfg(tmp_path, accum_steps=3), Linear3()
        )
    with pytest.raises(InputError, match="every=0"):
        Phase("x", "f", _mse, every=0)
    with pytest.raises(InputError, match="precision"):
        TrainConfig(precision="fp8")
    assert math.isfinite(TrainConfig().lr)
