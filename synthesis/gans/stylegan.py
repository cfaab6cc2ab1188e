"""A StyleGAN2-type generator and residual discriminator in plain PyTorch ops (no custom CUDA kernels).

Written from the papers, not from NVIDIA's code (its licence is non-commercial):
Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (arXiv 1912.04958), and
"Training Generative Adversarial Networks with Limited Data", NeurIPS 2020 (arXiv 2006.06676).

- Mapping network: z normalised to unit second moment, ``map_layers`` equalised FC layers with lr multiplier
  0.01, a tracked ``w_avg`` (EMA while training) for truncation ``w = w_avg + psi * (w - w_avg)``.
- Synthesis network: learned constant 4x4 input, modulated + demodulated 3x3 convolutions, per-layer noise
  with learned strength, skip architecture (a toRGB per resolution, upsampled and summed). The "RGB" output has
  ``out_channels`` = image channels (tanh at the very end, so they lie in [-1, 1]) then class logits (softmax
  at the very end, so they sum to 1).
- Style mixing while training (probability ``style_mixing``): a second z takes over from a random layer on.
- Discriminator: residual blocks, minibatch standard deviation, two FC layers, output ``(B,)``.
- Up/downsampling: zero insertion or stride 2 with the [1, 3, 3, 1] binomial blur (``F.conv2d``).
- Equalised learning rate everywhere: weights are stored N(0, 1) / lr_mul and scaled at run time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import check_cond, check_z, image_mask_output
from .registry import GanSpec, ModelConfig, make_preset, register

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------------------------
# Resampling with the [1, 3, 3, 1] filter.


def _blur_kernel(channels: int, gain: float, like: torch.Tensor) -> torch.Tensor:
    """Depthwise 4x4 binomial kernel ``(C, 1, 4, 4)`` summing to ``gain``."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=like.dtype, device=like.device)
    k = torch.outer(f, f)
    return (k * (gain / k.sum())).expand(channels, 1, 4, 4)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``: zero insertion then the blur with gain 4 (keeps the mean)."""
    b, c, h, w = x.shape
    # Zero insertion by padding a size-1 axis: pure reshapes, deterministic forward and backward.
    x = F.pad(x.reshape(b, c, h, 1, w, 1), (0, 1, 0, 0, 0, 1)).reshape(b, c, 2 * h, 2 * w)
    # Pad (2, 1) so the 4-tap filter centres the upsampled signal (upfirdn2d's pad for up=2, taps=4).
    x = F.pad(x, (2, 1, 2, 1))
    return F.conv2d(x, _blur_kernel(c, 4.0, x), groups=c)


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``: the blur applied with stride 2 (an anti-aliased box filter)."""
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), _blur_kernel(c, 1.0, x), stride=2, groups=c)


# ----------------------------------------------------------------------------------------------------------------
# Equalised-learning-rate layers.


class EqualLinear(nn.Module):
    """Fully connected layer with run-time weight scaling; optional leaky ReLU with gain sqrt(2)."""

    def __init__(
        self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class EqualConv2d(nn.Module):
    """Discriminator convolution with run-time weight scaling; ``down`` blurs then subsamples by 2 first."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True, act: bool = True, down=False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act, self.down, self.padding = act, down, kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = downsample2d(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


# ----------------------------------------------------------------------------------------------------------------
# Generator.


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution: per-sample weights ``w * s`` (then demodulated to unit output variance).

    Returns the pre-activation output; with demodulation and input of unit variance the output std is ~1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *, demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, c_in, h, wd = x.shape  # x (B, C_in, H, W), w (B, w_dim)
        styles = self.affine(w)  # (B, C_in)
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]  # (B, C_out, C_in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        c_out, k = weight.shape[1], weight.shape[-1]
        # One grouped convolution over the whole batch: group i convolves sample i with its own weights.
        out = F.conv2d(
            x.reshape(1, b * c_in, h, wd), weight.reshape(b * c_out, c_in, k, k), padding=self.padding, groups=b
        )
        return out.reshape(b, c_out, h, wd)


class SynthesisLayer(nn.Module):
    """(optional 2x upsampling) -> modulated 3x3 conv -> noise * strength -> bias -> leaky ReLU * sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool = False):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        # Starts at 0 (SG2): the network learns how much per-pixel noise it wants.
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.resolution = resolution

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.up:
            x = upsample2d(x)
        x = self.conv(x, w)  # (B, C_out, R, R)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype) * (
                self.noise_strength
            )
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation to ``out_channels`` (image channels then class logits)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def channels_at(res: int, cfg: ModelConfig) -> int:
    """Feature maps at resolution ``res``: ``base_channels`` at full size, doubling per halving, capped."""
    cap = int(cfg.extra.get("max_channels", 512))
    return min(cfg.base_channels * (cfg.resolution // res), 8 * cfg.base_channels, cap)


class MappingNetwork(nn.Module):
    """z ``(B, z_dim)`` -> w ``(B, w_dim)``, with the running mean ``w_avg`` used for truncation."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, *, lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, act=True) for i in range(layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # unit second moment per sample
        w = self.net(z)  # (B, w_dim)
        if self.training:
            # The tracked mean follows the generator while it trains; G_ema copies it like any buffer.
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1.0:
            w = self.w_avg.lerp(w, psi)
        return w


class SynthesisNetwork(nn.Module):
    """ws ``(B, num_ws, w_dim)`` -> ``(B, out_channels, R, R)`` raw (linear) outputs, skip architecture."""

    def __init__(self, cfg: ModelConfig, w_dim: int):
        super().__init__()
        log2 = int(math.log2(cfg.resolution))
        self.resolutions = [2**i for i in range(2, log2 + 1)]  # 4, 8, ..., R
        out_ch = cfg.img_channels + cfg.n_classes
        c4 = channels_at(4, cfg)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        self.convs = nn.ModuleList()
        self.torgbs = nn.ModuleList()
        in_ch = c4
        for res in self.resolutions:
            ch = channels_at(res, cfg)
            if res > 4:
                self.convs.append(SynthesisLayer(in_ch, ch, w_dim, res, up=True))
            self.convs.append(SynthesisLayer(ch, ch, w_dim, res))
            self.torgbs.append(ToRGB(ch, out_ch, w_dim))
            in_ch = ch
        # w indices: block 4 uses ws[0] (conv) and ws[1] (toRGB); block r>4 uses its two convs then the toRGB,
        # the first conv sharing its w with the previous toRGB (as in SG2). Total 2 * log2(R) - 2.
        self.num_ws = 2 * log2 - 2

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        b = ws.shape[0]
        x = self.const[None].expand(b, -1, -1, -1)  # (B, C4, 4, 4)
        img = None
        conv_iter = iter(self.convs)
        w_idx = 0
        for res, torgb in zip(self.resolutions, self.torgbs, strict=True):
            if res > 4:
                x = next(conv_iter)(x, ws[:, w_idx], noise_mode)  # upsampling conv
                w_idx += 1
            x = next(conv_iter)(x, ws[:, w_idx], noise_mode)  # (B, C_res, res, res)
            w_idx += 1
            y = torgb(x, ws[:, w_idx])  # shares its w with the next block's upsampling conv
            img = y if img is None else upsample2d(img) + y
        return img  # (B, out_channels, R, R)


class StyleGenerator(nn.Module):
    """G(z ``(B, z_dim)``, cond=None) -> ``(B, img_channels + n_classes, R, R)``: tanh image, softmax classes."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.w_dim = int(cfg.extra.get("w_dim", cfg.z_dim))
        self.style_mixing = float(cfg.extra.get("style_mixing", 0.0))
        self.mapping_net = MappingNetwork(cfg.z_dim, self.w_dim, int(cfg.extra.get("map_layers", 8)))
        self.synthesis_net = SynthesisNetwork(cfg, self.w_dim)
        self.num_ws = self.synthesis_net.num_ws

    def mapping(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """z ``(B, z_dim)`` -> ws ``(B, num_ws, w_dim)`` (one w broadcast to every layer), truncated by ``psi``."""
        return self.mapping_net(z, psi)[:, None].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """ws ``(B, num_ws, w_dim)`` -> ``(B, out_channels, R, R)`` with the output activations applied."""
        return image_mask_output(self.synthesis_net(ws, noise_mode), self.cfg.img_channels)

    def mix_styles(self, ws: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """With probability ``style_mixing`` per batch, layers from a random cutoff on use a second z's w."""
        if self.style_mixing <= 0 or torch.rand([], device=ws.device) >= self.style_mixing:
            return ws
        cutoff = int(torch.randint(1, self.num_ws, [], device=ws.device))
        z2 = torch.randn(ws.shape[0], self.z_dim, device=ws.device, dtype=ws.dtype)
        ws = ws.clone()
        ws[:, cutoff:] = self.mapping(z2, psi)[:, cutoff:]
        return ws

    def forward(
        self,
        z: torch.Tensor,
        cond: torch.Tensor | None = None,
        psi: float = 1.0,
        noise_mode: str = "random",
        return_ws: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The image (and, with ``return_ws``, the ws it was made from, for path-length regularisation: one
        forward call, so a DistributedDataParallel wrapper sees the whole graph)."""
        check_z(z, self.z_dim)
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=z.shape[0], conditional=False
        )
        ws = self.mapping(z, psi)
        if self.training:
            ws = self.mix_styles(ws, psi)
        img = self.synthesis(ws, noise_mode)
        return (img, ws) if return_ws else img


# ----------------------------------------------------------------------------------------------------------------
# Discriminator.


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, scaled by 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, act=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one feature map: the std over groups of samples, averaged over features and pixels ``(B, C+1, H, W)``."""
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)  # a group size that divides the batch
    y = x.reshape(g, b // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (B/g, C, H, W)
    y = y.mean(dim=(1, 2, 3))  # (B/g,)
    y = y.reshape(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
    return torch.cat([x, y], dim=1)


class StyleDiscriminator(nn.Module):
    """D(x ``(B, out_channels, R, R)``, cond=None) -> logits ``(B,)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        in_ch = cfg.img_channels + cfg.n_classes
        self.from_rgb = EqualConv2d(in_ch, channels_at(cfg.resolution, cfg), 1)
        blocks = []
        res = cfg.resolution
        while res > 4:
            blocks.append(DiscriminatorBlock(channels_at(res, cfg), channels_at(res // 2, cfg)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, cfg)
        self.mbstd_group = int(cfg.extra.get("mbstd_group", 4))
        self.conv = EqualConv2d(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, act=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        check_cond(
            cond, n_classes=self.cfg.n_classes, resolution=self.cfg.resolution, batch=x.shape[0], conditional=False
        )
        x = self.blocks(self.from_rgb(x))  # (B, C4, 4, 4)
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)  # (B,)


# ----------------------------------------------------------------------------------------------------------------
# Registration.


def build_stylegan(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for ``cfg``; the resolution must be a power of two >= 8."""
    log2 = math.log2(cfg.resolution)
    if cfg.resolution < 8 or log2 != int(log2):
        raise ValueError(f"stylegan needs a power-of-two resolution >= 8, got {cfg.resolution}")
    return StyleGenerator(cfg), StyleDiscriminator(cfg)


def r1_gamma_heuristic(resolution: int, batch_size: int) -> float:
    """SG2-ADA's ``--cfg=auto`` R1 weight: 0.0002 * res^2 / batch."""
    return float(0.0002 * resolution**2 / batch_size)


register(
    GanSpec(
        name="stylegan",
        title="StyleGAN2",
        build=build_stylegan,
        loss="logistic",
        conditional=False,
        preset=make_preset(
            lr_g=0.0025,
            lr_d=0.0025,
            betas=(0.0, 0.99),
            batch_size=16,
            r1_gamma="auto",  # 0.0002 * res^2 / batch (SG2-ADA --cfg=auto), resolved by the trainer
            r1_interval=16,
            pl_weight=2.0,
            pl_interval=4,
            pl_decay=0.01,
            pl_batch_shrink=2,
            ema_kimg="auto",  # 10 * batch / 32, resolved by the trainer
            ema_rampup=0.05,
            style_mixing=0.9,
            augment="ada",
            ada_target=0.6,
            map_layers=8,
        ),
        description=(
            "Style-based generator (mapping network, modulated convolutions, noise, skip outputs) with a residual "
            "discriminator, non-saturating logistic loss, lazy R1, path-length regularisation, style mixing, "
            "EMA generator and adaptive augmentation. Unconditional: masks are generated as extra channels."
        ),
    )
)

__all__ = [
    "MappingNetwork",
    "ModulatedConv2d",
    "StyleDiscriminator",
    "StyleGenerator",
    "SynthesisNetwork",
    "build_stylegan",
    "downsample2d",
    "minibatch_stddev",
    "r1_gamma_heuristic",
    "upsample2d",
]
