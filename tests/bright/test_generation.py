"""The generation experiment: what the LDMs are trained on, its settings, and a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch

from knnlab.bright.generation import GenerationConfig, encode_latents, run_generation_experiment
from knnlab.bright.training import build_autoencoder, reconstruct
from knnlab.cli import main
from knnlab.errors import InputError


@pytest.mark.parametrize("baseline", [None, "kl", "vq"])
def test_latents_are_what_the_decoder_reads(baseline) -> None:
    """Decoding the encoded latents gives the eval-mode reconstruction of the images."""
    torch.manual_seed(0)
    model = build_autoencoder("tiny", baseline, seed=1).eval()
    x = torch.rand(3, 1, 28, 28)
    z = encode_latents(model, x, batch_size=2)
    with torch.no_grad():
        recon, _ = reconstruct(model, x)
        decoded = model.decode(z)
    assert z.shape[0] == 3 and z.shape[2:] == (8, 8)
    torch.testing.assert_close(decoded, recon, rtol=1e-5, atol=1e-5)
    if baseline is None:  # key codes: in (0, 1), no training noise in eval mode
        assert 0 < z.min() and z.max() < 1
        torch.testing.assert_close(encode_latents(model, x), z)


def test_bad_settings() -> None:
    with pytest.raises(InputError, match="runs on MNIST or CelebA6000"):
        GenerationConfig(data="FFHQ")
    # the autoencoder budget follows `knnlab experiment bright` per data set
    assert GenerationConfig(data="CelebA6000").ae_steps == 600
    assert GenerationConfig().ae_steps == 600
    with pytest.raises(InputError, match="--methods"):
        GenerationConfig(methods=("bright", "gan"))
    with pytest.raises(InputError, match="--code-pool"):
        GenerationConfig(num_samples=100, code_pool=50)
    with pytest.raises(InputError, match="psi"):
        GenerationConfig(psi=1.5)


def test_cli_rejects_bad_methods(tmp_path, capsys) -> None:
    code = main(["experiment", "bright-generation", "--methods", "bright,gan", "-o", str(tmp_path)])
    assert code == 2
    assert "--methods" in capsys.readouterr().err
    code = main(["experiment", "bright-generation", "--data", "CelebA6000", "--save-assets",
                 "-o", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--save-assets" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_writes_every_table_and_reuses_its_models(tmp_path, shared_datasets) -> None:
    cfg = GenerationConfig(
        methods=("bright", "kl"), ae_steps=2, ae_batch_size=4, code_images=64, ldm_steps=2,
        ldm_batch_size=8, num_samples=16, ddim_steps=2, real_images=16, hub_pool=100,
        hub_share=0.2, code_pool=32,
    )  # fmt: skip
    res = run_generation_experiment(cfg, tmp_path / "runs")
    gen = res.table("generation").rows
    assert [r["method"] for r in gen] == [
        "BRIGHT-LDM", "KL-LDM", "built-in MNIST GAN", "real training images (reference)",
    ]  # fmt: skip
    assert gen[0]["code shape"] == "8×8×4"
    assert all(0 <= r["precision"] <= 1 and 0 <= r["coverage"] <= 1 for r in gen)
    hub = res.table("hubness").rows
    assert len(hub) == 5 and hub[0]["FID"] == gen[0]["FID"]  # random x_T is the table's row
    assert hub[1]["acceptance"] == pytest.approx(0.2)
    assert {f.file for f in res.figures} == {
        "samples.png", "novelty_features.png", "novelty_pixels.png", "hub_bands.png",
    }  # fmt: skip
    pipe_settings = tmp_path / "runs" / "pipeline-bright" / "settings.json"
    before = json.loads(pipe_settings.read_text())
    stamp = (tmp_path / "runs" / "pipeline-bright" / "unet").stat().st_mtime_ns
    again = run_generation_experiment(cfg, tmp_path / "runs")  # same settings: nothing retrained
    assert (tmp_path / "runs" / "pipeline-bright" / "unet").stat().st_mtime_ns == stamp
    assert json.loads(pipe_settings.read_text()) == before
    assert again.table("generation").rows[0]["FID"] == gen[0]["FID"]


def test_cli_checks_the_output_folder_first(capsys) -> None:
    assert main(["experiment", "bright-generation", "-o", "/proc/no-such-dir"]) == 2
    assert "cannot write there" in capsys.readouterr().err
