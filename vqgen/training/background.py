"""Fitting the general-domain background prior of likelihood-ratio anomaly scores, on the shared loop body.

The background is a small unconditional :class:`~vqgen.priors.prior.CodePrior` trained on the tokenizer's
codes of generic views of the training images (:func:`vqgen.evaluation.background.generic_view_codes`);
scoring with it lives in :mod:`vqgen.evaluation.background`. The fit is prior training
(:class:`~vqgen.training.prior.PriorObjective`) with its own batches (drawn with replacement, optionally
perturbed) and learning-rate schedule, in memory: nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from accelerate import Accelerator

from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.prior import CodePrior
from vqgen.training.common import TrainingOptions
from vqgen.training.loop import run_training
from vqgen.training.prior import PriorObjective

__all__ = ["BackgroundObjective", "background_lr_factor", "fit_background"]


def background_lr_factor(steps: int, warmup: int = 100):
    """Learning-rate multiplier at a step: linear warm-up over ``min(warmup, steps)`` steps times a cosine
    decay over all ``steps``."""
    warmup = min(warmup, steps)

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))

    return factor


class BackgroundObjective(PriorObjective):
    """Prior training on a code tensor: batches of ``batch_size`` grids drawn with replacement from
    ``codes`` long ``[N, *grid]`` by a generator seeded with ``options.seed`` (plus the process index),
    each code replaced by a uniformly random one with probability ``code_noise``."""

    description = "fit background"

    def __init__(
        self, background: CodePrior, codes: torch.Tensor, options: TrainingOptions, code_noise: float
    ):
        super().__init__(background, None, options, lr_factor=background_lr_factor(options.max_steps))
        self.codes, self.code_noise = codes, code_noise

    def start(self, accelerator: Accelerator, step: int) -> Iterator[dict]:
        """This process's random draws from ``step`` on."""
        return self.draws(accelerator.process_index, step)

    def draws(self, process_index: int, start: int) -> Iterator[dict]:
        """Endless batches ``{"codes": [batch_size, *grid]}`` of process ``process_index`` from step ``start``
        on (the draws of earlier steps are replayed and dropped: a batch is a function of seed and step)."""
        codes, size, noise = self.codes, self.prior.config.codebook_size, self.code_noise
        batch_size = self.options.batch_size
        generator = torch.Generator().manual_seed(self.options.seed + 1_000_003 * process_index)
        step = 0
        while True:
            batch = codes[torch.randint(0, codes.shape[0], (batch_size,), generator=generator)]
            if noise > 0:
                noisy = torch.rand(batch.shape, generator=generator) < noise
                batch = torch.where(noisy, torch.randint(0, size, batch.shape, generator=generator), batch)
            if step >= start:
                yield {"codes": batch}
            step += 1

    def result(self, model: torch.nn.Module) -> torch.nn.Module:
        """The background on the CPU in eval mode (where the old in-memory fit left it)."""
        return model.cpu().eval()


def fit_background(
    codes: torch.Tensor,
    codebook_size: int,
    steps: int = 1500,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    code_noise: float = 0.0,
    seed: int = 0,
    progress: bool = False,
) -> CodePrior:
    """Fit an unconditional :class:`CodePrior` on code grids ``codes`` long ``[N, *grid]`` in
    ``[0, codebook_size)`` (the tokenizer's codes of :func:`~vqgen.evaluation.background.generic_views`):
    AdamW (betas 0.9, 0.95, weight decay 0.01), linear warm-up over 100 steps then cosine decay, gradients
    clipped to norm 1, batches drawn with replacement, full precision. ``code_noise`` > 0 replaces each
    training code by a uniformly random one with that probability (Ren et al. 2019's perturbed background,
    for comparison; the general-domain background uses 0). Returns it on the CPU in eval mode."""
    if codes.dim() < 2 or codes.shape[0] == 0:
        raise ShapeError(f"codes must be a non-empty [N, *grid] tensor, got shape {tuple(codes.shape)}")
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    if not 0.0 <= code_noise < 1.0:
        raise ConfigError(f"code_noise must be in [0, 1), got {code_noise}")
    codes = codes.long()
    torch.manual_seed(seed)
    background = CodePrior(
        codebook_size=codebook_size,
        code_grid=list(codes.shape[1:]),
        num_classes=0,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
    )
    background.layout.check_code_values(codes)
    options = TrainingOptions(
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=0.01,
        mixed_precision="no",
        max_grad_norm=1.0,
        checkpoint_every=steps,
        eval_every=steps,
        log_every=steps,
        seed=seed,
        progress=progress,
    )
    objective = BackgroundObjective(background, codes, options, code_noise)
    return run_training(objective, options, write_files=False)
