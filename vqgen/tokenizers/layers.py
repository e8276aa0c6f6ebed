"""Convolutional building blocks shared by every medium.

Each block takes ``dims`` (1 for audio ``[B, C, S]``, 2 for images ``[B, C, H, W]``, 3 for video
``[B, C, T, H, W]``) so image, audio and video tokenizers are assembled from the same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError

_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_nd(
    dims: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> nn.Module:
    """An ``nn.Conv{1,2,3}d`` chosen by ``dims``."""
    if dims not in _CONVS:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims}")
    return _CONVS[dims](in_channels, out_channels, kernel_size, stride=stride, padding=padding)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count (at most 32) that divides ``channels``."""
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: (norm, SiLU, conv 3) twice, with a 1x1 shortcut when channels change.

    Shapes: ``[B, in_channels, *spatial] -> [B, out_channels, *spatial]``.
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = conv_nd(dims, in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv_nd(dims, out_channels, out_channels, 3, padding=1)
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else conv_nd(dims, in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class Downsample(nn.Module):
    """Halves every spatial axis with a stride-2 convolution (kernel 3, padding 1 on even sizes)."""

    def __init__(self, dims: int, channels: int):
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 4 if dims == 1 else 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Doubles every spatial axis: nearest-neighbour upsampling then a 3-wide convolution."""

    def __init__(self, dims: int, channels: int):
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ConvEncoder(nn.Module):
    """Residual convolutional encoder, downsampling by ``2 ** (len(channel_multipliers) - 1)``.

    Shapes: ``[B, in_channels, *spatial] -> [B, latent_channels, *spatial / factor]``.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        latent_channels: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_multipliers]
        self.conv_in = conv_nd(dims, in_channels, channels[0], 3, padding=1)
        blocks: list[nn.Module] = []
        current = channels[0]
        for level, width in enumerate(channels):
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(dims, current, width, dropout))
                current = width
            if level < len(channels) - 1:
                blocks.append(Downsample(dims, current))
        self.blocks = nn.Sequential(*blocks)
        self.mid = ResidualBlock(dims, current, current, dropout)
        self.norm_out = group_norm(current)
        self.conv_out = conv_nd(dims, current, latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.blocks(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: ``[B, latent_channels, *grid] -> [B, out_channels, *grid * factor]``."""

    def __init__(
        self,
        dims: int,
        out_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        latent_channels: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = [base_channels * m for m in reversed(channel_multipliers)]
        current = channels[0]
        self.conv_in = conv_nd(dims, latent_channels, current, 3, padding=1)
        self.mid = ResidualBlock(dims, current, current, dropout)
        blocks: list[nn.Module] = []
        for level, width in enumerate(channels):
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(dims, current, width, dropout))
                current = width
            if level < len(channels) - 1:
                blocks.append(Upsample(dims, current))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = group_norm(current)
        self.conv_out = conv_nd(dims, current, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------------------
# 1-D blocks with arbitrary strides (audio): padded / causal convolutions, strided down- and upsampling.
# ---------------------------------------------------------------------------------------------------------


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


class CausalConv3d(nn.Conv3d):
    """``nn.Conv3d`` with symmetric zero padding in space and replicate padding of the first frame in time.

    Shapes: ``[B, in, T, H, W] -> [B, out, T', H', W']`` with ``T' = (T - 1) // time_stride + 1``; with
    ``time_stride=2`` and ``T = 1 + 2m`` the first output frame sees the first input frame alone and
    ``T' = 1 + m`` (the MAGVIT-v2 / Cosmos "first frame kept alone" layout).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        time_stride: int = 1,
        space_stride: int = 1,
        time_kernel_size: int | None = None,
    ):
        time_kernel = kernel_size if time_kernel_size is None else time_kernel_size
        super().__init__(
            in_channels,
            out_channels,
            (time_kernel, kernel_size, kernel_size),
            stride=(time_stride, space_stride, space_stride),
            padding=(0, kernel_size // 2, kernel_size // 2),
        )
        self.time_padding = time_kernel - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_padding:
            x = F.pad(x, (0, 0, 0, 0, self.time_padding, 0), mode="replicate")
        return super().forward(x)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame on its own (statistics never mix time steps): ``[B, C, T, H, W]``."""

    def __init__(self, channels: int):
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        super().__init__(groups, channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape[:3]
        folded = x.movedim(2, 1).flatten(0, 1)  # [B * T, C, H, W]
        return super().forward(folded).unflatten(0, (batch, frames)).movedim(1, 2)


class CausalResidualBlock3d(nn.Module):
    """:class:`ResidualBlock` for video with causal convolutions and per-frame norms (same parameter names)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = FrameGroupNorm(in_channels)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3)
        self.norm2 = FrameGroupNorm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3)
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else CausalConv3d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class CausalDownsample3d(nn.Module):
    """Halves H and W (``space``) and/or T (``time``, ``1 + 2m -> 1 + m`` frames) with one strided causal conv."""

    def __init__(self, channels: int, time: bool = True, space: bool = True):
        super().__init__()
        self.time, self.space = time, space
        self.conv = CausalConv3d(
            channels, channels, 3, time_stride=2 if time else 1, space_stride=2 if space else 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CausalUpsample3d(nn.Module):
    """Doubles H and W (nearest, ``space``) and/or T (``time``: ``1 + m -> 1 + 2m`` frames), then a causal conv.

    In time every frame is repeated twice and the first copy of frame 0 dropped, so the first frame stays alone.
    """

    def __init__(self, channels: int, time: bool = True, space: bool = True):
        super().__init__()
        self.time, self.space = time, space
        self.conv = CausalConv3d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.space:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        if self.time:
            x = x.repeat_interleave(2, dim=2)[:, :, 1:]
        return self.conv(x)


def temporal_schedule(num_transitions: int, temporal_halvings: int) -> tuple[list[bool], int]:
    """Which encoder level transitions also halve time (the first ones), and how many time-only halvings follow."""
    flags = [i < temporal_halvings for i in range(num_transitions)]
    return flags, max(0, temporal_halvings - num_transitions)


class CausalConvEncoder3d(nn.Module):
    """Causal video encoder: ``[B, C, T, H, W] -> [B, latent, 1 + (T - 1) / 2**temporal_halvings, H / f, W / f]``.

    Built like :class:`ConvEncoder` (``f = 2 ** (len(channel_multipliers) - 1)``); the first
    ``temporal_halvings`` level transitions also halve time, and any halvings beyond the number of
    transitions are time-only blocks (``temporal_down``) at the deepest level.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        latent_channels: int,
        temporal_halvings: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_multipliers]
        flags, extra = temporal_schedule(len(channels) - 1, temporal_halvings)
        self.conv_in = CausalConv3d(in_channels, channels[0], 3)
        blocks: list[nn.Module] = []
        current = channels[0]
        for level, width in enumerate(channels):
            for _ in range(num_res_blocks):
                blocks.append(CausalResidualBlock3d(current, width, dropout))
                current = width
            if level < len(channels) - 1:
                blocks.append(CausalDownsample3d(current, time=flags[level], space=True))
        self.blocks = nn.Sequential(*blocks)
        self.temporal_down = nn.Sequential(*(CausalDownsample3d(current, True, False) for _ in range(extra)))
        self.mid = CausalResidualBlock3d(current, current, dropout)
        self.norm_out = FrameGroupNorm(current)
        self.conv_out = CausalConv3d(current, latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.temporal_down(self.blocks(self.conv_in(x))))
        return self.conv_out(F.silu(self.norm_out(h)))


class CausalConvDecoder3d(nn.Module):
    """Mirror of :class:`CausalConvEncoder3d`: latents ``[B, latent, t, h, w] -> [B, C, 1 + (t - 1) * 2**n, h * f, w * f]``."""

    def __init__(
        self,
        out_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        latent_channels: int,
        temporal_halvings: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = [base_channels * m for m in reversed(channel_multipliers)]
        flags, extra = temporal_schedule(len(channels) - 1, temporal_halvings)
        flags = flags[::-1]  # the decoder's transition i mirrors the encoder's transition n - 1 - i
        current = channels[0]
        self.conv_in = CausalConv3d(latent_channels, current, 3)
        self.mid = CausalResidualBlock3d(current, current, dropout)
        self.temporal_up = nn.Sequential(*(CausalUpsample3d(current, True, False) for _ in range(extra)))
        blocks: list[nn.Module] = []
        for level, width in enumerate(channels):
            for _ in range(num_res_blocks):
                blocks.append(CausalResidualBlock3d(current, width, dropout))
                current = width
            if level < len(channels) - 1:
                blocks.append(CausalUpsample3d(current, time=flags[level], space=True))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = FrameGroupNorm(current)
        self.conv_out = CausalConv3d(current, out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.temporal_up(self.mid(self.conv_in(z))))
        return self.conv_out(F.silu(self.norm_out(h)))


@torch.no_grad()
def inflate_state_dict(source: dict[str, torch.Tensor], target: nn.Module) -> list[str]:
    """Copy a 2-D model's ``source`` state dict into the causal 3-D ``target`` in place.

    A 2-D kernel ``[O, I, k, k]`` goes to the last (current-frame) time tap of the 3-D kernel ``[O, I, kt, k, k]``,
    the other taps are zero, so every frame is first processed like an image. Tensors of equal shape are
    copied. 3-D convolutions with no 2-D counterpart (time-only blocks) become identities on the current
    frame. Returns the names of target tensors that had no counterpart.
    """
    state = target.state_dict()
    missing = []
    for name, tensor in state.items():
        given = source.get(name)
        if given is not None and given.shape == tensor.shape:
            tensor.copy_(given)
        elif (
            given is not None
            and given.dim() == 4
            and tensor.dim() == 5
            and given.shape == tensor.shape[:2] + tensor.shape[3:]
        ):
            tensor.zero_()
            tensor[:, :, -1] = given
        else:
            missing.append(name)
            if name.endswith("weight") and tensor.dim() == 5 and tensor.shape[0] == tensor.shape[1]:
                tensor.zero_()
                centre = tensor.shape[3] // 2, tensor.shape[4] // 2
                tensor[:, :, -1, centre[0], centre[1]] = torch.eye(tensor.shape[0])
            elif name.endswith("bias"):
                tensor.zero_()
            else:
                raise ValueError(
                    f"cannot inflate '{name}' of shape {tuple(tensor.shape)}: no 2-D counterpart"
                )
    return missing
