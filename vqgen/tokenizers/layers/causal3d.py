"""Causal 3-D blocks of the video tokenizer (``[B, C, T, H, W]``; frame ``t`` sees frames ``<= t`` only) and
the inflation of 2-D image weights into them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


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
