"""One training loop for every registered GAN, shaped like StyleGAN2-ADA's ``training_loop`` and read top to bottom.

``train(cfg, data, run_dir)`` trains the GAN named ``cfg.arch`` on ``data`` and writes into ``run_dir``:

* ``config.json``: the fully resolved :class:`TrainConfig` (every hyperparameter, nothing implicit).
* ``stats.jsonl``: one line per tick (``tick_kimg`` thousand real images shown to D): losses and penalties,
  D(real)/D(fake) means, augmentation p, sec/kimg, img/s, peak CPU RSS and CUDA memory.
* ``checkpoints/ckpt-<step>.pt`` every ``snapshot_kimg`` (and at the end, and when aborted), plus
  ``latest.pt`` and ``best.pt`` (lowest ``cfg.metric``); older ``ckpt-*`` are pruned to ``keep_checkpoints``.
  A checkpoint holds everything an exact resume needs (see :func:`_checkpoint_state`).
* ``grids/grid-<step>.png``: G_ema samples of fixed seeds with mask overlays (``grids/reals.png`` at start).
* ``metrics.jsonl``: per snapshot, the weight-free sliced Wasserstein distance between G_ema samples and real
  images and, when the caller passes a ``feature_metrics`` function (the Django app does when the FID-Inception
  weights are installed), KID and FID on the same images.

What differs from NVIDIA's loop (its known gaps): resume restores everything (optimisers,
counters, ADA state, every RNG, the data order), so "N steps" equals "N/2 steps, stop, resume, N/2 steps" bit
for bit on CPU; images may carry mask channels; the networks are plain PyTorch and run on CPU.

Multi-GPU: launched under ``torchrun`` (env ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) each rank trains on
``batch_size / world_size`` samples of a shared global batch, with G and D wrapped in
``DistributedDataParallel``, which averages the gradients during backward. Every backward goes through the
wrapper of the network being optimised; the other network runs unwrapped (no grads of its own). The lazy
regularisers (R1, path length) do not touch every parameter, so under DDP they add ``0 * output`` to the loss,
as StyleGAN2-ADA did, to keep the reducer's "every parameter gets a gradient" contract. Buffers (``w_avg``,
BatchNorm statistics) are copied from rank 0 after each step. Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from . import losses
from .augment import POLICIES, AdaptiveAugment, augment
from .grid import save_grid
from .quality import sliced_wasserstein_distance
from .registry import ModelConfig, get_gan, validate_config

try:  # Unix only; peak RSS is then reported as None
    import resource
except ImportError:  # pragma: no cover
    resource = None

CHECKPOINT_FORMAT = "synthesis.gans.trainer/1"
FEATURE_METRICS = ("kid", "fid")  # computed by a caller-supplied function (Inception features live elsewhere)
# feature_metrics(fakes, reals) -> {"kid": ..., "fid": ...}: image channels (N, C, H, W) in [-1, 1]; the reals
# are the same tensor at every snapshot of a run, so the function may cache their features.
FeatureMetricsFn = Callable[[Tensor, Tensor], Mapping[str, float]]
_MODEL_FIELDS = ("resolution", "img_channels", "n_classes", "z_dim", "base_channels", "extra")


# ----------------------------------------------------------------------------------------------------------------
# Configuration.


@dataclass
class TrainConfig:
    """Everything a run depends on, fully resolved (see :meth:`resolve`), JSON-serialisable."""

    arch: str
    # Model (-> ModelConfig). ``extra`` holds architecture knobs, e.g. map_layers, style_mixing, d_norm.
    resolution: int
    img_channels: int
    n_classes: int = 0
    z_dim: int = 128
    base_channels: int = 64
    extra: dict = field(default_factory=dict)
    loss: str = "bce"  # key into losses.LOSSES, from the spec
    conditional: bool = False  # from the spec: G and D take the real mask (SPADE)
    # Length and seeds. kimg counts real images shown to D (n_critic batches per step).
    kimg: float = 100.0
    batch_size: int = 64  # global batch, split over ranks
    seed: int = 0
    # Optimisation.
    optimizer: str = "adam"  # "adam" | "rmsprop"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)  # Adam only
    n_critic: int = 1  # D steps per G step
    weight_clip: float | None = None  # WGAN
    gp_lambda: float = 0.0  # WGAN-GP
    r1_gamma: float = 0.0  # R1 weight (loss += gamma / 2 * ||grad D(real)||^2)
    r1_interval: int = 16  # lazy R1 every this many steps; <= 1 means every D step, in the main loss
    pl_weight: float = 0.0  # path-length regularisation (style-based G only)
    pl_interval: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    feature_matching: float = 0.0  # SPADE: weight of the D feature-matching L1 (needs D.forward_with_features)
    ema_kimg: float = 10.0  # half-life of G_ema in thousands of images; 0 = G_ema follows G exactly
    ema_rampup: float | None = None  # half-life at most rampup * images seen so far
    # Augmentation of D's inputs: "none" | "diffaugment" (or a comma list of its ops) | "ada".
    augment: str = "diffaugment"
    augment_p: float = 0.0  # ADA's initial p (or the fixed per-op p for diffaugment when > 0)
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    # Bookkeeping.
    tick_kimg: float = 4.0
    snapshot_kimg: float = 50.0
    keep_checkpoints: int = 3  # ckpt-*.pt files kept (latest.pt and best.pt always); 0 = keep all
    n_grid: int = 16
    grid_seed: int = 0
    metric: str = "swd"  # picks best.pt: "swd" | "kid" | "fid" (those need feature_metrics) | "none"
    feature_metrics: list[str] = field(default_factory=list)  # also computed at snapshots: subset of kid, fid
    metric_n: int = 256  # G_ema samples and real images compared per snapshot
    metric_seed: int = 123_456
    # Performance (effective on CUDA only; no-ops on CPU).
    amp: bool = False  # float16 autocast + GradScaler in the main phases; regularisers stay float32
    tf32: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = True

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def resolve(cls, arch: str, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """The spec's preset for ``arch`` with ``overrides`` applied, "auto" values computed, then validated.

        ``overrides`` must give at least ``resolution`` and ``img_channels`` (the data decide them). A key that is
        neither a TrainConfig field nor a preset key nor ``extra`` is rejected, so a typo cannot pass silently.
        Preset keys that are not TrainConfig fields (``map_layers``, ``style_mixing``...) go to ``extra``.
        """
        spec = get_gan(arch)
        overrides = dict(overrides or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - names - set(spec.preset)
        if unknown:
            raise ValueError(f"unknown training options for {arch}: {sorted(unknown)}")
        fixed = set(overrides) & {"arch", "loss", "conditional"}
        if fixed:
            raise ValueError(f"{sorted(fixed)} are fixed by the architecture {arch!r}")
        merged = {**spec.preset, **overrides}
        kwargs: dict[str, Any] = {"arch": arch, "loss": spec.loss, "conditional": spec.conditional}
        extra = dict(merged.pop("extra", None) or {})
        for key, value in merged.items():
            if key in names:
                kwargs[key] = value
            else:
                extra[key] = value
        kwargs["extra"] = json.loads(json.dumps(extra))  # JSON types, as stored in config.json and checkpoints
        for key in ("resolution", "img_channels"):
            if key not in kwargs:
                raise ValueError(f"training options need {key!r} (it comes from the image set)")
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def __post_init__(self) -> None:
        # "auto" values depend on the batch and resolution, so they are computed here, once both are known.
        if self.r1_gamma == "auto":  # SG2-ADA --cfg=auto heuristic
            self.r1_gamma = 0.0002 * int(self.resolution) ** 2 / int(self.batch_size)
        if self.ema_kimg == "auto":  # SG2-ADA: a half-life of 10 images per 32 of batch, in kimg
            self.ema_kimg = int(self.batch_size) * 10 / 32
        if self.betas is not None:  # JSON gives a list
            self.betas = (float(self.betas[0]), float(self.betas[1]))
        if isinstance(self.feature_metrics, str):  # "kid,fid" from a command line
            self.feature_metrics = [m.strip() for m in self.feature_metrics.split(",") if m.strip()]
        self.feature_metrics = list(self.feature_metrics)

    def validate(self) -> None:
        """Raise ``ValueError`` on an inconsistent configuration."""
        validate_config(self.arch, self.model_config())
        if self.loss not in losses.LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}")
        positive = {"kimg": self.kimg, "batch_size": self.batch_size, "tick_kimg": self.tick_kimg}
        positive |= {"snapshot_kimg": self.snapshot_kimg, "n_critic": self.n_critic, "lr_g": self.lr_g}
        positive |= {"lr_d": self.lr_d, "metric_n": self.metric_n}
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"{key} must be positive, not {value!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', not {self.optimizer!r}")
        if self.optimizer == "adam" and self.betas is None:
            raise ValueError("adam needs betas")
        for key in ("gp_lambda", "r1_gamma", "pl_weight", "feature_matching", "ema_kimg", "augment_p"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, not {getattr(self, key)!r}")
        if self.augment not in POLICIES and not all(
            op.strip() in ("color", "translation", "cutout") for op in self.augment.split(",")
        ):
            raise ValueError(
                f"augment must be one of {POLICIES} or a comma list of DiffAugment ops, not {self.augment!r}"
            )
        if self.metric not in ("swd", *FEATURE_METRICS, "none"):
            raise ValueError(f"metric must be 'swd', 'kid', 'fid' or 'none', not {self.metric!r}")
        unknown = [m for m in self.feature_metrics if m not in FEATURE_METRICS]
        if unknown:
            raise ValueError(f"feature_metrics may hold 'kid' and 'fid', not {unknown}")
        if self.metric in FEATURE_METRICS and self.metric not in self.feature_metrics:
            raise ValueError(f"metric {self.metric!r} chooses the best checkpoint: add it to feature_metrics")
        if self.feature_metrics and self.metric == "none":
            raise ValueError("feature_metrics are computed at snapshots with the metric; metric is 'none'")
        if self.feature_metrics and self.metric_n < 2:
            raise ValueError("KID and FID need metric_n >= 2 samples per snapshot")
        if self.feature_matching > 0 and not self.conditional:
            raise ValueError("feature_matching needs a conditional GAN whose D has forward_with_features")

    def model_config(self) -> ModelConfig:
        return ModelConfig(**{key: getattr(self, key) for key in _MODEL_FIELDS})

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), so a dict and its JSON round trip compare equal."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(**dict(d))


resolve = TrainConfig.resolve


# ----------------------------------------------------------------------------------------------------------------
# Data.


@dataclass
class TrainData:
    """Training images ``(N, img_channels, H, W)`` float in [-1, 1] and optional masks.

    ``masks`` may be one-hot ``(N, n_classes, H, W)`` or class indices ``(N, H, W)`` (then pass ``n_classes``);
    they are kept as uint8 indices and made one-hot per batch, which saves n_classes x 4 bytes per pixel.
    Tensors stay on the CPU; each batch is copied to the training device.
    """

    images: Tensor
    masks: Tensor | None = None
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or not self.images.is_floating_point():
            raise ValueError(
                f"images must be a float tensor (N, C, H, W), not {self.images.dtype} {tuple(self.images.shape)}"
            )
        lo, hi = float(self.images.min()), float(self.images.max())
        if lo < -1.001 or hi > 1.001:
            raise ValueError(f"images must lie in [-1, 1] (got [{lo:.3g}, {hi:.3g}]): map [0, 1] data with x * 2 - 1")
        if self.masks is not None:
            if self.masks.ndim == 4:
                self.n_classes = self.n_classes or self.masks.shape[1]
                if self.masks.shape[1] != self.n_classes:
                    raise ValueError(
                        f"one-hot masks have {self.masks.shape[1]} channels, n_classes is {self.n_classes}"
                    )
                self.masks = self.masks.argmax(dim=1)
            if self.masks.shape != (self.images.shape[0], *self.images.shape[2:]):
                raise ValueError(f"masks {tuple(self.masks.shape)} do not match images {tuple(self.images.shape)}")
            if self.n_classes < 2:
                raise ValueError("index masks need n_classes >= 2 (background included)")
            if int(self.masks.max()) >= self.n_classes or int(self.masks.min()) < 0:
                raise ValueError(f"mask labels must lie in 0..{self.n_classes - 1}")
            self.masks = self.masks.to(torch.uint8)
        else:
            self.n_classes = 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, idx: Tensor, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """Images ``(B, C, H, W)`` and one-hot masks ``(B, n_classes, H, W)`` (or None) on ``device``."""
        images = self.images[idx].to(device, torch.float32, non_blocking=True)
        if self.masks is None:
            return images, None
        labels = self.masks[idx].to(device, non_blocking=True).long()  # (B, H, W)
        return images, F.one_hot(labels, self.n_classes).permute(0, 3, 1, 2).float()


class InfiniteSampler:
    """Endless shuffled epochs of dataset indices from its own generator; its state makes resumes exact."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self, count: int) -> Tensor:
        """The next ``count`` indices ``(count,)``, crossing into a new epoch as needed."""
        out = []
        while count > 0:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
            take = min(count, self.n - self.pos)
            out.append(self.perm[self.pos : self.pos + take])
            self.pos, count = self.pos + take, count - take
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"n": self.n, "generator": self.generator.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n:
            raise ValueError(f"the checkpoint was trained on {state['n']} images, this data set has {self.n}")
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    kimg: float
    aborted: bool
    checkpoint: Path | None  # latest.pt (rank 0; None on other ranks)
    best_checkpoint: Path | None
    best_metric: float | None
    stats: dict  # the last tick's stats line
    metrics: list[dict]  # every metrics.jsonl line of this run so far
    G: nn.Module | None = field(default=None, repr=False)  # the final networks of this rank (G_ema in eval mode)
    D: nn.Module | None = field(default=None, repr=False)
    G_ema: nn.Module | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (no-ops when world_size == 1).


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    created_group: bool = False

    @property
    def on(self) -> bool:
        return self.world_size > 1


def _setup_distributed(device: str | torch.device) -> tuple[_Dist, torch.device]:
    """Join the torchrun process group if the environment says so; pick this rank's device."""
    device = torch.device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    return _Dist(rank, world_size, created), device


def _wrap_ddp(module: nn.Module, d: _Dist, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when distributed (gradients averaged in backward), else itself.

    Buffers are not broadcast at every forward (D runs several forwards per step, and the unwrapped module is
    used too): the loop copies rank 0's buffers once per step instead. Wrapping broadcasts rank 0's weights
    and buffers.
    """
    if not d.on:
        return module
    # D's 1-channel output layers get gradients whose strides differ from the bucket's only in a size-1
    # dimension (the same memory layout); the reducer warns about it on every rank, for nothing.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False
    )


def _broadcast_module(module: nn.Module, d: _Dist, *, params: bool = True) -> None:
    """Rank 0's buffers (w_avg, BatchNorm statistics) and optionally parameters, copied to every rank."""
    if not d.on:
        return
    tensors = (list(module.parameters()) if params else []) + list(module.buffers())
    for t in tensors:
        dist.broadcast(t.data, src=0)


def _all_gather(t: Tensor, d: _Dist) -> Tensor:
    if not d.on:
        return t
    parts = [torch.empty_like(t) for _ in range(d.world_size)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


# ----------------------------------------------------------------------------------------------------------------
# RNG state (checkpointed per rank).


def _rank_seed(seed: int, rank: int, stream: int) -> int:
    """Distinct, reproducible seeds per (run seed, rank, stream)."""
    return (seed * 1_000_003 + rank * 7919 + stream * 104_729) % (2**63)


def _rng_state(device: torch.device, aug_generator: torch.Generator) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        # numpy's state as plain tensors/ints so checkpoints load with torch.load(weights_only=True).
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
        "augment": aug_generator.get_state(),
    }


def _set_rng_state(state: dict, device: torch.device, aug_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    random.setstate(_as_tuple(state["python"]))
    aug_generator.set_state(state["augment"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


# ----------------------------------------------------------------------------------------------------------------
# Sampling and checkpoints (public).


def _is_style_based(G: nn.Module) -> bool:
    return hasattr(G, "mapping") and hasattr(G, "synthesis")


def _seed_z(seeds: list[int], z_dim: int) -> Tensor:
    """``(N, z_dim)`` latents, one CPU generator per seed: device- and batch-independent."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@torch.no_grad()
def sample(
    G: nn.Module,
    *,
    seeds: list[int],
    psi: float = 1.0,
    cond: Tensor | None = None,
    device: str | torch.device = "cpu",
    noise_mode: str = "const",
    batch_size: int = 32,
) -> tuple[Tensor, Tensor | None]:
    """Generate one sample per seed: ``(images (N, img_channels, H, W) in [-1, 1], masks (N, H, W) uint8 | None)``.

    Each seed's z comes from its own generator, so ``(checkpoint, seed)`` identifies an image. ``psi < 1``
    (truncation) needs a style-based G. With ``noise_mode="random"`` the per-layer noise is seeded per sample
    too (one forward per sample). A conditional G (SPADE) needs ``cond``: one mask per seed, one-hot
    ``(N, n_classes, H, W)`` or indices ``(N, H, W)``; the returned masks are then those masks. For an
    unconditional G with classes they are the argmax of its class channels.
    """
    device = torch.device(device)
    cfg = G.cfg
    style = _is_style_based(G)
    if psi != 1.0 and not style:
        raise ValueError("truncation (psi != 1) needs a style-based generator")
    conditional = cond is not None  # an unconditional G given a mask (or the reverse) raises in its forward
    if conditional:
        if len(cond) != len(seeds):
            raise ValueError(f"cond has {len(cond)} masks for {len(seeds)} seeds")
        if cond.ndim == 3:
            cond = F.one_hot(cond.long(), cfg.n_classes).permute(0, 3, 1, 2)
        cond = cond.float()
    was_training = G.training
    G.eval()
    outs = []
    try:
        z_all = _seed_z(seeds, G.z_dim)
        step = 1 if (style and noise_mode == "random") else batch_size
        for start in range(0, len(seeds), step):
            z = z_all[start : start + step].to(device)
            c = cond[start : start + step].to(device) if conditional else None
            if style:
                if noise_mode == "random":
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                        torch.manual_seed(int(seeds[start]))
                        outs.append(G(z, c, psi=psi, noise_mode=noise_mode).float().cpu())
                else:
                    outs.append(G(z, c, psi=psi, noise_mode=noise_mode).float().cpu())
            else:
                outs.append(G(z, c).float().cpu())
    finally:
        G.train(was_training)
    out = torch.cat(outs) if outs else torch.empty(0, cfg.out_channels, cfg.resolution, cfg.resolution)
    images = out[:, : cfg.img_channels].clamp(-1, 1)
    if conditional:
        masks = cond.argmax(dim=1).to(torch.uint8).cpu()
    elif cfg.n_classes > 0:
        masks = out[:, cfg.img_channels :].argmax(dim=1).to(torch.uint8)
    else:
        masks = None
    return images, masks


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig]:
    """``(G_ema in eval mode without grads, its TrainConfig)`` from a checkpoint written by :func:`train`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    cfg = TrainConfig.from_dict(state["config"])
    G, _ = _build(cfg)
    G.load_state_dict(state["G_ema"])
    return G.to(device).eval().requires_grad_(False), cfg


def _build(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    return get_gan(cfg.arch).build(cfg.model_config())


# ----------------------------------------------------------------------------------------------------------------
# Small helpers.


def _make_optimizer(module: nn.Module, cfg: TrainConfig, lr: float, reg_interval: int) -> torch.optim.Optimizer:
    """Adam or RMSprop; with lazy regularisation every ``reg_interval`` steps, lr and betas are rescaled by
    ``interval / (interval + 1)`` so the extra regulariser steps keep the effective optimiser the same (SG2)."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval > 1 else 1.0
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(module.parameters(), lr=lr * ratio)
    b1, b2 = cfg.betas
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(b1**ratio, b2**ratio), eps=1e-8)


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes a hard link to (or copy of) ``src``, atomically; pruning ``src`` later keeps ``dst``."""
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop lines written after the checkpoint being resumed (a run that died kept ticking past it)."""
    if not path.exists():
        return
    keep = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= max_step
    ]
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def _peak_rss_mb() -> float | None:
    if resource is None:
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)  # bytes on macOS, KiB on Linux


# ----------------------------------------------------------------------------------------------------------------
# The training loop.


def train(
    cfg: TrainConfig,
    data: TrainData,
    run_dir: str | Path,
    *,
    resume_from: str | Path | None = None,
    progress_fn: Callable[[float, float, dict], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
    log_fn: Callable[[str], None] | None = None,
    device: str | torch.device = "cpu",
    feature_metrics: FeatureMetricsFn | None = None,
) -> TrainResult:
    """Train ``cfg.arch`` on ``data`` for ``cfg.kimg`` thousand real images; see the module docstring.

    ``progress_fn(cur_kimg, total_kimg, stats)`` is called and ``abort_fn()`` polled once per tick (rank 0;
    the abort decision is broadcast); an abort writes a checkpoint before returning. ``resume_from`` continues
    a checkpoint exactly (the model fields of ``cfg`` must match; ``kimg`` and bookkeeping may differ).
    ``feature_metrics`` (rank 0 only) computes ``cfg.feature_metrics`` at each snapshot; see FeatureMetricsFn.
    """
    d, device = _setup_distributed(device)
    try:
        return _train(cfg, data, Path(run_dir), d, device, resume_from, progress_fn, abort_fn, log_fn, feature_metrics)
    finally:
        if d.created_group:
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    data: TrainData,
    run_dir: Path,
    d: _Dist,
    device: torch.device,
    resume_from: str | Path | None,
    progress_fn: Callable[[float, float, dict], None] | None,
    abort_fn: Callable[[], bool] | None,
    log_fn: Callable[[str], None] | None,
    feature_metrics: FeatureMetricsFn | None,
) -> TrainResult:
    cfg.validate()
    is_main = d.rank == 0
    if is_main and cfg.feature_metrics and feature_metrics is None:
        raise ValueError(
            f"this run computes {'/'.join(cfg.feature_metrics).upper()} at its snapshots, which needs the "
            "FID-Inception weights: install them, or set feature_metrics to [] (and metric to 'swd')"
        )
    log = log_fn if (log_fn is not None and is_main) else (lambda _msg: None)
    cuda = device.type == "cuda"

    # 1. Check the data against the configuration.
    if cfg.batch_size % d.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {d.world_size} ranks")
    batch_gpu = cfg.batch_size // d.world_size
    if tuple(data.images.shape[1:]) != (cfg.img_channels, cfg.resolution, cfg.resolution):
        raise ValueError(
            f"images {tuple(data.images.shape[1:])} do not match the config "
            f"({cfg.img_channels}, {cfg.resolution}, {cfg.resolution})"
        )
    if data.n_classes != cfg.n_classes:
        raise ValueError(f"the data have {data.n_classes} mask classes, the config {cfg.n_classes}")

    # 2. Performance switches (CUDA only: on CPU they would change nothing or fail).
    amp = cfg.amp and cuda
    memory_format = torch.channels_last if (cfg.channels_last and cuda) else torch.contiguous_format
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        torch.cuda.reset_peak_memory_stats(device)

    # 3. Networks: the same initial weights on every rank (seeded; the DDP wrappers below broadcast them too).
    torch.manual_seed(cfg.seed)
    G, D = _build(cfg)
    G, D = G.to(device, memory_format=memory_format).train(), D.to(device, memory_format=memory_format).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    style = _is_style_based(G)
    if cfg.pl_weight > 0 and not style:
        raise ValueError("pl_weight > 0 needs a style-based generator (G.mapping / G.synthesis)")
    if cfg.feature_matching > 0 and not hasattr(D, "forward_with_features"):
        raise ValueError(f"{cfg.arch}: feature_matching needs D.forward_with_features")
    lazy_r1 = cfg.r1_gamma > 0 and cfg.r1_interval > 1
    lazy_pl = cfg.pl_weight > 0
    opt_G = _make_optimizer(G, cfg, cfg.lr_g, cfg.pl_interval if lazy_pl else 1)
    opt_D = _make_optimizer(D, cfg, cfg.lr_d, cfg.r1_interval if lazy_r1 else 1)
    scaler_G = torch.amp.GradScaler(device.type, enabled=amp)
    scaler_D = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = losses.LOSSES[cfg.loss]

    # 4. Randomness: the data order is shared by all ranks (each takes its slice of the global batch); the
    #    rest (z, noise, style mixing, augmentation) differs per rank.
    sampler = InfiniteSampler(len(data), cfg.seed)
    torch.manual_seed(_rank_seed(cfg.seed, d.rank, 1))
    np.random.seed(_rank_seed(cfg.seed, d.rank, 2) % 2**32)
    random.seed(_rank_seed(cfg.seed, d.rank, 3))
    aug_generator = torch.Generator(device=device).manual_seed(_rank_seed(cfg.seed, d.rank, 4))
    ada = (
        AdaptiveAugment(cfg.ada_target, cfg.ada_interval, cfg.ada_kimg, p=cfg.augment_p)
        if cfg.augment == "ada"
        else None
    )
    pl_mean = torch.zeros([], device=device)

    # 5. Counters and history, then resume.
    step, cur_nimg, tick, last_snapshot_nimg = 0, 0, 0, 0
    metric_history: list[dict] = []
    best: dict | None = None
    train_seconds = 0.0
    ckpt_dir, grid_dir = run_dir / "checkpoints", run_dir / "grids"
    if resume_from is not None:
        state = torch.load(resume_from, map_location="cpu", weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{resume_from} is not a {CHECKPOINT_FORMAT} checkpoint")
        saved = TrainConfig.from_dict(state["config"])
        mismatched = [k for k in ("arch", *_MODEL_FIELDS) if getattr(saved, k) != getattr(cfg, k)]
        if mismatched:
            raise ValueError(f"cannot resume: the checkpoint differs in {mismatched}")
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        G_ema.load_state_dict(state["G_ema"])
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        scaler_G.load_state_dict(state["scaler_G"])
        scaler_D.load_state_dict(state["scaler_D"])
        if ada is not None and state["augment"] is not None:
            ada.load_state_dict(state["augment"])
        pl_mean.copy_(state["pl_mean"])
        sampler.load_state_dict(state["sampler"])
        if state["world_size"] == d.world_size:
            _set_rng_state(state["rng"][d.rank], device, aug_generator)
        else:  # a different rank count cannot continue each rank's stream: reseed from the step
            log(f"resuming on {d.world_size} ranks from {state['world_size']}: RNG streams reseeded, not exact")
            torch.manual_seed(_rank_seed(cfg.seed + state["step"], d.rank, 1))
            aug_generator.manual_seed(_rank_seed(cfg.seed + state["step"], d.rank, 4))
        step, cur_nimg, tick = state["step"], state["cur_nimg"], state["tick"]
        last_snapshot_nimg = state["last_snapshot_nimg"]
        metric_history, best, train_seconds = list(state["metrics"]), state["best"], float(state["train_seconds"])
        del state
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        grid_dir.mkdir(exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
        if resume_from is not None:
            _truncate_jsonl(run_dir / "stats.jsonl", step)
            _truncate_jsonl(run_dir / "metrics.jsonl", step)
        else:
            for name in ("stats.jsonl", "metrics.jsonl"):
                (run_dir / name).unlink(missing_ok=True)

    # Fixed real images for the grids and the metric (their own generator: the training RNG is untouched).
    fixed_idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.metric_seed))
    grid_seeds = list(range(cfg.grid_seed, cfg.grid_seed + cfg.n_grid))
    grid_reals, grid_masks = data.batch(fixed_idx[: cfg.n_grid].repeat(cfg.n_grid)[: cfg.n_grid], torch.device("cpu"))
    # The metric's real images: one tensor for the whole run, so a feature_metrics function may cache them.
    metric_reals, metric_masks = data.batch(fixed_idx[: min(cfg.metric_n, len(data))], torch.device("cpu"))
    if is_main and resume_from is None:
        save_grid(grid_reals, None if grid_masks is None else grid_masks.argmax(1), grid_dir / "reals.png")

    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if amp else nullcontext
    # The wrappers used for the forwards whose backward updates that network (G_train, D_train are G, D when
    # not distributed). Wrapped after a resume has loaded the weights, so the broadcast carries them.
    G_train, D_train = _wrap_ddp(G, d, device), _wrap_ddp(D, d, device)
    _broadcast_module(G_ema, d)

    # -- pieces of one step -----------------------------------------------------------------------------------

    def next_real() -> tuple[Tensor, Tensor | None]:
        """This rank's slice of the next global batch: (D's real input, cond for G and D)."""
        idx = sampler.next(cfg.batch_size)[d.rank * batch_gpu : (d.rank + 1) * batch_gpu]
        images, onehot = data.batch(idx, device)  # (b, C, H, W), (b, K, H, W) | None
        images = images.contiguous(memory_format=memory_format)
        if cfg.conditional:
            return images, onehot
        return (images if onehot is None else torch.cat([images, onehot], dim=1)), None

    def augment_input(x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """D-side augmentation; a conditional D's mask is transformed together with its image."""
        if cfg.augment == "none":
            return x, cond
        p = ada.p if ada is not None else (cfg.augment_p or None)
        xc = x if cond is None else torch.cat([x, cond], dim=1)
        xc = augment(xc, img_channels=cfg.img_channels, policy=cfg.augment, p=p, generator=aug_generator)
        return (xc, None) if cond is None else (xc[:, : x.shape[1]], xc[:, x.shape[1] :])

    def run_D(x: Tensor, cond: Tensor | None = None) -> Tensor:
        """D on augmented inputs, for D's own updates (through the DDP wrapper when distributed)."""
        return D_train(*augment_input(x, cond))  # (b,)

    def run_D_frozen(x: Tensor, cond: Tensor | None = None) -> Tensor:
        """D on augmented inputs inside G's update: D's weights take no gradient."""
        return D(*augment_input(x, cond))  # (b,)

    def optimizer_step(module: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: Tensor):
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # DDP averages the gradients over ranks here
        if scaler.is_enabled():
            scaler.unscale_(opt)  # the scaler skips the step on inf/NaN itself
        else:
            for p in module.parameters():  # SG2's guard: one bad batch must not poison the weights
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        scaler.step(opt)
        scaler.update()

    tick_sums: dict[str, Tensor] = {}
    tick_counts: dict[str, int] = {}

    def accumulate(name: str, value: Tensor) -> None:
        # Detached device tensors: no host sync per step.
        tick_sums[name] = tick_sums.get(name, 0) + value.detach().float()
        tick_counts[name] = tick_counts.get(name, 0) + 1

    def training_step() -> None:
        nonlocal cur_nimg
        nimg_at_start = cur_nimg
        # 1. Discriminator: n_critic steps, each on a fresh real batch.
        G.requires_grad_(False)
        D.requires_grad_(True)
        for _ in range(cfg.n_critic):
            x_real, cond = next_real()
            z = torch.randn(batch_gpu, cfg.z_dim, device=device)
            with autocast():
                with torch.no_grad():
                    x_fake = G(z, cond)
                d_real, d_fake = run_D(x_real, cond).float(), run_D(x_fake, cond).float()
                loss_D = loss_fn.d_loss(d_real, d_fake)
            total = loss_D
            if cfg.gp_lambda > 0:
                gp = losses.gradient_penalty(run_D, x_real, x_fake.float(), cond)
                total = total + cfg.gp_lambda * gp
                accumulate("loss_gp", gp)
            if cfg.r1_gamma > 0 and not lazy_r1:
                r1 = losses.r1_penalty(run_D, x_real, cond)
                total = total + cfg.r1_gamma / 2 * r1
                accumulate("loss_r1", r1)
            optimizer_step(D, opt_D, scaler_D, total)
            if cfg.weight_clip is not None:
                losses.clip_weights(D, cfg.weight_clip)
            if ada is not None:
                ada.update(_all_gather(d_real.detach(), d), cfg.batch_size)
            accumulate("loss_D", loss_D)
            accumulate("D_real", d_real.mean())
            accumulate("D_fake", d_fake.mean())
            cur_nimg += cfg.batch_size

        # 2. Lazy R1 on the last real batch, as its own optimiser step, weighted by the interval.
        if lazy_r1 and step % cfg.r1_interval == 0:
            outputs: list[Tensor] = []

            def run_D_keep(x: Tensor, c: Tensor | None = None) -> Tensor:
                outputs.append(run_D(x, c))
                return outputs[-1]

            r1 = losses.r1_penalty(run_D_keep, x_real, cond)
            total = r1 * (cfg.r1_gamma / 2 * cfg.r1_interval)
            if d.on:  # D's last bias has no part in grad_x D; DDP wants a gradient for every parameter
                total = total + outputs[0].sum() * 0
            optimizer_step(D, opt_D, scaler_D, total)
            accumulate("loss_r1", r1)

        # 3. Generator (SPADE reuses the last real masks as its condition).
        G.requires_grad_(True)
        D.requires_grad_(False)
        z = torch.randn(batch_gpu, cfg.z_dim, device=device)
        with autocast():
            x_fake = G_train(z, cond)
            if cfg.feature_matching > 0:
                # Same augmentation draws for the real and fake of each pair, so their features are comparable.
                aug_state = aug_generator.get_state()
                with torch.no_grad():
                    _, real_feats = D.forward_with_features(*augment_input(x_real, cond))
                aug_generator.set_state(aug_state)
                d_fake_g, fake_feats = D.forward_with_features(*augment_input(x_fake, cond))
                fm = losses.feature_matching_loss(real_feats, fake_feats)
            else:
                d_fake_g = run_D_frozen(x_fake, cond)
            loss_G = loss_fn.g_loss(d_fake_g.float())
        total = loss_G
        if cfg.feature_matching > 0:
            total = total + cfg.feature_matching * fm.float()
            accumulate("loss_fm", fm)
        optimizer_step(G, opt_G, scaler_G, total)
        accumulate("loss_G", loss_G)

        # 4. Lazy path-length regularisation (SG2): |J_w^T y| should be constant over w.
        if lazy_pl and step % cfg.pl_interval == 0:
            b = max(1, batch_gpu // cfg.pl_batch_shrink)
            # ws (b, num_ws, w_dim), style-mixed as in the main step; img (b, C, H, W)
            img, ws = G_train(torch.randn(b, cfg.z_dim, device=device), return_ws=True)
            pl_noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
            (pl_grad,) = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
            lengths = pl_grad.square().sum(dim=2).mean(dim=1).sqrt()  # (b,)
            batch_mean = lengths.mean().detach()
            if d.on:
                dist.all_reduce(batch_mean)
                batch_mean /= d.world_size
            pl_mean.copy_(pl_mean.lerp(batch_mean, cfg.pl_decay))
            pl_penalty = (lengths - pl_mean).square().mean()
            total = pl_penalty * (cfg.pl_weight * cfg.pl_interval)
            if d.on:  # output biases have no part in the Jacobian; DDP wants a gradient for every parameter
                total = total + img.sum() * 0
            optimizer_step(G, opt_G, scaler_G, total)
            accumulate("loss_pl", pl_penalty)

        # 5. Every rank keeps rank 0's buffers (w_avg, BatchNorm statistics); then G_ema, an
        #    exponential moving average with a half-life in images (ramped up early on).
        _broadcast_module(G, d, params=False)
        _broadcast_module(D, d, params=False)
        with torch.no_grad():
            ema_nimg = cfg.ema_kimg * 1000
            if cfg.ema_rampup:
                ema_nimg = min(ema_nimg, nimg_at_start * cfg.ema_rampup)
            beta = 0.5 ** (cfg.batch_size / max(ema_nimg, 1e-8))
            for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b_src in zip(G_ema.buffers(), G.buffers(), strict=True):
                b_ema.copy_(b_src)

    # -- snapshot: grid, metric, checkpoint -------------------------------------------------------------------

    def snapshot() -> None:
        nonlocal best
        rng = _rng_state(device, aug_generator)
        if d.on:  # every rank's RNG, so a resume on the same number of ranks continues each stream
            rng_all: list[Any] = [None] * d.world_size
            dist.all_gather_object(rng_all, rng)
        else:
            rng_all = [rng]
        if not is_main:
            return
        name = f"ckpt-{step:07d}.pt"
        kimg = cur_nimg / 1000
        # Sampling must not consume training randomness: exact resume depends on it.
        with torch.random.fork_rng(devices=[device] if cuda else []):
            grid_cond = grid_masks if cfg.conditional else None
            images, masks = sample(G_ema, seeds=grid_seeds, cond=grid_cond, device=device)
            save_grid(images, masks, grid_dir / f"grid-{step:07d}.png")
            improved = False
            if cfg.metric != "none":
                n = len(metric_reals)
                reals, real_masks = metric_reals, metric_masks
                fakes, _ = sample(
                    G_ema,
                    seeds=[cfg.metric_seed + i for i in range(n)],
                    device=device,
                    cond=real_masks if cfg.conditional else None,
                )
                swd = sliced_wasserstein_distance(fakes, reals, seed=cfg.metric_seed)
                record = {
                    "step": step,
                    "kimg": round(kimg, 4),
                    "metric": cfg.metric,
                    "value": None,
                    "swd": swd["swd_avg"],  # SWD of Laplacian-pyramid 7x7 patches of the image channels (ProGAN)
                    "levels": swd,
                    "n_fake": n,
                    "n_real": n,
                    "checkpoint": name,
                }
                if cfg.feature_metrics:
                    try:
                        values = feature_metrics(fakes, reals)
                        record.update({m: float(values[m]) for m in cfg.feature_metrics})
                    except Exception as exc:  # e.g. NaN samples: FID has no value; the run must go on
                        log(f"snapshot {name}: {'/'.join(cfg.feature_metrics)} failed: {exc}")
                        record.update({m: float("nan") for m in cfg.feature_metrics})
                        record["feature_metrics_error"] = f"{type(exc).__name__}: {exc}"
                record["value"] = record[cfg.metric]
                metric_history.append(record)
                _append_jsonl(run_dir / "metrics.jsonl", record)
                # A NaN snapshot (diverged samples, failed metric) is never the best.
                if math.isfinite(record["value"]) and (best is None or record["value"] < best["value"]):
                    best, improved = {"value": record["value"], "step": step, "kimg": record["kimg"]}, True
        path = ckpt_dir / name
        tmp = path.with_name(name + ".tmp")
        torch.save(_checkpoint_state(rng_all), tmp)
        os.replace(tmp, path)
        _link_or_copy(path, ckpt_dir / "latest.pt")
        if improved:
            _link_or_copy(path, ckpt_dir / "best.pt")
        if cfg.keep_checkpoints > 0:
            for old in sorted(ckpt_dir.glob("ckpt-*.pt"))[: -cfg.keep_checkpoints]:
                old.unlink()

    def _checkpoint_state(rng_all: list[dict]) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": cfg.to_dict(),
            "step": step,
            "cur_nimg": cur_nimg,
            "tick": tick,
            "last_snapshot_nimg": cur_nimg,
            "train_seconds": train_seconds,
            "G": G.state_dict(),
            "D": D.state_dict(),
            "G_ema": G_ema.state_dict(),
            "opt_G": opt_G.state_dict(),
            "opt_D": opt_D.state_dict(),
            "scaler_G": scaler_G.state_dict(),
            "scaler_D": scaler_D.state_dict(),
            "augment": ada.state_dict() if ada is not None else None,
            "pl_mean": pl_mean.detach().cpu(),
            "sampler": sampler.state_dict(),
            "rng": rng_all,
            "world_size": d.world_size,
            "metrics": list(metric_history),
            "best": best,
            "versions": {"torch": str(torch.__version__), "python": sys.version.split()[0]},
        }

    # -- main loop -----------------------------------------------------------------------------------------------

    total_nimg = int(round(cfg.kimg * 1000))
    tick_nimg, snap_nimg = cfg.tick_kimg * 1000, cfg.snapshot_kimg * 1000
    tick_start_nimg, tick_start_time = cur_nimg, time.time()
    stats: dict = {}
    aborted = False
    log(
        f"{cfg.arch}: {total_nimg / 1000:g} kimg, batch {cfg.batch_size} on {d.world_size} x {device}, from step {step}"
    )
    while cur_nimg < total_nimg:
        training_step()
        step += 1
        done = cur_nimg >= total_nimg
        if not done and cur_nimg < tick_start_nimg + tick_nimg:
            continue

        # Tick: stats line, progress, abort check, maybe a snapshot.
        tick += 1
        now = time.time()
        tick_time = now - tick_start_time
        train_seconds += tick_time
        names = sorted(tick_sums)
        means = torch.stack([tick_sums[k] / tick_counts[k] for k in names]) if names else torch.zeros(0)
        if d.on and names:
            dist.all_reduce(means)
            means /= d.world_size
        tick_kimg_done = (cur_nimg - tick_start_nimg) / 1000
        stats = {
            "tick": tick,
            "step": step,
            "kimg": round(cur_nimg / 1000, 4),
            **{k: float(v) for k, v in zip(names, means.tolist(), strict=True)},
            "pl_mean": float(pl_mean) if lazy_pl else None,
            "aug_p": ada.p if ada is not None else (0.0 if cfg.augment == "none" else cfg.augment_p or 1.0),
            "sec_per_tick": round(tick_time, 3),
            "sec_per_kimg": round(tick_time / max(tick_kimg_done, 1e-9), 3),
            "img_per_s": round(tick_kimg_done * 1000 / max(tick_time, 1e-9), 2),
            "cpu_peak_mb": _peak_rss_mb(),
            "gpu_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if cuda else None,
            "train_seconds": round(train_seconds, 2),
            "timestamp": now,
        }
        tick_sums.clear()
        tick_counts.clear()
        if is_main:
            _append_jsonl(run_dir / "stats.jsonl", stats)
            log(
                f"tick {tick} kimg {stats['kimg']:.3f} step {step} sec/kimg {stats['sec_per_kimg']:.2f} "
                f"loss_G {stats.get('loss_G', float('nan')):.4f} loss_D {stats.get('loss_D', float('nan')):.4f} "
                f"aug_p {stats['aug_p']:.3f} cpu_mb {stats['cpu_peak_mb']} gpu_mb {stats['gpu_peak_mb']}"
            )
            if progress_fn is not None:
                progress_fn(cur_nimg / 1000, total_nimg / 1000, stats)
        flag = torch.tensor([int(bool(is_main and abort_fn is not None and abort_fn()))], device=device)
        if d.on:
            dist.broadcast(flag, src=0)
        aborted = bool(flag.item()) and not done
        if done or aborted or cur_nimg // snap_nimg > last_snapshot_nimg // snap_nimg:
            snapshot()
            last_snapshot_nimg = cur_nimg
        if aborted:
            log(f"aborted at step {step}, kimg {cur_nimg / 1000:.3f}; checkpoint written")
            break
        tick_start_nimg, tick_start_time = cur_nimg, time.time()

    latest = ckpt_dir / "latest.pt"
    return TrainResult(
        run_dir=run_dir,
        step=step,
        kimg=cur_nimg / 1000,
        aborted=aborted,
        checkpoint=latest if is_main and latest.exists() else None,
        best_checkpoint=(ckpt_dir / "best.pt") if is_main and best is not None else None,
        best_metric=best["value"] if best is not None else None,
        stats=stats,
        metrics=list(metric_history),
        G=G,
        D=D,
        G_ema=G_ema,
    )
