"""The hubness experiment: shared-pool hub collection equals HubSampler, the table's shape checks,
and an end-to-end run on the built-in generator returning an ExperimentResult that
write_experiment writes and the report renders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from knnlab.hubness import HubSampler
from knnlab.hubness.experiment import (
    HubnessExperimentConfig,
    collect_hubs,
    format_table,
    run_experiment,
    shape_checks,
)
from knnlab.hubness.gan import BUILTIN_GAN_DIR
from knnlab.metrics.features.mnist import BUILTIN_CLASSIFIER_DIR
from knnlab.report import Report
from knnlab.results import read_experiment, write_experiment

shipped = pytest.mark.skipif(
    not (BUILTIN_GAN_DIR / "model.safetensors").is_file()
    or not (BUILTIN_CLASSIFIER_DIR / "model.safetensors").is_file(),
    reason="built-in weights not shipped",
)


@pytest.mark.parametrize("space", ["z", "w"])
def test_collect_hubs_equals_independent_hub_samplers(space: str) -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 6)
    mapping = (lambda z: torch.tanh(lin(z))) if space == "w" else None
    kw = dict(k=5, pool_size=400, space=space, mapping=mapping, seed=7)
    got = collect_hubs(HubSampler(8, threshold=8, **kw), (8, 11), n=30)
    for t in (8, 11):
        s = HubSampler(8, threshold=t, **kw)
        lat = s.sample(30)
        torch.testing.assert_close(got[t]["latents"], lat)
        np.testing.assert_array_equal(got[t]["hub_values"], s.stats["hub_values"])
        assert got[t]["acceptance_rate"] == pytest.approx(s.stats["acceptance_rate"])
        assert got[t]["pools_drawn"] == s.stats["pools_drawn"]
        assert (got[t]["hub_values"] >= t).all()


def test_shape_checks() -> None:
    rows = [
        {"method": "Hubs(20)", "fid": 1.0, "precision": 0.9, "recall": 0.3},
        {"method": "Truncated(0.7)", "fid": 2.0, "precision": 0.8, "recall": 0.2},
        {"method": "Truncated(0.3)", "fid": 5.0, "precision": 0.9, "recall": 0.01},
        {"method": "Random", "fid": 3.0, "precision": 0.7, "recall": 0.4},
    ]
    assert all(shape_checks(rows).values())
    rows[0]["fid"] = 4.0
    assert not shape_checks(rows)["best_hubs_fid_below_random"]


def test_config_validation() -> None:
    from knnlab.errors import InputError

    with pytest.raises(InputError, match="thresholds"):
        HubnessExperimentConfig(thresholds=(10**6,)).validate()
    with pytest.raises(InputError, match="real_images='cifar'"):
        HubnessExperimentConfig(real_images="cifar").validate()


class _Stop(Exception):
    pass


def _picked(monkeypatch, cfg: HubnessExperimentConfig, generator=None) -> tuple[str, str]:
    """(real image set, feature network) that run_experiment resolves, stopping before data."""
    import knnlab.hubness.experiment as experiment

    seen: dict[str, str] = {}
    real = experiment._real_images

    def spy_real(*args, **kwargs):
        out = real(*args, **kwargs)
        seen["real"] = out.name
        return out

    def spy_features(name, weights, device):
        seen["features"] = name
        raise _Stop

    monkeypatch.setattr(experiment, "_real_images", spy_real)
    monkeypatch.setattr(experiment, "_feature_net", spy_features)
    with pytest.raises(_Stop):
        run_experiment(cfg, generator=generator)
    return seen["real"], seen["features"]


def test_real_images_and_features_follow_the_generator(monkeypatch) -> None:
    from knnlab.errors import InputError
    from knnlab.hubness import as_generator

    def faces(z: torch.Tensor) -> torch.Tensor:  # (B, 3, 64, 64) in [-1, 1]
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 64, 64))

    def digits(z: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28)
        return torch.tanh(z[:, :1, None, None].expand(-1, 1, 28, 28))

    def other(z: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32): no registered set
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 32, 32))

    cfg = HubnessExperimentConfig(device="cpu")
    face_gen = as_generator(faces, latent_dim=8)
    assert _picked(monkeypatch, cfg, face_gen) == ("celeba64", "faces")
    assert _picked(monkeypatch, cfg, as_generator(digits, latent_dim=8)) == ("mnist", "mnist")
    explicit = HubnessExperimentConfig(device="cpu", real_images="mnist", features="vgg16")
    assert _picked(monkeypatch, explicit, as_generator(digits, latent_dim=8)) == ("mnist", "vgg16")
    with pytest.raises(InputError, match=r"3x32x32.*--real-images"):
        _picked(monkeypatch, cfg, as_generator(other, latent_dim=8))
    wrong = HubnessExperimentConfig(device="cpu", real_images="celeba64")
    with pytest.raises(InputError, match=r"'celeba64' holds 3x64x64 images.*makes 1x28x28"):
        _picked(monkeypatch, wrong, as_generator(digits, latent_dim=8))


@shipped
def test_unknown_feature_network_is_refused_by_the_lookup() -> None:
    from knnlab.errors import InputError

    # features resolve through knnlab.metrics.features.get_extractor, before any data is read
    with pytest.raises(InputError, match="--features 'clip': choose"):
        run_experiment(HubnessExperimentConfig(features="clip", device="cpu"))


@shipped
@pytest.mark.slow
def test_end_to_end_on_the_builtin_generator(tmp_path, shared_datasets) -> None:
    cfg = HubnessExperimentConfig(
        n=120,
        pool_size=600,
        thresholds=(10, 14),
        n_real=400,
        n_train=1000,
        n_novelty=100,
        kid_subsets=5,
        device="cpu",
    )
    res = run_experiment(cfg)
    rows = res.table("main").rows
    methods = [r["method"] for r in rows]
    assert methods == ["Hubs(14)", "Hubs(10)", "Truncated(0.7)", "Truncated(0.3)", "Random"]
    for r in rows:
        assert r["n"] == 120
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and r["fid"] >= 0
    assert res.protocol["features"] == "MNIST-classifier features"
    assert res.protocol["real_images"] == "mnist" and res.protocol["reference"].startswith("400 ")
    assert rows[0]["acceptance_rate"] < rows[1]["acceptance_rate"] < 1
    assert {"real_features", "hub_search", "generate_and_metrics", "total"} <= set(res.timings)
    assert res.machine["torch"] == torch.__version__
    text = format_table(res)
    assert "MNIST-classifier features" in text and "Hubs(14)" in text
    write_experiment(tmp_path / "out", res)
    for name in (
        "samples_by_hub_value",
        "metrics_vs_threshold",
        "hub_value_vs_distance",
        "novelty",
        "samples",
    ):
        png = tmp_path / "out" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "samples_hubs_14.png").is_file()
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["experiment"] == "hubness"
    assert data["tables"][0]["rows"][0]["method"] == "Hubs(14)"
    back = read_experiment(tmp_path / "out")
    assert back.table("main").rows == json.loads(json.dumps(rows))
    report = Report("t")
    report.add_experiment(tmp_path / "out")
    html = report.to_html()
    assert "<th>FID (MNIST-classifier features)</th>" in html and "Liang et al." in html
    assert html.count('src="data:image/png;base64,') == len(res.figures) == 5
    assert not list(tmp_path.glob(".out.*"))  # the temp folder is gone


@shipped
@pytest.mark.slow
def test_cli_writes_results_figures_and_report(tmp_path, shared_datasets, capsys) -> None:
    from knnlab.cli import main

    out = tmp_path / "hub"
    args = ["experiment", "hubness", "--quick", "--n", "40", "--pool-size", "300"]
    assert main([*args, "--thresholds", "8", "--device", "cpu", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Hubs(8)" in printed and "MNIST-classifier features" in printed
    res = read_experiment(out)
    assert res.table("main").rows[0]["method"] == "Hubs(8)"
    assert res.protocol["n"] == 40 and res.protocol["pool_size"] == 300
    for f in res.figures:
        assert (out / f.file).is_file()
    html = (out / "report.html").read_text()
    assert "Hubness priors for latent sampling" in html and "Protocol" in html
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".knnlab-run", "results.json", *json.loads((out / "results.json").read_text())["files"]]
    )


@pytest.mark.slow
def test_face_domain_runs_end_to_end_with_pluggable_parts(tmp_path, shared_datasets, monkeypatch):
    """A 3x64x64 generator is measured against CelebA6000 faces with a feature network that the
    lookup returns, without the experiment naming either (a stand-in for celeba64 + faces)."""
    import knnlab.hubness.experiment as experiment
    from knnlab.hubness import as_generator

    torch.manual_seed(0)
    synth = torch.nn.Sequential(torch.nn.Linear(16, 3 * 8 * 8), torch.nn.Tanh())

    class Faces(torch.nn.Module):
        latent_dim = 16

        def __init__(self) -> None:
            super().__init__()
            self.mapping = torch.nn.Linear(16, 16)
            self.synth = synth

        def synthesis(self, w: torch.Tensor) -> torch.Tensor:  # (B, 3, 64, 64) in [-1, 1]
            x = self.synth(w).view(-1, 3, 8, 8)
            return torch.nn.functional.interpolate(x, size=64, mode="nearest")

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.synthesis(self.mapping(z))

    proj = torch.randn(3 * 64 * 64, 32, generator=torch.Generator().manual_seed(1))

    class Pooled(torch.nn.Module):
        label = "random-projection features (test)"

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ proj

    asked: list[str] = []

    def lookup(name: str, device: object = "cpu", weights: object = None) -> torch.nn.Module:
        asked.append(name)
        return Pooled()

    monkeypatch.setattr("knnlab.metrics.features.get_extractor", lookup)
    cfg = HubnessExperimentConfig(
        n=60,
        pool_size=300,
        thresholds=(8,),
        n_real=200,
        n_train=300,
        n_novelty=60,
        kid_subsets=3,
        device="cpu",
    )
    res = experiment.run_experiment(cfg, generator=as_generator(Faces(), name="toy faces"))
    assert asked == ["faces"]  # auto: the CelebA set's feature network
    assert res.protocol["real_images"] == "celeba64"
    assert res.protocol["reference"] == "200 CelebA6000 faces (64x64)"
    assert res.protocol["features"] == "random-projection features (test)"
    rows = res.table("main").rows
    assert [r["method"] for r in rows] == ["Hubs(8)", "Truncated(0.7)", "Truncated(0.3)", "Random"]
    assert "class_entropy" not in rows[0]  # digit balance only with the MNIST classifier
    write_experiment(tmp_path / "faces", res)
    from PIL import Image

    grid = Image.open(tmp_path / "faces" / "samples_hubs_8.png")
    assert grid.mode == "RGB"
    assert {f.file for f in res.figures} >= {"novelty.png", "samples_by_hub_value.png"}
