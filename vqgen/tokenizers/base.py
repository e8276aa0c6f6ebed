"""What every tokenizer shares: the output dataclass and encode/decode around one quantizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput

from vqgen.errors import ShapeError


@dataclass
class TokenizerOutput(BaseOutput):
    """Result of ``tokenizer(x)``.

    Attributes:
        reconstruction: same shape as the input media, float in about [-1, 1].
        codes: long ``[B, *grid]``.
        losses: scalar tensors: ``quantizer`` (commitment/codebook), ``perplexity``, ``usage``.
    """

    reconstruction: torch.Tensor
    codes: torch.Tensor
    losses: dict


def check_media(x: torch.Tensor, expected_dims: int, channels: int, what: str) -> None:
    """Refuse a media tensor of the wrong rank, channel count, dtype or with non-finite values."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != expected_dims:
        raise ShapeError(f"{what} must have {expected_dims} dimensions, got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ShapeError(f"{what} has {x.shape[1]} channels, the tokenizer expects {channels}")
    if not x.is_floating_point():
        raise ShapeError(f"{what} must be a float tensor in [-1, 1], got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ShapeError(f"{what} contains NaN or infinite values")
