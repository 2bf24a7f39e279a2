"""``knnlab denoise --noise real`` and ``knnlab eval denoise`` on real/Poisson–Gaussian noise: runs,
and every user mistake is one line and exit code 2."""

from __future__ import annotations

import pytest
import torch

from knnlab.cli import main
from knnlab.data import read_image, write_image
from knnlab.n3 import DnCNN
from knnlab.n3.real.models import dncnn_real_config
from knnlab.n3.real.nlf import estimate_nlf
from knnlab.n3.real.noise import noise_level_input


@pytest.fixture
def real_model(tmp_path):
    torch.manual_seed(0)
    net = DnCNN(dncnn_real_config("cpu")).eval()
    net.save_pretrained(tmp_path / "model")
    return net, tmp_path / "model"


def test_denoise_real_blind_per_channel(tmp_path, real_model, capsys) -> None:
    net, folder = real_model
    img = torch.rand(3, 96, 100, generator=torch.Generator().manual_seed(1))
    write_image(tmp_path / "in.png", img)
    out = tmp_path / "out.png"
    code = main(["denoise", str(tmp_path / "in.png"), "-o", str(out), "--noise", "real",
                 "--model", str(folder), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    x = read_image(tmp_path / "in.png")
    got = read_image(out)
    assert got.shape == (3, 96, 100)
    # reference: each channel through the model with its own estimate, computed here
    ref = []
    with torch.no_grad():
        for c in range(3):
            f = estimate_nlf(x[c], scale=2)
            a = min(max(f.a, 1e-4), 1e-1)
            b = min(max(f.b, 10**-7.6), 10**-2.0)
            ref.append(net(noise_level_input(x[c][None, None], a, b))[0, 0])
    ref_t = torch.stack(ref).clamp(0, 1)
    assert (got - ref_t).abs().max() <= 1 / 255 + 1e-5  # 8-bit rounding only


def test_denoise_real_with_given_nlf(tmp_path, real_model, capsys) -> None:
    net, folder = real_model
    write_image(tmp_path / "in.png", torch.rand(1, 80, 80))
    code = main(["denoise", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--noise",
                 "real", "--model", str(folder), "--nlf", "0.01,1e-4"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    x = read_image(tmp_path / "in.png")
    with torch.no_grad():
        ref = net(noise_level_input(x[None], 0.01, 1e-4))[0].clamp(0, 1)
    assert (read_image(tmp_path / "o.png") - ref).abs().max() <= 1 / 255 + 1e-5


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["denoise", "{img}", "-o", "{tmp}/o.png"], "--sigma is required"),
        (["denoise", "{img}", "-o", "{tmp}/o.png", "--noise", "real", "--model", "{gray}"],
         "takes 1 input channels"),
        (["denoise", "{img}", "-o", "{tmp}/o.png", "--noise", "real", "--model", "{tmp}/none"],
         "not a known model name"),
        (["denoise", "{img}", "-o", "{tmp}/o.png", "--noise", "real", "--model", "{real}",
          "--nlf", "0.01"], "--nlf '0.01'"),
        (["denoise", "{img}", "-o", "{tmp}/o.png", "--noise", "real", "--model", "{real}",
          "--nlf", "-1,0"], "finite and >= 0"),
        (["eval", "denoise", "--dataset", "{tmp}", "--model", "bm3d"], "--sigma is required"),
        (["eval", "denoise", "--dataset", "{tmp}/nowhere", "--nlf", "0.01,1e-4",
          "--model", "bm3d"], "not a named data set"),
        (["eval", "denoise", "--dataset", "{tmp}", "--model", "{real}"], "no \\*_real images"),
        (["experiment", "real-noise", "--steps", "0"], "--steps 0"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line(tmp_path, real_model, capsys, args, match) -> None:
    import re

    _, folder = real_model
    DnCNN(depth=3, features=4).save_pretrained(tmp_path / "gray")
    write_image(tmp_path / "img.png", torch.rand(3, 96, 96))
    subst = {"{img}": str(tmp_path / "img.png"), "{tmp}": str(tmp_path), "{gray}": str(tmp_path / "gray"),
             "{real}": str(folder)}  # fmt: skip
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(match, err), err
