"""FID-Inception: architecture equal to pytorch-fid's, same forward, weights loader."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from evaluation.metrics import features
from evaluation.metrics.features import (
    INCEPTION_FILENAME,
    INCEPTION_SHA256,
    INCEPTION_URL,
    FIDInceptionV3,
    WeightsUnavailable,
    extract_features,
    load_fid_inception,
)

from .conftest import smooth_images

# sha256 of "key:shape" lines of the sorted state dict; 566 tensors = 94 conv+BN blocks x 6 + fc weight and bias.
EXPECTED_LAYOUT_SHA256 = "ae219ebd25e62d5b78106b4b100106f89da40333a59e4038502df9a4e91abd7f"


def _layout(state_dict) -> list[str]:
    return [f"{k}:{tuple(v.shape)}" for k, v in sorted(state_dict.items())]


def test_state_dict_layout_is_pytorch_fids():
    ours = FIDInceptionV3().state_dict()
    assert len(ours) == 566
    assert hashlib.sha256("\n".join(_layout(ours)).encode()).hexdigest() == EXPECTED_LAYOUT_SHA256
    # pytorch-fid's network is torchvision's Inception3(num_classes=1008, aux_logits=False) with blocks
    # swapped for subclasses of the same shapes; the official weights load strictly into it.
    tv = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    assert _layout(ours) == _layout(tv.state_dict())


# --- pytorch-fid 0.3.0 forward, rebuilt from torchvision as its inception.py does (reference only) -------------


class _RefA(torchvision.models.inception.InceptionA):
    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class _RefC(torchvision.models.inception.InceptionC):
    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(d))))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([self.branch1x1(x), b7, d, bp], 1)


class _RefE(torchvision.models.inception.InceptionE):
    def __init__(self, in_channels, max_pool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.max_pool:
            p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            p = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(p)], 1)


def _pytorch_fid_reference(state_dict):
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = _RefA(192, 32), _RefA(256, 64), _RefA(288, 64)
    net.Mixed_6b, net.Mixed_6c = _RefC(768, channels_7x7=128), _RefC(768, channels_7x7=160)
    net.Mixed_6d, net.Mixed_6e = _RefC(768, channels_7x7=160), _RefC(768, channels_7x7=192)
    net.Mixed_7b, net.Mixed_7c = _RefE(1280, max_pool=False), _RefE(2048, max_pool=True)
    net.load_state_dict(state_dict, strict=True)
    blocks = torch.nn.Sequential(
        net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2),
        net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2),
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
        net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1)),
    ).eval()  # fmt: skip

    def forward(x):  # x: (B, 3, H, W) in [0, 1], as pytorch-fid's InceptionV3.forward
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return blocks(2 * x - 1).squeeze(-1).squeeze(-1)

    return forward


def test_forward_equals_pytorch_fid_reference(random_inception):
    images = smooth_images(2, size=40, channels=3, seed=7)
    ours = extract_features(random_inception, images)
    with torch.no_grad():
        ref = _pytorch_fid_reference(random_inception.state_dict())(torch.from_numpy(images)).double().numpy()
    assert ours.shape == (2, 2048)
    assert np.abs(ours).max() > 1e-3  # the recalibrated random net does not collapse to zeros
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_grayscale_is_repeated_to_rgb_and_batching_does_not_matter(random_inception):
    gray = smooth_images(2, seed=9)
    a = extract_features(random_inception, gray, batch_size=1)
    b = extract_features(random_inception, np.repeat(gray, 3, axis=1), batch_size=2)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rejects_wrong_channel_count_and_uint8(random_inception):
    with pytest.raises(ValueError, match="1 or 3"):
        extract_features(random_inception, np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="floats"):
        extract_features(random_inception, np.zeros((1, 1, 8, 8), np.uint8))


def test_missing_weights_raise_with_install_instructions(tmp_path):
    target = tmp_path / INCEPTION_FILENAME
    with pytest.raises(WeightsUnavailable) as info:
        load_fid_inception(target)
    message = str(info.value)
    assert INCEPTION_URL in message and INCEPTION_SHA256 in message and str(target) in message
    with pytest.raises(WeightsUnavailable):
        load_fid_inception(None)


def test_weights_file_is_checked_by_sha256_and_loads_strictly(tmp_path, random_inception):
    path = tmp_path / INCEPTION_FILENAME
    torch.save(random_inception.state_dict(), path)
    # Not the official file: the default expected hash rejects it.
    with pytest.raises(WeightsUnavailable, match="SHA-256"):
        load_fid_inception(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert features.sha256_file(path) == digest
    model = load_fid_inception(path, expected_sha256=digest)
    assert not model.training
    x = smooth_images(1, seed=5)
    np.testing.assert_allclose(extract_features(model, x), extract_features(random_inception, x), rtol=1e-6)


def test_wrong_state_dict_is_unavailable_not_a_crash(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(WeightsUnavailable, match="not an FID-Inception"):
        load_fid_inception(path, expected_sha256=None)


def test_official_hash_prefix_matches_file_name():
    # torch hub names files <name>-<first 8 hex digits of the SHA-256>.pth
    assert INCEPTION_FILENAME.removesuffix(".pth").endswith(INCEPTION_SHA256[:8])


def test_random_network_is_deterministic_by_seed():
    calib = smooth_images(1, seed=11)
    a = features.build_random_fid_inception(calib, seed=3).Mixed_7c.branch_pool.conv.weight
    b = features.build_random_fid_inception(calib, seed=3).Mixed_7c.branch_pool.conv.weight
    assert torch.equal(a, b)
