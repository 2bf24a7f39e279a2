"""Generator adapters and load_generator: modules, callables, folders, module:attr factories,
StyleGAN-style split networks, and pickles refused unless trusted."""

from __future__ import annotations

import pickle

import pytest
import torch

from knnlab.cli import main
from knnlab.errors import DataNotFoundError, InputError
from knnlab.hubness import generators
from knnlab.hubness.gan import BUILTIN_GAN_DIR, GANConfig, Generator
from knnlab.hubness.generators import (
    GENERATORS,
    GeneratorAdapter,
    NamedGenerator,
    as_generator,
    load_generator,
    register_generator,
)


def small() -> Generator:
    torch.manual_seed(0)
    return Generator(
        GANConfig(latent_dim=8, w_dim=12, mapping_layers=2, g_channels=8, d_channels=4)
    ).eval()


def test_module_with_mapping_and_synthesis() -> None:
    ad = as_generator(small())
    assert ad.latent_dim == 8 and ad.has_w
    z = torch.randn(5, 8)
    x = ad.generate(z, batch_size=2)
    assert x.shape == (5, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    torch.testing.assert_close(ad.decode(ad.mapping(z), "w"), x)
    torch.testing.assert_close(x, (small()(z) + 1) / 2)


def test_plain_callable_needs_latent_dim() -> None:
    f = lambda z: torch.tanh(z[:, :4].reshape(-1, 1, 2, 2))  # noqa: E731
    with pytest.raises(InputError, match="latent_dim"):
        as_generator(f)
    ad = as_generator(f, latent_dim=4, output_range=(-1.0, 1.0))
    assert not ad.has_w
    x = ad.generate(torch.zeros(3, 4))
    torch.testing.assert_close(x, torch.full((3, 1, 2, 2), 0.5))
    with pytest.raises(InputError, match="no mapping"):
        ad.mapping(torch.zeros(1, 4))
    with pytest.raises(InputError, match=r"\(B, 4\)"):
        ad.generate(torch.zeros(3, 5))


class FakeStyleGAN(torch.nn.Module):
    """The interface of a StyleGAN2-ADA G: mapping(z, c) -> (B, num_ws, w_dim), synthesis(ws)."""

    z_dim, c_dim, w_dim, num_ws = 6, 0, 5, 3

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 5)
        self.out = torch.nn.Linear(5 * 3, 16)
        self.mapping = self._mapping
        self.synthesis = self._synthesis

    def _mapping(self, z, c, truncation_psi=1.0):
        assert c.shape == (z.shape[0], 0)
        return self.lin(z).unsqueeze(1).repeat(1, self.num_ws, 1)

    def _synthesis(self, ws, noise_mode="random"):
        assert noise_mode == "const" and ws.shape[1:] == (3, 5)
        return torch.tanh(self.out(ws.flatten(1))).view(-1, 1, 4, 4)


def test_stylegan_like_generator() -> None:
    G = FakeStyleGAN()
    ad = as_generator(G)
    assert ad.latent_dim == 6 and ad.has_w
    z = torch.randn(4, 6)
    w = ad.mapping(z)
    assert w.shape == (4, 5)
    torch.testing.assert_close(ad.generate(z), ad.synthesis(w))


def test_load_from_folder_and_factory(tmp_path) -> None:
    g = small()
    g.save_pretrained(tmp_path / "g")
    ad = load_generator(str(tmp_path / "g"))
    z = torch.randn(2, 8)
    torch.testing.assert_close(ad.generate(z), (g(z) + 1) / 2)
    ad2 = load_generator("knnlab.hubness.gan:Generator")  # a class is a factory
    assert isinstance(ad2, GeneratorAdapter) and ad2.latent_dim == 64


def test_bad_specs() -> None:
    with pytest.raises(InputError, match="module:attribute"):
        load_generator("no_such_thing")
    with pytest.raises(InputError, match="cannot import"):
        load_generator("no_such_module_xyz:G")
    with pytest.raises(InputError, match="no attribute"):
        load_generator("knnlab.hubness.gan:NoSuchGenerator")
    with pytest.raises(DataNotFoundError):
        load_generator("/nonexistent/network.pkl", trust_pickle=True)


def test_pickle_refused_unless_trusted(tmp_path) -> None:
    path = tmp_path / "network-snapshot.pkl"
    g = small()
    with open(path, "wb") as f:
        pickle.dump({"G_ema": g, "D": None}, f)
    with pytest.raises(InputError, match="arbitrary code"):
        load_generator(str(path))
    ad = load_generator(str(path), trust_pickle=True)
    z = torch.randn(2, 8)
    torch.testing.assert_close(ad.generate(z), (g(z) + 1) / 2)


def test_cli_refuses_pickle_without_flag(tmp_path, capsys) -> None:
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps({"G_ema": None}))
    rc = main(["experiment", "hubness", "--generator", str(path), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(
    not (BUILTIN_GAN_DIR / "model.safetensors").is_file(), reason="built-in weights not shipped"
)
def test_builtin() -> None:
    ad = load_generator("builtin")
    assert ad.latent_dim == 64 and ad.has_w and ad.w_avg is not None
    assert ad.generate(torch.randn(2, 64)).shape == (2, 1, 28, 28)


def test_named_generators_load_through_the_registry() -> None:
    g = small()
    register_generator(NamedGenerator("toy-test", "toy GAN", lambda device: g, "mnist"))
    try:
        ad = load_generator("toy-test")
        assert ad.name == "toy GAN" and ad.latent_dim == 8
        z = torch.randn(3, 8)
        torch.testing.assert_close(ad.generate(z), (g(z) + 1) / 2)
    finally:
        GENERATORS.pop("toy-test")
    assert {"builtin", "celeba64"} <= set(GENERATORS)
    with pytest.raises(InputError, match="builtin, celeba64"):
        load_generator("no_such_thing")


def test_celeba64_without_weights_says_how_to_get_them(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(generators, "CELEBA64_GAN_DIR", tmp_path / "none")
    with pytest.raises(DataNotFoundError, match=r"'celeba64'.*train gan --data CelebA6000"):
        load_generator("celeba64")
    rc = main(["experiment", "hubness", "--generator", "celeba64", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: generator 'celeba64'") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
