import pytest
import torch
import torch.nn.functional as F

from knnlab.errors import InputError
from knnlab.n3.vdsr import VDSR


def _slow_vdsr(net: VDSR, x: torch.Tensor) -> torch.Tensor:
    """VDSR written out from the paper: conv+ReLU layers, a last conv, plus the input (Eq. 4)."""
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    h = x
    for i, c in enumerate(convs):
        h = F.conv2d(h, c.weight, c.bias, padding=1)
        if i < len(convs) - 1:
            h = torch.relu(h)
    return x + h


def test_shapes_and_layer_count():
    net = VDSR()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20 and all(c.out_channels == 64 for c in convs[:-1])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    x = torch.rand(2, 1, 33, 47)
    with torch.no_grad():
        assert net(x).shape == (2, 1, 33, 47)


def test_forward_matches_the_plain_network():
    torch.manual_seed(0)
    net = VDSR(depth=5, features=8)
    for c in net.modules():  # identity_init zeroes the last layer; randomise it for this check
        if isinstance(c, torch.nn.Conv2d):
            torch.nn.init.normal_(c.weight, 0, 0.1)
            torch.nn.init.normal_(c.bias, 0, 0.1)
    x = torch.rand(1, 1, 20, 17, dtype=torch.float64)
    net = net.double()
    torch.testing.assert_close(net(x), _slow_vdsr(net, x))


def test_starts_as_identity():
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.equal(VDSR(depth=6, features=8)(x), x)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    net = VDSR(depth=4, features=8)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.save_pretrained(tmp_path / "m")
    back = VDSR.from_pretrained(tmp_path / "m")
    assert back.config == net.config
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(back(x), net.eval()(x))


def test_bad_input_and_config():
    with pytest.raises(InputError, match=r"VDSR expects \(B, 1, H, W\)"):
        VDSR(depth=3, features=4)(torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="depth=1"):
        VDSR(depth=1)
