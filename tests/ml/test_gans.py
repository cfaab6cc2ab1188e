"""Every registered GAN builds, honours the G/D contracts and trains one step; losses, penalties and the
augmentations do what their papers say."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthesis.gans import GANS, GanSpec, ModelConfig, build_gan, get_gan, make_preset, register, validate_config
from synthesis.gans.augment import AdaptiveAugment, ada_augment, augment
from synthesis.gans.losses import LOSSES, clip_weights, feature_matching_loss, gradient_penalty, r1_penalty

ROOT = Path(__file__).resolve().parents[2]
B, R, N_CLASSES = 4, 32, 3


def tiny(resolution: int = R, img_channels: int = 1, n_classes: int = N_CLASSES) -> ModelConfig:
    return ModelConfig(resolution, img_channels, n_classes, z_dim=16, base_channels=8)


def one_hot_masks(n: int, size: int, n_classes: int, seed: int = 0) -> torch.Tensor:
    """Random label maps as one-hot ``(n, n_classes, size, size)`` float."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n, size // 4, size // 4), generator=g)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # blocky, like anatomy
    return F.one_hot(labels, n_classes).permute(0, 3, 1, 2).float()


def batch_for(spec: GanSpec, cfg: ModelConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A real batch as D sees it: (image + one-hot mask, None) unconditional, (image, mask) conditional."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(B, cfg.img_channels, cfg.resolution, cfg.resolution, generator=g) * 2 - 1
    if cfg.n_classes == 0:
        return image, None
    mask = one_hot_masks(B, cfg.resolution, cfg.n_classes, seed)
    return (image, mask) if spec.conditional else (torch.cat([image, mask], 1), None)


def unconditional_names() -> list[str]:
    return [name for name in GANS if not GANS[name].conditional]


# --- registry --------------------------------------------------------------------------------------


def test_registry_holds_the_study_gans_with_complete_presets():
    assert {"dcgan", "lsgan", "wgan", "wgan_gp", "hinge", "spade"} <= set(GANS)
    for name, spec in GANS.items():
        assert spec.name == name and spec.loss in LOSSES
        assert set(make_preset()) <= set(spec.preset), name
    assert [n for n in GANS if GANS[n].conditional] == ["spade"]
    assert get_gan("wgan").preset["weight_clip"] == 0.01 and get_gan("wgan").preset["optimizer"] == "rmsprop"
    assert get_gan("wgan_gp").preset["gp_lambda"] == 10 and get_gan("wgan_gp").preset["betas"] == (0.0, 0.9)
    assert get_gan("spade").preset["lr_d"] == 4 * get_gan("spade").preset["lr_g"]


def test_unknown_name_and_duplicate_registration_are_refused():
    with pytest.raises(KeyError, match="unknown GAN 'progan'.*dcgan"):
        get_gan("progan")
    with pytest.raises(ValueError, match="already registered"):
        register(GanSpec(name="dcgan", title="again", build=get_gan("dcgan").build, loss="bce"))
    with pytest.raises(ValueError, match="unknown loss"):
        register(GanSpec(name="test_bad_loss", title="x", build=get_gan("dcgan").build, loss="nope"))


@pytest.mark.parametrize(
    ("name", "cfg", "message"),
    [
        ("dcgan", tiny(resolution=48), "power of two from 32 to 256, not 48"),
        ("dcgan", tiny(resolution=512), "power of two from 32 to 256, not 512"),
        ("dcgan", tiny(resolution=16), "power of two"),
        ("wgan_gp", tiny(img_channels=2), "img_channels must be 1 .* or 3"),
        ("hinge", tiny(n_classes=1), "0 \\(no masks\\) or at least 2"),
        ("spade", tiny(n_classes=0), "needs an image set with masks"),
    ],
)
def test_validate_config_refuses_with_a_clear_message(name, cfg, message):
    with pytest.raises(ValueError, match=message):
        validate_config(name, cfg)
    with pytest.raises(ValueError, match=message):
        build_gan(name, cfg)


def test_gan_modules_import_without_django():
    code = "import sys, synthesis.gans as g; list(g.GANS); assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# --- network contracts, for every registered GAN ---------------------------------------------------


@pytest.mark.parametrize("name", list(GANS))
@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_and_discriminator_contracts(name, resolution):
    spec = GANS[name]
    cfg = tiny(resolution)
    G, D = build_gan(name, cfg)
    assert G.z_dim == cfg.z_dim and G.cfg == cfg
    real, cond = batch_for(spec, cfg)
    with torch.no_grad():
        fake = G(torch.randn(B, cfg.z_dim), cond)
        expected_channels = cfg.img_channels if spec.conditional else cfg.out_channels
        assert fake.shape == (B, expected_channels, resolution, resolution)
        image = fake[:, : cfg.img_channels]
        assert image.min() >= -1 and image.max() <= 1
        if not spec.conditional:
            probs = fake[:, cfg.img_channels :]
            assert probs.min() >= 0
            torch.testing.assert_close(probs.sum(1), torch.ones(B, resolution, resolution))
        assert D(real, cond).shape == (B,)
        assert D(fake, cond).shape == (B,)


@pytest.mark.parametrize("name", unconditional_names())
def test_unconditional_gans_work_on_image_only_rgb_sets(name):
    cfg = tiny(img_channels=3, n_classes=0)
    G, D = build_gan(name, cfg)
    with torch.no_grad():
        fake = G(torch.randn(B, cfg.z_dim))
        assert fake.shape == (B, 3, R, R) and fake.abs().max() <= 1
        assert D(fake).shape == (B,)


def test_generated_masks_are_one_hot_with_softmax_gradients_unless_soft():
    """Default "hard": exactly one-hot values (like real masks) yet gradients reach the mask logits."""
    cfg = tiny()
    G, _ = build_gan("dcgan", cfg)
    fake = G(torch.randn(B, cfg.z_dim))
    masks = fake[:, cfg.img_channels :]
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    (masks * torch.randn_like(masks)).sum().backward()
    last = G.net[-1]
    assert last.weight.grad is not None and last.weight.grad[:, cfg.img_channels :].abs().sum() > 0
    G_soft, _ = build_gan(
        "dcgan", ModelConfig(R, 1, N_CLASSES, z_dim=16, base_channels=8, extra={"mask_output": "soft"})
    )
    with torch.no_grad():
        soft = G_soft(torch.randn(B, 16))[:, 1:]
    assert ((soft > 0.01) & (soft < 0.99)).any()
    torch.testing.assert_close(soft.sum(1), torch.ones(B, R, R))
    with pytest.raises(ValueError, match="mask_output"):
        validate_config("dcgan", ModelConfig(R, 1, N_CLASSES, extra={"mask_output": "gumbel"}))


def test_conditioning_is_checked():
    G, D = build_gan("spade", tiny())
    with pytest.raises(ValueError, match="one-hot mask of shape"):
        G(torch.randn(B, 16), None)
    G, D = build_gan("dcgan", tiny())
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(B, 16), one_hot_masks(B, R, N_CLASSES))
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(B, 15))


def test_spade_mask_reaches_generator_and_discriminator():
    """The mask is an input of both networks: their outputs have a gradient with respect to it.

    (Values alone would not show it at initialisation: SPADE's gamma/beta convs start near zero.)
    """
    G, D = build_gan("spade", tiny())
    cond = one_hot_masks(B, R, N_CLASSES).requires_grad_(True)
    G(torch.randn(B, 16), cond).square().sum().backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0
    cond.grad = None
    D(torch.rand(B, 1, R, R) * 2 - 1, cond).sum().backward()
    assert cond.grad.abs().sum() > 0


def test_discriminator_normalisation_matches_each_paper():
    def kinds(D: nn.Module) -> set[type]:
        return {type(m) for m in D.modules()}

    assert nn.BatchNorm2d in kinds(build_gan("dcgan", tiny())[1])
    for name in ("wgan", "wgan_gp"):  # per-sample gradient penalty: no batch mixing in the critic
        assert nn.BatchNorm2d not in kinds(build_gan(name, tiny())[1])
    D = build_gan("hinge", tiny())[1]
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    assert not {nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d} & kinds(D)
    # Options: SNGAN's standard-CNN layout, and any normalisation by name.
    sngan = ModelConfig(R, 1, N_CLASSES, z_dim=16, base_channels=8, extra={"d_layout": "sngan", "d_norm": "instance"})
    _, D = build_gan("hinge", sngan)
    assert nn.InstanceNorm2d in kinds(D) and D(torch.zeros(B, 4, R, R)).shape == (B,)
    with pytest.raises(ValueError, match="d_layout"):
        build_gan("hinge", ModelConfig(R, 1, N_CLASSES, extra={"d_layout": "resnet"}))


@pytest.mark.parametrize("name", ["hinge", "spade"])
def test_spectral_norm_is_calibrated_after_initialisation(name):
    """Re-initialised weights must not keep stale power-iteration vectors: every SN layer has norm ~1."""
    for net in build_gan(name, tiny()):
        net.eval()  # no further power iterations: read the estimate made at initialisation
        layers = [m for m in net.modules() if hasattr(m, "parametrizations")]
        assert layers or name == "hinge"
        for m in layers:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item()
            assert sigma == pytest.approx(1.0, abs=0.1)


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


@pytest.mark.parametrize("name", list(GANS))
def test_one_training_step_is_finite_and_moves_both_networks(name):
    torch.manual_seed(0)
    spec = GANS[name]
    cfg = tiny()
    G, D = build_gan(name, cfg)
    loss, preset = LOSSES[spec.loss], spec.preset
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    real, cond = batch_for(spec, cfg)
    z = torch.randn(B, cfg.z_dim)

    # D step (with the spec's regulariser)
    before_d = _params(D)
    fake = G(z, cond).detach()
    d_loss = loss.d_loss(D(real, cond), D(fake, cond))
    if preset["gp_lambda"]:
        d_loss = d_loss + preset["gp_lambda"] * gradient_penalty(D, real, fake, cond)
    if preset["r1_gamma"]:  # a number, or "auto" for a trainer-side heuristic
        gamma = preset["r1_gamma"] if isinstance(preset["r1_gamma"], int | float) else 1.0
        d_loss = d_loss + gamma / 2 * r1_penalty(D, real, cond)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    if preset["weight_clip"]:
        clip_weights(D, preset["weight_clip"])
        assert all(p.abs().max() <= preset["weight_clip"] for p in D.parameters())
    assert torch.isfinite(d_loss) and _changed(before_d, D)

    # G step
    before_g = _params(G)
    g_loss = loss.g_loss(D(G(z, cond), cond))
    if preset["feature_matching"]:
        _, real_feats = D.forward_with_features(real, cond)
        _, fake_feats = D.forward_with_features(G(z, cond), cond)
        g_loss = g_loss + preset["feature_matching"] * feature_matching_loss(real_feats, fake_feats)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(g_loss) and _changed(before_g, G)


# --- losses and penalties -------------------------------------------------------------------------

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def test_losses_match_their_formulas_on_hand_made_logits():
    def softplus(v: float) -> float:
        return torch.log1p(torch.exp(torch.tensor(v))).item()

    bce_d = (softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2
    assert LOSSES["bce"].d_loss(REAL, FAKE).item() == pytest.approx(bce_d)
    assert LOSSES["bce"].g_loss(FAKE).item() == pytest.approx((softplus(-0.5) + softplus(3)) / 2)
    assert LOSSES["logistic"].d_loss(REAL, FAKE).item() == pytest.approx(bce_d)
    # LSGAN a=0, b=1, c=1: D: 1/2 E(D(x)-1)^2 + 1/2 E D(G(z))^2; G: 1/2 E(D(G(z))-1)^2
    assert LOSSES["lsgan"].d_loss(REAL, FAKE).item() == pytest.approx(0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2)
    assert LOSSES["lsgan"].g_loss(FAKE).item() == pytest.approx(0.5 * (0.25 + 16) / 2)
    for name in ("wgan", "wgan_gp"):
        assert LOSSES[name].d_loss(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
        assert LOSSES[name].g_loss(FAKE).item() == pytest.approx(1.25)
    # hinge: E relu(1 - D(x)) + E relu(1 + D(G(z))) = (0 + 2)/2 + (1.5 + 0)/2
    assert LOSSES["hinge"].d_loss(REAL, FAKE).item() == pytest.approx(1.75)
    assert LOSSES["hinge"].g_loss(FAKE).item() == pytest.approx(1.25)


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample, so grad_x D = w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_and_r1_on_a_linear_critic():
    w = torch.randn(1, 2, 8, 8)
    real, fake = torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8)
    unit = LinearCritic(w / w.norm())
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-6)
    double = LinearCritic(2 * w / w.norm())
    assert gradient_penalty(double, real, fake).item() == pytest.approx(1.0, rel=1e-5)  # (2 - 1)^2
    assert r1_penalty(LinearCritic(3 * w / w.norm()), real).item() == pytest.approx(9.0, rel=1e-5)
    # Both stay in the graph: the penalty trains the critic.
    gradient_penalty(double, real, fake).backward()
    assert double.w.grad is not None and double.w.grad.abs().sum() > 0


def test_clip_weights_and_feature_matching():
    D = nn.Linear(4, 4)
    with torch.no_grad():
        D.weight.fill_(0.5)
    clip_weights(D, 0.01)
    assert D.weight.abs().max().item() == pytest.approx(0.01)
    a = [[torch.zeros(2, 3), torch.zeros(2, 3)]]
    b = [[torch.ones(2, 3), torch.full((2, 3), 2.0)]]
    assert feature_matching_loss(a, b).item() == pytest.approx(3.0)  # summed over layers, averaged over scales
    assert feature_matching_loss(a + a, b + b).item() == pytest.approx(3.0)


# --- augmentation ----------------------------------------------------------------------------------


def image_with_mask(n: int = B, size: int = R, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Smooth image(s) in [-1, 1] plus a 2-class one-hot mask equal to ``image[:, 0] > 0.5``."""
    g = torch.Generator().manual_seed(seed)
    img = F.interpolate(torch.rand(n, channels, size // 4, size // 4, generator=g), size=size, mode="bilinear") * 2 - 1
    fg = (img[:, :1] > 0.5).float()
    return torch.cat([img, 1 - fg, fg], dim=1)  # (n, channels + 2, size, size)


@pytest.mark.parametrize("policy", ["diffaugment", "ada", "translation,cutout"])
def test_augment_keeps_shape_and_is_deterministic_by_generator(policy):
    x = image_with_mask(channels=3)

    def run(seed: int) -> torch.Tensor:
        return augment(x, img_channels=3, policy=policy, p=0.8, generator=torch.Generator().manual_seed(seed))

    assert run(1).shape == x.shape
    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.equal(run(1), run(2))
    assert torch.equal(augment(x, img_channels=3, policy="none"), x)
    assert torch.equal(augment(x, img_channels=3, policy="ada", p=0.0), x)


def test_translation_and_cutout_move_image_and_mask_together():
    """After DiffAugment's geometric ops the mask still equals the thresholded image, and stays one-hot."""
    x = image_with_mask()
    out = augment(x, img_channels=1, policy="translation,cutout", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out, x)
    mask = out[:, 1:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(mask.sum(1), torch.ones(B, R, R))
    assert torch.equal((out[:, :1] > 0.5).float(), mask[:, 1:])


def test_ada_geometry_keeps_image_and_mask_aligned():
    """Binary image (+1 on the foreground, -1 elsewhere) and its mask through ADA's translation and scaling.

    Masks are resampled nearest, the image bilinearly: the nearest source pixel has bilinear weight >= 1/4,
    so a foreground mask pixel has image >= -1/2 and a background one <= +1/2, exactly when aligned.
    """
    x = image_with_mask()
    x[:, :1] = torch.where(x[:, 2:] > 0, 1.0, -1.0)
    out = ada_augment(x, img_channels=1, p=1.0, generator=torch.Generator().manual_seed(3), color=False)
    assert not torch.equal(out, x)
    img, fg, bg = out[:, 0], out[:, 2] == 1, out[:, 1] == 1
    assert torch.equal(fg, ~bg) and set(out[:, 1:].unique().tolist()) <= {0.0, 1.0}
    assert img[fg].min() >= -0.5 - 1e-5 and img[bg].max() <= 0.5 + 1e-5


def test_intensity_transforms_leave_masks_untouched():
    x = image_with_mask(channels=3)
    out = augment(x, img_channels=3, policy="color", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out[:, :3], x[:, :3]) and torch.equal(out[:, 3:], x[:, 3:])
    out = ada_augment(x, img_channels=3, p=1.0, generator=torch.Generator().manual_seed(0), geometric=False)
    assert not torch.equal(out[:, :3], x[:, :3]) and torch.equal(out[:, 3:], x[:, 3:])
    gray = image_with_mask(channels=1)
    out = augment(gray, img_channels=1, policy="color", generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 1:], gray[:, 1:])


def test_augment_is_differentiable_and_checks_its_arguments():
    x = image_with_mask(channels=3).requires_grad_(True)
    augment(x, img_channels=3, policy="diffaugment", generator=torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        augment(x, img_channels=3, policy="mixup")
    with pytest.raises(ValueError, match="needs the augmentation probability"):
        augment(x, img_channels=3, policy="ada")


def test_adaptive_augment_follows_the_ada_heuristic():
    ada = AdaptiveAugment(target=0.6, interval=4, speed_kimg=0.1)  # step = 8 * 4 / 100 = 0.32
    overconfident = torch.ones(8)
    for _ in range(3):
        assert ada.update(overconfident, batch_size=8) == 0.0  # adjusts only every `interval` calls
    assert ada.update(overconfident, batch_size=8) == pytest.approx(0.32)
    assert ada.rt == pytest.approx(1.0)
    for _ in range(4 * 5):
        ada.update(overconfident, batch_size=8)
    assert ada.p == 1.0  # clamped
    unsure = torch.tensor([3.0, -2.0, -0.5, 1.0, -1.0, -4.0, 2.0, -0.1])  # logits, E[sign] = -0.25 < 0.6
    for _ in range(4):
        ada.update(unsure, batch_size=8)
    assert ada.p == pytest.approx(0.68)
    restored = AdaptiveAugment()
    ada.update(overconfident, batch_size=8)  # mid-interval state travels too
    restored.load_state_dict(ada.state_dict())
    assert restored.state_dict() == ada.state_dict()
    for _ in range(3 * 4):
        ada.update(-overconfident, batch_size=8)
        restored.update(-overconfident, batch_size=8)
    assert ada.p == restored.p == 0.0  # clamped below, identically
