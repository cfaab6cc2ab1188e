"""StyleGAN2-type networks at tiny size on CPU: contracts, modulation, mixing, truncation, noise, R1."""

import pytest
import torch

from synthesis.gans import losses
from synthesis.gans.registry import ModelConfig, get_gan
from synthesis.gans.stylegan import (
    ModulatedConv2d,
    StyleGenerator,
    build_stylegan,
    downsample2d,
    minibatch_stddev,
    upsample2d,
)


def tiny_cfg(**extra) -> ModelConfig:
    return ModelConfig(
        resolution=32, img_channels=1, n_classes=3, z_dim=16, base_channels=8, extra={"map_layers": 2, **extra}
    )


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return build_stylegan(tiny_cfg(style_mixing=0.9))


def test_registered_with_the_stylegan2_recipe():
    spec = get_gan("stylegan")
    assert spec.loss == "logistic" and not spec.conditional
    p = spec.preset
    assert (p["lr_g"], p["betas"], p["r1_interval"], p["pl_interval"]) == (0.0025, (0.0, 0.99), 16, 4)
    assert p["augment"] == "ada" and p["style_mixing"] == 0.9 and p["r1_gamma"] == "auto"
    G, D = spec.build(tiny_cfg())
    assert isinstance(G, StyleGenerator) and G.z_dim == 16 and G.cfg.resolution == 32


def test_generator_output_contract(nets):
    G, D = nets
    G.eval()
    x = G(torch.randn(5, 16))
    assert x.shape == (5, 4, 32, 32)  # 1 image channel + 3 class channels
    assert x[:, :1].abs().max() <= 1
    torch.testing.assert_close(x[:, 1:].sum(1), torch.ones(5, 32, 32))
    assert D(x).shape == (5,)
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(2, 16), torch.zeros(2, 3, 32, 32))


def test_image_only_generator_has_image_channels_only():
    G, D = build_stylegan(ModelConfig(resolution=32, img_channels=3, z_dim=8, base_channels=4, extra={"map_layers": 1}))
    x = G(torch.randn(2, 8))
    assert x.shape == (2, 3, 32, 32) and D(x).shape == (2,)


def test_demodulation_keeps_unit_output_std():
    torch.manual_seed(1)
    conv = ModulatedConv2d(64, 64, 3, w_dim=32)
    with torch.no_grad():
        conv.affine.weight.mul_(3)  # strong, uneven styles: demodulation must still normalise
        out = conv(torch.randn(8, 64, 16, 16), torch.randn(8, 32))
    # Border pixels see zero padding, so measure the interior.
    assert out[:, :, 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.1)
    plain = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=False)
    with torch.no_grad():
        plain.affine.weight.mul_(3)
        assert plain(torch.randn(8, 64, 16, 16), torch.randn(8, 32)).std().item() > 1.5


def test_resampling_shapes_and_mean():
    x = torch.randn(2, 3, 8, 8)
    up, down = upsample2d(x), downsample2d(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    const = torch.full((1, 1, 8, 8), 2.0)
    assert torch.allclose(upsample2d(const)[..., 2:-2, 2:-2], torch.tensor(2.0))  # interior keeps the level
    assert torch.allclose(downsample2d(const)[..., 1:-1, 1:-1], torch.tensor(2.0))


def test_minibatch_stddev_adds_a_channel_and_handles_odd_batches():
    assert minibatch_stddev(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)
    y = minibatch_stddev(torch.randn(3, 5, 4, 4))  # group size falls back to a divisor of 3
    assert y.shape == (3, 6, 4, 4) and torch.isfinite(y).all()


def test_every_w_of_ws_is_used(nets):
    G, _ = nets
    G.eval()
    ws = G.mapping(torch.randn(2, 16))
    base = G.synthesis(ws, noise_mode="const")
    for i in range(G.num_ws):
        changed = ws.clone()
        changed[:, i] += 1.0
        assert (G.synthesis(changed, noise_mode="const") - base).abs().max() > 1e-4, f"ws[:, {i}] is unused"


def test_style_mixing_changes_the_output_only_in_training(nets):
    G, _ = nets
    z = torch.randn(4, 16)
    G.eval()
    base = G(z, noise_mode="const")
    G.train()
    G.style_mixing = 1.0
    try:
        mixed = G(z, noise_mode="const")
        ws = G.mix_styles(G.mapping(z))
    finally:
        G.style_mixing = 0.9
        G.eval()
    assert ws.shape == (4, G.num_ws, G.w_dim)
    assert not torch.allclose(ws[:, 0], ws[:, -1])  # the last layers took the second z's w
    assert not torch.allclose(mixed, base)


def test_mapping_tracks_w_avg_while_training_only():
    torch.manual_seed(2)
    G, _ = build_stylegan(tiny_cfg())
    assert torch.count_nonzero(G.mapping_net.w_avg) == 0
    G.eval()
    G(torch.randn(4, 16))
    assert torch.count_nonzero(G.mapping_net.w_avg) == 0
    G.train()
    G(torch.randn(4, 16))
    assert torch.count_nonzero(G.mapping_net.w_avg) > 0


def test_truncation_psi_zero_gives_the_average_image():
    torch.manual_seed(3)
    G, _ = build_stylegan(tiny_cfg())
    G.train()
    for _ in range(5):
        G(torch.randn(16, 16))  # let w_avg move away from 0
    G.eval()
    z = torch.randn(4, 16)
    assert torch.allclose(G.mapping(z, psi=0.0)[0], G.mapping_net.w_avg.expand(G.num_ws, -1))
    x = G(z, psi=0.0, noise_mode="const")
    assert (x - x[:1]).abs().max() < 1e-5
    assert (G(z, noise_mode="const") - x).abs().max() > 1e-3


def test_noise_modes(nets):
    G, _ = nets
    G.eval()
    with torch.no_grad():
        for layer in G.synthesis_net.convs:
            layer.noise_strength.fill_(0.5)  # strength starts at 0, which would hide the noise
        z = torch.randn(2, 16)
        assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
        assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
        G(z, noise_mode="none")
        with pytest.raises(ValueError, match="noise_mode"):
            G(z, noise_mode="loud")
        for layer in G.synthesis_net.convs:
            layer.noise_strength.zero_()


def test_one_training_step_with_r1_is_finite():
    torch.manual_seed(4)
    G, D = build_stylegan(tiny_cfg(style_mixing=0.9))
    G.train(), D.train()
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    real = torch.cat(
        [torch.rand(4, 1, 32, 32) * 2 - 1, torch.eye(3)[torch.randint(0, 3, (4, 32, 32))].permute(0, 3, 1, 2)], 1
    )
    loss = losses.LOSSES["logistic"]
    d_loss = loss.d_loss(D(real), D(G(torch.randn(4, 16)).detach()))
    r1 = losses.r1_penalty(D, real)
    opt_D.zero_grad()
    (d_loss + 0.5 * r1).backward()
    opt_D.step()
    opt_G.zero_grad()
    g_loss = loss.g_loss(D(G(torch.randn(4, 16))))
    g_loss.backward()
    opt_G.step()
    assert all(torch.isfinite(t) for t in (d_loss, r1, g_loss)) and r1 > 0
    assert all(torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])


def test_rejects_bad_resolutions():
    with pytest.raises(ValueError, match="power-of-two"):
        build_stylegan(ModelConfig(resolution=48, img_channels=1))
