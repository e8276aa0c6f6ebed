"""Discriminators of the adversarial tokenizer objective, one call convention for all of them.

Every discriminator maps media to a :class:`DiscriminatorOutput`: ``logits`` (one tensor per
sub-discriminator, positive means "real") and ``features`` (per sub-discriminator, the activations of its
hidden layers, for feature matching). Two families:

- :class:`PatchDiscriminator`: VQGAN's PatchGAN, for images, video and (as a 1-D variant) audio.
- :class:`MultiScaleSTFTDiscriminator`: EnCodec's MS-STFTD for audio, 2-D conv stacks on the real and
  imaginary parts of complex STFTs at several window sizes.

:func:`build_discriminator` picks one from a name (``"auto"``: patch for images and video, STFT for audio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.layers import conv_nd, group_norm

DISCRIMINATOR_KINDS = ("auto", "patch", "stft")


class DiscriminatorOutput(NamedTuple):
    """``logits``: one ``[B, 1, *patches]`` tensor per sub-discriminator; ``features``: per sub-discriminator,
    its hidden activations ``[B, D_i, *positions_i]`` in depth order."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator for 1-D, 2-D or 3-D media, returning one logit per patch.

    Layout: strided conv + LeakyReLU(0.2); ``num_layers - 1`` strided conv + GroupNorm + LeakyReLU with the
    width doubling each time (capped at 8x ``base_channels``); one stride-1 conv + GroupNorm + LeakyReLU;
    a final stride-1 conv to one channel. The output of every LeakyReLU is a feature map
    (``num_layers + 1`` of them).

    Images and video use kernel 4 / stride 2 per downsampling layer. Audio (``dims=1``) uses kernel 16 /
    stride 4, because one sample carries far less structure than one pixel: the receptive field must span
    hundreds of samples to judge anything. Inputs smaller than the total downsampling factor on some axis
    are edge-padded up to it (and the last axis to twice that if only one patch would remain), so any input
    of at least one element per axis is accepted.

    Shapes: ``[B, in_channels, *spatial] ->`` one logit tensor ``[B, 1, *patches]`` with ``patches[i] =
    max(spatial[i], factor) // factor`` and ``factor = stride ** num_layers`` (for 28x28 images and 3
    layers: 3x3), except that a single patch becomes two along the last axis.
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

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        """``[B, in_channels, *spatial]`` -> one logit map ``[B, 1, *patches]`` and its feature maps."""
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
        features = []
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return DiscriminatorOutput([x], [features])


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    return ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)


class STFTDiscriminator(nn.Module):
    """One EnCodec STFT discriminator: complex STFT, then weight-normalised 2-D convs over (time, frequency).

    The spectrogram (Hann window ``n_fft``, hop ``n_fft // 4``, centred frames, zero padding, divided by
    the window's l2 norm as torchaudio's ``normalized=True`` in EnCodec) of each audio channel gives two input channels (real, imaginary). Layers: a
    ``(3, 9)`` conv; one ``(3, 9)`` conv per entry of ``dilations``, striding 2 along frequency and dilated
    along time; a ``(3, 3)`` conv; each followed by LeakyReLU(0.2) and kept as a feature map; then a
    ``(3, 3)`` conv to one logit channel. All convs are ``channels`` wide (EnCodec's ``filters_scale=1``).

    Shapes: ``[B, in_channels, S]`` -> logits ``[B, 1, 1 + S // hop, F]`` with ``F = n_fft // 2 + 1`` halved
    (rounding up) once per dilation, and ``len(dilations) + 2`` feature maps ``[B, channels, frames, F_i]``.
    """

    def __init__(
        self, in_channels: int, n_fft: int, channels: int = 32, dilations: Sequence[int] = (1, 2, 4)
    ):
        super().__init__()
        if in_channels < 1 or channels < 1 or n_fft < 4:
            raise ConfigError(
                f"STFT discriminator needs in_channels, channels >= 1 and n_fft >= 4; "
                f"got {in_channels}, {channels}, {n_fft}"
            )
        self.n_fft, self.hop_length = int(n_fft), int(n_fft) // 4
        kernel = (3, 9)
        convs = [nn.Conv2d(2 * in_channels, channels, kernel, padding=_same_padding(kernel))]
        for dilation in dilations:
            convs.append(
                nn.Conv2d(
                    channels,
                    channels,
                    kernel,
                    stride=(1, 2),
                    dilation=(int(dilation), 1),
                    padding=_same_padding(kernel, (int(dilation), 1)),
                )
            )
        convs.append(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(weight_norm(conv) for conv in convs)
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` -> float32 ``[B, 2 * C, frames, n_fft // 2 + 1]``: real parts, then imaginary."""
        batch, channels, samples = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.stft(
                x.float().reshape(batch * channels, samples),
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.n_fft,
                window=self.window.float(),
                center=True,
                pad_mode="constant",
                return_complex=True,
            )
            spec = spec / self.window.float().pow(2).sum().sqrt()  # torchaudio's normalized=True
        spec = spec.view(batch, channels, *spec.shape[1:]).transpose(2, 3)  # [B, C, frames, F]
        return torch.cat([spec.real, spec.imag], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``[B, C, S]`` -> logits ``[B, 1, frames, F']`` and the hidden feature maps."""
        z = self.spectrogram(x)
        features = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), 0.2)
            features.append(z)
        return self.post(z), features


def stft_sizes(sample_rate: int, at_24khz: Sequence[int] = (2048, 1024, 512)) -> tuple[int, ...]:
    """EnCodec's STFT windows (2048, 1024, 512 at 24 kHz) scaled to ``sample_rate`` and rounded to powers
    of two: 1024 / 512 / 256 at 16 kHz, so each window spans about the same time."""
    if sample_rate < 1:
        raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
    return tuple(max(16, 2 ** round(math.log2(n * sample_rate / 24000))) for n in at_24khz)


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec's MS-STFTD: one :class:`STFTDiscriminator` per window size in ``fft_sizes`` (default:
    :func:`stft_sizes` of ``sample_rate``), each judging the same waveform.

    Shapes: ``[B, in_channels, S]`` -> :class:`DiscriminatorOutput` with one logit map and one feature list
    per window size.
    """

    def __init__(
        self,
        in_channels: int,
        sample_rate: int = 16000,
        channels: int = 32,
        fft_sizes: Sequence[int] | None = None,
    ):
        super().__init__()
        self.fft_sizes = tuple(int(n) for n in (fft_sizes or stft_sizes(sample_rate)))
        if not self.fft_sizes:
            raise ConfigError("MultiScaleSTFTDiscriminator needs at least one STFT size")
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(in_channels, n, channels) for n in self.fft_sizes
        )

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        if x.dim() != 3:
            raise ShapeError(f"the STFT discriminator takes audio [B, C, S], got shape {tuple(x.shape)}")
        logits, features = [], []
        for discriminator in self.discriminators:
            out, maps = discriminator(x)
            logits.append(out)
            features.append(maps)
        return DiscriminatorOutput(logits, features)


def build_discriminator(
    kind: str,
    in_channels: int,
    dims: int,
    channels: int | None = None,
    num_layers: int = 3,
    sample_rate: int = 16000,
) -> nn.Module:
    """``"patch"`` (:class:`PatchDiscriminator`, ``channels`` default 64, ``num_layers``), ``"stft"``
    (:class:`MultiScaleSTFTDiscriminator`, audio only, ``channels`` default 32 as in EnCodec) or ``"auto"``
    (STFT for audio, ``dims=1``; patch for images and video)."""
    if kind not in DISCRIMINATOR_KINDS:
        raise ConfigError(f"discriminator must be one of {DISCRIMINATOR_KINDS}, got {kind!r}")
    if kind == "auto":
        kind = "stft" if dims == 1 else "patch"
    if kind == "stft":
        if dims != 1:
            raise ConfigError(f"the 'stft' discriminator judges audio (dims=1), got dims={dims}; use 'patch'")
        return MultiScaleSTFTDiscriminator(in_channels, sample_rate, channels or 32)
    return PatchDiscriminator(in_channels, channels or 64, num_layers, dims)
