"""Convolutional building blocks shared by every medium: ``conv_nd`` and residual, down and up blocks
for ``dims`` 1, 2 or 3, and the plain encoder and decoder the image tokenizer uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

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
