"""EMA against a hand-written moving average."""

from __future__ import annotations

import torch
from torch import nn

from knnlab.train import EMA


def test_ema_matches_hand_written_average() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    decay = 0.9
    ema = EMA(model, decay)
    hand = {k: v.detach().clone().double() for k, v in model.named_parameters()}
    for _ in range(7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(5, 3))  # updates BatchNorm running stats (buffers)
        ema.update(model)
        for k, p in model.named_parameters():
            hand[k] = decay * hand[k] + (1 - decay) * p.detach().double()
    got = dict(ema.module.named_parameters())
    for k, v in hand.items():
        torch.testing.assert_close(got[k].double(), v, rtol=1e-6, atol=1e-6)
    # buffers are copied, not averaged
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert ema.num_updates == 7
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert not ema.module.training


def test_ema_copy_to_and_state_roundtrip() -> None:
    model = nn.Linear(2, 2)
    ema = EMA(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model)
    other = EMA(nn.Linear(2, 2), 0.5)
    other.load_state_dict(ema.state_dict())
    other.load_extra_state(ema.extra_state())
    assert other.num_updates == 1
    target = nn.Linear(2, 2)
    other.copy_to(target)
    assert torch.equal(target.weight, ema.module.weight)


def test_ema_rampup_follows_the_stylegan2_ada_formula() -> None:
    import math

    from knnlab.train import ema_beta

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    decay, rampup = 0.99, 0.05
    ema = EMA(model, decay, rampup=rampup)
    initial = model.weight.detach().clone().double()
    hand = initial.clone()
    half_life = math.log(0.5) / math.log(decay)  # 68.97 steps
    for t in range(30):
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        beta = 0.5 ** (1.0 / max(min(half_life, rampup * t), 1e-8))
        assert ema_beta(decay, t, rampup) == beta
        hand = beta * hand + (1 - beta) * model.weight.detach().double()
        ema.update(model)
        if t == 0:  # the first update copies the weights
            assert torch.equal(ema.module.weight, model.weight)
    torch.testing.assert_close(ema.module.weight.double(), hand, rtol=1e-6, atol=1e-6)
    # after a short run the plain EMA is still mostly the initial weights; the ramped one is not
    plain = initial.clone()
    for _ in range(30):
        plain = decay * plain + (1 - decay) * model.weight.detach().double()
    dist_ramped = (ema.module.weight.double() - initial).norm()
    dist_plain = (plain - initial).norm()
    assert dist_ramped > 2 * dist_plain
    assert (
        ema_beta(decay, 10_000, rampup) == decay
        or abs(ema_beta(decay, 10_000, rampup) - decay) < 1e-12
    )
    assert ema.extra_state()["rampup"] == rampup
