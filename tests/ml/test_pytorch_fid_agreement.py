"""The real pytorch-fid 0.3.0 package as the reference for our FID, with the same random weights in both.

pytorch-fid downloads its weights in ``pytorch_fid.inception.fid_inception_v3`` through the module-level name
``load_state_dict_from_url`` (``torch.utils.model_zoo.load_url`` on torchvision >= 0.13, which has no
``torchvision.models.utils``). That name is patched to return the state dict of the conftest's random-weight
FID-Inception, so nothing is downloaded and both implementations run the very same network; pytorch-fid then
loads it with ``strict=True`` into its own torchvision-based model.

(a) pool3 features of ``InceptionV3([3])`` (resize_input and normalize_input on, so it takes [0, 1] input)
    against :func:`extract_features` on the same tensors;
(b) ``calculate_frechet_distance`` against :func:`fid_from_features` on the same features;
(c) end to end on two folders of 8-bit RGB PNGs: ``calculate_fid_given_paths`` against our pipeline
    (PNG / 255 -> extract_features -> fid_from_features). Its one 2048x2048 ``scipy.linalg.sqrtm`` (pytorch-fid's
    formula) is the slow part (~40 CPU seconds), so it runs once, with pytorch-fid's features and statistics
    captured for (b); (b) also runs on full-rank 64-d Gaussians.

The random network's pool3 features are ~100x larger than the official network's (RMS ~50; the official
network's pool3 values are mostly below 1), and
pytorch-fid rejects a matrix square root whose diagonal has an imaginary part above an *absolute* 1e-3. With
N=16 < D=2048 the covariance product is singular, sqrtm's rounding noise scales with the features squared, and
pytorch-fid raises "Imaginary component 0.5" on the raw random network. So the last BatchNorm of every
Mixed_7c branch is scaled by ``POOL3_SCALE`` (pool3 = mean of ReLU(BN(.)), so the features scale by exactly
that factor), in the network both implementations load.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid import fid_score
from pytorch_fid import inception as pf_inception

from evaluation.metrics.features import INCEPTION_URL, extract_features, load_fid_inception
from evaluation.metrics.fid import feature_statistics, fid_from_features

from .conftest import smooth_images

pytestmark = [
    # pytorch-fid 0.3.0 calls sqrtm(..., disp=False), deprecated in SciPy 1.16 (removed in 1.18) ...
    pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning"),
    # ... and sqrtm warns that S1 S2 is singular, which it is whenever N <= D (here 16 images, 2048 dims).
    pytest.mark.filterwarnings("ignore:Matrix is singular:scipy.linalg.LinAlgWarning"),
]

N_PER_FOLDER = 16
SIZE = 32
POOL3_SCALE = 0.01  # brings the random network's pool3 RMS (~50) to the official network's order (~0.5)
MIXED_7C_LAST_BN = ("branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool")


@pytest.fixture(scope="module")
def weights(tmp_path_factory, random_inception):
    """The shared network: (state dict, our FIDInceptionV3 loaded from a weights file by our loader)."""
    state_dict = {k: v.clone() for k, v in random_inception.state_dict().items()}
    for branch in MIXED_7C_LAST_BN:
        for param in ("weight", "bias"):
            state_dict[f"Mixed_7c.{branch}.bn.{param}"] *= POOL3_SCALE
    path = tmp_path_factory.mktemp("fid_weights") / "random-fid-inception.pth"
    torch.save(state_dict, path)
    return state_dict, load_fid_inception(path, expected_sha256=None)


def _fake_download(state_dict: dict, calls: list[str]):
    """Stands in for pytorch_fid.inception.load_state_dict_from_url: records the URL, returns our weights."""

    def load_state_dict_from_url(url, *args, **kwargs):
        calls.append(url)
        return {k: v.clone() for k, v in state_dict.items()}

    return load_state_dict_from_url


@pytest.fixture
def their_inception(monkeypatch, weights):
    """pytorch-fid's ``InceptionV3([3])`` (pool3) with the shared weights."""
    calls: list[str] = []
    monkeypatch.setattr(pf_inception, "load_state_dict_from_url", _fake_download(weights[0], calls))
    model = pf_inception.InceptionV3([pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    assert calls == [pf_inception.FID_WEIGHTS_URL] == [INCEPTION_URL]  # the file our loader documents
    assert model.resize_input and model.normalize_input
    return model


def _write_pngs(folder: Path, images: np.ndarray) -> list[Path]:
    """(N, 3, H, W) [0, 1] floats -> 8-bit RGB PNGs; returns the paths in sorted order (pytorch-fid sorts)."""
    folder.mkdir()
    pixels = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # (N, H, W, 3)
    paths = []
    for i, p in enumerate(pixels):
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(p, mode="RGB").save(paths[-1])
    return sorted(paths)


def _read_pngs(paths: list[Path]) -> np.ndarray:
    """Our side: 8-bit PNG -> (N, 3, H, W) float32 = uint8 / 255 (what ToTensor gives pytorch-fid)."""
    return np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in paths]).astype(
        np.float32
    ) / np.float32(255)


def test_pool3_features_equal_pytorch_fid_inceptionv3(their_inception, weights):
    # Same [0, 1] tensors into both; non-square ones too, since both resize to 299x299 themselves.
    batches = [smooth_images(2, size=SIZE, channels=3, seed=21), np.random.default_rng(3).random((1, 3, 24, 40))]
    for images in batches:
        x = torch.from_numpy(images.astype(np.float32))
        with torch.no_grad():
            theirs = their_inception(x)[0].squeeze(3).squeeze(2).double().numpy()  # (B, 2048)
        ours = extract_features(weights[1], x)
        assert ours.shape == theirs.shape == (len(images), 2048)
        assert np.abs(theirs).max() > 1e-2  # the recalibrated random network has not collapsed to zeros
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * np.abs(theirs).max())


def test_frechet_distance_equals_calculate_frechet_distance_full_rank():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 64)) @ rng.standard_normal((64, 64))
    b = rng.standard_normal((300, 64)) * 2 + 0.5
    ref = fid_score.calculate_frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert fid_from_features(a, b) == pytest.approx(float(ref), rel=1e-8)


def _pytorch_fid_given_paths(folders: list[Path], state_dict: dict) -> dict:
    """One run of pytorch-fid's ``calculate_fid_given_paths``, with its activations and statistics captured."""
    captured: dict = {"activations": [], "download": []}
    get_activations, frechet = fid_score.get_activations, fid_score.calculate_frechet_distance

    def spy_activations(files, *args, **kwargs):
        acts = get_activations(files, *args, **kwargs)
        captured["activations"].append(([Path(f) for f in files], acts))
        return acts

    def spy_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
        captured["statistics"] = [(mu1, sigma1), (mu2, sigma2)]
        captured["frechet"] = float(frechet(mu1, sigma1, mu2, sigma2, eps))
        return captured["frechet"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pf_inception, "load_state_dict_from_url", _fake_download(state_dict, captured["download"]))
        mp.setattr(fid_score, "get_activations", spy_activations)
        mp.setattr(fid_score, "calculate_frechet_distance", spy_frechet)
        captured["fid"] = float(
            fid_score.calculate_fid_given_paths(
                [str(f) for f in folders], batch_size=8, device="cpu", dims=2048, num_workers=0
            )
        )
    return captured


@pytest.mark.slow
def test_end_to_end_fid_equals_calculate_fid_given_paths(tmp_path, weights):
    # One test, so pytorch-fid's 2048x2048 sqrtm (tens of seconds on 2 cores) runs once even when pytest-xdist
    # spreads this file's tests over several processes; it covers (b) on pool3 features and (c).
    rng = np.random.default_rng(5)
    smooth = smooth_images(N_PER_FOLDER, size=SIZE, channels=3, seed=31)
    noisy = np.clip(
        smooth_images(N_PER_FOLDER, size=SIZE, channels=3, seed=32) + 0.25 * rng.standard_normal(smooth.shape), 0, 1
    )
    paths = [_write_pngs(tmp_path / "smooth", smooth), _write_pngs(tmp_path / "noisy", noisy)]
    theirs = _pytorch_fid_given_paths([p[0].parent for p in paths], weights[0])
    assert theirs["download"] == [INCEPTION_URL]

    # Our pipeline on the same files: PNG / 255 -> extract_features -> fid_from_features.
    ours = [extract_features(weights[1], _read_pngs(p)) for p in paths]

    # Features: their DataLoader over the PNGs against ours, image by image.
    assert len(theirs["activations"]) == 2
    for (files, acts), p, feats in zip(theirs["activations"], paths, ours):
        assert files == p  # same images in the same order
        assert acts.shape == feats.shape == (N_PER_FOLDER, 2048)
        np.testing.assert_allclose(feats, acts, rtol=1e-4, atol=1e-6 * np.abs(acts).max())

    # (b) Their statistics of their own features equal ours exactly; their calculate_frechet_distance against
    # our fid_from_features on identical features: the first 256 of the 2048 dims (N=16 < D: rank-deficient
    # covariances, like small medical sets), because each Fréchet distance on all 2048 dims costs ~20-40 CPU
    # seconds; on 2048 dims, (c) below checks it together with the features.
    for (mu, sigma), (_, acts) in zip(theirs["statistics"], theirs["activations"]):
        our_mu, our_sigma = feature_statistics(acts)
        np.testing.assert_array_equal(our_mu, mu)
        np.testing.assert_array_equal(our_sigma, sigma)
    assert theirs["frechet"] == theirs["fid"] > 0  # the captured call is the one that made the result
    (_, acts1), (_, acts2) = theirs["activations"]
    f1, f2 = acts1[:, :256], acts2[:, :256]
    ref = float(fid_score.calculate_frechet_distance(*feature_statistics(f1), *feature_statistics(f2)))
    assert ref > 0
    assert fid_from_features(f1, f2) == pytest.approx(ref, rel=1e-4)

    # (c) End to end, all 2048 dims.
    assert fid_from_features(*ours) == pytest.approx(theirs["fid"], rel=1e-4)
