import json

import pytest
import torch

from knnlab.data import write_image
from knnlab.n3.denoise import Denoiser
from knnlab.n3.dncnn import DnCNN
from knnlab.n3.evaluate import (
    evaluate,
    evaluate_denoiser,
    format_table,
    load_eval_images,
    make_noisy,
    noise_seed,
)


def _folder(tmp_path, n=3, size=(40, 36)):
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "imgs"
    for i in range(n):
        write_image(folder / f"im{i}.png", torch.rand(1, *size, generator=g))
    return folder


def test_noise_is_a_function_of_name_and_seed_only():
    clean = torch.full((1, 16, 16), 0.5)
    a = make_noisy(clean, "a.png", 25)
    torch.testing.assert_close(make_noisy(clean, "a.png", 25), a)
    assert not torch.equal(make_noisy(clean, "b.png", 25), a)
    assert not torch.equal(make_noisy(clean, "a.png", 25, seed=1), a)
    # sigma only scales the same pattern; nothing is clipped
    torch.testing.assert_close(make_noisy(clean, "a.png", 50) - clean, 2 * (a - clean))
    assert noise_seed("a.png", 0) != noise_seed("a.png", 1)
    big = make_noisy(torch.ones(1, 64, 64), "x", 70)
    assert big.max() > 1.0


def test_identity_denoiser_scores_the_noisy_input(tmp_path):
    _, images = load_eval_images(_folder(tmp_path))
    res = evaluate_denoiser(Denoiser("id", 25, lambda t: t), images, 25)
    assert len(res["images"]) == 3
    for row in res["images"]:
        assert row["psnr"] == pytest.approx(row["psnr_noisy"])
    # independent PSNR of the first image
    name, clean = images[0]
    noisy = make_noisy(clean, name, 25)
    ref = 10 * torch.log10(1 / (noisy.double() - clean.double()).pow(2).mean())
    assert res["images"][0]["psnr"] == pytest.approx(float(ref), abs=1e-9)
    assert res["psnr"] == pytest.approx(sum(r["psnr"] for r in res["images"]) / 3)


def test_evaluate_writes_json_and_table(tmp_path):
    folder = _folder(tmp_path)
    net = DnCNN(depth=3, features=4).eval()
    net.save_pretrained(tmp_path / "m")
    net.save_pretrained(tmp_path / "run" / "model")
    out = tmp_path / "r.json"
    res = evaluate([str(tmp_path / "m"), str(tmp_path / "run")], str(folder), 25, limit=2, out=out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["num_images"] == 2 and not res["complete_dataset"]
    assert [e["model"] for e in res["results"]] == ["m", "run"]
    assert res["results"][0]["psnr"] == res["results"][1]["psnr"]  # same noise for every model
    table = format_table(res, per_image=True)
    assert "run" in table and "im1.png" in table
