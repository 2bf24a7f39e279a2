import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.cnnet import CNNet, CNNetConfig, ContextNorm, N3CNNet, N3CNNetConfig, context_norm


def test_context_norm_matches_numpy():
    x = (
        torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
        + 1
    )
    a = x.numpy()
    ref = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(context_norm(x).numpy(), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ContextNorm(1e-3)(x), context_norm(x))
    # non-contiguous input (a transposed view) gives the same result
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(context_norm(xt), context_norm(x))


def test_context_norm_gradcheck():
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(context_norm, (x,))


def _small_n3():
    return N3CNNet(N3CNNetConfig(channels=16, depth=4, k=3, embed_dim=4, chunk_elements=64))


@pytest.mark.parametrize("make", [lambda: CNNet(CNNetConfig(channels=16, depth=2)), _small_n3])
def test_shape_and_permutation_equivariance(make):
    torch.manual_seed(0)
    net = make().eval()
    x = torch.randn(2, 30, 4)
    y = net(x)
    assert y.shape == (2, 30)
    perm = torch.randperm(30)
    torch.testing.assert_close(net(x[:, perm]), y[:, perm], rtol=1e-4, atol=1e-5)


def test_released_sizes():
    net = N3CNNet()
    assert net.blocks_before[-1].body[0].out_channels == 32  # 128 / (k + 1)
    assert net.blocks_after[0].body[0].in_channels == 128
    assert net.embedding[-1].body[-1].out_channels == 32
    assert net.temperature[-1].body[-1].out_channels == 1
    assert len(CNNet().blocks) == 12


@pytest.mark.parametrize("make", [lambda: CNNet(CNNetConfig(channels=8, depth=2)), _small_n3])
def test_save_load_roundtrip(tmp_path, make):
    torch.manual_seed(1)
    net = make()
    net.train()
    net(torch.randn(2, 20, 4))  # move the BatchNorm statistics
    net.eval()
    net.save_pretrained(tmp_path / "m")
    back = type(net).from_pretrained(tmp_path / "m")
    assert back.config == net.config
    x = torch.randn(1, 25, 4)
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_bad_input_shape():
    with pytest.raises(InputError, match=r"\(B, N, 4\)"):
        CNNet(CNNetConfig(channels=8, depth=1))(torch.randn(1, 10, 3))
