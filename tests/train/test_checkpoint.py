"""CheckpointManager: exact round trips of several modules and optimisers, and crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from knnlab.errors import DataNotFoundError
from knnlab.train import (
    EMA,
    CheckpointManager,
    load_weights,
    pack_state,
    save_weights,
    unpack_state,
)


def _gan_like() -> dict:
    torch.manual_seed(0)
    gen, disc = nn.Linear(4, 8), nn.Sequential(nn.Linear(8, 1), nn.BatchNorm1d(1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=2e-3)
    for _ in range(3):  # give the optimisers some state
        loss = disc(gen(torch.randn(4, 4))).pow(2).mean()
        opt_g.zero_grad(), opt_d.zero_grad()
        loss.backward()
        opt_g.step(), opt_d.step()
    return {"G": gen, "D": disc, "opt_G": opt_g, "opt_D": opt_d, "ema_G": EMA(gen, 0.9)}


def _assert_same(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_pack_unpack_keeps_structure() -> None:
    state = {
        "state": {0: {"step": torch.tensor(3.0), "m": torch.ones(2, 3)}},
        "groups": [{"betas": (0.9, 0.99), "params": [0, 1], "x": None, "flag": True}],
        "__odd": "kept",
    }
    skeleton, tensors = pack_state(state)
    json.dumps(skeleton)  # JSON-able
    _assert_same(unpack_state(json.loads(json.dumps(skeleton)), tensors), state)


def test_multi_module_roundtrip_is_exact(tmp_path: Path) -> None:
    objs = _gan_like()
    mgr = CheckpointManager(tmp_path / "ckpt")
    path = mgr.save(7, objs, extra={"epoch": 2, "note": "x"})
    assert path.name == "step_0000007"
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step_0000007"

    fresh = _gan_like()
    for p in fresh["G"].parameters():  # make sure loading really overwrites
        p.data.zero_()
    fresh["opt_G"] = torch.optim.Adam(fresh["G"].parameters(), lr=9.0)
    fresh["ema_G"].num_updates = 0
    state = mgr.load(fresh)
    assert state is not None and state["step"] == 7 and state["extra"]["epoch"] == 2
    for name in ("G", "D", "ema_G"):
        _assert_same(objs[name].state_dict(), fresh[name].state_dict())
    for name in ("opt_G", "opt_D"):
        _assert_same(objs[name].state_dict(), fresh[name].state_dict())
    assert fresh["ema_G"].num_updates == objs["ema_G"].num_updates


def test_no_checkpoint_gives_none_and_missing_name_is_an_error(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path / "ckpt")
    assert mgr.latest() is None
    assert mgr.load({"m": nn.Linear(1, 1)}) is None
    mgr.save(1, {"m": nn.Linear(1, 1)})
    with pytest.raises(DataNotFoundError, match="opt"):
        mgr.load({"m": nn.Linear(1, 1), "opt": torch.optim.Adam(nn.Linear(1, 1).parameters())})


def test_keeps_last_n(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep=2)
    m = nn.Linear(2, 2)
    for step in (10, 20, 30, 40):
        mgr.save(step, {"model": m})
    assert [p.name for p in mgr.checkpoints()] == ["step_0000030", "step_0000040"]


def test_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep=5)
    m = nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.fill_(1.0)
    mgr.save(4, {"model": m})
    good = m.weight.clone()

    # a kill during the save of step 8: its folder exists (even with a state.json) but the
    # pointer was never moved; and a temp folder from a kill even earlier in a save
    half = tmp_path / "step_0000008"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\x00garbage")
    (half / "state.json").write_text(json.dumps({"step": 8, "objects": {}, "extra": {}}))
    (tmp_path / ".step_0000012.abc.partial").mkdir()

    assert mgr.latest() == tmp_path / "step_0000004"
    other = nn.Linear(2, 2)
    state = mgr.load({"model": other})
    assert state is not None and state["step"] == 4
    assert torch.equal(other.weight, good)

    # the next save replaces the interrupted folder and cleans the temp one
    mgr.save(8, {"model": m})
    assert mgr.latest() == half
    assert not (tmp_path / ".step_0000012.abc.partial").exists()
    assert mgr.load({"model": other})["step"] == 8


def test_pointer_to_a_missing_folder_falls_back_to_an_older_complete_one(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path)
    m = nn.Linear(2, 2)
    mgr.save(1, {"model": m})
    (tmp_path / "latest").write_text("step_0000002\n")  # e.g. deleted by hand
    assert mgr.latest() == tmp_path / "step_0000001"
    (tmp_path / "latest").unlink()
    assert mgr.latest() == tmp_path / "step_0000001"


def test_a_failed_save_leaves_nothing_behind(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path)
    mgr.save(1, {"model": nn.Linear(2, 2)})

    class Bad:
        def state_dict(self):
            return {"x": object()}

    with pytest.raises(TypeError, match="object"):
        mgr.save(2, {"model": nn.Linear(2, 2), "bad": Bad()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_0000001"]


def test_save_and_load_weights(tmp_path: Path) -> None:
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    save_weights(a, tmp_path / "w.safetensors", {"step": 5})
    load_weights(b, tmp_path / "w.safetensors")
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(DataNotFoundError, match="nope"):
        load_weights(b, tmp_path / "nope.safetensors")
