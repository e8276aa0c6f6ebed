"""Training objectives shared by every tokenizer: reconstruction, perceptual, and adversarial terms.

Media tensors follow the package contract: audio ``[B, C, S]`` (``dims=1``), images ``[B, C, H, W]``
(``dims=2``), video ``[B, C, T, H, W]`` (``dims=3``), all float in ``[-1, 1]``.

The adversarial part follows the VQGAN recipe: a PatchGAN discriminator trained with the hinge loss, which
only switches on after ``discriminator_start`` steps, and whose generator-side term is scaled by an
adaptive weight that balances its gradient against the reconstruction gradient at the decoder's last layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.layers import conv_nd, group_norm

RECONSTRUCTION_KINDS = ("l1", "l2")


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``"l1"``) or squared (``"l2"``) error.

    Shapes: ``reconstruction`` and ``target`` ``[B, C, *spatial]`` (same shape) -> scalar.
    """
    if kind not in RECONSTRUCTION_KINDS:
        raise ConfigError(f"reconstruction loss kind must be one of {RECONSTRUCTION_KINDS}, got {kind!r}")
    _check_same_shape(reconstruction, target)
    if kind == "l1":
        return F.l1_loss(reconstruction, target)
    return F.mse_loss(reconstruction, target)


def _check_same_shape(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    if reconstruction.shape != target.shape:
        raise ShapeError(
            f"reconstruction shape {tuple(reconstruction.shape)} differs from target shape {tuple(target.shape)}"
        )


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator for 1-D, 2-D or 3-D media, returning one logit per patch.

    Layout: strided conv + LeakyReLU(0.2); ``num_layers - 1`` strided conv + GroupNorm + LeakyReLU with the
    width doubling each time (capped at 8x ``base_channels``); one stride-1 conv + GroupNorm + LeakyReLU;
    a final stride-1 conv to one channel.

    Images and video use kernel 4 / stride 2 per downsampling layer. Audio (``dims=1``) uses kernel 16 /
    stride 4, because one sample carries far less structure than one pixel: the receptive field must span
    hundreds of samples to judge anything. Inputs smaller than the total downsampling factor on some axis
    are edge-padded up to it (and the last axis to twice that if only one patch would remain), so any input
    of at least one element per axis is accepted.

    Shapes: ``[B, in_channels, *spatial] -> [B, 1, *patches]`` with ``patches[i] = max(spatial[i],
    factor) // factor`` and ``factor = stride ** num_layers`` (for 28x28 images and 3 layers: 3x3),
    except that a single patch becomes two along the last axis.
    """

    def __init__(self, in_channels: int, base_channels: int = 64, num_layers: int = 3, dims: int = 2):
        super().__init__()
        if dims not in (1, 2, 3):
            raise ConfigError(f"discriminator dims must be 1, 2 or 3, got {dims}")
        if num_layers < 1:
            raise ConfigError(f"discriminator num_layers must be at least 1, got {num_layers}")
        if in_channels < 1 or base_channels < 1:
            raise ConfigError(
                f"discriminator channels must be positive, got in_channels={in_channels}, "
                f"base_channels={base_channels}"
            )
        self.dims = dims
        self.num_layers = num_layers
        # Even kernel k with padding (k - s) / 2 maps a length n to exactly n // s.
        kernel, stride = (16, 4) if dims == 1 else (4, 2)
        padding = (kernel - stride) // 2
        # Stride-1 layers keep the size, so they never shrink a small input to nothing.
        kernel1 = 7 if dims == 1 else 3
        padding1 = kernel1 // 2
        self.downsampling = stride**num_layers

        widths = [base_channels * min(2**i, 8) for i in range(num_layers + 1)]
        layers: list[nn.Module] = [
            conv_nd(dims, in_channels, widths[0], kernel, stride=stride, padding=padding),
            nn.LeakyReLU(0.2),
        ]
        for i in range(1, num_layers):
            layers += [
                conv_nd(dims, widths[i - 1], widths[i], kernel, stride=stride, padding=padding),
                group_norm(widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers += [
            conv_nd(dims, widths[num_layers - 1], widths[num_layers], kernel1, padding=padding1),
            group_norm(widths[num_layers]),
            nn.LeakyReLU(0.2),
            conv_nd(dims, widths[num_layers], 1, kernel1, padding=padding1),
        ]
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Convolution weights ~ N(0, 0.02), biases zero (the DCGAN / PatchGAN initialisation)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, *spatial] -> [B, 1, *patches]`` logits (positive means "real")."""
        if x.dim() != self.dims + 2:
            raise ShapeError(
                f"discriminator with dims={self.dims} expects a {self.dims + 2}-D tensor, got shape {tuple(x.shape)}"
            )
        factor = self.downsampling
        sizes = [max(size, factor) for size in x.shape[2:]]
        # A single output patch would leave GroupNorm one value per group when a group holds one channel.
        if math.prod(size // factor for size in sizes) == 1:
            sizes[-1] = 2 * factor
        pad: list[int] = []
        for size, wanted in zip(reversed(x.shape[2:]), reversed(sizes)):  # F.pad lists the last axis first
            pad += [(wanted - size) // 2, wanted - size - (wanted - size) // 2]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        return self.layers(x)


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


FeatureNetwork = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]


class PerceptualLoss(nn.Module):
    """Distance between unit-normalised features of a frozen, user-supplied network (LPIPS without learned
    per-channel weights).

    ``feature_network`` maps a batch ``[B, C, *spatial]`` to one feature tensor ``[B, D, *positions]`` or a
    list/tuple of them. For each layer the features are divided by their l2 norm over channels, and the
    squared distance between the two unit vectors (summed over channels, so in ``[0, 4]``) is averaged over
    batch and positions; the layers are combined with ``layer_weights`` (default all 1).

    The network's parameters are frozen and it stays in eval mode even when this module is put in training
    mode; gradients still flow through it to the reconstruction. Nothing is downloaded: vqgen ships no
    default network.

    Shapes: ``reconstruction``, ``target`` ``[B, C, *spatial]`` -> scalar.
    """

    def __init__(
        self, feature_network: nn.Module | FeatureNetwork, layer_weights: Sequence[float] | None = None
    ):
        super().__init__()
        if not callable(feature_network):
            raise ConfigError(f"feature_network must be callable, got {type(feature_network).__name__}")
        # A plain callable is kept outside the module tree; an nn.Module is registered so .to() moves it.
        self.feature_network = feature_network
        if isinstance(feature_network, nn.Module):
            feature_network.requires_grad_(False)
            feature_network.eval()
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        if isinstance(self.feature_network, nn.Module):
            self.feature_network.eval()
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.feature_network(x)
        return [features] if isinstance(features, torch.Tensor) else list(features)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_same_shape(reconstruction, target)
        with torch.no_grad():
            target_features = self._features(target)
        features = self._features(reconstruction)
        weights = self.layer_weights if self.layer_weights is not None else [1.0] * len(features)
        if len(weights) != len(features) or len(features) != len(target_features):
            raise ShapeError(
                f"perceptual network returned {len(features)} feature maps but layer_weights has {len(weights)}"
            )
        total = reconstruction.new_zeros(())
        for weight, fake, real in zip(weights, features, target_features):
            fake = F.normalize(fake.float(), dim=1, eps=1e-10)
            real = F.normalize(real.float(), dim=1, eps=1e-10)
            total = total + weight * (fake - real).pow(2).sum(dim=1).mean()
        return total


def _discriminator_without_param_grads(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``discriminator`` on ``x`` with detached parameters: gradients reach ``x`` only.

    The generator's adversarial term must not leave gradients in the discriminator (they would leak into
    its next update unless every caller zeroes them in the right order).
    """
    module = getattr(discriminator, "module", discriminator)  # unwrap DistributedDataParallel
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))


class TokenizerLoss(nn.Module):
    """The complete tokenizer objective: generator side and discriminator side.

    Generator side: ``reconstruction_weight * rec + quantizer_weight * quantizer_loss + perceptual_weight * perceptual
    + adaptive_weight * discriminator_weight * hinge_generator(D(reconstruction))``, the adversarial term only
    from step ``discriminator_start`` on. Discriminator side: the hinge loss on real vs. reconstructed
    media. ``self.discriminator`` is ``None`` when ``discriminator_weight == 0``.

    Media shapes: ``[B, in_channels, *spatial]`` with ``len(spatial) == dims``. For video (``dims=3``) the
    perceptual network sees frames: ``[B, C, T, H, W]`` is folded to ``[B * T, C, H, W]``.
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
        discriminator_channels: int = 64,
        discriminator_layers: int = 3,
        max_adaptive_weight: float = 1e4,
        spectral_weight: float = 0.0,
        sample_rate: int = 16000,
    ):
        super().__init__()
        if dims not in (1, 2, 3):
            raise ConfigError(f"dims must be 1, 2 or 3, got {dims}")
        if reconstruction not in RECONSTRUCTION_KINDS:
            raise ConfigError(f"reconstruction must be one of {RECONSTRUCTION_KINDS}, got {reconstruction!r}")
        for name, value in (
            ("reconstruction_weight", reconstruction_weight),
            ("quantizer_weight", quantizer_weight),
            ("perceptual_weight", perceptual_weight),
            ("discriminator_weight", discriminator_weight),
            ("max_adaptive_weight", max_adaptive_weight),
            ("spectral_weight", spectral_weight),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        if perceptual_weight > 0 and perceptual_network is None:
            raise ConfigError(
                f"perceptual_weight={perceptual_weight} needs a perceptual_network (vqgen ships none)"
            )
        self.dims = dims
        self.reconstruction = reconstruction
        self.quantizer_weight = quantizer_weight
        self.reconstruction_weight = reconstruction_weight
        self.perceptual_weight = perceptual_weight
        self.discriminator_weight = discriminator_weight
        self.discriminator_start = discriminator_start
        self.max_adaptive_weight = max_adaptive_weight
        if spectral_weight > 0 and dims != 1:
            raise ConfigError(
                f"spectral_weight={spectral_weight} applies to audio (dims=1) only, got dims={dims}"
            )
        self.spectral_weight = spectral_weight
        self.spectral = SpectralLoss(sample_rate) if spectral_weight > 0 else None
        self.perceptual = (
            PerceptualLoss(perceptual_network)
            if perceptual_weight > 0 and perceptual_network is not None
            else None
        )
        self.discriminator = (
            PatchDiscriminator(in_channels, discriminator_channels, discriminator_layers, dims)
            if discriminator_weight > 0
            else None
        )

    def discriminator_active(self, step: int) -> bool:
        """Whether the adversarial terms are on at training step ``step``."""
        return self.discriminator is not None and step >= self.discriminator_start

    def _perceptual(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        assert self.perceptual is not None
        if self.dims == 3:
            # [B, C, T, H, W] -> [B * T, C, H, W]: perceptual networks are image networks.
            reconstruction = reconstruction.transpose(1, 2).flatten(0, 1)
            target = target.transpose(1, 2).flatten(0, 1)
        return self.perceptual(reconstruction, target)

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
        ``reconstruction``, ``quantizer``, ``perceptual`` (when used), ``generator_adv`` and
        ``adaptive_weight`` (when the discriminator is active), ``total``.

        The discriminator's parameters receive no gradient from this loss.
        """
        rec = reconstruction_loss(reconstruction, target, self.reconstruction)
        logs: dict[str, torch.Tensor] = {"reconstruction": rec.detach(), "quantizer": quantizer_loss.detach()}
        # The non-adversarial reconstruction objective: what the adaptive weight balances against.
        nll = self.reconstruction_weight * rec
        if self.perceptual is not None:
            perceptual = self._perceptual(reconstruction, target)
            logs["perceptual"] = perceptual.detach()
            nll = nll + self.perceptual_weight * perceptual
        if self.spectral is not None:
            spectral = self.spectral(reconstruction, target)
            logs["spectral"] = spectral.detach()
            nll = nll + self.spectral_weight * spectral
        total = nll + self.quantizer_weight * quantizer_loss

        if self.discriminator_active(step):
            assert self.discriminator is not None
            adversarial = hinge_generator_loss(
                _discriminator_without_param_grads(self.discriminator, reconstruction)
            )
            if last_layer_weight is not None and nll.requires_grad and adversarial.requires_grad:
                weight = adaptive_gan_weight(nll, adversarial, last_layer_weight, self.max_adaptive_weight)
            else:
                weight = torch.ones((), device=total.device)
            total = total + weight * self.discriminator_weight * adversarial
            logs["generator_adv"] = adversarial.detach()
            logs["adaptive_weight"] = weight
        logs["total"] = total.detach()
        return total, logs

    def discriminator_loss(
        self, target: torch.Tensor, reconstruction: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Hinge loss for the discriminator; ``reconstruction`` is detached here.

        Shapes: ``target``, ``reconstruction`` ``[B, C, *spatial]`` -> scalar, plus detached logs
        ``discriminator``, ``logits_real``, ``logits_fake`` (means). When inactive at ``step``: a zero
        scalar that requires no grad and an empty dict.
        """
        if not self.discriminator_active(step):
            return torch.zeros((), device=target.device), {}
        assert self.discriminator is not None
        _check_same_shape(reconstruction, target)
        # One pass over both halves (GroupNorm is per item, so this equals two passes, and DDP sees one forward).
        real_logits, fake_logits = self.discriminator(torch.cat([target, reconstruction.detach()])).chunk(2)
        loss = hinge_discriminator_loss(real_logits, fake_logits)
        logs = {
            "discriminator": loss.detach(),
            "logits_real": real_logits.detach().mean(),
            "logits_fake": fake_logits.detach().mean(),
        }
        return loss, logs


# ---------------------------------------------------------------------------------------------------------
# Spectral losses for audio ``[B, C, S]``: multi-resolution STFT and multi-scale mel (EnCodec / DAC).
# ---------------------------------------------------------------------------------------------------------


def _waveforms(reconstruction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two audio batches ``[B, C, S]`` and fold them to float32 ``[B * C, S]``."""
    _check_same_shape(reconstruction, target)
    if target.dim() != 3:
        raise ShapeError(f"spectral losses expect audio [B, C, S], got shape {tuple(target.shape)}")
    return reconstruction.float().flatten(0, 1), target.float().flatten(0, 1)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """``|STFT(x)|`` with a Hann window, centred frames, zero padding: ``[N, S] -> [N, n_fft // 2 + 1, frames]``."""
    window = torch.hann_window(win_length, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.abs()


def floored_log(fake: torch.Tensor, real: torch.Tensor, eps: float, top_db: float | None):
    """``log`` of two magnitude spectrograms ``[B, F, T]``, both floored at ``eps`` and, with ``top_db``, at
    ``top_db`` below the loudest bin of each target item. Without the relative floor, digital silence (common in
    clips of single words) dominates a log loss: reconstructing it to 1e-3 instead of exactly 0 costs more
    than every voiced bin together, and the model learns silence instead of speech."""
    floor = real.new_full((), eps)
    if top_db is not None:
        floor = (real.amax(dim=(-2, -1), keepdim=True) * 10 ** (-top_db / 20)).clamp_min(eps)
    return torch.maximum(fake, floor).log(), torch.maximum(real, floor).log()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence plus log-magnitude L1, averaged over STFT resolutions (Parallel WaveGAN).

    At each resolution, with magnitudes ``M = |STFT(target)|`` and ``M' = |STFT(reconstruction)|``:
    ``sc = ||M - M'||_F / ||M||_F`` (Frobenius norms over the whole batch) and
    ``log_mag = mean |log(max(M, f)) - log(max(M', f))|`` with the floor ``f = max(eps, max(M) * 10^(-top_db/20))``
    per item (see :func:`floored_log`; ``top_db=None`` keeps only ``eps``). The loss is
    ``mean over resolutions of (sc + log_mag)``. Channels are treated as separate signals.

    Shapes: ``reconstruction``, ``target`` ``[B, C, S]`` -> scalar (float32).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (512, 1024, 2048),
        hop_sizes: Sequence[int] | None = None,
        win_lengths: Sequence[int] | None = None,
        eps: float = 1e-5,
        top_db: float | None = 80.0,
    ):
        super().__init__()
        self.top_db = top_db
        self.fft_sizes = [int(n) for n in fft_sizes]
        self.hop_sizes = [int(h) for h in hop_sizes] if hop_sizes else [n // 4 for n in self.fft_sizes]
        self.win_lengths = [int(w) for w in win_lengths] if win_lengths else list(self.fft_sizes)
        if not self.fft_sizes or not (len(self.fft_sizes) == len(self.hop_sizes) == len(self.win_lengths)):
            raise ConfigError("fft_sizes, hop_sizes and win_lengths must be non-empty and of equal length")
        if any(w > n or h < 1 for n, h, w in zip(self.fft_sizes, self.hop_sizes, self.win_lengths)):
            raise ConfigError("every STFT needs hop >= 1 and win_length <= n_fft")
        self.eps = eps

    def terms(self, reconstruction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"spectral_convergence": ..., "log_magnitude": ...}``, each averaged over resolutions."""
        fake, real = _waveforms(reconstruction, target)
        sc, mag = fake.new_zeros(()), fake.new_zeros(())
        with torch.autocast(device_type=fake.device.type, enabled=False):
            for n_fft, hop, win in zip(self.fft_sizes, self.hop_sizes, self.win_lengths):
                m_fake = stft_magnitude(fake, n_fft, hop, win)
                m_real = stft_magnitude(real, n_fft, hop, win)
                sc = sc + torch.linalg.norm(m_real - m_fake) / torch.linalg.norm(m_real).clamp_min(self.eps)
                mag = mag + F.l1_loss(*floored_log(m_fake, m_real, self.eps, self.top_db))
        count = len(self.fft_sizes)
        return {"spectral_convergence": sc / count, "log_magnitude": mag / count}

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = self.terms(reconstruction, target)
        return terms["spectral_convergence"] + terms["log_magnitude"]


class MultiScaleMelLoss(nn.Module):
    """L1 between log mel spectrograms at several window sizes (DAC's mel loss), averaged over scales.

    At each scale (window ``w``, hop ``w // 4``, ``n_mels`` bands, Hann window, magnitude spectrum, HTK mel
    filters from ``torchaudio.transforms.MelSpectrogram``): ``mean |log(max(mel(x'), f)) -
    log(max(mel(x), f))|`` with the per-item floor ``f`` of :func:`floored_log`.

    Shapes: ``reconstruction``, ``target`` ``[B, C, S]`` -> scalar (float32).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        window_lengths: Sequence[int] = (128, 512, 2048),
        n_mels: Sequence[int] = (20, 40, 80),
        eps: float = 1e-5,
        top_db: float | None = 80.0,
    ):
        super().__init__()
        import torchaudio

        self.top_db = top_db
        if len(window_lengths) != len(n_mels) or not window_lengths:
            raise ConfigError("window_lengths and n_mels must be non-empty and of equal length")
        if sample_rate < 1:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate, self.eps = int(sample_rate), eps
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=int(sample_rate),
                n_fft=int(w),
                hop_length=max(1, int(w) // 4),
                n_mels=int(m),
                power=1.0,
                center=True,
                pad_mode="constant",
            )
            for w, m in zip(window_lengths, n_mels)
        )

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fake, real = _waveforms(reconstruction, target)
        self.mels.to(fake.device)  # a no-op once the filters sit where the audio is
        total = fake.new_zeros(())
        with torch.autocast(device_type=fake.device.type, enabled=False):
            for mel in self.mels:
                total = total + F.l1_loss(*floored_log(mel(fake), mel(real), self.eps, self.top_db))
        return total / len(self.mels)


class SpectralLoss(nn.Module):
    """``MultiResolutionSTFTLoss + MultiScaleMelLoss`` (each weight 1): the audio term of
    :class:`TokenizerLoss` (``spectral_weight``). Shapes: ``[B, C, S]`` pairs -> scalar."""

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self.stft = MultiResolutionSTFTLoss()
        self.mel = MultiScaleMelLoss(sample_rate)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.stft(reconstruction, target) + self.mel(reconstruction, target)
