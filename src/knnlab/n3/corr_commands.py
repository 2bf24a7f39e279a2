"""Commands of the correspondence task: ``knnlab train corr``, ``knnlab eval corr``,
``knnlab experiment corr`` and ``knnlab match``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from knnlab.errors import InputError
from knnlab.n3.commands import _device  # the option helpers of the n3 commands

__all__ = ["eval_corr", "experiment_corr", "match", "train_corr"]


@click.command(name="corr")
@click.option(
    "--model", "arch", type=click.Choice(["cnnet", "n3cnnet"]), default="n3cnnet",
    show_default=True, help="Architecture to train.",
)  # fmt: skip
@click.option(
    "--data", default="synthetic", show_default=True,
    help="synthetic (seeded generator), a scene name (reichstag, lund_door) or a scene folder.",
)  # fmt: skip
@click.option("--budget-steps", type=int, help="Stop after this many optimiser steps.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Pairs per step.")
@click.option(
    "--num-matches", type=int, default=2000, show_default=True, help="Matches per training pair."
)
@click.option(
    "--essential-after", type=int,
    help="Add the essential-matrix loss from this step on [20000, or half of a shorter run].",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(path_type=Path),
    help="Run folder (checkpoints, log, model/). Default: runs/corr-<model>.",
)  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def train_corr(
    arch: str,
    data: str,
    budget_steps: int | None,
    batch_size: int,
    num_matches: int,
    essential_after: int | None,
    out: Path | None,
    resume: bool,
    seed: int,
    device: str,
) -> None:
    """Train CNNet or N3CNNet to classify putative matches (Adam lr 1e-3, class-balanced logistic
    loss, plus 0.1 × the essential-matrix loss after --essential-after steps)."""
    from knnlab.n3.corr_training import CorrTrainConfig
    from knnlab.n3.corr_training import train_corr as run

    cfg = CorrTrainConfig(
        model=arch, data=data, budget_steps=budget_steps, batch_size=batch_size,
        num_matches=num_matches, essential_after=essential_after, seed=seed,
    )  # fmt: skip
    out = out or Path(f"runs/corr-{arch}")
    summary = run(cfg, out, resume=resume, device=_device(device))
    click.echo(
        f"trained {arch} for {summary['steps']} steps in {summary['seconds']:.0f} s -> {out}/model"
    )
    if "val_synthetic" in summary:
        v = summary["val_synthetic"]
        click.echo(
            f"held-out synthetic pairs: precision {v['precision']:.3f} recall {v['recall']:.3f} "
            f"F1 {v['f1']:.3f}"
        )


def _format_scores(rows: list[dict]) -> str:
    head = f"{'scene':<10} {'method':<22} {'pairs':>5} {'mAP@5':>6} {'mAP@10':>6} {'mAP@20':>6} " \
        f"{'P':>6} {'R':>6} {'F1':>6}"  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['scene']:<10} {r['method']:<22} {r['pairs']:>5} {100 * r['mAP@5']:>6.1f} "
            f"{100 * r['mAP@10']:>6.1f} {100 * r['mAP@20']:>6.1f} {100 * r['precision']:>6.1f} "
            f"{100 * r['recall']:>6.1f} {100 * r['f1']:>6.1f}"
        )
    return "\n".join(lines)


@click.command(name="corr")
@click.option(
    "--model", "models", multiple=True, default=("ransac",), show_default=True,
    help="ransac (on all matches), n3cnnet (shipped weights) or a folder from `knnlab train corr` "
    "(repeatable).",
)  # fmt: skip
@click.option(
    "--scene", "scenes", multiple=True, default=("reichstag", "lund_door"), show_default=True,
    help="reichstag, lund_door or a folder with images/ and pairs_with_gt.txt (repeatable).",
)  # fmt: skip
@click.option("--limit", type=int, help="Only the first N pairs of each scene.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the scores as JSON here.")
@click.option("--seed", default=0, show_default=True, help="RANSAC seed.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def eval_corr(
    models: tuple[str, ...],
    scenes: tuple[str, ...],
    limit: int | None,
    out: Path | None,
    seed: int,
    device: str,
) -> None:
    """Pose mAP@5/10/20 (Yi et al.) and inlier precision/recall/F1 of correspondence classifiers:
    OpenCV RANSAC + recoverPose on the predicted inliers of every pair of each scene."""
    from knnlab.data.twoview import load_scene, pair_matches
    from knnlab.io_utils import atomic_write_json
    from knnlab.n3.corr_eval import evaluate_scene, load_corr_model, predict_inliers

    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: must be at least 1")
    dev = _device(device)
    nets = {m: None if m == "ransac" else load_corr_model(m, dev) for m in models}
    scene_pairs = {s: load_scene(s)[:limit] for s in scenes}  # all pair files parse before work
    rows = []
    for scene, pairs in scene_pairs.items():
        matches = [pair_matches(p) for p in pairs]
        for name, net in nets.items():

            def predict(x, net=net):
                return predict_inliers(net, x)

            r = evaluate_scene(name, matches, None if net is None else predict, seed=seed)
            r["scene"] = Path(scene).name
            rows.append(r)
    click.echo(_format_scores(rows))
    if out is not None:
        atomic_write_json(out, {"protocol": "yi2018-ransac-map", "results": rows})
        click.echo(f"wrote {out}")


@click.command(name="corr")
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), default=Path("outputs/corr"),
    show_default=True, help="Output folder (results.json, pair.png); training runs go to OUT-runs/.",
)  # fmt: skip
@click.option("--budget-steps", default=200, show_default=True, help="Steps per network.")
@click.option("--batch-size", default=8, show_default=True, help="Pairs per step.")
@click.option("--num-matches", default=256, show_default=True, help="Matches per training pair.")
@click.option(
    "--essential-after", type=int, default=250, show_default=True,
    help="Add the essential-matrix loss from this step on.",
)  # fmt: skip
@click.option("--limit", type=int, help="Only the first N pairs of each scene.")
@click.option(
    "--cnnet-run", type=click.Path(path_type=Path),
    help="Reuse this `knnlab train corr` run (same settings) instead of training CNNet.",
)  # fmt: skip
@click.option("--n3cnnet-run", type=click.Path(path_type=Path), help="The same for N3CNNet.")
@click.option(
    "--save-assets", is_flag=True,
    help="Also write the N3CNNet into the package (src/knnlab/assets/n3cnnet), the default model "
    "of `knnlab match`.",
)  # fmt: skip
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def experiment_corr(
    out: Path,
    budget_steps: int,
    batch_size: int,
    num_matches: int,
    essential_after: int | None,
    limit: int | None,
    cnnet_run: Path | None,
    n3cnnet_run: Path | None,
    save_assets: bool,
    seed: int,
    device: str,
) -> None:
    """Train CNNet and N3CNNet on synthetic pairs at equal budget, score them and plain RANSAC on
    reichstag and lund_door (Yi et al.'s protocol), write OUT/results.json and a drawn pair."""
    from knnlab.io_utils import check_writable
    from knnlab.n3.corr_experiment import CorrExperimentConfig, run_corr_experiment
    from knnlab.results import write_experiment

    check_writable(out / "results.json", what="-o")  # before half an hour of training
    cfg = CorrExperimentConfig(
        budget_steps=budget_steps, batch_size=batch_size, num_matches=num_matches,
        essential_after=essential_after, seed=seed, max_pairs=limit, device=str(_device(device)),
    )  # fmt: skip
    runs = {k: v for k, v in (("cnnet", cnnet_run), ("n3cnnet", n3cnnet_run)) if v is not None}
    res = run_corr_experiment(cfg, out.parent / (out.name + "-runs"), runs=runs,
                              save_assets=save_assets)  # fmt: skip
    write_experiment(out, res)
    click.echo(_format_scores(res.data["scores"]))
    click.echo(f"wrote {out}/results.json")


def _intrinsics(focal: float | None, cx: float | None, cy: float | None, shape) -> np.ndarray:
    h, w = shape[:2]
    if focal is None:
        raise InputError(
            "intrinsics needed: pass --focal F (and --cx/--cy, default the image centre), "
            "or --scene NAME|DIR whose pairs_with_gt.txt lists the two images"
        )
    K = np.array([[focal, 0, w / 2 if cx is None else cx], [0, focal, h / 2 if cy is None else cy],
                  [0, 0, 1.0]])  # fmt: skip
    if not np.all(np.isfinite(K)) or focal <= 0:
        raise InputError(f"--focal {focal}: the intrinsics are singular; use a focal length > 0")
    return K


@click.command()
@click.argument("img0", type=click.Path(path_type=Path))
@click.argument("img1", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="PNG with the pair and its matches.")  # fmt: skip
@click.option(
    "--model", default="n3cnnet", show_default=True,
    help="n3cnnet (shipped), a folder from `knnlab train corr`, or ransac (plain RANSAC).",
)  # fmt: skip
@click.option("--focal", type=float, help="Focal length in pixels (both images).")
@click.option("--cx", type=float, help="Principal point x [image centre].")
@click.option("--cy", type=float, help="Principal point y [image centre].")
@click.option("--k1", type=float, default=0.0, show_default=True,
              help="SIMPLE_RADIAL distortion (both images).")  # fmt: skip
@click.option(
    "--scene",
    help="Take intrinsics (and the ground-truth pose) from this scene's pairs_with_gt.txt "
    "(reichstag, lund_door or a folder).",
)
@click.option("--num-keypoints", default=2000, show_default=True, help="SIFT keypoints per image.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def match(
    img0: Path,
    img1: Path,
    output: Path,
    model: str,
    focal: float | None,
    cx: float | None,
    cy: float | None,
    k1: float,
    scene: str | None,
    num_keypoints: int,
    device: str,
) -> None:
    """Match IMG0 to IMG1 (SIFT, nearest neighbour), classify the matches, draw predicted inliers
    (green) and outliers (red) into OUTPUT and print the pose recovered by RANSAC on the inliers."""
    import cv2

    from knnlab.data.epipolar import normalize_points, pose_errors, undistort_simple_radial
    from knnlab.data.twoview import load_scene, read_bgr, read_gray, sift_matches
    from knnlab.io_utils import atomic_write_bytes
    from knnlab.n3.corr_draw import draw_matches
    from knnlab.n3.corr_eval import load_corr_model, predict_inliers, ransac_pose

    if output.suffix.lower() != ".png":
        raise InputError(f"-o {str(output)!r}: write a .png file")
    g0, g1 = read_gray(img0), read_gray(img1)
    gt = None
    if scene is not None:
        found = [p for p in load_scene(scene) if (p.name0, p.name1) == (img0.name, img1.name)]
        if not found:
            raise InputError(
                f"--scene {scene!r}: its pairs_with_gt.txt has no pair {img0.name} {img1.name}"
            )
        pair = found[0]
        K0, K1, d0, d1, gt = pair.K0, pair.K1, pair.k1_0, pair.k1_1, pair
    else:
        K0, K1 = _intrinsics(focal, cx, cy, g0.shape), _intrinsics(focal, cx, cy, g1.shape)
        d0 = d1 = k1
    net = None if model == "ransac" else load_corr_model(model, _device(device))
    uv0, uv1 = sift_matches(g0, g1, num_keypoints)
    if len(uv0) < 5:
        raise InputError(f"{img0} / {img1}: only {len(uv0)} SIFT matches; need at least 5")
    n0, n1 = normalize_points(uv0, K0), normalize_points(uv1, K1)
    if d0:
        n0 = undistort_simple_radial(n0, d0)
    if d1:
        n1 = undistort_simple_radial(n1, d1)
    x = np.concatenate([n0, n1], axis=1).astype(np.float32)
    sel = np.ones(len(x), bool) if net is None else predict_inliers(net, x) > 0
    R, t, ransac_in = ransac_pose(x, sel)
    shown = ransac_in if net is None else sel
    img = draw_matches(read_bgr(img0), read_bgr(img1), uv0, uv1, shown)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output, png.tobytes())
    click.echo(f"{len(x)} matches, {int(shown.sum())} predicted inliers -> {output}")
    if R is None or t is None:
        click.echo("pose: not recovered (fewer than 5 inliers or RANSAC failed)")
        return
    angle = np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
    np.set_printoptions(precision=5, suppress=True)
    click.echo(f"R (rotation {angle:.2f}°) =\n{R}")
    click.echo(f"t (unit direction) = {t / np.linalg.norm(t)}")
    if gt is not None:
        e_r, e_t = pose_errors(gt.R, gt.t, R, t)
        click.echo(f"ground truth: rotation error {e_r:.2f}°, translation error {e_t:.2f}°")
