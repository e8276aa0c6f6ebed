"""The adversarial terms: hinge losses, VQGAN's adaptive weight, and discriminator feature matching.

Every function takes a discriminator's outputs (see
:class:`~vqgen.tokenizers.losses.discriminators.DiscriminatorOutput`); with several sub-discriminators
(the multi-scale STFT one) each term is the mean over them, so one patch discriminator gives exactly the
single-discriminator formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.losses.discriminators import DiscriminatorOutput


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))``; logits of any shape -> scalar."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean(fake)``: the generator pushes the discriminator's logits on its outputs up. Any shape -> scalar."""
    return -fake_logits.mean()


def adaptive_gan_weight(
    reconstruction_loss: torch.Tensor,
    gan_loss: torch.Tensor,
    last_layer_weight: torch.Tensor,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VQGAN's adaptive weight ``||d rec / d w|| / (||d gan / d w|| + eps)``, clamped to ``[0, max_weight]``.

    ``w`` is the decoder's last layer weight; both losses are scalars that must depend on it through an
    autograd graph, which is kept (``retain_graph=True``) for the caller's backward pass. Returns a
    detached float32 scalar; ``0`` when either gradient norm is not finite, so a blown-up step adds no
    adversarial signal instead of spreading NaNs.
    """
    if not (reconstruction_loss.requires_grad and gan_loss.requires_grad):
        raise ConfigError(
            "adaptive_gan_weight needs both losses to carry gradients (is autograd disabled, or are they detached?)"
        )
    norms = []
    for loss in (reconstruction_loss, gan_loss):
        (grad,) = torch.autograd.grad(loss, last_layer_weight, retain_graph=True, allow_unused=True)
        norms.append(
            torch.zeros((), device=last_layer_weight.device) if grad is None else grad.float().norm()
        )
    rec_norm, gan_norm = norms
    if not (torch.isfinite(rec_norm) and torch.isfinite(gan_norm)):
        return torch.zeros((), device=last_layer_weight.device)
    return (rec_norm / (gan_norm + eps)).clamp(0.0, max_weight).detach()


def mean_over_discriminators(values: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of per-sub-discriminator scalars; a single one is returned as it is (bit for bit)."""
    return values[0] if len(values) == 1 else torch.stack(list(values)).mean()


def feature_matching_loss(
    fake_features: Sequence[Sequence[torch.Tensor]], real_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """L1 between a discriminator's features of reconstructed and real media (MelGAN, HiFi-GAN, EnCodec).

    For each sub-discriminator: the mean over its layers of ``mean |fake - real|`` (real detached); then
    the mean over sub-discriminators (audiocraft's normalisation). Computed in float32.

    Shapes: per sub-discriminator a list of ``[B, D_i, *positions_i]``, equal on both sides -> scalar.
    """
    if len(fake_features) != len(real_features) or not fake_features:
        raise ShapeError(
            f"feature matching needs features of the same sub-discriminators, got {len(fake_features)} "
            f"and {len(real_features)}"
        )
    per_discriminator = []
    for fakes, reals in zip(fake_features, real_features):
        if len(fakes) != len(reals) or not fakes:
            raise ShapeError(
                f"feature matching needs the same layers on both sides, got {len(fakes)} and {len(reals)}"
            )
        layers = [F.l1_loss(fake.float(), real.detach().float()) for fake, real in zip(fakes, reals)]
        per_discriminator.append(torch.stack(layers).mean())
    return mean_over_discriminators(per_discriminator)


def adversarial_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """:func:`hinge_discriminator_loss` of each sub-discriminator's logits, averaged over them -> scalar."""
    return mean_over_discriminators(
        [hinge_discriminator_loss(r, f) for r, f in zip(real.logits, fake.logits, strict=True)]
    )


def adversarial_generator_loss(fake: DiscriminatorOutput) -> torch.Tensor:
    """:func:`hinge_generator_loss` of each sub-discriminator's logits, averaged over them -> scalar."""
    return mean_over_discriminators([hinge_generator_loss(logits) for logits in fake.logits])


def discriminator_without_param_grads(discriminator: nn.Module, x: torch.Tensor) -> DiscriminatorOutput:
    """Run ``discriminator`` on ``x`` with detached parameters: gradients reach ``x`` only.

    The generator's adversarial term must not leave gradients in the discriminator (they would leak into
    its next update unless every caller zeroes them in the right order).
    """
    module = getattr(discriminator, "module", discriminator)  # unwrap DistributedDataParallel
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))
