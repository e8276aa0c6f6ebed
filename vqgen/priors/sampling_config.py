"""``SamplingConfig``: how codes are drawn (temperature, top-k, top-p, classifier-free guidance, its schedule and
its weight per code level).

One value, keyword-only, checked once when it is made, passed unchanged from the command line or a pipeline
call down to ``sample_codes``. The checks that need the prior (``top_k`` against its code range, guidance
against an unconditional prior) are :meth:`SamplingConfig.check_prior`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from vqgen.errors import ConfigError

__all__ = ["GUIDANCE_SCHEDULES", "SamplingConfig"]

#: How the guidance scale moves over the drawn tokens (see ``SamplingConfig.guidance_schedule``).
GUIDANCE_SCHEDULES = ("constant", "rising", "falling")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """How the prior's next code is picked at every step.

    Args:
        temperature: ``> 0`` divides the logits; ``0`` means greedy (argmax, no random draw).
        top_k: keep the ``k`` most likely codes (``k >= 1``; at most the codes of a position), or None.
        top_p: keep the smallest set of codes whose probability reaches ``top_p``, in ``(0, 1]``, or None.
            Filters apply in this order: temperature, top-k, top-p.
        guidance_scale: classifier-free guidance ``g``: code logits ``null + g * (cond - null)``; 1 is none.
            None lets a pipeline pick (its ``default_guidance_scale`` when class labels are given, else 1);
            the sampler itself reads None as 1.
        guidance_schedule: how the scale moves over the tokens drawn, in sampling order: ``"constant"`` (``g``
            at every token; None reads as this), ``"rising"`` (from 1 at the first token drawn linearly to
            ``g`` at the last, as VAR and MUSE ramp it) or ``"falling"`` (from ``g`` down to 1). A ramp's
            mean scale is ``(1 + g) / 2``, so it is compared with a constant scale at a larger ``g``.
        guidance_level_weights: for a prior over residual code levels (``flatten`` or ``delay`` layout), the
            share of the guidance strength ``g - 1`` each level gets, level 0 first: level ``k``'s codes are
            drawn at ``1 + (g - 1) * w_k`` (times the schedule's ramp), so ``--guidance-scale`` still scales
            them all. None (or all 1) guides every level alike. The instrument prior draws the asked family
            more often with its finest levels guided harder than its coarse ones (``benchmarks/RESULTS.md``).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance_scale: float | None = None
    guidance_schedule: str | None = None
    guidance_level_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not _number(self.temperature) or self.temperature < 0:
            raise ConfigError(
                f"temperature must be a finite number >= 0 (0 = greedy), got {self.temperature!r}"
            )
        if self.top_k is not None and (
            isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1
        ):
            raise ConfigError(f"top_k must be None or an int >= 1, got {self.top_k!r}")
        if self.top_p is not None and (not _number(self.top_p) or not 0.0 < self.top_p <= 1.0):
            raise ConfigError(f"top_p must be None or a number in (0, 1], got {self.top_p!r}")
        if self.guidance_scale is not None and (not _number(self.guidance_scale) or self.guidance_scale < 0):
            raise ConfigError(f"guidance_scale must be a finite number >= 0, got {self.guidance_scale!r}")
        if self.guidance_schedule is not None and self.guidance_schedule not in GUIDANCE_SCHEDULES:
            raise ConfigError(
                f"guidance_schedule must be one of {', '.join(GUIDANCE_SCHEDULES)} or None, "
                f"got {self.guidance_schedule!r}"
            )
        weights = self.guidance_level_weights
        if weights is not None:
            if (
                isinstance(weights, (str, bytes))
                or not hasattr(weights, "__len__")
                or len(weights) == 0
                or not all(_number(w) and w >= 0 for w in weights)
            ):
                raise ConfigError(
                    "guidance_level_weights must be None or numbers >= 0, one per code level, "
                    f"got {weights!r}"
                )
            # a stored default comes back from JSON as a list; frozen, hashable configs hold a tuple
            object.__setattr__(self, "guidance_level_weights", tuple(float(w) for w in weights))

    @classmethod
    def from_arguments(cls, sampling: SamplingConfig | None = None, **values) -> SamplingConfig:
        """``sampling`` (default: all defaults) with every value in ``values`` that is not None put in.

        The convenience keywords of ``pipe(...)`` and ``CodePrior.sample`` (``guidance_scale=3`` ...) become
        one config here, so nothing below the call site takes them one by one.
        """
        if sampling is not None and not isinstance(sampling, cls):
            raise ConfigError(f"sampling must be a SamplingConfig or None, got {type(sampling).__name__}")
        base = sampling if sampling is not None else cls()
        changes = {name: value for name, value in values.items() if value is not None}
        return dataclasses.replace(base, **changes) if changes else base

    @property
    def guidance(self) -> float:
        """The guidance scale the sampler applies (None reads as 1: no guidance)."""
        return 1.0 if self.guidance_scale is None else float(self.guidance_scale)

    def guidance_at(self, fraction: float) -> float:
        """The guidance scale at ``fraction`` in [0, 1] of the way from the first token drawn to the last."""
        schedule = self.guidance_schedule or "constant"
        if schedule == "constant":
            return self.guidance
        ramp = fraction if schedule == "rising" else 1.0 - fraction
        return 1.0 + (self.guidance - 1.0) * ramp

    def describe(self) -> str:
        """A short line for reports: ``"temperature 0.8, top-k 100, guidance 5"`` (unset filters left out)."""
        words = [f"temperature {self.temperature:g}"]
        if self.top_k is not None:
            words.append(f"top-k {self.top_k}")
        if self.top_p is not None:
            words.append(f"top-p {self.top_p:g}")
        words.append(f"guidance {self.guidance:g}")
        if self.guidance_schedule not in (None, "constant") and self.guidance != 1.0:
            words[-1] += f" {self.guidance_schedule}"
        if self.guidance_level_weights is not None and self.guidance != 1.0:
            words[-1] += f" (level weights {','.join(f'{w:g}' for w in self.guidance_level_weights)})"
        return ", ".join(words)

    def check_prior(self, num_code_tokens: int, conditional: bool) -> None:
        """One-line ``ConfigError`` where this config cannot be honoured by a prior with ``num_code_tokens``
        codes that is (or is not) class-conditional."""
        if self.top_k is not None and self.top_k > num_code_tokens:
            raise ConfigError(f"top_k must be None or an int in [1, {num_code_tokens}], got {self.top_k!r}")
        if self.guidance != 1.0 and not conditional:
            raise ConfigError(
                f"guidance_scale={self.guidance_scale} needs a class-conditional prior; "
                "this prior has num_classes=0, use 1.0"
            )
