import json

import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3 import N3Block
from knnlab.n3.n3net import N3Net
from knnlab.n3.n3net_sr import N3NetSR


def _small(**kw):
    return N3NetSR(features=8, embed_features=8, **kw)


def test_architecture_of_the_paper():
    net = N3NetSR()
    assert len(net.stages) == 3 and len(net.n3blocks) == 2
    for stage in net.stages:
        convs = [m for m in stage.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 7  # VDSR of depth 7
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in stage.modules())
    assert all(isinstance(b, N3Block) and b.k == 7 for b in net.n3blocks)
    assert net.stages[0].config.in_channels == 1 and net.stages[-1].config.out_channels == 1


def test_shape_and_identity_start():
    torch.manual_seed(0)
    net = _small().eval()
    x = torch.rand(2, 1, 80, 90)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x)  # residual outputs start at zero: bicubic in, bicubic out


def test_too_small_image_is_one_clear_error():
    with pytest.raises(InputError, match="N3NetSR needs images of at least 76"):
        _small()(torch.rand(1, 1, 60, 100))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(2)
    net = _small()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.eval().save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "N3NetSR"
    back = N3NetSR.from_pretrained(tmp_path / "m")
    assert back.config == net.config
    x = torch.rand(1, 1, 80, 80)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    with pytest.raises(InputError, match="holds a N3NetSR"):
        N3Net.from_pretrained(tmp_path / "m")


def test_denoising_n3net_is_unchanged():
    net = N3Net()
    assert net.config.stage_batch_norm is True and net.config.stage_depth == 6
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.stages[0].modules())
