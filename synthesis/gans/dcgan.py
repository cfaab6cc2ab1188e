"""DCGAN-style networks, shared by the five "classic" GANs of the study: DCGAN, LSGAN, WGAN, WGAN-GP, HingeGAN.

Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016
(arXiv 1511.06434), Sec. 3: G projects z to a 4x4 map and doubles it with stride-2 transposed convolutions
(BatchNorm + ReLU, tanh output); D mirrors it with stride-2 convolutions (LeakyReLU 0.2, BatchNorm except
on the first layer), no pooling and no fully connected hidden layers. Widths follow the paper's 64x64 net
(``base`` channels next to full size, doubling per halving: 64/128/256/512 for base 64), capped at ``8*base``
so 128 and 256 px stay affordable.

The GANs differ only in their loss and in what D may contain, as their papers prescribe:

* DCGAN, LSGAN: BatchNorm in D.
* WGAN, WGAN-GP: no BatchNorm in the critic. The gradient penalty is a per-sample quantity and BatchNorm
  makes each output depend on the whole batch (Gulrajani et al. 2017, Sec. 4 recommend layer norm).
  Weight clipping is used without it too, for symmetry.
* HingeGAN: spectral normalisation on every D layer and no other normalisation, as SNGAN (Miyato et al. 2018).

Masks are generated as extra output channels (one-hot by straight-through softmax unless
``cfg.extra["mask_output"] == "soft"``, see :func:`.layers.image_mask_output`), so D sees
``img_channels + n_classes`` channels. ``cfg.extra`` may also override ``d_norm`` ("batch" | "instance" |
"layer" | "none"), ``d_spectral`` (bool) and ``d_layout`` ("dcgan" | "sngan", see :class:`DCGANDiscriminator`).
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from .layers import check_cond, check_z, dcgan_init_, image_mask_output, log2_int, mask_output_mode, maybe_sn, norm2d
from .registry import GanSpec, ModelConfig, make_preset, register


def _width(cfg: ModelConfig, r: int) -> int:
    """Channels of the feature map at spatial size ``r``: 8*base at R/16 and below, halving per doubling."""
    return max(1, min(8 * cfg.base_channels, cfg.base_channels * cfg.resolution // (2 * r)))


class DCGANGenerator(nn.Module):
    """z (B, z_dim) -> 4x4 -> ... -> (B, out_channels, R, R): image in [-1, 1] plus class probabilities."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg, self.z_dim = cfg, cfg.z_dim
        self.mask_output = mask_output_mode(cfg)
        R = cfg.resolution
        log2_int(R)
        # Projection of z: a 4x4 transposed conv on a 1x1 map is a linear layer reshaped to (w, 4, 4).
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim, _width(cfg, 4), 4, 1, 0, bias=False),
            nn.BatchNorm2d(_width(cfg, 4)),
            nn.ReLU(inplace=True),
        ]
        r = 4
        while r < R // 2:
            layers += [
                nn.ConvTranspose2d(_width(cfg, r), _width(cfg, 2 * r), 4, 2, 1, bias=False),
                nn.BatchNorm2d(_width(cfg, 2 * r)),
                nn.ReLU(inplace=True),
            ]
            r *= 2
        # Last doubling straight to the output channels, without normalisation (DCGAN Sec. 3).
        layers.append(nn.ConvTranspose2d(_width(cfg, R // 2), cfg.out_channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        check_z(z, self.z_dim)
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=z.shape[0], conditional=False
        )
        logits = self.net(z[:, :, None, None])  # (B, out_channels, R, R)
        return image_mask_output(logits, self.cfg.img_channels, self.mask_output)


class DCGANDiscriminator(nn.Module):
    """(B, out_channels, R, R) -> (B,) logits: stride-2 convs down to 4x4, then a 4x4 conv to one value.

    ``layout="sngan"`` (option ``cfg.extra["d_layout"]``) is the "standard CNN" discriminator of Miyato et
    al. 2018 (Table 3): a 3x3 stride-1 conv before every 4x4 stride-2 conv, one more 3x3 conv at 4x4,
    LeakyReLU 0.1. It is not the default for HingeGAN: on a 32 px toy set of discs with masks, the DCGAN
    layout under spectral norm trained (balanced losses, aligned masks by 800 steps) while this one let D
    win outright, so the five classic GANs keep one backbone and differ by loss and normalisation only.
    """

    def __init__(self, cfg: ModelConfig, *, norm: str = "batch", spectral: bool = False, layout: str = "dcgan") -> None:
        super().__init__()
        if layout not in ("dcgan", "sngan"):
            raise ValueError(f"d_layout must be 'dcgan' or 'sngan', not {layout!r}")
        self.cfg = cfg
        R = cfg.resolution
        log2_int(R)
        slope = 0.1 if layout == "sngan" else 0.2
        # A bias is redundant before a normalisation that re-centres.
        bias = norm == "none"

        def conv(c_in: int, c_out: int, k: int, stride: int, normed: bool) -> list[nn.Module]:
            pad = 1  # 3x3 s1 and 4x4 s2 both keep/halve the size with padding 1
            layer = maybe_sn(nn.Conv2d(c_in, c_out, k, stride, pad, bias=bias or not normed), spectral)
            return [layer, *([norm2d(norm, c_out)] if normed else []), nn.LeakyReLU(slope, inplace=True)]

        layers: list[nn.Module] = []
        c_in, r = cfg.out_channels, R
        while r > 4:
            w = _width(cfg, r // 2)
            first = not layers  # DCGAN: no normalisation on the input layer (Radford et al. 2016, Sec. 3)
            if layout == "sngan":
                layers += conv(c_in, w, 3, 1, normed=not first) + conv(w, w, 4, 2, normed=True)
            else:
                layers += conv(c_in, w, 4, 2, normed=not first)
            c_in, r = w, r // 2
        if layout == "sngan":
            layers += conv(c_in, min(8 * cfg.base_channels, 2 * c_in), 3, 1, normed=True)
            c_in = min(8 * cfg.base_channels, 2 * c_in)
        layers.append(maybe_sn(nn.Conv2d(c_in, 1, 4, 1, 0), spectral))  # (B, 1, 1, 1): a dense layer on 4x4
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=x.shape[0], conditional=False
        )
        return self.net(x).flatten()  # (B,)


def build_dcgan(
    cfg: ModelConfig, *, d_norm: str = "batch", d_spectral: bool = False, d_layout: str = "dcgan"
) -> tuple[nn.Module, nn.Module]:
    """DCGAN G and D for ``cfg``; ``cfg.extra`` keys ``d_norm``, ``d_spectral``, ``d_layout`` override the defaults."""
    norm = cfg.extra.get("d_norm", d_norm)
    spectral = bool(cfg.extra.get("d_spectral", d_spectral))
    layout = cfg.extra.get("d_layout", d_layout)
    return DCGANGenerator(cfg), DCGANDiscriminator(cfg, norm=norm, spectral=spectral, layout=layout)


register(
    GanSpec(
        name="dcgan",
        title="DCGAN",
        build=build_dcgan,
        loss="bce",
        # Radford et al. 2016, Sec. 4: Adam lr 2e-4, beta1 0.5 (0.9 oscillated), batch 128, z 100.
        preset=make_preset(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=128, z_dim=100),
        description="Deep convolutional GAN with the non-saturating loss (Radford et al., ICLR 2016).",
    )
)

register(
    GanSpec(
        name="lsgan",
        title="LSGAN",
        build=build_dcgan,
        loss="lsgan",
        # Mao et al. 2017, Sec. 4: Adam lr 2e-4, beta1 0.5, on a DCGAN-like architecture.
        preset=make_preset(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=64),
        description="Least-squares GAN, a=0 b=1 c=1 coding (Mao et al., ICCV 2017).",
    )
)

register(
    GanSpec(
        name="wgan",
        title="WGAN",
        build=partial(build_dcgan, d_norm="layer"),
        loss="wgan",
        # Arjovsky et al. 2017, Alg. 1: RMSProp lr 5e-5 (momentum-based optimisers were unstable),
        # clip c = 0.01, n_critic = 5, batch 64.
        preset=make_preset(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, betas=None, n_critic=5, weight_clip=0.01),
        description="Wasserstein GAN with weight clipping (Arjovsky et al., ICML 2017).",
    )
)

register(
    GanSpec(
        name="wgan_gp",
        title="WGAN-GP",
        build=partial(build_dcgan, d_norm="layer"),
        loss="wgan_gp",
        # Gulrajani et al. 2017, Alg. 1: lambda 10, n_critic 5, Adam lr 1e-4, betas (0, 0.9), batch 64.
        preset=make_preset(lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, gp_lambda=10.0),
        description="Wasserstein GAN with gradient penalty; layer-normalised critic (Gulrajani et al., NeurIPS 2017).",
    )
)

register(
    GanSpec(
        name="hinge",
        title="HingeGAN",
        build=partial(build_dcgan, d_norm="none", d_spectral=True),
        loss="hinge",
        # SNGAN baseline as in Mimicry (Lee & Town 2020): Adam lr 2e-4, betas (0, 0.9), n_dis 5, batch 64.
        preset=make_preset(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), n_critic=5),
        description="Hinge-loss GAN with a spectrally normalised D (Lim & Ye 2017; Miyato et al., ICLR 2018).",
    )
)
