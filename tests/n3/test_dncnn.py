import pytest
import torch

from knnlab.n3.dncnn import DnCNN, DnCNNConfig


def test_shapes_and_residual_identity_at_zero_tail():
    net = DnCNN(depth=4, features=8).eval()
    x = torch.rand(2, 1, 20, 17)
    assert net(x).shape == x.shape
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    torch.testing.assert_close(net(x), x)


def test_residual_on_first_channels_only():
    # a 1 -> 8 stage carries the input in channel 0 (the released N3Net stage)
    net = DnCNN(DnCNNConfig(in_channels=1, out_channels=8, depth=3, features=8)).eval()
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.fill_(0.5)
    x = torch.rand(1, 1, 9, 9)
    y = net(x)
    torch.testing.assert_close(y[:, :1], x + 0.5)
    torch.testing.assert_close(y[:, 1:], torch.full((1, 7, 9, 9), 0.5))


def test_no_residual():
    net = DnCNN(depth=2, features=4, residual=False).eval()
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    assert net(torch.rand(1, 1, 8, 8)).abs().max() == 0


def test_receptive_field_radius():
    net = DnCNN(depth=5, features=4).eval()
    x = torch.rand(1, 1, 31, 31)
    x2 = x.clone()
    x2[..., 15, 15] += 1.0
    d = (net(x2) - net(x)).abs()[0, 0] > 0
    rows = d.any(1).nonzero()
    r = net.receptive_radius
    assert r == 5
    assert rows.min() >= 15 - r and rows.max() <= 15 + r


def test_default_is_17_layer_dncnn():
    net = DnCNN()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 17 and len(bns) == 15
    assert all(b.momentum == 0.001 and (b.weight >= 0.025).all() for b in bns)


def test_save_and_load_round_trip(tmp_path):
    net = DnCNN(depth=3, features=4).eval()
    net.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file()
    back = DnCNN.from_pretrained(tmp_path / "m")
    assert back.config == net.config and not back.training
    x = torch.rand(1, 1, 12, 12)
    torch.testing.assert_close(back(x), net(x))


def test_errors():
    with pytest.raises(ValueError, match="depth"):
        DnCNN(depth=1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        DnCNN(depth=2, features=4)(torch.rand(1, 3, 8, 8))
