from __future__ import annotations

import json

import torch

from knnlab.bright.autoencoder import BrightAutoencoder
from knnlab.cli import main
from knnlab.data import write_image


def _folder(tmp_path, n=6):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        write_image(tmp_path / "imgs" / f"{i:02d}.png", torch.rand(1, 30, 34, generator=g))
    return tmp_path / "imgs"


def test_train_resume_and_eval_on_a_folder(tmp_path, capsys) -> None:
    data = _folder(tmp_path)
    out = tmp_path / "run"
    args = ["train", "bright", "--data", str(data), "--config", "tiny", "--steps", "2",
            "--batch-size", "2", "-o", str(out)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    model = BrightAutoencoder.from_pretrained(out / "model")
    assert model.config.image_size == 28
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert logs[-1]["step"] == 2 and "psnr" in logs[-1]
    # resuming a finished run is a no-op that keeps the model
    assert main([*args, "--resume"]) == 0
    res = tmp_path / "eval.json"
    code = main(["eval", "bright", "--model", str(out / "model"), "--data", str(data),
                 "--split", "test", "--out", str(res)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ev = json.loads(res.read_text())
    assert ev["num_images"] == 1 and "grid_usage_per_level" in ev and ev["decoder_gflops"] > 0


def test_user_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["train", "bright", "--data", str(tmp_path / "none"), "-o", str(tmp_path)]) == 2
    assert "not MNIST, CelebA6000 or an existing folder" in capsys.readouterr().err
    assert main(["eval", "bright", "--model", str(tmp_path / "nomodel")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
