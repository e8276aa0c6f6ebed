"""Likelihood-ratio anomaly scores: the prior's code bits minus the bits of a general-domain background prior.

A raw likelihood ranks simple out-of-distribution images (a clean ``O``, an ``l``) as more typical than real
digits, because much of an image's code length pays for low-level content (strokes, thickness, position) that
any image of strokes shares. Following Schirrmeister et al. (2020, "Understanding anomaly detection with deep
invertible networks through hierarchies of distributions and features") the score subtracts the code length
under a *general-domain* model, which knows strokes but not digits::

    score(x) = bits_prior(codes(x)) - bits_background(codes(x))      (higher = more anomalous)

Only in-distribution images are needed: the background is a small unconditional :class:`CodePrior` fitted
(:func:`vqgen.training.background.fit_background`) on the codes of :func:`generic_views` of the training
images (random rotation over the full circle, mirror,
anisotropic scale, shear, shift and stroke thickening or thinning), which keep the strokes of the data but
destroy the upright shapes that make them digits. ``bits_prior`` is best taken as the class marginal
``-log2 (1/C) sum_y p(codes | y)`` of a class-conditional prior (:func:`class_marginal_bits`).

The background saves and loads like every vqgen model (``save_pretrained``: safetensors weights and a JSON
config; :func:`load_background`).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vqgen.errors import CheckpointError, ConfigError, MismatchError, ShapeError
from vqgen.priors.prior import CodePrior

__all__ = [
    "check_background",
    "class_marginal_bits",
    "code_bits",
    "generic_view_codes",
    "generic_views",
    "likelihood_ratio_bits",
    "load_background",
]


def generic_views(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random general-domain views of ``images`` float ``[B, C, H, W]`` in [-1, 1] (background -1).

    Each view is rotated by an angle uniform on the full circle, mirrored with probability 1/2, scaled by
    0.75-1.25 per axis, sheared by up to 0.3, shifted by up to 8 % of the size, and has its strokes thickened
    (3x3 grey dilation, probability 1/4) or thinned (erosion, probability 0.15). Returns ``[B, C, H, W]``.
    """
    if images.dim() != 4:
        raise ShapeError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    batch = images.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, *shape, generator=generator)

    angle = uniform(0.0, 2 * math.pi)
    scale_x, scale_y, shear = uniform(0.75, 1.25), uniform(0.75, 1.25), uniform(-0.3, 0.3)
    mirror = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    stretch = torch.stack(
        [torch.stack([mirror / scale_x, shear], 1), torch.stack([torch.zeros(batch), 1 / scale_y], 1)], 1
    )
    theta = torch.cat([rotation @ stretch, uniform(-0.16, 0.16, 2)[:, :, None]], 2)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    # Sample from images shifted to [0, 2] so that zero padding is black.
    views = F.grid_sample(images + 1, grid.to(images.device), align_corners=False) - 1
    thickness = torch.rand(batch, generator=generator).to(images.device)[:, None, None, None]
    thick = F.max_pool2d(views, 3, 1, 1)
    thin = -F.max_pool2d(-views, 3, 1, 1)
    return torch.where(thickness < 0.25, thick, torch.where(thickness > 0.85, thin, views))


@torch.no_grad()
def generic_view_codes(
    tokenizer,
    images: torch.Tensor,
    copies: int = 8,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = False,
) -> torch.Tensor:
    """Codes long ``[copies * N, *grid]`` of ``copies`` rounds of :func:`generic_views` of ``images`` float
    ``[N, C, H, W]`` in [-1, 1], encoded by an image ``tokenizer``; the views are drawn from ``seed``."""
    if copies < 1:
        raise ConfigError(f"copies must be >= 1, got {copies}")
    generator = torch.Generator().manual_seed(seed)
    codes = []
    total = copies * -(-images.shape[0] // batch_size)
    with tqdm(total=total, desc="encode generic views", unit="batch", disable=not progress) as bar:
        for _ in range(copies):
            for start in range(0, images.shape[0], batch_size):
                views = generic_views(images[start : start + batch_size], generator)
                codes.append(tokenizer.encode(views.to(tokenizer.device)).cpu())
                bar.update()
    return torch.cat(codes)


def check_background(prior: CodePrior, background) -> None:
    """Refuse a background prior that cannot score the prior's codes: it must be an unconditional
    ``CodePrior`` over the same code grid and codebook."""
    if not isinstance(background, CodePrior):
        raise ConfigError(f"background must be a CodePrior, got {type(background).__name__}")
    if background.is_conditional:
        raise MismatchError(
            f"the background prior has condition fields ({background.condition_tokens.describe()}); "
            "a background is unconditional"
        )
    ours, theirs = list(prior.config.code_grid), list(background.config.code_grid)
    if ours != theirs or background.config.codebook_size != prior.config.codebook_size:
        raise MismatchError(
            f"the background models code grid {theirs} of {background.config.codebook_size} codes, "
            f"the prior {ours} of {prior.config.codebook_size}"
        )


def load_background(folder: str | Path) -> CodePrior:
    """Load a background saved with ``save_pretrained`` (safetensors weights only); it must be unconditional."""
    from vqgen.loading import load_model

    background = load_model(folder, {"CodePrior": CodePrior}, "background prior")
    if background.is_conditional:
        raise CheckpointError(f"'{folder}' holds a class-conditional prior; a background is unconditional")
    return background


@torch.no_grad()
def code_bits(
    prior: CodePrior, codes: torch.Tensor, class_labels=None, batch_size: int = 256, conditions=None
) -> torch.Tensor:
    """``-log2 p(codes)`` float ``[B]`` of code grids long ``[B, *grid]`` (every field null for a conditional
    prior without ``class_labels`` or ``conditions``; else labels ``[B]``, or conditions as
    ``CodePrior.condition_indices`` takes them)."""
    indices = prior.condition_indices(class_labels, codes.shape[0], conditions)
    bits = []
    for start in range(0, codes.shape[0], batch_size):
        chunk = None if indices is None else indices[start : start + batch_size]
        nats = prior.log_likelihood(codes[start : start + batch_size], conditions=chunk)
        bits.append(-nats.float().cpu() / math.log(2))
    return torch.cat(bits) if bits else torch.zeros(0)


def class_marginal_bits(prior: CodePrior, codes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``-log2 (1/C) sum_y p(codes | y)`` float ``[B]`` for code grids long ``[B, *grid]``: the class marginal
    of a class-conditional prior (its null class is trained on the dropped-out labels only); an
    unconditional prior gives its plain bits. With several condition fields ``y`` runs over every combination
    of their values (``C = prod n_f`` likelihood passes)."""
    if not prior.is_conditional:
        return code_bits(prior, codes, batch_size=batch_size)
    combinations = list(itertools.product(*(range(n) for n in prior.condition_fields.values())))
    per_value = torch.stack(
        [
            code_bits(prior, codes, batch_size=batch_size, conditions=torch.tensor([values]))
            for values in combinations
        ],
        dim=1,
    )  # [B, C]
    nats = torch.logsumexp(-per_value * math.log(2), dim=1) - math.log(len(combinations))
    return -nats / math.log(2)


def likelihood_ratio_bits(
    prior: CodePrior,
    background: CodePrior,
    codes: torch.Tensor,
    class_labels=None,
    batch_size: int = 256,
    conditions=None,
) -> torch.Tensor:
    """Anomaly score float ``[B]`` of code grids long ``[B, *grid]``: bits under ``prior`` (its class marginal
    without ``class_labels`` or ``conditions``, else under them) minus bits under ``background`` (higher =
    more anomalous). Both priors must be on ``codes``' device."""
    check_background(prior, background)
    if class_labels is None and conditions is None:
        prior_bits = class_marginal_bits(prior, codes, batch_size)
    else:
        prior_bits = code_bits(prior, codes, class_labels, batch_size, conditions)
    return prior_bits - code_bits(background, codes, batch_size=batch_size)
