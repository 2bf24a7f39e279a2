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
