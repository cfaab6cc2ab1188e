"""A standard 2D U-Net and its training loop, for the "train on synthetic, test on real" Dice experiment.

Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015
(arXiv 1505.04597), with the usual modern changes: padded 3x3 convolutions (output size = input size),
normalisation after each convolution (BatchNorm or InstanceNorm as in nnU-Net), transposed-convolution
upsampling. Loss: cross-entropy + soft Dice over foreground classes (nnU-Net's default "DC_and_CE"). The model
kept is the one with the best validation foreground-mean Dice (:mod:`evaluation.metrics.dice` conventions).

Determinism: weights are initialised and batches drawn from generators seeded by ``seed``, without touching
the global RNG. On CPU the result is bit-identical across runs with the same thread count; on CUDA, call
``torch.use_deterministic_algorithms(True)`` (and set ``CUBLAS_WORKSPACE_CONFIG``) for the same guarantee.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .dice import dice_scores


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"norm must be 'batch' or 'instance', not {kind!r}")


class DoubleConv(nn.Module):
    """(conv 3x3 -> norm -> ReLU) x 2, size-preserving."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNet(nn.Module):
    """U-Net with ``depth`` down-sampling levels (4 = the original); widths ``base_width * 2**level``.

    Input ``(B, in_channels, H, W)`` with H and W divisible by ``2**depth`` (:func:`predict` pads for you);
    output logits ``(B, n_classes, H, W)``.
    """

    def __init__(
        self, in_channels: int, n_classes: int, *, base_width: int = 32, depth: int = 4, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.in_channels, self.n_classes, self.depth = in_channels, n_classes, depth
        # Stored with a checkpoint, so UNet(**config) rebuilds the same network before load_state_dict.
        self.config = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "base_width": base_width,
            "depth": depth,
            "norm": norm,
        }
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0], norm)])
        self.down.extend(DoubleConv(widths[i], widths[i + 1], norm) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.up_conv = nn.ModuleList(DoubleConv(2 * widths[i], widths[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))  # (B, w_i, H/2^i, W/2^i)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip connection
        for up, conv in zip(self.up, self.up_conv):
            x = up(x)  # (B, w_i, 2h, 2w)
            x = conv(torch.cat([skips.pop(), x], dim=1))
        return self.head(x)  # (B, n_classes, H, W)


@dataclass
class TrainResult:
    """The selected model (best validation Dice) and the training history."""

    model: UNet
    history: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    best_val_dice: float = float("nan")
    aborted: bool = False
    seconds: float = 0.0


def _to_images(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim == 3:
        t = t[:, None]  # (N, H, W) -> (N, 1, H, W)
    if t.ndim != 4 or not t.is_floating_point():
        raise ValueError(f"images must be float (N, C, H, W) in [0, 1], got {tuple(t.shape)} {t.dtype}")
    return t.float()


def _to_masks(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 3 or t.is_floating_point():
        raise ValueError(f"masks must be integer class indices (N, H, W), got {tuple(t.shape)} {t.dtype}")
    return t.long()


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Replicate rather than zero padding: a black border would look like background to the network.
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - mean soft Dice over foreground classes, pooled over the batch (nnU-Net's batch Dice)."""
    probs = logits.softmax(dim=1)[:, 1:]  # (B, K-1, H, W)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probs.dtype)
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    return 1 - ((2 * inter + eps) / (denom + eps)).mean()


@torch.no_grad()
def predict(
    model: UNet, images: np.ndarray | torch.Tensor, *, batch_size: int = 16, device: str | torch.device | None = None
) -> np.ndarray:
    """Label maps ``(N, H, W)`` int64 (argmax of the logits); pads to a multiple of ``2**depth`` and crops back."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model = model.to(device).eval()
    x = _to_images(images)
    out = []
    for start in range(0, len(x), batch_size):
        batch, (h, w) = _pad_to_multiple(x[start : start + batch_size].to(device), 2**model.depth)
        out.append(model(batch)[:, :, :h, :w].argmax(dim=1).cpu())  # (B, H, W)
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, *x.shape[-2:]), dtype=np.int64)


def evaluate(model: UNet, images: np.ndarray | torch.Tensor, masks: np.ndarray, *, batch_size: int = 16) -> float:
    """Foreground-mean Dice of ``model`` on ``(images, masks)`` (NaN when no class is present anywhere)."""
    pred = predict(model, images, batch_size=batch_size)
    return float(dice_scores(pred, np.asarray(masks), model.n_classes)["foreground_mean"])


def train_unet(
    train_images: np.ndarray | torch.Tensor,
    train_masks: np.ndarray | torch.Tensor,
    val_images: np.ndarray | torch.Tensor,
    val_masks: np.ndarray | torch.Tensor,
    *,
    n_classes: int,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    base_width: int = 32,
    depth: int = 4,
    norm: str = "batch",
    eval_every: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress_fn: Callable[[int, int, dict[str, float]], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a U-Net on ``train_*`` and keep the weights with the best validation foreground Dice.

    Budget: ``steps`` optimiser steps, or ``epochs`` passes over the training set (exactly one of the two).
    Validation runs every ``eval_every`` steps (default: once per epoch) and at the end. Adam with a cosine
    learning-rate decay; loss = cross-entropy + soft Dice. ``progress_fn(step, total_steps, info)`` is called
    after each validation; ``abort_fn()`` is called after every step and when it returns True training stops
    and the best model validated so far (or the initial one) is returned with ``aborted=True``. Images ``(N, C, H, W)`` in [0, 1] (H, W divisible by ``2**depth``),
    masks ``(N, H, W)`` int class indices < ``n_classes``.
    """
    started = time.monotonic()
    x_train, y_train = _to_images(train_images), _to_masks(train_masks)
    x_val, y_val = _to_images(val_images), _to_masks(val_masks)
    if len(x_train) != len(y_train) or x_train.shape[-2:] != y_train.shape[-2:]:
        raise ValueError("training images and masks do not match in number or size")
    if len(x_val) != len(y_val) or x_val.shape[-2:] != y_val.shape[-2:]:
        raise ValueError("validation images and masks do not match in number or size")
    if int(y_train.max()) >= n_classes or int(y_train.min()) < 0:
        raise ValueError(f"training masks hold labels outside 0..{n_classes - 1}")
    multiple = 2**depth
    if x_train.shape[-1] % multiple or x_train.shape[-2] % multiple:
        raise ValueError(f"image size {tuple(x_train.shape[-2:])} must be divisible by {multiple} (depth {depth})")
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps or epochs")
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total = steps if steps is not None else epochs * steps_per_epoch
    eval_every = eval_every or steps_per_epoch
    device = torch.device(device)

    # 1. Model and optimiser, seeded locally so callers' RNG state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UNet(x_train.shape[1], n_classes, base_width=base_width, depth=depth, norm=norm)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
    gen = torch.Generator().manual_seed(seed)

    best_state, best_dice, best_step = copy.deepcopy(model.state_dict()), -math.inf, 0
    history: list[dict[str, float]] = []
    aborted, step, running, seen = False, 0, 0.0, 0
    order = torch.randperm(len(x_train), generator=gen)
    cursor = 0
    # 2. Optimisation: reshuffle at each epoch boundary; the last partial batch of an epoch is kept.
    while step < total:
        if cursor >= len(order):
            order, cursor = torch.randperm(len(x_train), generator=gen), 0
        idx = order[cursor : cursor + batch_size]
        cursor += batch_size
        xb, yb = x_train[idx].to(device), y_train[idx].to(device)  # (B, C, H, W), (B, H, W)
        model.train()
        logits = model(xb)  # (B, K, H, W)
        loss = F.cross_entropy(logits, yb) + soft_dice_loss(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        running, seen = running + loss.item(), seen + 1

        # 3. Validation and model selection.
        if step % eval_every == 0 or step == total:
            val_dice = evaluate(model, x_val, y_val.numpy())
            info = {"step": step, "epoch": step / steps_per_epoch, "train_loss": running / seen, "val_dice": val_dice}
            history.append(info)
            running, seen = 0.0, 0
            # NaN (no foreground anywhere in validation) never beats a number; the first model is kept then.
            if not math.isnan(val_dice) and val_dice > best_dice:
                best_dice, best_step = val_dice, step
                best_state = copy.deepcopy(model.state_dict())
            if progress_fn is not None:
                progress_fn(step, total, info)
        # Checked every step so a stop request never waits for a whole epoch: keep abort_fn cheap.
        if abort_fn is not None and abort_fn():
            aborted = True
            break

    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        best_step=best_step,
        best_val_dice=best_dice if best_dice > -math.inf else float("nan"),
        aborted=aborted,
        seconds=time.monotonic() - started,
    )
