"""Adversarial losses and discriminator regularisers of the GANs in the study.

Every loss takes D's raw outputs (logits or critic values) of any shape, usually ``(B,)``, and returns a
scalar mean, so the same functions serve global and patch discriminators. Keys of :data:`LOSSES`:

* ``bce`` / ``logistic``: non-saturating GAN (Goodfellow et al., NeurIPS 2014, Sec. 3), written with
  ``softplus`` for stability: ``log(1 + e^-x) = -log sigmoid(x)``. StyleGAN2 calls the same loss
  "logistic" (Karras et al., CVPR 2020).
* ``lsgan``: least squares with the a=0 (fake), b=1 (real), c=1 coding of Mao et al., ICCV 2017, Eq. 2
  (each term halved as in the paper).
* ``wgan`` / ``wgan_gp``: Wasserstein critic (Arjovsky et al., ICML 2017, Alg. 1); the Lipschitz
  constraint is :func:`clip_weights` (WGAN) or :func:`gradient_penalty` (Gulrajani et al., NeurIPS 2017).
* ``hinge``: Lim & Ye 2017 / Miyato et al. (SNGAN, ICLR 2018, Eq. 16-17), also SPADE's loss.

The regularisers return the *unweighted* penalty; the trainer multiplies by ``gp_lambda`` or
``r1_gamma / 2`` from the spec's preset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# A discriminator as the regularisers see it: D(x, cond) -> logits. A plain D works, and so does a
# lambda that augments first (StyleGAN2-ADA computes R1 through the augmentation pipe).
Critic = Callable[[Tensor, Tensor | None], Tensor]


@dataclass(frozen=True)
class Loss:
    """A pair of adversarial objectives, both to be minimised."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]  # (d_real, d_fake) -> scalar
    g_loss: Callable[[Tensor], Tensor]  # d_fake -> scalar
    description: str = ""


def _bce_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # -log sigmoid(real) - log(1 - sigmoid(fake))
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def _bce_g(d_fake: Tensor) -> Tensor:
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))), which has vanishing
    # gradients early in training when D rejects every fake (Goodfellow et al. 2014, Sec. 3).
    return F.softplus(-d_fake).mean()


def _lsgan_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return 0.5 * ((d_real - 1).square().mean() + d_fake.square().mean())


def _lsgan_g(d_fake: Tensor) -> Tensor:
    return 0.5 * (d_fake - 1).square().mean()


def _wgan_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return d_fake.mean() - d_real.mean()


def _wgan_g(d_fake: Tensor) -> Tensor:
    return -d_fake.mean()


def _hinge_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


LOSSES: dict[str, Loss] = {
    "bce": Loss("bce", _bce_d, _bce_g, "non-saturating GAN loss (DCGAN)"),
    "logistic": Loss("logistic", _bce_d, _bce_g, "non-saturating logistic loss (StyleGAN2), same as bce"),
    "lsgan": Loss("lsgan", _lsgan_d, _lsgan_g, "least squares, a=0 b=1 c=1 (Mao et al. 2017)"),
    "wgan": Loss("wgan", _wgan_d, _wgan_g, "Wasserstein critic with weight clipping (Arjovsky et al. 2017)"),
    "wgan_gp": Loss("wgan_gp", _wgan_d, _wgan_g, "Wasserstein critic + gradient penalty (Gulrajani et al. 2017)"),
    # G's hinge loss is the Wasserstein one (-E[D(G(z))]), as in SNGAN and SPADE.
    "hinge": Loss("hinge", _hinge_d, _wgan_g, "hinge loss (Lim & Ye 2017; Miyato et al. 2018)"),
}


def _grad_norm_sq(outputs: Tensor, inputs: Tensor) -> Tensor:
    """Per-sample squared L2 norm of d(sum outputs)/d inputs, kept in the graph for a second backward."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.square().flatten(1).sum(1)  # (B,)


def gradient_penalty(
    D: Critic, real: Tensor, fake: Tensor, cond: Tensor | None = None, *, generator: torch.Generator | None = None
) -> Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on random interpolates (Gulrajani et al. 2017, Alg. 1).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample. ``cond`` is passed to
    D unchanged: in the conditional case real and fake share their mask. D must not mix samples (no
    BatchNorm), or the per-sample gradient norm is meaningless (the paper's Sec. 4 uses layer norm).
    """
    eps_device = generator.device if generator is not None else real.device
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=eps_device).to(real)  # (B, 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
    # A small epsilon inside the square root keeps the gradient finite where the norm is exactly 0.
    norm = (_grad_norm_sq(D(x_hat, cond), x_hat) + 1e-12).sqrt()  # (B,)
    return (norm - 1).square().mean()


def r1_penalty(D: Critic, real: Tensor, cond: Tensor | None = None) -> Tensor:
    """R1: ``E[||grad_x D(x_real)||^2]`` (Mescheder et al., ICML 2018, Eq. 9, without the gamma/2 factor)."""
    x = real.detach().requires_grad_(True)  # (B, C, H, W)
    return _grad_norm_sq(D(x, cond), x).mean()


@torch.no_grad()
def clip_weights(D: nn.Module, c: float) -> None:
    """Clamp every parameter of D to ``[-c, c]`` after each critic step (Arjovsky et al. 2017, Alg. 1, c=0.01)."""
    for p in D.parameters():
        p.clamp_(-c, c)


def feature_matching_loss(real_feats: Sequence[Sequence[Tensor]], fake_feats: Sequence[Sequence[Tensor]]) -> Tensor:
    """Feature matching: L1 between D's intermediate features on real and fake (pix2pixHD Eq. 4, as in SPADE).

    Both arguments are ``[scale][layer]`` lists from ``D.forward_with_features``. As in SPADE the L1 means
    are summed over layers and averaged over scales, so SPADE's weight (10) applies unchanged. Real features
    are detached: only G learns from this term.
    """
    if len(real_feats) != len(fake_feats) or not real_feats:
        raise ValueError("feature_matching_loss needs two non-empty [scale][layer] feature lists of the same length")
    total = sum(
        F.l1_loss(f, r.detach()) for real, fake in zip(real_feats, fake_feats) for r, f in zip(real, fake, strict=True)
    )
    return total / len(real_feats)
