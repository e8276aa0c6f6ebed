"""Sample-wise reconstruction terms: L1 / L2 for every medium, ``1 - MS-SSIM`` for images and video frames.

Media tensors follow the package contract: audio ``[B, C, S]``, images ``[B, C, H, W]``, video
``[B, C, T, H, W]``, all float in ``[-1, 1]``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError

RECONSTRUCTION_KINDS = ("l1", "l2")


def check_same_shape(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a one-line :class:`ShapeError` unless the two tensors have one shape."""
    if reconstruction.shape != target.shape:
        raise ShapeError(
            f"reconstruction shape {tuple(reconstruction.shape)} differs from target shape {tuple(target.shape)}"
        )


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``"l1"``) or squared (``"l2"``) error.

    Shapes: ``reconstruction`` and ``target`` ``[B, C, *spatial]`` (same shape) -> scalar.
    """
    if kind not in RECONSTRUCTION_KINDS:
        raise ConfigError(f"reconstruction loss kind must be one of {RECONSTRUCTION_KINDS}, got {kind!r}")
    check_same_shape(reconstruction, target)
    if kind == "l1":
        return F.l1_loss(reconstruction, target)
    return F.mse_loss(reconstruction, target)


def ms_ssim_loss(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """``1 - mean(ms_ssim(reconstruction, target))``, in float32 with autocast off (SSIM's local variances
    are differences of nearly equal squares: bf16 would drown them).

    Uses :func:`vqgen.evaluation.metrics.ms_ssim` with its defaults (11-pixel Gaussian window, sigma 1.5,
    the published scale weights, fewer scales renormalised for small images: 3 for 64x64, plain SSIM
    below 22 pixels). In ``[0, 1]`` for real images; 0 for identical inputs.

    Shapes: images ``[B, C, H, W]`` or video ``[B, C, T, H, W]`` (scored frame by frame) -> scalar.
    """
    from vqgen.evaluation.metrics import ms_ssim  # imported here: vqgen.evaluation imports this package

    check_same_shape(reconstruction, target)
    if target.dim() not in (4, 5):
        raise ShapeError(
            f"the MS-SSIM loss takes images [B, C, H, W] or video [B, C, T, H, W], got {tuple(target.shape)}"
        )
    with torch.autocast(device_type=target.device.type, enabled=False):
        return 1.0 - ms_ssim(reconstruction.float(), target.float(), data_range=data_range).mean()
