"""Tests of knnlab.n3.block.N3Block: shapes, output layout, CPU forward/backward, checkpoint names."""

from __future__ import annotations

import math

import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3 import N3Block, n3_aggregate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_shape_and_backward_cpu():
    torch.manual_seed(0)
    blk = N3Block(8, k=7)
    assert blk.out_channels == 64
    x = torch.randn(2, 8, 83, 90, requires_grad=True)
    y = blk(x)
    assert y.shape == (2, 64, 83, 90)
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in blk.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_output_is_x_then_neighbours_minus_x():
    torch.manual_seed(1)
    blk = N3Block(3, k=2, embed_features=8, embed_out=4).eval()
    x = torch.randn(1, 3, 80, 80)
    with torch.no_grad():
        y = blk(x)
        z = n3_aggregate(
            x,
            blk.embedding(x),
            blk.temperature(x),
            2,
            distance_norm=blk.aggregation.distance_norm,
            log_temperature_offset=math.log(0.1),
        )
    torch.testing.assert_close(y[:, :3], x)
    torch.testing.assert_close(y[:, 3:].view(1, 2, 3, 80, 80), z - x.unsqueeze(1))


def test_released_init():
    blk = N3Block(8)
    bn = blk.embedding[1]
    assert bn.momentum == 0.001 and (bn.weight >= 0.025).all() and (bn.bias == 0).all()
    assert blk.aggregation.log_temperature_offset == pytest.approx(math.log(0.1))


def test_rejects_wrong_channels():
    with pytest.raises(InputError, match="expects"):
        N3Block(8)(torch.randn(1, 3, 80, 80))


def released_to_block(net_state: dict, i: int) -> dict:
    """The name mapping documented in knnlab.n3.block, for block ``nls.<i>``."""
    out = {}
    for name, v in net_state.items():
        prefix = f"nls.{i}."
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        rest = rest.replace("embedcnn.", "embedding.").replace("tempcnn.", "temperature.")
        rest = rest.replace("n3aggregation.aggregation.nnn.bn.", "aggregation.distance_norm.")
        out[rest] = v
    return out


def test_holds_the_published_checkpoint_parameters(shared_weights):
    path = shared_weights / "n3net-official" / "gaussian_sigma25.t7"
    if not path.exists():
        pytest.skip(f"{path} not found")
    net = torch.load(path, weights_only=True, map_location="cpu")["net"]
    for i in (0, 1):
        blk = N3Block(8)
        mapped = released_to_block(net, i)
        missing, unexpected = blk.load_state_dict(mapped, strict=False)
        assert unexpected == []
        assert all(m.endswith("num_batches_tracked") for m in missing), missing
        assert len(mapped) == 28
        blk.eval()
        y = blk(torch.rand(1, 8, 80, 80))
        assert torch.isfinite(y).all()
