"""Latent samplers for generators: hubness-prior sampling and its baselines.

All samplers share one small interface, :class:`LatentSampler`::

    sampler.sample(n)                 # (n, latent_dim) z, or (n, ...) w when space="w"
    sampler.sample(n, return_z=True)  # (latents, z): the z that produced them (same as latents for Z)
    sampler.stats                     # dict about the last sample() call

* :class:`HubSampler` — Liang et al., "Exploring and Exploiting Hubness Priors for High-Quality GAN
  Latent Sampling" (ICML 2022): draw a pool of Gaussian latents, compute every latent's k-occurrence
  in the pool (self excluded, through :func:`knnlab.knn.search`), keep the hubs (k-occurrence
  ``>= threshold``, or the ``top_m`` largest per pool), repeat with fresh pools until n are collected.
  With ``space="w"`` the pool is mapped through ``mapping`` (z -> w) and the search is done in W, as
  the authors' release does for StyleGAN; ``sample`` then returns the w (feed it to the synthesis
  network), and ``return_z=True`` gives the z as well.
* :class:`RandomSampler` — plain Gaussian z (or its w = mapping(z)).
* :class:`TruncationSampler` — the truncation trick: in Z, BigGAN-style resampling of every entry
  with ``|z_i| > psi`` (psi is the truncation threshold); in W, StyleGAN-style
  ``w = w_mean + psi * (w - w_mean)`` with ``w_mean`` given or estimated from ``n_mean`` mapped samples.

Randomness comes only from an explicit ``torch.Generator`` (``generator=``) or ``seed=`` (default
0); the global RNG is never touched. Latents are drawn on the CPU from that generator and moved to
``device``, so a seed gives the same latents on every device.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError, KnnlabError
from knnlab.hubness.measures import k_occurrence

__all__ = [
    "HubSampler",
    "HubSamplerConfig",
    "LatentSampler",
    "RandomSampler",
    "RandomSamplerConfig",
    "SamplerConfig",
    "TruncationSampler",
    "TruncationSamplerConfig",
]

Mapping = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SamplerConfig:
    """Fields common to every sampler."""

    latent_dim: int
    space: str = "z"
    seed: int | None = 0
    map_batch_size: int = 4096

    def validate(self) -> None:
        if not isinstance(self.latent_dim, int | np.integer) or self.latent_dim < 1:
            raise InputError(f"latent_dim must be a positive integer; got {self.latent_dim!r}")
        if self.space not in ("z", "w"):
            raise InputError(f"space must be 'z' or 'w'; got {self.space!r}")
        if self.map_batch_size < 1:
            raise InputError(f"map_batch_size must be >= 1; got {self.map_batch_size!r}")


@dataclass
class RandomSamplerConfig(SamplerConfig):
    """Plain Gaussian latents."""


@dataclass
class TruncationSamplerConfig(SamplerConfig):
    """``psi``: in Z the truncation threshold (entries with ``|z_i| > psi`` are redrawn); in W the
    interpolation factor toward the mean w (1 = no truncation, 0 = always the mean).
    ``n_mean``/``mean_seed``: how ``w_mean`` is estimated when not given."""

    psi: float = 0.7
    n_mean: int = 100_000
    mean_seed: int = 0
    max_resample_rounds: int = 10_000

    def validate(self) -> None:
        super().validate()
        if self.space == "z" and not self.psi > 0:
            raise InputError(
                f"Z truncation needs psi > 0 (the threshold on |z_i|); got {self.psi!r}"
            )
        if self.space == "w" and not 0.0 <= self.psi:
            raise InputError(f"W truncation needs psi >= 0; got {self.psi!r}")
        if self.n_mean < 1:
            raise InputError(f"n_mean must be >= 1; got {self.n_mean!r}")


@dataclass
class HubSamplerConfig(SamplerConfig):
    """Hubness-prior sampling. ``mode="threshold"`` keeps latents with k-occurrence ``>= threshold``;
    ``mode="top"`` keeps the ``top_m`` largest k-occurrences of each pool (ties: lower index first).
    ``max_pools`` bounds the number of pools one ``sample`` call may draw; ``patience_pools``: give
    up early when that many pools yielded no hub at all."""

    k: int = 5
    threshold: int = 50
    pool_size: int = 10_000
    mode: str = "threshold"
    top_m: int | None = None
    max_pools: int = 1000
    patience_pools: int = 20
    backend: str = "auto"
    approximate: bool = False

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.k, int | np.integer) or self.k < 1:
            raise InputError(f"k must be a positive integer; got {self.k!r}")
        if self.pool_size <= self.k:
            raise InputError(f"pool_size ({self.pool_size}) must be larger than k ({self.k})")
        if self.mode not in ("threshold", "top"):
            raise InputError(f"mode must be 'threshold' or 'top'; got {self.mode!r}")
        if self.mode == "threshold":
            if self.threshold < 0:
                raise InputError(f"threshold must be >= 0; got {self.threshold!r}")
            if self.threshold > self.pool_size - 1:
                raise InputError(
                    f"threshold {self.threshold} can never be reached: the largest possible "
                    f"k-occurrence in a pool of {self.pool_size} is {self.pool_size - 1}; "
                    "lower the threshold or raise pool_size"
                )
        else:
            if self.top_m is None or not 1 <= self.top_m <= self.pool_size:
                raise InputError(
                    f"mode='top' needs top_m between 1 and pool_size ({self.pool_size}); "
                    f"got {self.top_m!r}"
                )
        if self.max_pools < 1 or self.patience_pools < 1:
            raise InputError("max_pools and patience_pools must be >= 1")


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise InputError(
                f"generator must be a torch.Generator (the random source); got {type(generator)!r}. "
                "Pass the mapping network as mapping=..."
            )
        return generator
    g = torch.Generator(device="cpu")
    g.manual_seed(0 if seed is None else int(seed))
    return g


class LatentSampler(ABC):
    """Base of the samplers: ``sample(n)`` returns ``n`` latents for the generator."""

    config: SamplerConfig

    def __init__(
        self,
        config: SamplerConfig,
        *,
        mapping: Mapping | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        config.validate()
        if config.space == "w" and mapping is None:
            raise InputError(
                f"{type(self).__name__}(space='w') needs mapping=..., the z -> w network "
                "(e.g. G.mapping)"
            )
        self.config = config
        self.mapping = mapping
        self.device = torch.device(device)
        self.generator = _make_generator(generator, config.seed)
        self.stats: dict[str, Any] = {}
        self.last_z: torch.Tensor | None = None

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def space(self) -> str:
        return self.config.space

    # -- helpers -------------------------------------------------------------------------------
    def _randn(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        g = self.generator if generator is None else generator
        z = torch.randn(n, self.latent_dim, generator=g, device=g.device)
        return z.to(self.device)

    @torch.no_grad()
    def _map(self, z: torch.Tensor) -> torch.Tensor:
        assert self.mapping is not None
        bs = self.config.map_batch_size
        outs = [torch.as_tensor(self.mapping(z[i : i + bs])) for i in range(0, z.shape[0], bs)]
        w = torch.cat(outs, 0) if outs else z.new_zeros((0,))
        if w.shape[0] != z.shape[0]:
            raise InputError(
                f"mapping returned {w.shape[0]} rows for {z.shape[0]} latents; it must map (n, d) -> (n, ...)"
            )
        return w.to(self.device)

    def _check_n(self, n: int) -> int:
        if not isinstance(n, int | np.integer) or n < 0:
            raise InputError(f"n must be a non-negative integer; got {n!r}")
        return int(n)

    # -- interface -----------------------------------------------------------------------------
    @abstractmethod
    def _sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(latents, z)``."""

    def sample(
        self, n: int, *, return_z: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``n`` latents: z ``(n, latent_dim)`` when ``space="z"``, w (the mapping's output shape)
        when ``space="w"``. With ``return_z=True``: ``(latents, z)``. ``self.last_z`` keeps the z."""
        n = self._check_n(n)
        latents, z = self._sample(n)
        self.last_z = z
        return (latents, z) if return_z else latents

    def __call__(self, n: int) -> torch.Tensor:
        out = self.sample(n)
        assert isinstance(out, torch.Tensor)
        return out

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in asdict(self.config).items())
        return f"{type(self).__name__}({fields})"


class RandomSampler(LatentSampler):
    """Gaussian latents ``z ~ N(0, I)`` (mapped to w when ``space="w"``)."""

    config: RandomSamplerConfig

    def __init__(
        self,
        latent_dim: int,
        *,
        space: str = "z",
        mapping: Mapping | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        seed: int | None = 0,
        map_batch_size: int = 4096,
    ) -> None:
        cfg = RandomSamplerConfig(
            latent_dim=latent_dim, space=space, seed=seed, map_batch_size=map_batch_size
        )
        super().__init__(cfg, mapping=mapping, generator=generator, device=device)

    @classmethod
    def from_config(cls, config: RandomSamplerConfig, **kwargs: Any) -> RandomSampler:
        return cls(**asdict(config), **kwargs)

    def _sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._randn(n)
        lat = self._map(z) if self.space == "w" else z
        self.stats = {"sampler": "random", "space": self.space, "n": n, "acceptance_rate": 1.0}
        return lat, z


class TruncationSampler(LatentSampler):
    """The truncation trick.

    * ``space="z"`` (BigGAN, Brock et al. 2019): z ~ N(0, I) with every entry ``|z_i| > psi``
      redrawn until all entries lie in ``[-psi, psi]`` (a truncated normal).
    * ``space="w"`` (StyleGAN, Karras et al. 2019): ``w = w_mean + psi * (mapping(z) - w_mean)``,
      ``w_mean`` given (e.g. StyleGAN's ``G.mapping.w_avg``) or estimated once as the mean of
      ``n_mean`` mapped samples drawn from their own generator seeded with ``mean_seed`` (so that
      samplers with different psi share the same mean).
    """

    config: TruncationSamplerConfig

    def __init__(
        self,
        latent_dim: int,
        psi: float = 0.7,
        *,
        space: str = "z",
        mapping: Mapping | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        seed: int | None = 0,
        w_mean: torch.Tensor | None = None,
        n_mean: int = 100_000,
        mean_seed: int = 0,
        map_batch_size: int = 4096,
        max_resample_rounds: int = 10_000,
    ) -> None:
        cfg = TruncationSamplerConfig(
            latent_dim=latent_dim,
            space=space,
            seed=seed,
            map_batch_size=map_batch_size,
            psi=float(psi),
            n_mean=n_mean,
            mean_seed=mean_seed,
            max_resample_rounds=max_resample_rounds,
        )
        super().__init__(cfg, mapping=mapping, generator=generator, device=device)
        self._w_mean = None if w_mean is None else torch.as_tensor(w_mean).to(self.device)

    @classmethod
    def from_config(cls, config: TruncationSamplerConfig, **kwargs: Any) -> TruncationSampler:
        return cls(**asdict(config), **kwargs)

    @property
    def w_mean(self) -> torch.Tensor:
        """The mean w used by W truncation (estimated on first use when not given)."""
        if self._w_mean is None:
            if self.mapping is None:
                raise InputError("w_mean needs a mapping network")
            g = torch.Generator(device="cpu")
            g.manual_seed(int(self.config.mean_seed))
            total: torch.Tensor | None = None
            bs = max(self.config.map_batch_size, 1)
            for start in range(0, self.config.n_mean, bs):
                m = min(bs, self.config.n_mean - start)
                w = self._map(self._randn(m, g)).to(torch.float64)
                s = w.sum(0)
                total = s if total is None else total + s
            assert total is not None
            self._w_mean = (total / self.config.n_mean).to(torch.float32)
        return self._w_mean

    def _truncated_z(self, n: int) -> tuple[torch.Tensor, int]:
        psi = self.config.psi
        g = self.generator
        z = torch.randn(n, self.latent_dim, generator=g, device=g.device)
        rounds = 0
        bad = z.abs() > psi
        while bool(bad.any()):
            rounds += 1
            if rounds > self.config.max_resample_rounds:
                raise KnnlabError(
                    f"Z truncation with psi={psi} did not finish after {rounds - 1} resampling "
                    "rounds; use a larger psi"
                )
            cnt = int(bad.sum())
            z[bad] = torch.randn(cnt, generator=g, device=g.device)
            bad = z.abs() > psi
        return z.to(self.device), rounds

    def _sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        psi = self.config.psi
        if self.space == "z":
            z, rounds = self._truncated_z(n)
            p_in = math.erf(psi / math.sqrt(2.0))
            self.stats = {
                "sampler": "truncation",
                "space": "z",
                "psi": psi,
                "n": n,
                "resample_rounds": rounds,
                "acceptance_rate": p_in,  # per entry: P(|z_i| <= psi)
            }
            return z, z
        z = self._randn(n)
        w = self._map(z)
        mean = self.w_mean.to(w.dtype)
        w = mean + psi * (w - mean)
        self.stats = {
            "sampler": "truncation",
            "space": "w",
            "psi": psi,
            "n": n,
            "acceptance_rate": 1.0,
        }
        return w, z


class HubSampler(LatentSampler):
    """Hubness-prior latent sampling (Liang et al., ICML 2022).

    Each round draws ``pool_size`` latents z ~ N(0, I) (mapped to w when ``space="w"``), computes
    their k-occurrence within the pool (k nearest neighbours in squared L2 among the other pool
    members, self excluded, ties by lower index) and keeps the hubs: k-occurrence ``>= threshold``
    (``mode="threshold"``, in pool order) or the ``top_m`` largest (``mode="top"``, largest first).
    Rounds repeat with fresh pools until ``n`` latents are collected; a call that would need more
    than ``max_pools`` pools (or finds no hub in ``patience_pools`` pools) stops with an error that
    suggests a lower threshold.

    ``sample(n)`` returns z ``(n, latent_dim)`` for ``space="z"`` and w (the mapping's output shape,
    e.g. ``(n, w_dim)`` or StyleGAN's ``(n, num_ws, w_dim)``, searched flattened) for ``space="w"``;
    ``sample(n, return_z=True)`` returns ``(latents, z)``.

    ``stats`` after a call: ``acceptance_rate`` (hubs found / latents drawn, over all pools of the
    call; in top mode top_m / pool_size), ``pools_drawn``, ``candidates``, ``hubs_found``, ``n``,
    ``hub_values`` (int64 k-occurrence of each returned latent) and its mean/min/max.

    ``generator`` is the ``torch.Generator`` used as random source (not the GAN); ``mapping`` is the
    z -> w network.
    """

    config: HubSamplerConfig

    def __init__(
        self,
        latent_dim: int,
        k: int = 5,
        threshold: int = 50,
        pool_size: int = 10_000,
        space: str = "z",
        mapping: Mapping | None = None,
        generator: torch.Generator | None = None,
        mode: str = "threshold",
        top_m: int | None = None,
        *,
        device: str | torch.device = "cpu",
        seed: int | None = 0,
        max_pools: int = 1000,
        patience_pools: int = 20,
        backend: str = "auto",
        approximate: bool = False,
        map_batch_size: int = 4096,
    ) -> None:
        cfg = HubSamplerConfig(
            latent_dim=latent_dim,
            space=space,
            seed=seed,
            map_batch_size=map_batch_size,
            k=k,
            threshold=threshold,
            pool_size=pool_size,
            mode=mode,
            top_m=top_m,
            max_pools=max_pools,
            patience_pools=patience_pools,
            backend=backend,
            approximate=approximate,
        )
        super().__init__(cfg, mapping=mapping, generator=generator, device=device)

    @classmethod
    def from_config(cls, config: HubSamplerConfig, **kwargs: Any) -> HubSampler:
        return cls(**asdict(config), **kwargs)

    def draw_pool(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """One pool: ``(z, latents, k_occurrence)`` for all ``pool_size`` members (latents = z in
        Z space, mapping(z) in W space). Useful for figures of samples sorted by hub value."""
        cfg = self.config
        z = self._randn(cfg.pool_size)
        lat = self._map(z) if self.space == "w" else z
        feats = lat.reshape(lat.shape[0], -1)
        kocc = k_occurrence(feats, cfg.k, backend=cfg.backend, approximate=cfg.approximate)
        return z, lat, kocc

    def _select(self, kocc: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.mode == "threshold":
            return np.flatnonzero(kocc >= cfg.threshold)
        assert cfg.top_m is not None
        order = np.argsort(-kocc, kind="stable")
        return order[: cfg.top_m]

    def _sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        lats: list[torch.Tensor] = []
        zs: list[torch.Tensor] = []
        hub_vals: list[np.ndarray] = []
        got = pools = candidates = found = 0
        while got < n:
            if pools >= cfg.max_pools or (
                cfg.mode == "threshold" and found == 0 and pools >= cfg.patience_pools
            ):
                rate = found / candidates if candidates else 0.0
                raise KnnlabError(
                    f"HubSampler collected {got} of {n} latents in {pools} pools of {cfg.pool_size} "
                    f"(acceptance rate {rate:.4%} at threshold {cfg.threshold}, k={cfg.k}); lower "
                    "the threshold, raise max_pools, or use mode='top' with top_m"
                )
            z, lat, kocc = self.draw_pool()
            sel = self._select(kocc)
            pools += 1
            candidates += cfg.pool_size
            found += int(sel.size)
            take = sel[: n - got]
            if take.size:
                t = torch.from_numpy(take).to(self.device)
                lats.append(lat[t])
                zs.append(z[t])
                hub_vals.append(kocc[take])
                got += int(take.size)
        if lats:
            latents, z_out = torch.cat(lats), torch.cat(zs)
            hv = np.concatenate(hub_vals).astype(np.int64)
        else:
            latents = self._empty_latents()
            z_out = torch.zeros(0, self.latent_dim, device=self.device)
            hv = np.zeros(0, dtype=np.int64)
        self.stats = {
            "sampler": "hubs",
            "space": self.space,
            "mode": cfg.mode,
            "k": cfg.k,
            "threshold": cfg.threshold if cfg.mode == "threshold" else None,
            "top_m": cfg.top_m if cfg.mode == "top" else None,
            "pool_size": cfg.pool_size,
            "n": n,
            "pools_drawn": pools,
            "candidates": candidates,
            "hubs_found": found,
            "acceptance_rate": found / candidates if candidates else float("nan"),
            "hub_values": hv,
            "hub_value_mean": float(hv.mean()) if hv.size else float("nan"),
            "hub_value_min": int(hv.min()) if hv.size else None,
            "hub_value_max": int(hv.max()) if hv.size else None,
        }
        return latents, z_out

    def _empty_latents(self) -> torch.Tensor:
        if self.space == "z":
            return torch.zeros(0, self.latent_dim, device=self.device)
        probe = self._map(torch.zeros(1, self.latent_dim, device=self.device))
        return probe[:0]
