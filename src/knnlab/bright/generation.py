"""``knnlab experiment bright-generation``: latent diffusion on BRIGHT key codes against latent
diffusion on KL latents and VQ embeddings, novelty, and a hubness prior for the diffusion samples.

Per method (BRIGHT, KL, VQ) the autoencoder is trained as in ``knnlab experiment bright`` (same
config, steps, batch, seed), the first ``code_images`` training images are encoded without the
training noise, and a ``diffusers.UNet2DModel`` of one preset is trained on those codes for the same
steps, batch and learning rate (:func:`~knnlab.bright.ldm.train_ldm`). Samples come from DDIM (η = 0)
with ``ddim_steps`` steps; VQ samples are decoded as they are (continuous embeddings, not snapped to
the codebook). Every set of samples is scored against held-out real images with
:func:`knnlab.metrics.fid`, :func:`~knnlab.metrics.kid` and :func:`~knnlab.metrics.prdc` in the
in-project feature space of the data (the MNIST classifier; for CelebA 64² the CelebA-identity
network), named in the table; the project's GAN of the data (the built-in MNIST GAN, the CelebA 64²
GAN) is scored the same way.

Hubness for diffusion (BRIGHT-LDM only), all rows with the same number of samples:

- random x_T ~ N(0, I) (the generation table's row);
- hub x_T: pools of ``hub_pool`` noises, the ``hub_share`` with the largest k-occurrence among their
  pool (:class:`knnlab.hubness.HubSampler`, ``mode="top"``) on the flattened x_T;
- ψ·x_T, the truncation-like baseline, on the same x_T as the random row;
- hub codes: ``code_pool`` generated key codes, the ``num_samples`` with the largest k-occurrence in
  code space, against the first ``num_samples`` of the same pool (a random subset).

Outputs (``ExperimentResult``): tables ``generation``, ``hubness``, ``novelty``; figures
``samples.png``, ``novelty_features.png``, ``novelty_pixels.png``, ``hub_bands.png``. Runs (models,
logs, pipelines) go to the work folder and are reused when their settings match.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from knnlab.bright.experiment import MNIST_FEATURES_LABEL, PRESETS, feature_network
from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json
from knnlab.results import ExperimentResult

__all__ = [
    "GENERATION_ASSET_DIR",
    "GenerationConfig",
    "encode_latents",
    "run_generation_experiment",
    "score_samples",
]

log = logging.getLogger(__name__)

GENERATION_ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "bright_ldm_mnist"
METHODS = ("bright", "kl", "vq")
LABELS = {"bright": "BRIGHT-LDM", "kl": "KL-LDM", "vq": "VQ-LDM"}
FEATURES_LABEL = MNIST_FEATURES_LABEL


@dataclass(frozen=True)
class _DataSetup:
    size: int
    channels: int
    generator: str  # knnlab.hubness.generators name
    gan_label: str
    real: str  # the held-out split, for captions


def _setups() -> dict[str, _DataSetup]:
    return {
        "MNIST": _DataSetup(28, 1, "builtin", "built-in MNIST GAN", "MNIST test split"),
        "CelebA6000": _DataSetup(64, 3, "celeba64", "CelebA 64² GAN (knnlab)",
                                 "CelebA6000 validation split"),
    }  # fmt: skip


@dataclass
class GenerationConfig:
    """Settings of the generation experiment (MNIST or CelebA6000 at 64²; on MNIST the defaults run
    in about half an hour on a 2-core CPU)."""

    data: str = "MNIST"
    methods: tuple[str, ...] = METHODS
    ae_steps: int | None = None  # None: as `knnlab experiment bright` (600 on both data sets)
    ae_batch_size: int | None = None  # None: as `knnlab experiment bright` (16)
    code_images: int = 20_000  # the first N training images are encoded for the LDM
    unet: str = "tiny"  # a preset of knnlab.bright.ldm.UNET_PRESETS
    schedule: str = "cosine_variant"
    ldm_steps: int = 2000
    ldm_batch_size: int = 64
    ldm_lr: float = 3e-4  # the release's 8e-5 is for runs of 10^5 steps
    num_samples: int = 1000
    ddim_steps: int = 50
    real_images: int = 1000  # held-out (test split) images the samples are scored against
    hub_k: int = 5
    hub_pool: int = 10_000
    hub_share: float = 0.1
    psi: float = 0.8
    code_pool: int = 4000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        setups = _setups()
        if self.data not in setups:
            raise InputError(
                f"--data {self.data}: the generation experiment runs on {' or '.join(setups)} "
                "(the data with an in-project feature network and a project GAN)"
            )
        from knnlab.bright.experiment import BrightExperimentConfig

        budget = BrightExperimentConfig()  # the autoencoders train as in `experiment bright`
        if self.ae_steps is None:
            self.ae_steps = budget.steps[self.data]
        if self.ae_batch_size is None:
            self.ae_batch_size = budget.batch_size[self.data]
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise InputError(f"--methods {list(self.methods)}: choose from {', '.join(METHODS)}")
        if self.num_samples < 10 or self.real_images < 10:
            raise InputError("--num-samples and --real-images must be at least 10")
        if not 0 < self.hub_share <= 1 or not 0 < self.psi <= 1:
            raise InputError(f"hub_share={self.hub_share}, psi={self.psi}: both must be in (0, 1]")
        if self.code_pool < self.num_samples:
            raise InputError(
                f"--code-pool {self.code_pool} must be at least --num-samples {self.num_samples}"
            )
        if self.hub_pool * self.hub_share < 1:
            raise InputError("hub_pool · hub_share must keep at least one noise per pool")


@torch.no_grad()
def encode_latents(
    autoencoder: nn.Module, images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """What the decoder of ``autoencoder`` reads, for ``images (N, C, H, W)`` in [0, 1], in eval mode:
    BRIGHT's key codes (no training noise), a KL autoencoder's posterior mean, a VQ autoencoder's
    quantised embeddings. ``(N, D, h, w)`` on the CPU."""
    from knnlab.bright.baselines import BaselineAutoencoder

    autoencoder.eval()
    dev = next(autoencoder.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(dev)
        z = autoencoder.encode(x)  # type: ignore[operator]
        if isinstance(autoencoder, BaselineAutoencoder):
            z = z[0]
        out.append(z.float().cpu())
    return torch.cat(out)


def score_samples(real_features: np.ndarray, images: torch.Tensor, net: Any, seed: int = 0) -> dict:
    """FID, KID (×10³), precision, recall, density, coverage of ``images`` against real features."""
    from knnlab.metrics import fid, kid, prdc
    from knnlab.metrics.features import extract_features

    fake = extract_features(net, images)
    k = kid(real_features, fake, subset_size=min(500, len(fake), len(real_features)), seed=seed)
    out = {
        "FID": fid(real_features, fake),
        "KID×1e3": 1e3 * float(k[0] if isinstance(k, tuple) else k),
    }
    out.update(prdc(real_features, fake, k_pr=3, k_dc=5))
    return out


def _matches(path: Path, settings: dict[str, Any]) -> bool:
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("settings") == json.loads(json.dumps(settings))
    except json.JSONDecodeError:
        return False


def _autoencoder(cfg: GenerationConfig, method: str, work: Path, train: torch.Tensor):
    from knnlab.bright.training import BrightTrainConfig, load_autoencoder, train_autoencoder

    run = work / f"ae-{method}"
    tc = BrightTrainConfig(
        data=cfg.data, config=PRESETS[cfg.data],
        baseline=None if method == "bright" else method,
        steps=int(cfg.ae_steps or 0), batch_size=int(cfg.ae_batch_size or 0), seed=cfg.seed,
        checkpoint_every=max(int(cfg.ae_steps or 0), 1),
    )  # fmt: skip
    settings = asdict(tc)
    seconds = None
    if not (_matches(run / "settings.json", settings) and (run / "model").is_dir()):
        if run.exists():
            shutil.rmtree(run)
        summary = train_autoencoder(tc, run, device=cfg.device, train_images=train)
        seconds = summary["train_seconds"]
        atomic_write_json(run / "settings.json", {"settings": settings, "train_seconds": seconds})
    else:
        seconds = json.loads((run / "settings.json").read_text()).get("train_seconds")
    return load_autoencoder(run / "model").to(cfg.device), seconds


def _pipeline(
    cfg: GenerationConfig, method: str, work: Path, model: nn.Module, codes: torch.Tensor
):
    from knnlab.bright.ldm import LDMConfig, code_map_for, train_ldm
    from knnlab.bright.pipeline import KeyCodeDiffusionPipeline

    folder = work / f"pipeline-{method}"
    lc = LDMConfig(
        unet=cfg.unet, schedule=cfg.schedule, steps=cfg.ldm_steps, batch_size=cfg.ldm_batch_size,
        lr=cfg.ldm_lr, seed=cfg.seed, out_dir=str(work / f"ldm-{method}"), device=cfg.device,
        log_every=max(1, cfg.ldm_steps // 20), checkpoint_every=None,
    )  # fmt: skip
    settings = {"ldm": asdict(lc), "codes": list(codes.shape), "ae_steps": cfg.ae_steps}
    if _matches(folder / "settings.json", settings):
        meta = json.loads((folder / "settings.json").read_text())
        return KeyCodeDiffusionPipeline.from_pretrained(folder), meta["train_seconds"]
    shutil.rmtree(work / f"ldm-{method}", ignore_errors=True)
    kind = "keys" if method == "bright" else "gaussian"
    cmap = code_map_for(kind, codes, shape=tuple(codes.shape[1:]))
    cmap.extra.update({"data": cfg.data, "method": method, "code_images": len(codes)})
    t0 = time.perf_counter()
    pipe = train_ldm(codes, model, cmap, lc)
    seconds = round(time.perf_counter() - t0, 1)
    pipe.save_pretrained(folder)
    atomic_write_json(folder / "settings.json", {"settings": settings, "train_seconds": seconds})
    return pipe, seconds


def _grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    from knnlab.hubness.train_gan import image_grid

    arr = image_grid(images, nrow=nrow, value=1.0).permute(1, 2, 0).clamp(0, 1).numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def _samples_figure(samples: dict[str, torch.Tensor], nrow: int = 16):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(nrow * 0.5, 0.75 * len(samples) * 2 + 0.3))
    axes = fig.subplots(len(samples), 1, squeeze=False)[:, 0]
    for ax, (label, imgs) in zip(axes, samples.items()):
        ax.imshow(_grid(imgs[: 2 * nrow], nrow), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _bands_figure(bands: list[tuple[str, torch.Tensor]]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8 * 0.6 + 2.2, 0.7 * len(bands) + 0.4))
    axes = fig.subplots(len(bands), 1, squeeze=False)[:, 0]
    for ax, (label, imgs) in zip(axes, bands):
        ax.imshow(_grid(imgs, len(imgs)), cmap="gray", vmin=0, vmax=1)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("BRIGHT-LDM samples by the k-occurrence of their x_T in one pool", fontsize=9)
    fig.tight_layout()
    return fig


def _round(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}


def run_generation_experiment(
    cfg: GenerationConfig, work_dir: str | Path, *, save_assets: str | Path | None = None
) -> ExperimentResult:
    """Train (or reuse) the autoencoders and LDMs, sample, score; see the module docstring."""
    from knnlab.bright.data import load_image_set
    from knnlab.bright.sample import scaled_initial_noise
    from knnlab.hubness import HubSampler
    from knnlab.hubness.generators import load_generator
    from knnlab.hubness.measures import k_occurrence
    from knnlab.hubness.pools import sorted_bands
    from knnlab.metrics.features import extract_features
    from knnlab.metrics.novelty import memorization_rate, novelty_figure_data, plot_novelty
    from knnlab.progress import progress

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    setup = _setups()[cfg.data]
    net, features_label = feature_network(cfg.data, cfg.device)
    size, chans = setup.size, setup.channels
    train = load_image_set(cfg.data, "train", size=size, channels=chans)
    code_imgs = train[: cfg.code_images]
    real = load_image_set(cfg.data, "test", size=size, channels=chans, limit=cfg.real_images)
    real_f = extract_features(net, real)
    n, steps = cfg.num_samples, cfg.ddim_steps

    def images_of(pipe, latents: torch.Tensor) -> torch.Tensor:
        return pipe(len(latents), steps, latents=latents)

    gen_rows: list[dict[str, Any]] = []
    samples: dict[str, torch.Tensor] = {}
    pipes: dict[str, Any] = {}
    x_t = None
    for method in progress(cfg.methods, desc="methods"):
        model, ae_s = _autoencoder(cfg, method, work, train)
        codes = encode_latents(model, code_imgs)
        pipe, ldm_s = _pipeline(cfg, method, work, model, codes)
        pipes[method] = pipe
        x_t = pipe.initial_noise(n, torch.Generator().manual_seed(cfg.seed))
        t0 = time.perf_counter()
        imgs = images_of(pipe, x_t)
        sample_s = round(time.perf_counter() - t0, 1)
        samples[LABELS[method]] = imgs
        d, h, w = codes.shape[1:]
        row = {"method": LABELS[method], "code shape": f"{h}×{w}×{d}",
               **score_samples(real_f, imgs, net, cfg.seed),
               "AE train s": ae_s, "LDM train s": ldm_s, "sampling s": sample_s}  # fmt: skip
        gen_rows.append(_round(row))
        timings[f"{method}_ldm_train_s"] = ldm_s
        timings[f"{method}_sampling_s"] = sample_s
    gan = load_generator(setup.generator, device=cfg.device)
    z = torch.randn(n, gan.latent_dim, generator=torch.Generator().manual_seed(cfg.seed))
    gan_imgs = gan.generate(z)
    samples[setup.gan_label] = gan_imgs
    gen_rows.append(_round({"method": setup.gan_label, "code shape": f"z {gan.latent_dim}",
                            **score_samples(real_f, gan_imgs, net, cfg.seed)}))  # fmt: skip
    real_row = score_samples(real_f, load_image_set(cfg.data, "train", size=size, channels=chans,
                                                    limit=n), net, cfg.seed)  # fmt: skip
    gen_rows.append(_round({"method": "real training images (reference)", "code shape": "-",
                            **real_row}))  # fmt: skip

    res = ExperimentResult(
        "bright-generation",
        "Latent diffusion on BRIGHT key codes vs KL / VQ latents, and hubness for diffusion",
        summary="",
        protocol={
            **{k: v for k, v in asdict(cfg).items()},
            "features": features_label,
            "real": f"{setup.real}, first {cfg.real_images}",
            "sampler": f"DDIM, η = 0, {steps} steps; {n} samples per row",
        },
    )
    res.add_table(
        "generation",
        gen_rows,
        caption=(
            f"{cfg.data}: {n} samples per row against {cfg.real_images} held-out images "
            f"({setup.real}), features of the {features_label}; KID ×10³; precision/recall k = 3, density/coverage k = 5. "
            f"DDIM {steps} steps. Every LDM: UNet preset {cfg.unet!r}, {cfg.ldm_steps} steps × "
            f"{cfg.ldm_batch_size}, Adam lr {cfg.ldm_lr:g}, EMA 0.999 with ramp-up 0.1, on the codes of the first "
            f"{cfg.code_images} training images; every autoencoder {cfg.ae_steps} steps × "
            f"{cfg.ae_batch_size}."
        ),
        notes=[
            "The paper's FFHQ rows (Inception features, FID / precision / recall): StyleGAN2 4.16 / "
            "0.71 / 0.46; LDM 4.98 / 0.73 / 0.50; BRIGHT 6.91 / 0.80 / 0.45; LSUN-Church BRIGHT "
            "3.97 / 0.76 / 0.46 against LDM 4.02 / 0.64 / 0.52. The numbers here are in another "
            "feature space on another data set: compare rows with each other only.",
            "The last row scores real training images the same way: the floor of each metric at "
            "this sample count.",
        ],
    )

    # ---------------------------------------------------------------- novelty (BRIGHT-LDM)
    nov_rows: list[dict[str, Any]] = []
    train_f = extract_features(net, code_imgs)
    for label, imgs in samples.items():
        if label.startswith("real"):
            continue
        f = extract_features(net, imgs)
        mem = memorization_rate(f, train_f)
        pix = memorization_rate(imgs.flatten(1).numpy(), code_imgs.flatten(1).numpy())
        nov_rows.append(_round({
            "method": label, "memorized (features)": mem["rate"],
            "median d1 (features)": mem["median_d1"], "memorized (pixels)": pix["rate"],
            "median d1 (pixels)": pix["median_d1"],
        }))  # fmt: skip
    res.add_table(
        "novelty",
        nov_rows,
        caption=(
            f"Memorization: share of samples whose nearest training image (of the {cfg.code_images} "
            "the LDMs saw) is much nearer than the second (d1 < d2 / 3), in features and in pixels"
        ),
    )
    if "bright" in pipes:
        bright_imgs = samples[LABELS["bright"]]
        bf = extract_features(net, bright_imgs)
        for space, (gf, tf) in {
            "features": (bf, train_f),
            "pixels": (bright_imgs.flatten(1).numpy(), code_imgs.flatten(1).numpy()),
        }.items():
            data = novelty_figure_data(gf, tf, bright_imgs, code_imgs, n_show=8, k=3,
                                       order="closest")  # fmt: skip
            fig = plot_novelty(data, value_range=(0.0, 1.0), title=(
                f"BRIGHT-LDM samples nearest to the training set ({space}) and their 3 nearest "
                "training images"))  # fmt: skip
            res.add_figure(
                fig,
                f"novelty_{space}.png",
                f"BRIGHT-LDM samples and their nearest training images ({space})",
            )

    # ------------------------------------------------------- hubness for diffusion (BRIGHT-LDM)
    if "bright" in pipes:
        pipe = pipes["bright"]
        c = pipe.codes
        dim = c.channels * c.height * c.width
        top_m = max(1, int(cfg.hub_pool * cfg.hub_share))
        metric_keys = ("FID", "KID×1e3", "precision", "recall", "density", "coverage")
        bright_row = next(r for r in gen_rows if r["method"] == LABELS["bright"])
        rows = [{"initial noise / selection": "random x_T",
                 **{key: bright_row[key] for key in metric_keys}, "acceptance": 1.0}]  # fmt: skip
        t0 = time.perf_counter()
        sampler = HubSampler(latent_dim=dim, k=cfg.hub_k, pool_size=cfg.hub_pool, mode="top",
                             top_m=top_m, seed=cfg.seed + 1)  # fmt: skip
        drawn = sampler.sample(n)
        assert isinstance(drawn, torch.Tensor)
        hub_x = drawn.reshape(n, c.channels, c.height, c.width).float()
        hub_imgs = images_of(pipe, hub_x)
        rows.append(_round({"initial noise / selection": f"hub x_T (top {cfg.hub_share:.0%} of "
                            f"pools of {cfg.hub_pool}, k = {cfg.hub_k})",
                            **score_samples(real_f, hub_imgs, net, cfg.seed),
                            "acceptance": sampler.stats["acceptance_rate"]}))  # fmt: skip
        psi_x = scaled_initial_noise(pipe, n, psi=cfg.psi, seed=cfg.seed)
        psi_imgs = images_of(pipe, psi_x)
        rows.append(_round({"initial noise / selection": f"ψ·x_T, ψ = {cfg.psi:g}",
                            **score_samples(real_f, psi_imgs, net, cfg.seed),
                            "acceptance": 1.0}))  # fmt: skip
        pool_x = pipe.initial_noise(cfg.code_pool, torch.Generator().manual_seed(cfg.seed + 2))
        pool_codes = pipe.sample_codes(cfg.code_pool, steps, latents=pool_x)
        kocc = k_occurrence(pool_codes.flatten(1).numpy(), cfg.hub_k)
        order = np.argsort(-kocc, kind="stable")
        decode = pipe.autoencoder.decode

        @torch.no_grad()
        def decode_codes(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([decode(z[i : i + 256]).clamp(0, 1) for i in range(0, len(z), 256)])

        first = decode_codes(pool_codes[:n])
        rows.append(_round({"initial noise / selection": f"random {n} of {cfg.code_pool} generated "
                            "codes", **score_samples(real_f, first, net, cfg.seed),
                            "acceptance": n / cfg.code_pool}))  # fmt: skip
        hubc = decode_codes(pool_codes[torch.as_tensor(order[:n])])
        rows.append(_round({"initial noise / selection": f"hub codes: top {n} of {cfg.code_pool} "
                            f"by k-occurrence of the key codes (k = {cfg.hub_k})",
                            **score_samples(real_f, hubc, net, cfg.seed),
                            "acceptance": n / cfg.code_pool}))  # fmt: skip
        timings["hubness_s"] = round(time.perf_counter() - t0, 1)
        res.add_table(
            "hubness",
            rows,
            caption=(
                f"BRIGHT-LDM, {n} samples per row, DDIM {steps} steps, same metrics as the "
                "generation table. Hubs: k-occurrence within a pool (squared L2, self excluded)."
            ),
        )
        # figure: one pool of x_T sorted by hub value
        pool_sampler = HubSampler(latent_dim=dim, k=cfg.hub_k, pool_size=cfg.hub_pool,
                                  mode="top", top_m=top_m, seed=cfg.seed + 3)  # fmt: skip
        zp, _, kp = pool_sampler.draw_pool()
        bands = []
        for label, idx in sorted_bands(kp, np.argsort(-kp, kind="stable"), per_band=8):
            lat = zp[torch.as_tensor(idx)].reshape(len(idx), c.channels, c.height, c.width)
            bands.append((label, images_of(pipe, lat.float())))
        res.add_figure(
            _bands_figure(bands),
            "hub_bands.png",
            "BRIGHT-LDM samples whose x_T are the top hubs … anti-hubs of one pool",
        )
        samples["BRIGHT-LDM, hub x_T"] = hub_imgs
    res.add_figure(_samples_figure(samples), "samples.png", "The first 32 samples of each row")

    best = min((r for r in gen_rows if r["method"] in LABELS.values()), key=lambda r: r["FID"])
    res.summary = (
        f"{cfg.data}, {n} samples per method, DDIM {steps} steps, {features_label}. Lowest FID "
        "among the "
        f"LDMs: {best['method']} ({best['FID']:.2f})."
    )
    timings["total_s"] = round(time.perf_counter() - t_all, 1)
    res.timings.update(timings)
    if save_assets is not None and "bright" in pipes:
        dst = Path(save_assets)
        if dst.exists():
            shutil.rmtree(dst)
        pipes["bright"].save_pretrained(dst)
    return res
