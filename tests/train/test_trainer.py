"""The Trainer in one process: resume exactness, logs, evaluation, clipping, data order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from knnlab.errors import InputError, KnnlabError
from knnlab.train import (
    CheckpointManager,
    StepBatchSampler,
    TensorBoardLogger,
    TrainConfig,
    Trainer,
    fit,
    load_weights,
    make_loader,
    read_jsonl,
    tensorboard_available,
)


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n: int = 40) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.linspace(-1, 1, 6) + 0.1 * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Dropout(0.1), nn.Tanh(), nn.Linear(12, 1))


def noisy_loss(model: nn.Module, batch):
    x, y = batch
    x = x + 0.05 * torch.randn_like(x)  # draws from the global RNG: the resume must restore it
    pred = model(x).squeeze(-1)
    return nn.functional.mse_loss(pred, y), {"mae": (pred - y).abs().mean()}


def config(out: Path, **kw) -> TrainConfig:
    base = dict(
        steps=20,
        batch_size=8,
        lr=1e-2,
        schedule="cosine",
        warmup_steps=2,
        grad_clip=2.0,
        ema_decay=0.8,
        log_every=3,
        checkpoint_every=5,
        out_dir=out,
        device="cpu",
        seed=7,
        tensorboard=False,
    )
    base.update(kw)
    return TrainConfig(**base)


class Crash(RuntimeError):
    pass


def crash_at(step_to_crash: int):
    def cb(trainer, step, logs):
        if step == step_to_crash:
            raise Crash(f"simulated crash at {step}")

    return cb


def test_resume_after_crash_is_bitwise_identical(tmp_path: Path) -> None:
    ref = make_model()
    fit(ref, config(tmp_path / "ref"), noisy_loss, ToyData())

    run = tmp_path / "run"
    with pytest.raises(Crash):  # crashes after step 12; the last checkpoint is step 10
        fit(make_model(), config(run), noisy_loss, ToyData(), callbacks=[crash_at(12)])
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0000010"
    resumed = make_model()
    result = fit(resumed, config(run), noisy_loss, ToyData(), resume=True)

    assert result.step == 20
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    for name in ("model.safetensors", "model_ema.safetensors"):
        a, b = load_file(tmp_path / "ref" / name), load_file(run / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name

    # the log reads like one run: no step after the checkpoint is logged twice
    steps = [r["step"] for r in read_jsonl(run / "log.jsonl")]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    ref_log = read_jsonl(tmp_path / "ref" / "log.jsonl")
    res_log = read_jsonl(run / "log.jsonl")
    # a log line whose window did not straddle the crash is identical
    assert ref_log[-1]["loss"] == res_log[-1]["loss"] and ref_log[-1]["step"] == 20


def test_jsonl_lines_parse_and_hold_the_fields(tmp_path: Path) -> None:
    seen = []

    def eval_fn(model):
        seen.append((model.training, torch.is_grad_enabled()))
        return {"score": 1.5}

    cfg = config(tmp_path, eval_every=10, log_every=4)
    result = fit(make_model(), cfg, noisy_loss, ToyData(), eval_fn=eval_fn)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval/score" in r]
    assert [r["step"] for r in train] == [4, 8, 12, 16, 20]
    for r in train:
        assert {"step", "epoch", "loss", "mae", "lr", "time", "grad_norm"} <= set(r)
        assert np.isfinite(r["loss"]) and r["lr"] > 0
    assert [r["step"] for r in evals] == [10, 20]
    assert seen == [(False, False), (False, False)]  # eval mode, no grad
    assert result.evals == evals and result.last_log == train[-1]
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8
    # final weights
    m = load_weights(make_model(), result.model_path)
    assert result.ema_path is not None and result.ema_path.is_file()
    assert isinstance(m, nn.Module)


def test_eval_gets_the_ema_model(tmp_path: Path) -> None:
    got = []
    trainer = Trainer(
        make_model(),
        config(tmp_path, steps=4, ema_decay=0.5),
        noisy_loss,
        ToyData(),
        eval_fn=lambda m: got.append(m) or {},
    )
    trainer.fit()
    assert got == [trainer.ema.module]


def test_grad_clip_bounds_the_gradient_norm(tmp_path: Path) -> None:
    def loss_fn(model, batch):
        x, y = batch
        return 1e3 * nn.functional.mse_loss(model(x).squeeze(-1), y), {}

    def grad_norm(trainer) -> float:
        grads = [p.grad for p in trainer.model.parameters()]
        return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))

    batch = next(iter(torch.utils.data.DataLoader(ToyData(), batch_size=8)))
    clipped = Trainer(make_model(), config(tmp_path / "a", grad_clip=0.5), loss_fn, ToyData())
    _, logs = clipped.train_step(batch)
    assert float(logs["grad_norm"]) > 0.5  # the norm before clipping is logged
    assert grad_norm(clipped) == pytest.approx(0.5, rel=1e-5)

    free = Trainer(make_model(), config(tmp_path / "b", grad_clip=None), loss_fn, ToyData())
    free.train_step(batch)
    assert grad_norm(free) == pytest.approx(float(logs["grad_norm"]), rel=1e-5)


def test_non_finite_loss_stops_with_a_clear_error(tmp_path: Path) -> None:
    def bad(model, batch):
        return model(batch[0]).sum() * float("nan"), {}

    with pytest.raises(KnnlabError, match="became nan at step 3"):
        fit(make_model(), config(tmp_path, log_every=3), bad, ToyData())


def test_batch_larger_than_data_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fewer than batch_size"):
        fit(make_model(), config(tmp_path, batch_size=64), noisy_loss, ToyData())


def test_resume_without_checkpoint_starts_fresh_and_finished_run_is_a_noop(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=6)
    first = make_model()
    fit(first, cfg, noisy_loss, ToyData(), resume=True)
    assert CheckpointManager(tmp_path / "checkpoints").latest().name == "step_0000006"
    again = make_model()
    result = fit(again, cfg, noisy_loss, ToyData(), resume=True)  # nothing left to do
    assert result.step == 6
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))


def test_sample_order_shards_and_resumes() -> None:
    n, gb = 23, 6  # 3 batches per epoch, 5 samples dropped
    whole = list(StepBatchSampler(n, gb, seed=4, start=0, stop=9))
    halves = [list(StepBatchSampler(n, gb, 4, 0, 9, rank=r, world=2)) for r in range(2)]
    assert [a + b for a, b in zip(*halves)] == whole
    assert list(StepBatchSampler(n, gb, 4, start=5, stop=9)) == whole[5:]
    epoch0 = list(itertools.chain(*whole[:3]))
    assert len(set(epoch0)) == 18 and set(epoch0) <= set(range(n))
    assert list(itertools.chain(*whole[3:6])) != epoch0  # reshuffled each epoch
    assert list(StepBatchSampler(n, gb, seed=5, start=0, stop=3)) != whole[:3]
    with pytest.raises(InputError, match="split evenly"):
        StepBatchSampler(n, 5, 0, 0, 1, rank=0, world=2)


def test_make_loader_resumes_the_same_batches() -> None:
    cfg = TrainConfig(steps=9, batch_size=4, seed=2, out_dir="unused")
    full = [x for x, _ in make_loader(ToyData(18), cfg)]
    tail = [x for x, _ in make_loader(ToyData(18), cfg, start_step=6)]
    assert len(full) == 9 and len(tail) == 3
    assert all(torch.equal(a, b) for a, b in zip(full[6:], tail))
    state = torch.get_rng_state()
    iter(make_loader(ToyData(18), cfg))
    assert torch.equal(state, torch.get_rng_state())  # never draws from the global RNG


def test_resume_of_a_finished_run_does_not_evaluate_again(tmp_path: Path) -> None:
    calls = []
    cfg = config(tmp_path, steps=4)
    fit(make_model(), cfg, noisy_loss, ToyData(), eval_fn=lambda m: calls.append(1) or {"a": 1})
    fit(make_model(), cfg, noisy_loss, ToyData(), eval_fn=lambda m: calls.append(1) or {"a": 1},
        resume=True)  # fmt: skip
    assert len(calls) == 1


def test_resume_from_a_given_checkpoint_folder(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=10, checkpoint_every=5, keep_checkpoints=5)
    fit(make_model(), cfg, noisy_loss, ToyData())
    trainer = Trainer(make_model(), cfg, noisy_loss, ToyData())
    assert trainer.load_checkpoint(tmp_path / "checkpoints" / "step_0000005")
    assert trainer.step == 5 and trainer.epoch == 1


def test_tensorboard_logger_is_optional(tmp_path: Path) -> None:
    tb = TensorBoardLogger(tmp_path / "tb")
    assert tb.enabled == tensorboard_available()
    tb.log({"step": 1, "loss": 0.5, "note": "text"}, step=1)  # no-op without tensorboard
    tb.close()


def test_ema_rampup_reaches_the_trainer(tmp_path: Path) -> None:
    # Record the weights after every step and average them by hand with StyleGAN2-ADA's ramp-up,
    # counted in steps: ema_nimg = min(half-life of the decay, rampup * steps so far),
    # beta = 0.5 ** (1 / ema_nimg); the first update copies the weights.
    seen: list[list[torch.Tensor]] = []

    def record(trainer, step, logs):
        seen.append([p.detach().clone() for p in trainer.model.parameters()])

    decay, rampup = 0.999, 0.25
    trainer = Trainer(
        make_model(),
        config(tmp_path, steps=12, ema_decay=decay, ema_rampup=rampup, checkpoint_every=None),
        noisy_loss,
        ToyData(),
        callbacks=[record],
    )
    trainer.fit()
    expected = [w.clone() for w in seen[0]]
    for t, weights in enumerate(seen[1:], start=1):
        nimg = min(np.log(0.5) / np.log(decay), rampup * t)
        beta = 0.5 ** (1.0 / nimg)
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, weights)]
    got = list(trainer.ema.module.parameters())
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    # without the ramp-up the average keeps 0.999^12 of the initial weights: far from this one
    plain = make_model()
    far = sum(float((p.detach() - e).abs().max()) for p, e in zip(plain.parameters(), expected))
    assert far > 1e-3


def test_ema_rampup_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ema_rampup"):
        config(tmp_path, ema_rampup=0.0)
