"""1-D blocks of the audio codec: padded (optionally causal) convolutions, Snake, strided encoder and
decoder (SoundStream / DAC style). Shapes ``[B, C, S]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError

AUDIO_NORMS = ("channel", "weight", "none")
AUDIO_ACTIVATIONS = ("elu", "snake")


class PaddedConv1d(nn.Module):
    """``nn.Conv1d`` that pads so a length ``S`` divisible by ``stride`` maps to exactly ``S // stride``.

    The total padding is ``dilation * (kernel_size - 1) + 1 - stride``. With ``causal=True`` all of it goes
    on the left, so output ``t`` sees only inputs up to ``(t + 1) * stride - 1`` (streaming); otherwise it
    is split evenly (the extra sample on the left). Needs ``kernel_size >= stride``. ``weight_norm=True``
    reparametrises the kernel as direction times length (SEANet, DAC).

    Shapes: ``[B, in_channels, S] -> [B, out_channels, ceil(S / stride)]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        causal: bool = False,
        weight_norm: bool = False,
    ):
        super().__init__()
        if stride < 1 or kernel_size < stride:
            raise ValueError(f"PaddedConv1d needs 1 <= stride <= kernel_size, got {stride} and {kernel_size}")
        self.conv = conv1d(
            in_channels, out_channels, kernel_size, weight_norm, stride=stride, dilation=dilation
        )
        self.stride = stride
        total = dilation * (kernel_size - 1) + 1 - stride
        self.padding = (total, 0) if causal else (total - total // 2, total // 2)

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = (-x.shape[-1]) % self.stride  # so every input sample reaches some output
        left, right = self.padding
        return self.conv(F.pad(x, (left, right + extra)))


def conv1d(
    in_channels: int, out_channels: int, kernel_size: int, weight_norm: bool = False, **kwargs
) -> nn.Conv1d:
    """``nn.Conv1d``, with its weight reparametrised by ``torch.nn.utils.parametrizations.weight_norm`` if asked."""
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, **kwargs)
    return nn.utils.parametrizations.weight_norm(conv) if weight_norm else conv


class Snake1d(nn.Module):
    """Snake activation ``x + sin(alpha * x)^2 / alpha`` with one learned ``alpha`` per channel (BigVGAN, DAC).

    Its periodic part lets a waveform decoder make harmonics without a large network. Shapes:
    ``[B, C, S] -> [B, C, S]``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.to(x.dtype)
        return x + torch.sin(alpha * x).pow(2) / (alpha + 1e-9)


class NormActivation1d(nn.Module):
    """The pre-activation of every 1-D block: ``norm`` then ``activation`` over ``[B, C, S]``.

    ``norm="channel"`` is a LayerNorm over the channels at each position (it never mixes positions, so a
    causal network stays causal, but it removes each position's amplitude, which a waveform decoder must then
    rebuild); ``"weight"`` and ``"none"`` apply no activation norm (``"weight"`` puts weight norm on the
    convolutions instead, as SEANet and DAC do). ``activation`` is ``"elu"`` or ``"snake"`` (:class:`Snake1d`).
    """

    def __init__(self, channels: int, norm: str = "channel", activation: str = "elu"):
        super().__init__()
        if norm not in AUDIO_NORMS:
            raise ConfigError(f"norm must be one of {', '.join(AUDIO_NORMS)}, got {norm!r}")
        if activation not in AUDIO_ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(AUDIO_ACTIVATIONS)}, got {activation!r}")
        # The LayerNorm sits directly under ``norm`` so the state-dict keys match the earlier ChannelNorm.
        self.norm = nn.LayerNorm(channels, eps=1e-5) if norm == "channel" else None
        self.activation = Snake1d(channels) if activation == "snake" else nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x.movedim(1, -1)).movedim(-1, 1)
        return self.activation(x)


class ResidualUnit1d(nn.Module):
    """SEANet residual unit: (norm, activation, dilated conv 7) then (norm, activation, conv 1), added to the
    input. ``norm`` and ``activation`` as in :class:`NormActivation1d`.

    Shapes: ``[B, channels, S] -> [B, channels, S]``.
    """

    def __init__(
        self,
        channels: int,
        dilation: int = 1,
        causal: bool = False,
        kernel_size: int = 7,
        norm: str = "channel",
        activation: str = "elu",
    ):
        super().__init__()
        weight_norm = norm == "weight"
        self.norm1 = NormActivation1d(channels, norm, activation)
        self.conv1 = PaddedConv1d(
            channels, channels, kernel_size, dilation=dilation, causal=causal, weight_norm=weight_norm
        )
        self.norm2 = NormActivation1d(channels, norm, activation)
        self.conv2 = conv1d(channels, channels, 1, weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.norm2(self.conv1(self.norm1(x))))


class StridedDownsample1d(nn.Module):
    """Residual units at ``in_channels``, then a strided conv (kernel ``2 * stride``) to ``out_channels``.

    Shapes: ``[B, in_channels, S] -> [B, out_channels, ceil(S / stride)]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        causal: bool = False,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        super().__init__()
        self.units = nn.Sequential(
            *(ResidualUnit1d(in_channels, d, causal, norm=norm, activation=activation) for d in dilations)
        )
        self.norm = NormActivation1d(in_channels, norm, activation)
        self.conv = PaddedConv1d(
            in_channels, out_channels, 2 * stride, stride=stride, causal=causal, weight_norm=norm == "weight"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(self.units(x)))


class StridedUpsample1d(nn.Module):
    """Mirror of :class:`StridedDownsample1d`: repeat each step ``stride`` times, conv (kernel
    ``2 * stride``) to ``out_channels``, then residual units. Repetition (not a transposed conv) keeps
    causal decoders causal and avoids checkerboard artefacts.

    Shapes: ``[B, in_channels, T] -> [B, out_channels, T * stride]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        causal: bool = False,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        super().__init__()
        self.stride = stride
        self.norm = NormActivation1d(in_channels, norm, activation)
        self.conv = PaddedConv1d(
            in_channels, out_channels, 2 * stride, causal=causal, weight_norm=norm == "weight"
        )
        self.units = nn.Sequential(
            *(ResidualUnit1d(out_channels, d, causal, norm=norm, activation=activation) for d in dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).repeat_interleave(self.stride, dim=-1)
        return self.units(self.conv(h))


def strided_widths(base_channels: int, num_levels: int, max_channels: int) -> list[int]:
    """Channel widths of a strided 1-D encoder: ``base``, then doubling after each level, capped."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_levels + 1)]


class StridedConvEncoder1d(nn.Module):
    """Waveform encoder (SEANet layout): conv 7, one :class:`StridedDownsample1d` per stride, conv 3.
    ``norm`` and ``activation`` as in :class:`NormActivation1d`.

    Shapes: ``[B, in_channels, S] -> [B, latent_channels, ceil(S / prod(strides))]`` (exactly
    ``S / prod(strides)`` when it divides).
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        strides: Sequence[int],
        latent_channels: int,
        causal: bool = False,
        max_channels: int = 512,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        super().__init__()
        widths = strided_widths(base_channels, len(strides), max_channels)
        weight_norm = norm == "weight"
        self.conv_in = PaddedConv1d(in_channels, widths[0], 7, causal=causal, weight_norm=weight_norm)
        self.blocks = nn.Sequential(
            *(
                StridedDownsample1d(widths[i], widths[i + 1], s, causal, dilations, norm, activation)
                for i, s in enumerate(strides)
            )
        )
        self.norm_out = NormActivation1d(widths[-1], norm, activation)
        self.conv_out = PaddedConv1d(widths[-1], latent_channels, 3, causal=causal, weight_norm=weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.norm_out(self.blocks(self.conv_in(x))))


class StridedConvDecoder1d(nn.Module):
    """Mirror of :class:`StridedConvEncoder1d` (strides applied in reverse order).

    Shapes: ``[B, latent_channels, T] -> [B, out_channels, T * prod(strides)]``.
    """

    def __init__(
        self,
        out_channels: int,
        base_channels: int,
        strides: Sequence[int],
        latent_channels: int,
        causal: bool = False,
        max_channels: int = 512,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        super().__init__()
        widths = strided_widths(base_channels, len(strides), max_channels)[::-1]
        weight_norm = norm == "weight"
        self.conv_in = PaddedConv1d(latent_channels, widths[0], 7, causal=causal, weight_norm=weight_norm)
        self.blocks = nn.Sequential(
            *(
                StridedUpsample1d(widths[i], widths[i + 1], s, causal, dilations, norm, activation)
                for i, s in enumerate(reversed(strides))
            )
        )
        self.norm_out = NormActivation1d(widths[-1], norm, activation)
        self.conv_out = PaddedConv1d(widths[-1], out_channels, 7, causal=causal, weight_norm=weight_norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.norm_out(self.blocks(self.conv_in(z))))


# ---------------------------------------------------------------------------------------------------------
# Causal 3-D blocks for video ``[B, C, T, H, W]``: time is padded on the past side only and normalised per
# frame, so output frame t depends on input frames <= t. Parameter names mirror the 2-D blocks above
# (``conv_in``, ``blocks.N.conv1``, ...) so a trained 2-D model can be inflated into them.
# ---------------------------------------------------------------------------------------------------------
