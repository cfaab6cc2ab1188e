"""The U-Net learns a trivial segmentation, is deterministic by seed, and honours its hooks."""

import numpy as np
import pytest
import torch

from evaluation.metrics.dice import dice_scores
from evaluation.metrics.unet import UNet, predict, train_unet


def discs(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs (label 1) on dark noise: images ``(n, 1, size, size)``, masks ``(n, size, size)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.empty((n, 1, size, size), np.float32)
    masks = np.empty((n, size, size), np.int64)
    for i in range(n):
        cy, cx = rng.uniform(8, size - 8, 2)
        r = rng.uniform(4, 7)
        masks[i] = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2).astype(np.int64)
        images[i, 0] = np.clip(0.2 + 0.6 * masks[i] + 0.1 * rng.standard_normal((size, size)), 0, 1)
    return images, masks


TINY = {"base_width": 4, "depth": 4, "batch_size": 8, "lr": 3e-3}


def test_unet_shapes_and_padding_in_predict():
    model = UNet(3, 4, base_width=2, depth=4, norm="instance")
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4, 32, 32)
    labels = predict(model, np.zeros((3, 3, 20, 28), np.float32))  # not a multiple of 16: padded and cropped
    assert labels.shape == (3, 20, 28) and labels.dtype == np.int64
    rebuilt = UNet(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="norm"):
        UNet(1, 2, norm="group")


def test_learns_discs_on_noise():
    x_train, y_train = discs(60, seed=0)
    x_val, y_val = discs(16, seed=1)
    calls = []
    result = train_unet(
        x_train, y_train, x_val, y_val, n_classes=2, steps=60, eval_every=20, seed=0,
        progress_fn=lambda step, total, info: calls.append((step, total)), **TINY,
    )  # fmt: skip
    assert calls == [(20, 60), (40, 60), (60, 60)]
    assert [h["step"] for h in result.history] == [20, 40, 60]
    assert result.best_val_dice == max(h["val_dice"] for h in result.history)
    assert result.best_val_dice > 0.8
    x_test, y_test = discs(16, seed=2)
    assert dice_scores(predict(result.model, x_test), y_test, 2)["foreground_mean"] > 0.8


def test_same_seed_same_weights_and_abort():
    x, y = discs(12, seed=3)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = [train_unet(x, y, x[:4], y[:4], n_classes=2, steps=6, eval_every=3, seed=5, **TINY) for _ in range(2)]
    finally:
        torch.use_deterministic_algorithms(previous)
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history == runs[1].history

    aborted = train_unet(x, y, x[:4], y[:4], n_classes=2, epochs=5, seed=5, abort_fn=lambda: True, **TINY)
    assert aborted.aborted and aborted.history == []


def test_rejects_bad_inputs():
    x, y = discs(4)
    with pytest.raises(ValueError, match="exactly one"):
        train_unet(x, y, x, y, n_classes=2, seed=0)
    with pytest.raises(ValueError, match="labels"):
        train_unet(x, y + 2, x, y, n_classes=2, steps=1)
    with pytest.raises(ValueError, match="divisible"):
        train_unet(x[:, :, :30, :30], y[:, :30, :30], x, y, n_classes=2, steps=1)
