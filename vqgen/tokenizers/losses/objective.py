"""The complete tokenizer objective, :class:`TokenizerLoss`: reconstruction, perceptual, MS-SSIM, spectral,
quantizer and adversarial (hinge + feature matching) terms for every medium.

The adversarial part follows the VQGAN recipe: a discriminator trained with the hinge loss, which only
switches on after ``discriminator_start`` steps, and whose generator-side hinge term is scaled by an
adaptive weight that balances its gradient against the reconstruction gradient at the decoder's last layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vqgen.errors import ConfigError
from vqgen.tokenizers.losses.adversarial import (
    adaptive_gan_weight,
    adversarial_discriminator_loss,
    adversarial_generator_loss,
    discriminator_without_param_grads,
    feature_matching_loss,
    mean_over_discriminators,
)
from vqgen.tokenizers.losses.discriminators import (
    DISCRIMINATOR_KINDS,
    DiscriminatorOutput,
    build_discriminator,
)
from vqgen.tokenizers.losses.harmonic import HarmonicLoss
from vqgen.tokenizers.losses.perceptual import FeatureNetwork, PerceptualLoss
from vqgen.tokenizers.losses.reconstruction import (
    RECONSTRUCTION_KINDS,
    check_same_shape,
    ms_ssim_loss,
    reconstruction_loss,
)
from vqgen.tokenizers.losses.spectral import SpectralLoss


def _check_settings(dims: int, reconstruction: str, discriminator: str, weights: dict[str, float]) -> None:
    """One-line :class:`ConfigError` for a setting :class:`TokenizerLoss` cannot use."""
    if dims not in (1, 2, 3):
        raise ConfigError(f"dims must be 1, 2 or 3, got {dims}")
    if reconstruction not in RECONSTRUCTION_KINDS:
        raise ConfigError(f"reconstruction must be one of {RECONSTRUCTION_KINDS}, got {reconstruction!r}")
    if discriminator not in DISCRIMINATOR_KINDS:
        raise ConfigError(f"discriminator must be one of {DISCRIMINATOR_KINDS}, got {discriminator!r}")
    for name, value in weights.items():
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
    for name in ("spectral_weight", "harmonic_weight"):
        if weights[name] > 0 and dims != 1:
            raise ConfigError(f"{name}={weights[name]} applies to audio (dims=1) only, got dims={dims}")
    if weights["ms_ssim_weight"] > 0 and dims == 1:
        raise ConfigError(
            f"ms_ssim_weight={weights['ms_ssim_weight']} applies to images and video (dims=2, 3), got audio"
        )


class TokenizerLoss(nn.Module):
    """The complete tokenizer objective: generator side and discriminator side.

    Generator side: ``reconstruction_weight * rec + perceptual_weight * perceptual + ms_ssim_weight * (1 -
    MS-SSIM) + spectral_weight * spectral + harmonic_weight * harmonic`` (the reconstruction objective ``nll``;
    harmonic: :class:`~vqgen.tokenizers.losses.harmonic.HarmonicLoss`, audio only), ``+ quantizer_weight *
    quantizer_loss``, and from step ``discriminator_start`` on ``+ adaptive_weight * discriminator_weight *
    hinge_generator(D(reconstruction)) + feature_matching_weight * FM``.

    ``adaptive_weight`` is VQGAN's ``||d nll / d w|| / ||d hinge / d w||`` at the decoder's last layer ``w``.
    Feature matching (L1 between the discriminator's hidden features of real and reconstructed media, see
    :func:`~vqgen.tokenizers.losses.adversarial.feature_matching_loss`) has a fixed weight, as in MelGAN,
    HiFi-GAN, EnCodec and DAC, and is not part of ``nll``: it is a bounded L1 distance, not an unbounded
    logit, so it needs no balancing, and the adaptive weight (and so the hinge term) stays exactly what it
    is without feature matching.

    Discriminator side: the hinge loss on real vs. reconstructed media. The discriminator (``discriminator``:
    ``"patch"``, ``"stft"`` (audio only) or ``"auto"``: STFT for audio, patch otherwise; see
    :func:`~vqgen.tokenizers.losses.discriminators.build_discriminator`) exists when ``discriminator_weight``
    or ``feature_matching_weight`` is positive, and trains from ``discriminator_start`` on in either case;
    ``self.discriminator`` is ``None`` otherwise. ``discriminator_channels`` ``None`` means 64 (patch) or 32
    (STFT); ``discriminator_layers`` shapes the patch discriminator only.

    Media shapes: ``[B, in_channels, *spatial]`` with ``len(spatial) == dims``. For video (``dims=3``) the
    perceptual network and MS-SSIM see frames: ``[B, C, T, H, W]`` is folded to ``[B * T, C, H, W]``.
    """

    def __init__(
        self,
        in_channels: int,
        dims: int = 2,
        reconstruction: str = "l1",
        quantizer_weight: float = 1.0,
        reconstruction_weight: float = 1.0,
        perceptual_weight: float = 0.0,
        perceptual_network: nn.Module | FeatureNetwork | None = None,
        discriminator_weight: float = 0.0,
        discriminator_start: int = 0,
        discriminator_channels: int | None = None,
        discriminator_layers: int = 3,
        max_adaptive_weight: float = 1e4,
        spectral_weight: float = 0.0,
        sample_rate: int = 16000,
        ms_ssim_weight: float = 0.0,
        feature_matching_weight: float = 0.0,
        discriminator: str = "auto",
        harmonic_weight: float = 0.0,
    ):
        super().__init__()
        weights = {
            "harmonic_weight": harmonic_weight,
            "reconstruction_weight": reconstruction_weight,
            "quantizer_weight": quantizer_weight,
            "perceptual_weight": perceptual_weight,
            "discriminator_weight": discriminator_weight,
            "max_adaptive_weight": max_adaptive_weight,
            "spectral_weight": spectral_weight,
            "ms_ssim_weight": ms_ssim_weight,
            "feature_matching_weight": feature_matching_weight,
        }
        _check_settings(dims, reconstruction, discriminator, weights)
        if perceptual_weight > 0 and perceptual_network is None:
            raise ConfigError(
                f"perceptual_weight={perceptual_weight} needs a perceptual_network (vqgen ships none; "
                "--perceptual-network takes a local VGG16 weights file)"
            )
        self.dims = dims
        self.reconstruction = reconstruction
        self.quantizer_weight = quantizer_weight
        self.reconstruction_weight = reconstruction_weight
        self.perceptual_weight = perceptual_weight
        self.ms_ssim_weight = ms_ssim_weight
        self.discriminator_weight = discriminator_weight
        self.feature_matching_weight = feature_matching_weight
        self.discriminator_start = discriminator_start
        self.max_adaptive_weight = max_adaptive_weight
        self.spectral_weight = spectral_weight
        self.spectral = SpectralLoss(sample_rate) if spectral_weight > 0 else None
        self.harmonic_weight = harmonic_weight
        self.harmonic = HarmonicLoss(sample_rate) if harmonic_weight > 0 else None
        self.perceptual = (
            PerceptualLoss(perceptual_network)
            if perceptual_weight > 0 and perceptual_network is not None
            else None
        )
        self.discriminator = (
            build_discriminator(
                discriminator, in_channels, dims, discriminator_channels, discriminator_layers, sample_rate
            )
            if discriminator_weight > 0 or feature_matching_weight > 0
            else None
        )

    def discriminator_active(self, step: int) -> bool:
        """Whether the adversarial terms are on at training step ``step``."""
        return self.discriminator is not None and step >= self.discriminator_start

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Video ``[B, C, T, H, W] -> [B * T, C, H, W]`` for image networks; other media unchanged."""
        return x.transpose(1, 2).flatten(0, 1) if self.dims == 3 else x

    def _reconstruction_terms(
        self, target: torch.Tensor, reconstruction: torch.Tensor, logs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """``nll``: the weighted reconstruction, perceptual, MS-SSIM and spectral terms (logged in ``logs``)."""
        rec = reconstruction_loss(reconstruction, target, self.reconstruction)
        logs["reconstruction"] = rec.detach()
        nll = self.reconstruction_weight * rec
        if self.perceptual is not None:
            perceptual = self.perceptual(self._frames(reconstruction), self._frames(target))
            logs["perceptual"] = perceptual.detach()
            nll = nll + self.perceptual_weight * perceptual
        if self.ms_ssim_weight > 0:
            structural = ms_ssim_loss(reconstruction, target)
            logs["ms_ssim"] = structural.detach()
            nll = nll + self.ms_ssim_weight * structural
        if self.spectral is not None:
            spectral = self.spectral(reconstruction, target)
            logs["spectral"] = spectral.detach()
            nll = nll + self.spectral_weight * spectral
        if self.harmonic is not None:
            harmonic = self.harmonic(reconstruction, target)
            logs["harmonic"] = harmonic.detach()
            nll = nll + self.harmonic_weight * harmonic
        return nll

    def _adversarial_terms(
        self,
        target: torch.Tensor,
        reconstruction: torch.Tensor,
        nll: torch.Tensor,
        last_layer_weight: torch.Tensor | None,
        logs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The weighted hinge and feature-matching terms (logged into ``logs``), scalar."""
        assert self.discriminator is not None
        fake = discriminator_without_param_grads(self.discriminator, reconstruction)
        total = nll.new_zeros(())
        if self.discriminator_weight > 0:
            adversarial = adversarial_generator_loss(fake)
            if last_layer_weight is not None and nll.requires_grad and adversarial.requires_grad:
                weight = adaptive_gan_weight(nll, adversarial, last_layer_weight, self.max_adaptive_weight)
            else:
                weight = torch.ones((), device=nll.device)
            total = weight * self.discriminator_weight * adversarial
            logs["generator_adv"] = adversarial.detach()
            logs["adaptive_weight"] = weight
        if self.feature_matching_weight > 0:
            with torch.no_grad():
                real = discriminator_without_param_grads(self.discriminator, target)
            matching = feature_matching_loss(fake.features, real.features)
            logs["feature_matching"] = matching.detach()
            total = total + self.feature_matching_weight * matching
        return total

    def generator_loss(
        self,
        target: torch.Tensor,
        reconstruction: torch.Tensor,
        quantizer_loss: torch.Tensor,
        step: int,
        last_layer_weight: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss for the tokenizer (encoder, quantizer, decoder) at ``step``.

        Shapes: ``target``, ``reconstruction`` ``[B, C, *spatial]``; ``quantizer_loss`` scalar;
        ``last_layer_weight`` the decoder's output-layer weight for the adaptive GAN weight (``None``, or
        autograd disabled, uses weight 1). Returns the scalar total and detached scalars for logging:
        ``reconstruction``, ``quantizer``, ``perceptual`` / ``ms_ssim`` / ``spectral`` (when used),
        ``generator_adv`` and ``adaptive_weight`` (when the hinge term is on), ``feature_matching`` (when
        it is on), ``total``.

        The discriminator's parameters receive no gradient from this loss.
        """
        logs: dict[str, torch.Tensor] = {}
        nll = self._reconstruction_terms(target, reconstruction, logs)
        logs = {"reconstruction": logs.pop("reconstruction"), "quantizer": quantizer_loss.detach(), **logs}
        total = nll + self.quantizer_weight * quantizer_loss
        if self.discriminator_active(step):
            adversarial = self._adversarial_terms(target, reconstruction, nll, last_layer_weight, logs)
            total = total + adversarial
        logs["total"] = total.detach()
        return total, logs

    def discriminator_loss(
        self, target: torch.Tensor, reconstruction: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Hinge loss for the discriminator; ``reconstruction`` is detached here.

        Shapes: ``target``, ``reconstruction`` ``[B, C, *spatial]`` -> scalar, plus detached logs
        ``discriminator``, ``logits_real``, ``logits_fake`` (means, averaged over sub-discriminators). When
        inactive at ``step``: a zero scalar that requires no grad and an empty dict.
        """
        if not self.discriminator_active(step):
            return torch.zeros((), device=target.device), {}
        assert self.discriminator is not None
        check_same_shape(reconstruction, target)
        # One pass over both halves (GroupNorm is per item, so this equals two passes, and DDP sees one forward).
        out = self.discriminator(torch.cat([target, reconstruction.detach()]))
        halves = [logits.chunk(2) for logits in out.logits]
        real = DiscriminatorOutput([r for r, _ in halves], [])
        fake = DiscriminatorOutput([f for _, f in halves], [])
        loss = adversarial_discriminator_loss(real, fake)
        logs = {
            "discriminator": loss.detach(),
            "logits_real": mean_over_discriminators([r.detach().mean() for r in real.logits]),
            "logits_fake": mean_over_discriminators([f.detach().mean() for f in fake.logits]),
        }
        return loss, logs
