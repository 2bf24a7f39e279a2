import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.n3net import N3Net, N3NetConfig

TINY = dict(stage_depth=2, features=8, embed_features=8, k=2)


def test_released_architecture():
    net = N3Net()
    assert len(net.stages) == 3 and len(net.n3blocks) == 2
    assert net.stages[0].config.in_channels == 1 and net.stages[0].config.out_channels == 8
    assert net.stages[1].config.in_channels == 64  # (k + 1) * 8 from the N3 block
    assert net.stages[2].config.out_channels == 1
    assert all(s.config.depth == 6 and s.config.features == 64 for s in net.stages)
    assert net.min_size == 76


def test_forward_shape_and_backward():
    torch.manual_seed(0)
    net = N3Net(N3NetConfig(**{**TINY, "k": 1}))
    x = torch.rand(1, 1, 76, 81, requires_grad=True)
    y = net(x)
    assert y.shape == (1, 1, 76, 81)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_too_small_is_a_clear_error():
    net = N3Net(N3NetConfig(**TINY)).eval()
    with pytest.raises(InputError, match="at least 76"):
        net(torch.rand(1, 1, 75, 100))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = N3Net(N3NetConfig(**{**TINY, "k": 1})).eval()
    net.save_pretrained(tmp_path)
    back = N3Net.from_pretrained(tmp_path)
    assert back.config == net.config
    x = torch.rand(1, 1, 76, 76)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))


def _released_forward():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("released_n3net.py")
    spec = importlib.util.spec_from_file_location("released_n3net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.released_forward


def _psnr(a, b):
    return float(-10 * torch.log10((a - b).pow(2).mean()))


@pytest.mark.slow
@pytest.mark.data
def test_official_checkpoint_matches_released_forward_and_denoises(shared_weights, shared_datasets):
    """The published sigma=25 net, on a Set12 crop: equals an independent gather implementation of
    the released forward, and removes noise."""
    released_forward = _released_forward()
    from knnlab.data import read_image
    from knnlab.n3.pretrained import load_official_state_dict

    net = N3Net.from_pretrained("n3net-official-sigma25")
    clean = read_image(shared_datasets / "Set12" / "01.png", channels=1)[None, :, 60:156, 70:158]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(noisy)
    ref = released_forward(load_official_state_dict(25), noisy)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=0)
    assert _psnr(out, clean) > _psnr(noisy, clean) + 7.0
