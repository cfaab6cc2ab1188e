"""SPADE: mask-conditioned image synthesis, the study's conditional GAN (masks in, images out).

Park, Liu, Wang, Zhu, "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019
(arXiv 1903.07291).

* SPADE normalisation (Sec. 3, Eq. 1): a parameter-free BatchNorm, then a per-pixel scale and shift
  ``gamma(m), beta(m)`` predicted by a small conv net from the one-hot mask ``m`` resized to the feature
  map, applied as ``x_hat * (1 + gamma) + beta``. The mask therefore reaches every layer instead of being
  washed out by normalisation, the paper's argument against feeding it only at the input.
* Generator (Fig. 4 and Appendix A): z (the paper's "multi-modal" variant, without the VAE encoder)
  projected to a 4x4 map, one SPADE ResBlock per resolution with nearest-neighbour 2x upsampling in
  between, widths ``16*base`` at the coarse levels halving down to ``base`` at full size, spectral norm on
  the ResBlock convolutions, tanh output. G returns only the image: the mask is the condition.
* Discriminator (Appendix A, from pix2pixHD): multi-scale PatchGAN (2 scales, 4 conv layers of 4x4,
  instance norm and spectral norm) on the image concatenated with the mask. Its patch outputs are averaged
  to ``(B,)``, which makes it a global D whose last linear layer follows an average pool.
  :meth:`SPADEDiscriminator.forward_with_features` gives the intermediate features for the paper's
  feature-matching loss (:func:`.losses.feature_matching_loss`, weight 10). The VGG perceptual loss is
  left out: its ImageNet weights cannot be fetched on these machines and do not suit grayscale scans.

``cfg.extra`` knobs: ``spade_norm`` ("batch" | "instance", default "batch"), ``spade_hidden`` (width of the
mask net, default ``2*base`` = the paper's 128), ``num_d`` (scales, default 2), ``d_layers`` (default 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import check_cond, check_z, log2_int, maybe_sn, norm2d, reinit_weight_
from .registry import GanSpec, ModelConfig, make_preset, register


def _init_(module: nn.Module, gain: float = 0.02) -> None:
    """SPADE's initialisation: Xavier-normal with gain 0.02 for conv/linear weights, norm gains N(1, 0.02)."""
    for m in list(module.modules()):  # a list: re-applying spectral norm edits the module tree
        if isinstance(m, nn.Conv2d | nn.Linear):
            reinit_weight_(m, lambda w: nn.init.xavier_normal_(w, gain=gain))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class SPADE(nn.Module):
    """``x -> norm(x) * (1 + gamma(mask)) + beta(mask)`` with per-pixel, per-channel gamma and beta."""

    def __init__(self, channels: int, label_nc: int, hidden: int, norm: str = "batch") -> None:
        super().__init__()
        self.norm = norm2d(norm, channels, affine=False)  # parameter-free: the mask supplies the affine
        self.shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # Nearest keeps the resized mask one-hot (no invented in-between classes at boundaries).
        mask = F.interpolate(mask, size=x.shape[-2:], mode="nearest")  # (B, n_classes, h, w)
        a = self.shared(mask)  # (B, hidden, h, w)
        return self.norm(x) * (1 + self.gamma(a)) + self.beta(a)


class SPADEResBlock(nn.Module):
    """Two (SPADE, LeakyReLU 0.2, 3x3 conv) stages plus a shortcut (SPADE + 1x1 conv when widths differ)."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int, norm: str, spectral: bool) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.norm_0 = SPADE(fin, label_nc, hidden, norm)
        self.conv_0 = maybe_sn(nn.Conv2d(fin, fmid, 3, padding=1), spectral)
        self.norm_1 = SPADE(fmid, label_nc, hidden, norm)
        self.conv_1 = maybe_sn(nn.Conv2d(fmid, fout, 3, padding=1), spectral)
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, hidden, norm)
            self.conv_s = maybe_sn(nn.Conv2d(fin, fout, 1, bias=False), spectral)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x_s = self.conv_s(self.norm_s(x, mask)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, mask), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, mask), 0.2))
        return x_s + dx


def _g_width(cfg: ModelConfig, r: int) -> int:
    """Generator channels at spatial size ``r``: ``base`` at full size, doubling per halving, capped at 16*base."""
    return min(16 * cfg.base_channels, cfg.base_channels * cfg.resolution // r)


class SPADEGenerator(nn.Module):
    """``G(z (B, z_dim), mask (B, n_classes, R, R) one-hot) -> image (B, img_channels, R, R)`` in [-1, 1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.n_classes < 2:
            raise ValueError("SPADE needs a mask condition: n_classes must be at least 2")
        self.cfg, self.z_dim = cfg, cfg.z_dim
        R = cfg.resolution
        log2_int(R)
        norm = cfg.extra.get("spade_norm", "batch")
        hidden = int(cfg.extra.get("spade_hidden", 2 * cfg.base_channels))
        spectral = bool(cfg.extra.get("g_spectral", True))
        self.fc = nn.Linear(cfg.z_dim, _g_width(cfg, 4) * 4 * 4)
        sizes = [4 * 2**i for i in range(log2_int(R) - 1)]  # 4, 8, ..., R
        widths = [_g_width(cfg, 4)] + [_g_width(cfg, r) for r in sizes]
        self.blocks = nn.ModuleList(
            SPADEResBlock(widths[i], widths[i + 1], cfg.n_classes, hidden, norm, spectral) for i in range(len(sizes))
        )
        self.conv_img = nn.Conv2d(widths[-1], cfg.img_channels, 3, padding=1)
        _init_(self)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        check_z(z, self.z_dim)
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=z.shape[0], conditional=True
        )
        x = self.fc(z).view(z.shape[0], -1, 4, 4)  # (B, 16*base, 4, 4)
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, w, 2h, 2w)
            x = block(x, cond)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))  # (B, img_channels, R, R)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix/pix2pixHD): 4x4 convs, stride 2 except the last two layers; outputs a logit map."""

    def __init__(self, in_channels: int, base: int, n_layers: int = 4) -> None:
        super().__init__()
        pad = 2  # pix2pixHD's ceil((4 - 1) / 2)
        nf = base
        stages: list[nn.Module] = [
            nn.Sequential(maybe_sn(nn.Conv2d(in_channels, nf, 4, 2, pad), True), nn.LeakyReLU(0.2, inplace=True))
        ]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(2 * nf, 8 * base)
            stride = 1 if n == n_layers - 1 else 2
            stages.append(
                nn.Sequential(
                    maybe_sn(nn.Conv2d(nf_prev, nf, 4, stride, pad, bias=False), True),
                    norm2d("instance", nf, affine=False),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
        stages.append(maybe_sn(nn.Conv2d(nf, 1, 4, 1, pad), True))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        """All stage outputs; the last is the patch logit map ``(B, 1, h, w)``."""
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class SPADEDiscriminator(nn.Module):
    """Multi-scale PatchGAN on ``cat(mask, image)``: ``D(x (B, img_channels, R, R), cond one-hot) -> (B,)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        num_d = int(cfg.extra.get("num_d", 2))
        n_layers = int(cfg.extra.get("d_layers", 4))
        self.scales = nn.ModuleList(
            PatchDiscriminator(cfg.img_channels + cfg.n_classes, cfg.base_channels, n_layers) for _ in range(num_d)
        )
        _init_(self)

    def forward_with_features(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, list[list[Tensor]]]:
        """``(logits (B,), features[scale][layer])``; the features exclude the final logit maps."""
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=x.shape[0], conditional=True
        )
        h = torch.cat([cond, x], dim=1)  # (B, n_classes + img_channels, R, R)
        logits, feats = [], []
        for i, d in enumerate(self.scales):
            if i > 0:
                # pix2pixHD's downsampling between scales; count_include_pad=False keeps borders unbiased.
                h = F.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False)
            outs = d(h)
            logits.append(outs[-1].mean(dim=(1, 2, 3)))  # (B,)
            feats.append(outs[:-1])
        return torch.stack(logits).mean(0), feats

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_with_features(x, cond)[0]


def build_spade(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return SPADEGenerator(cfg), SPADEDiscriminator(cfg)


register(
    GanSpec(
        name="spade",
        title="SPADE",
        build=build_spade,
        loss="hinge",
        conditional=True,
        # Park et al. 2019, Sec. 4: hinge loss, TTUR lr 1e-4 (G) / 4e-4 (D), Adam betas (0, 0.999), feature
        # matching weight 10, z 256. Batch 16 is our choice for one GPU (the paper trained on 8 V100s).
        preset=make_preset(
            lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.999), batch_size=16, feature_matching=10.0, z_dim=256, base_channels=64
        ),
        description="Mask-to-image GAN with spatially-adaptive normalisation (Park et al., CVPR 2019).",
    )
)
