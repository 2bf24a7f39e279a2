"""Commands of the metrics package: ``knnlab metrics REAL FAKE`` and ``knnlab train features``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from knnlab.errors import InputError


@click.command(name="features")
@click.option(
    "--data",
    default="CelebA6000",
    show_default=True,
    help="Training data: CelebA6000 (200 identities; the MNIST classifier is trained by "
    "`knnlab train gan --classifier-only`).",
)
@click.option("--steps", default=None, type=int, help="Optimisation steps [default: 1600].")
@click.option("--batch-size", default=None, type=int, help="Batch size [default: 64].")
@click.option("--width", default=None, type=int, help="Channels of the stem [default: 24].")
@click.option("--seed", default=0, show_default=True, help="Seed of the whole run.")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/train_features"),
    show_default=True,
    help="Writes OUT/model/ (config.json, model.safetensors), OUT/summary.json, OUT/log.jsonl "
    "and OUT/checkpoints/.",
)
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in OUT.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", default=1, show_default=True, help="CPU threads.")
def train_features(
    data: str,
    steps: int | None,
    batch_size: int | None,
    width: int | None,
    seed: int,
    out: Path,
    resume: bool,
    device: str,
    threads: int,
) -> None:
    """Train the face-identity feature network ("CelebA-identity features (knnlab)").

    \b
    Trains on the train split of CelebA6000/manifest.tsv (4 800 faces, 200 identities) and reports
    the identity accuracy on the held-out validation + test splits (1 200 faces). The shipped
    weights (knnlab/assets/face_features) are OUT/model of the default run.
    """
    import torch

    from knnlab.devices import resolve_device
    from knnlab.metrics.features.faces import FaceTrainConfig, train_face_features

    if data.lower() != "celeba6000":
        raise InputError(
            f"--data {data!r}: only CelebA6000 is supported; the MNIST classifier is trained by "
            "`knnlab train gan --classifier-only`"
        )
    if threads < 1:
        raise InputError(f"--threads {threads}: must be at least 1")
    torch.set_num_threads(threads)
    kwargs = {
        k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("width", width)) if v
    }
    for k in ("steps", "batch_size", "width"):
        if locals()[k] is not None and locals()[k] < 1:
            raise InputError(f"--{k.replace('_', '-')} {locals()[k]}: must be at least 1")
    cfg = FaceTrainConfig(seed=seed, **kwargs)
    summary = train_face_features(cfg, out, resume=resume, device=resolve_device(device))
    click.echo(
        f"held-out identity accuracy {summary['heldout_accuracy']:.4f} "
        f"({summary['heldout_images']} faces), train {summary['train_accuracy']:.4f}; "
        f"{summary['steps']} steps in {summary['train_seconds']:.0f} s; wrote {out / 'model'}"
    )
    click.echo(json.dumps({"sha256": summary["sha256"]}))


_RESIZE_TEXT = {
    "clean": "PIL bicubic on uint8, antialiased (clean-fid)",
    "legacy": "torch bilinear, not antialiased (pytorch-fid legacy)",
}


@click.command(name="metrics")
@click.argument("real")
@click.argument("fake")
@click.option(
    "--features",
    "features_name",
    default="inception",
    show_default=True,
    help="Feature network: inception, vgg16, mnist, faces, or module:attr (your own).",
)
@click.option(
    "--weights", default=None, help="Weights of the feature network (file, folder or URL)."
)
@click.option("--fid", "do_fid", is_flag=True, help="Fréchet distance.")
@click.option("--kid", "do_kid", is_flag=True, help="Kernel distance (mean ± std over subsets).")
@click.option("--prdc", "do_prdc", is_flag=True, help="Precision, recall, density, coverage.")
@click.option(
    "--novelty", "do_novelty", is_flag=True, help="Memorization rate of FAKE w.r.t. REAL."
)
@click.option("--hubness", "do_hubness", is_flag=True, help="Hubness of each set's kNN graph.")
@click.option(
    "--resize",
    type=click.Choice(["clean", "legacy"]),
    default="clean",
    show_default=True,
    help="clean: PIL bicubic on uint8 (clean-fid); legacy: torch bilinear (pytorch-fid).",
)
@click.option("--limit", type=int, default=None, help="Use the first N images of each set.")
@click.option("--batch-size", default=100, show_default=True, help="Images per batch.")
@click.option("--k-pr", default=3, show_default=True, help="k of precision/recall.")
@click.option("--k-dc", default=5, show_default=True, help="k of density/coverage.")
@click.option("--k-hub", default=10, show_default=True, help="k of the hubness kNN graph.")
@click.option("--kid-subsets", default=100, show_default=True, help="KID subsets.")
@click.option("--kid-subset-size", default=1000, show_default=True, help="KID subset size.")
@click.option("--seed", default=0, show_default=True, help="Seed of the KID subsets.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the results and the protocol to this JSON file.")  # fmt: skip
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Feature cache folder [default: $KNNLAB_CACHE/features, else ~/.cache/knnlab/features].",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached features.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def metrics(
    real: str,
    fake: str,
    features_name: str,
    weights: str | None,
    do_fid: bool,
    do_kid: bool,
    do_prdc: bool,
    do_novelty: bool,
    do_hubness: bool,
    resize: str,
    limit: int | None,
    batch_size: int,
    k_pr: int,
    k_dc: int,
    k_hub: int,
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
    json_out: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    device: str,
) -> None:
    """Generative metrics between REAL and FAKE.

    \b
    REAL and FAKE are image folders, named data sets (`knnlab data list`; MNIST is its 60 000
    training digits, MNIST:test the 10 000 test digits) or .npz feature files (array `features`,
    (N, d)). Without a metric flag: --fid --kid --prdc. Features are computed in batches and
    cached as .npz named after their protocol (network, resolution, resize, count).
    """
    from knnlab.metrics.run import MetricsConfig, run_metrics

    cfg = MetricsConfig(
        features=features_name,
        weights=weights,
        fid=do_fid,
        kid=do_kid,
        prdc=do_prdc,
        novelty=do_novelty,
        hubness=do_hubness,
        resize=resize,
        limit=limit,
        batch_size=batch_size,
        k_pr=k_pr,
        k_dc=k_dc,
        k_hub=k_hub,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        seed=seed,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        device=device,
    )
    result = run_metrics(real, fake, cfg)
    for line in format_result(result):
        click.echo(line)
    if json_out is not None:
        from knnlab.io_utils import atomic_write_json

        atomic_write_json(json_out, result)
        click.echo(f"wrote {json_out}")


def format_result(result: dict) -> list[str]:
    """The lines the command prints: the protocol, then one metric a line."""
    p = result["protocol"]
    head = f"features: {p['label']}"
    if p.get("resize"):
        res = f"{p['resolution']} px" if p.get("resolution") else "native size"
        head += f"; input {res}, resize {p['resize']}: {_RESIZE_TEXT.get(p['resize'], '')}"
    lines = [head]
    for side in ("real", "fake"):
        s = result[side]
        how = {"cache": f"cached {s.get('cache')}", "npz": "from .npz"}.get(
            s["from"], f"computed, cached {s['cache']}" if s.get("cache") else "computed"
        )
        lines.append(f"{side}: {s['source']} ({s['count']} x {s['dim']}; {how})")
    m = result["metrics"]
    for name in ("fid", "precision", "recall", "density", "coverage"):
        if name in m:
            lines.append(f"{name:<12}{m[name]:.6g}")
    if "kid" in m:
        lines.append(f"{'kid':<12}{m['kid']:.6g} +- {m['kid_std']:.2g}")
    if "memorization_rate" in m:
        lines.append(
            f"{'memorized':<12}{m['memorization_rate']:.6g} ({m['memorization_criterion']})"
        )
    for side in ("real", "fake"):
        h = m.get(f"hubness_{side}")
        if h:
            lines.append(
                f"hubness {side} (k={h['k']}): skewness {h['k_skewness']:.4g}, hub occurrence "
                f"{h['hub_occurrence']:.4g}, antihub occurrence {h['antihub_occurrence']:.4g}, "
                f"robinhood {h['robinhood']:.4g}"
            )
    return lines
