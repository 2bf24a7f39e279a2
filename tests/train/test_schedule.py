"""Learning-rate schedules against hand-computed numbers; optimiser and config construction."""

from __future__ import annotations

import math

import pytest
import torch

from knnlab.errors import InputError
from knnlab.train import TrainConfig, lr_at, make_optimizer, set_lr


def cfg(**kw) -> TrainConfig:
    base = {"steps": 100, "lr": 1.0, "out_dir": "unused"}
    base.update(kw)
    return TrainConfig(**base)


def test_constant() -> None:
    c = cfg(lr=0.3)
    assert [lr_at(s, c) for s in (0, 50, 99)] == [0.3, 0.3, 0.3]


def test_warmup_is_linear_then_schedule_starts_at_peak() -> None:
    c = cfg(lr=2.0, warmup_steps=4, schedule="cosine")
    assert [lr_at(s, c) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert lr_at(4, c) == pytest.approx(2.0)  # progress 0 right after warm-up
    # half-way through the 96 post-warm-up steps the cosine is at half its peak
    assert lr_at(4 + 48, c) == pytest.approx(1.0)


def test_exp_decays_three_decades() -> None:
    c = cfg(schedule="exp", lr_decay=3.0, lr=1e-3)
    assert lr_at(0, c) == pytest.approx(1e-3)
    assert lr_at(50, c) == pytest.approx(1e-3 * 10**-1.5)
    assert lr_at(100, c) == pytest.approx(1e-6)  # progress is clamped to 1


def test_exp_stepped_per_epoch_matches_n3net_recipe() -> None:
    # N3Net: lr * 10^(-3 * epoch / 50) for 50 epochs of 10 steps
    c = cfg(schedule="exp", lr_decay=3.0, lr=1e-3, steps=500, steps_per_epoch=10)
    for step in (0, 9, 10, 19, 255, 499):
        epoch = step // 10
        assert lr_at(step, c) == pytest.approx(1e-3 * 10 ** (-3 * epoch / 50), rel=1e-12)
    assert lr_at(9, c) == lr_at(0, c)
    assert lr_at(10, c) < lr_at(9, c)


def test_cosine_and_linear_with_floor() -> None:
    c = cfg(schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(1.0)
    assert lr_at(25, c) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(100, c) == pytest.approx(0.1)
    lin = cfg(schedule="linear", min_lr_ratio=0.2)
    assert lr_at(50, lin) == pytest.approx(0.6)


def test_base_lr_override_for_a_second_optimizer() -> None:
    c = cfg(schedule="exp", lr_decay=1.0)
    assert lr_at(100, c, base_lr=5.0) == pytest.approx(0.5)


def test_make_optimizer_and_set_lr() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer(
        [{"params": [w]}, {"params": [b], "lr_scale": 0.1}],
        cfg(optimizer="adamw", weight_decay=0.01, betas=(0.5, 0.9)),
    )
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["betas"] == (0.5, 0.9)
    assert opt.param_groups[0]["weight_decay"] == 0.01
    set_lr(opt, 2.0)
    assert [g["lr"] for g in opt.param_groups] == [2.0, pytest.approx(0.2)]
    assert isinstance(make_optimizer([w], cfg()), torch.optim.Adam)
    assert make_optimizer([w], cfg(), lr=0.5).param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    "bad",
    [
        {"steps": 0},
        {"optimizer": "sgd"},
        {"schedule": "step"},
        {"grad_clip": 0.0},
        {"ema_decay": 1.0},
        {"steps_per_epoch": 0},
    ],
)
def test_config_rejects_bad_values_naming_the_field(bad: dict) -> None:
    with pytest.raises(InputError, match=next(iter(bad))):
        cfg(**bad)


def test_config_dict_roundtrip() -> None:
    c = cfg(betas=(0.8, 0.99), grad_clip=1.0, extra={"sigma": 25})
    d = c.to_dict()
    assert d["out_dir"] == "unused" and d["betas"] == [0.8, 0.99]
    assert TrainConfig.from_dict(d) == c
    with pytest.raises(InputError, match="nope"):
        TrainConfig.from_dict({**d, "nope": 1})
