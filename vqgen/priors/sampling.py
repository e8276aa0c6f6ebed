"""Sampling codes from a ``CodePrior``: temperature, top-k, top-p, classifier-free guidance, prompts.

``sample_codes`` prepares the tokens a prompt or the layout fixes and the plan of each step, then runs the one
decode walk (``vqgen.priors.walk``) over the fast decoder derived from the prior (``decoder_for`` in
``vqgen.priors.decoder``) with a ``pick`` that draws each step's free tokens. Speed against ``generate()``:
``benchmarks/sampling.py`` and ``benchmarks/RESULTS.md``. The tests check the decoder against a full, cache-free
forward of the ``transformers`` model at every step.

Randomness: every random draw is uniform noise from ``generator`` turned into Gumbel noise, and the token is
``argmax(logits / temperature + gumbel)`` over the kept candidates (the Gumbel-max trick), which samples
exactly from the softmax over those candidates.

Imports: this module and those it uses never import ``vqgen.priors.prior`` at run time (only for type hints),
so the dependency runs one way, from the prior (``CodePrior.sample``) to the sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from vqgen.checks import whole_number
from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.decoder import decoder_for
from vqgen.priors.sampling_config import SamplingConfig
from vqgen.priors.walk import Pick, walk

if TYPE_CHECKING:
    from vqgen.priors.layout import CodeLayout
    from vqgen.priors.prior import ClassLabels, CodePrior, Conditions

__all__ = ["sample_codes", "sample_from_logits", "gumbel_noise", "check_call"]


#: One generator for the whole batch, or one per item (each item's draws then depend on its generator only).
Generators = torch.Generator | list[torch.Generator] | None


def gumbel_noise(shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise float32 ``shape`` on ``device``, drawn from ``generator`` on its own device.

    With a list of ``G`` generators, ``shape[0]`` must be a multiple of ``G``: item ``i`` owns the
    ``shape[0] // G`` consecutive rows starting at ``i * shape[0] // G`` and draws them from ``generator[i]``.
    """
    if isinstance(generator, list):
        rows = shape[0] // len(generator)
        if rows * len(generator) != shape[0]:
            raise ShapeError(f"{len(generator)} generators cannot share {shape[0]} rows of noise")
        uniform = torch.cat(
            [torch.rand((rows, *shape[1:]), generator=g, device=g.device).to(device) for g in generator]
        )
    else:
        noise_device = generator.device if generator is not None else device
        uniform = torch.rand(shape, generator=generator, device=noise_device, dtype=torch.float32)
    # uniform == 0 gives -inf: that candidate is never picked, which is the right limit. (In place: -log(-log u).)
    return uniform.log_().neg_().log_().neg_().to(device)


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """Pick one index per row of ``logits [B, n]``; returns LongTensor ``[B]`` in ``[0, n)``.

    Order of filters: temperature, then top-k, then top-p (the smallest set of candidates whose probability
    reaches ``top_p``). ``temperature == 0`` is greedy (argmax) and draws no noise.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits.float() if temperature == 1 else logits.float() / temperature
    index = None
    if top_k is not None and top_k < scores.shape[-1]:
        # Only top-p needs the kept candidates in order (and unsorted is about 2x faster on a CPU).
        ordered = top_p is not None and top_p < 1.0
        scores, index = torch.topk(scores, top_k, dim=-1, sorted=ordered)
    elif top_p is not None and top_p < 1.0:
        scores, index = torch.sort(scores, dim=-1, descending=True)
    if top_p is not None and top_p < 1.0:
        probs = scores.softmax(dim=-1)
        # Mass strictly before each candidate; the first candidate always survives.
        before = probs.cumsum(dim=-1) - probs
        scores = scores.masked_fill(before >= top_p, float("-inf"))
    choice = (scores + gumbel_noise(tuple(scores.shape), generator, scores.device)).argmax(dim=-1)
    return choice if index is None else index.gather(-1, choice.unsqueeze(-1)).squeeze(-1)


def check_call(batch_size: int, generator: Generators) -> None:
    """Raise ConfigError (one line) for a batch size or generator ``sample_codes`` cannot honour."""
    whole_number("batch_size", batch_size, 1)
    if isinstance(generator, list):
        if len(generator) != batch_size or not all(isinstance(g, torch.Generator) for g in generator):
            raise ConfigError(
                f"a list of generators must hold one torch.Generator per item ({batch_size}), got {len(generator)}"
            )
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def sample_codes(
    prior: CodePrior,
    batch_size: int,
    *,
    sampling: SamplingConfig | None = None,
    class_labels: ClassLabels = None,
    conditions: Conditions = None,
    prompt: torch.Tensor | None = None,
    generator: Generators = None,
    progress: bool = False,
    time_steps: int | None = None,
    decoder_options: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Draw codes from ``prior``: LongTensor ``[batch_size, *grid]`` on the prior's device.

    One decoder step per layout step: one token for single-stream layouts (``raster``, ``flatten``), all
    ``S`` level tokens of a step at once for ``delay`` (each over its own level range, with guidance, top-k
    and top-p per level; the pads of the pattern are kept, never drawn).

    Args:
        prior: a ``CodePrior``.
        batch_size: number of items.
        class_labels: None (null class: unconditional sampling), an int, a list or a LongTensor ``[B]``;
            one label broadcasts. Must be None for an unconditional prior.
        conditions: instead of ``class_labels``, for a prior with condition fields: ``{field: values}`` (an
            int, a list or a LongTensor ``[B]`` of value indices; a missing field is that field's null) or
            indices ``[B, F]`` (``CodePrior.condition_indices``). Guidance's unconditional rows null every field.
        sampling: temperature, top-k, top-p and guidance (``SamplingConfig``; default: plain sampling at
            temperature 1). With guidance ``g != 1`` and labels, conditional and null-class rows run as one
            doubled batch and the code logits become ``null + g * (cond - null)`` (on logits or
            log-probabilities alike: they differ by a per-row constant, which cancels in the softmax), ``g``
            moving over the drawn steps as ``sampling.guidance_schedule`` says.
        prompt: known leading codes kept as given: ``[B, P]`` in sequence order or a leading block of the
            grid (the top rows of an image ``[B, n, *grid[1:]]``; the first frames ``[B, K, n]`` of a
            ``flatten`` or ``delay`` grid); batch 1 broadcasts.
        generator: drives every random draw (on its own device; the noise moves to the prior's device).
            A list of ``batch_size`` generators gives each item its own stream: item ``i``'s codes then depend
            only on ``generator[i]``, not on which other items share the batch.
        progress: show a tqdm bar over the decode steps.
        time_steps: sample only the first ``time_steps`` steps of the layout's time axis
            (``layout.with_time_steps``); the codes' time axis is cut to that size. The steps drawn are those
            of the full-length sequence, so with the same ``generator`` the result equals the first
            ``time_steps`` steps of a full-length sample.
        decoder_options: keyword options of ``decoder_for`` (``static``, ``page_size``, ...), for tests and
            benchmarks; the default picks them for the device.
    """
    layout = prior.layout
    sampling = sampling if sampling is not None else SamplingConfig()
    check_call(batch_size, generator)
    sampling.check_prior(layout.num_code_tokens, prior.is_conditional)
    clip = layout if time_steps is None else layout.with_time_steps(time_steps)
    indices = prior.condition_indices(class_labels, batch_size, conditions)
    tokens, known = _forced_tokens(prior, clip, prompt, batch_size)
    clip_fixed = clip.fixed_tokens()
    needed = known if clip_fixed is None else known | (clip_fixed.to(known.device) >= 0)
    if bool(needed.all()):
        return clip.unflatten(tokens.clone())

    steps = clip.length // layout.streams
    plans = _step_plans(layout, (tokens[0] < 0).cpu(), steps, prior.device)
    first = next(s for s, plan in enumerate(plans) if plan is not None)
    # Guidance between the null class and itself is a no-op, so unlabelled sampling skips the doubled batch.
    guided = indices is not None and sampling.guidance != 1.0
    with torch.inference_mode():
        prefix = prior.prefix(None, batch_size, conditions=indices, guided=guided)
        max_len = prior.num_prefix_tokens + steps - 1
        decoder = decoder_for(prior, prefix.shape[0], max_len, **(decoder_options or {}))
        weights = _token_weights(layout, sampling.guidance_level_weights, prior.device)
        pick = _drawer(
            plans, sampling, guided, generator, tokens, layout.streams, weights if guided else None
        )
        walk(
            decoder, prefix, tokens, pick, streams=layout.streams, first=first, steps=steps, progress=progress
        )
    # A normal tensor, not an inference tensor, so callers may use it under autograd.
    return clip.unflatten(tokens.clone())


def _drawer(
    plans: list[_StepPlan | None],
    sampling: SamplingConfig,
    guided: bool,
    generator: Generators,
    tokens: torch.Tensor,
    streams: int,
    weights: torch.Tensor | None = None,
) -> Pick:
    """The walk's ``pick`` for sampling: the step's tokens ``[B, S]`` from ``tokens [B, L]`` (fixed and known
    ones) with its free positions drawn from the logits ``[rows, N]`` (guided: the conditional rows, then the
    null-class rows; ``weights [N]``: each code's share of the guidance strength, ``_token_weights``)."""
    batch = tokens.shape[0]
    top_k = sampling.top_k
    drawn_steps = [step for step, plan in enumerate(plans) if plan is not None]
    last = len(drawn_steps) - 1
    # One drawn step has no ramp to walk: it gets the full scale.
    scales = {
        step: sampling.guidance_at(i / last) if last > 0 else sampling.guidance
        for i, step in enumerate(drawn_steps)
    }
    if (
        weights is not None
    ):  # each step's codes get their level's share of the strength: [width] or [F, width]
        for step, scale in scales.items():
            plan = plans[step]
            share = weights[plan.lo : plan.lo + plan.width] if plan.index is None else weights[plan.index]
            scales[step] = 1.0 + (scale - 1.0) * share

    def pick(step: int, logits: torch.Tensor) -> torch.Tensor:
        current = tokens[:, step * streams : (step + 1) * streams]
        plan = plans[step]
        if plan is None:
            return current
        if plan.index is None:
            step_logits = logits[:, plan.lo : plan.lo + plan.width]
        else:
            step_logits = logits[:, plan.index]
            if plan.invalid is not None:
                step_logits = step_logits.masked_fill(plan.invalid, float("-inf"))
        if guided:
            cond_logits, null_logits = step_logits.float().chunk(2)
            step_logits = null_logits + scales[step] * (cond_logits - null_logits)
        k = None if top_k is None else min(top_k, plan.width)
        drawn = sample_from_logits(
            step_logits.reshape(-1, plan.width), sampling.temperature, k, sampling.top_p, generator
        )
        drawn = drawn.view(batch, -1) + plan.lo
        if streams == 1:
            return drawn
        out = current.clone()
        out[:, plan.columns] = drawn.squeeze(1) if isinstance(plan.columns, int) else drawn
        return out

    return pick


def _token_weights(
    layout: CodeLayout, level_weights: tuple[float, ...] | None, device
) -> torch.Tensor | None:
    """``level_weights`` (one per residual code level) spread over the code ids ``[num_code_tokens]`` (float32 on
    ``device``), or None when not given; one-line ``ConfigError`` for a layout without levels or another count."""
    if level_weights is None:
        return None
    level_of_token = layout.token_levels()
    if level_of_token is None:
        raise ConfigError(
            f"guidance_level_weights needs a prior over residual code levels (layout flatten or delay); this "
            f"prior's layout is {layout.name}"
        )
    if len(level_weights) != layout.levels:
        raise ConfigError(
            f"guidance_level_weights has {len(level_weights)} values; the prior has {layout.levels} code levels"
        )
    return torch.tensor(level_weights, dtype=torch.float32)[level_of_token].to(device)


class _StepPlan(NamedTuple):
    """What one decode step draws: the free ``columns`` of the step (its positions ``step * S + column``) and
    the logit columns of their code ranges.

    One free position: ``columns`` and ``lo`` are ints and the logits are sliced ``[lo, lo + width)``.
    Several (one per stream): ``columns [F]``, ``lo [F]``, ``index [F, width]`` the logit columns of each
    range padded to the widest, ``invalid [F, width]`` the padding (None when all ranges are equally wide).
    """

    columns: int | torch.Tensor
    lo: int | torch.Tensor
    width: int
    index: torch.Tensor | None = None
    invalid: torch.Tensor | None = None


def _step_plans(
    layout: CodeLayout, free: torch.Tensor, steps: int, device: torch.device
) -> list[_StepPlan | None]:
    """``_StepPlan`` per step of ``free [steps * streams]`` (bool; None where nothing is drawn)."""
    streams = layout.streams
    uniform = layout.uniform_range()
    ranges = None if uniform is not None else layout.code_ranges()
    plans: list[_StepPlan | None] = []
    # The free flags as Python lists, so the common single-position step costs no tensor op.
    for step, row in enumerate(free[: steps * streams].view(steps, streams).tolist()):
        columns = [j for j, is_free in enumerate(row) if is_free]
        if not columns:
            plans.append(None)
            continue
        positions = [step * streams + j for j in columns]
        if len(positions) == 1:
            lo, hi = uniform if uniform is not None else ranges[positions[0]].tolist()
            plans.append(_StepPlan(columns[0], lo, hi - lo))
            continue
        bounds = torch.tensor([uniform] * len(positions)) if uniform is not None else ranges[positions]
        lo, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        offsets = torch.arange(int(width.max()))
        invalid = offsets >= width[:, None]
        plans.append(
            _StepPlan(
                torch.tensor(columns, device=device),
                lo.to(device),
                len(offsets),
                (lo[:, None] + offsets).clamp(max=layout.num_code_tokens - 1).to(device),
                invalid.to(device) if bool(invalid.any()) else None,
            )
        )
    return plans


def _forced_tokens(
    prior: CodePrior, clip: CodeLayout, prompt: torch.Tensor | None, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[batch_size, clip.length]`` fixed before sampling, -1 where a token is still to be drawn, and
    the mask ``[clip.length]`` of the positions the prompt gives.

    Fixed are the prior layout's fillers (delay pads) and the known prompt codes (read by ``clip``, so a prompt
    longer than the clip is refused); both are checked against the prior layout's ``code_range``.
    """
    layout = prior.layout
    length = clip.length
    tokens = torch.full((batch_size, length), -1, dtype=torch.long, device=prior.device)
    fixed = layout.fixed_tokens()
    if fixed is not None:
        tokens = torch.where(fixed[:length].to(prior.device) >= 0, fixed[:length].to(prior.device), tokens)
    if prompt is None:
        return tokens, torch.zeros(length, dtype=torch.bool, device=prior.device)
    known_tokens, known = clip.known_tokens(prompt)
    known_tokens, known = known_tokens.to(prior.device), known.to(prior.device)
    if known_tokens.shape[0] not in (1, batch_size):
        raise ShapeError(f"prompt batch must be 1 or batch_size={batch_size}, got {known_tokens.shape[0]}")
    if bool(known.any()):
        ranges = layout.code_ranges()[:length].to(prior.device)
        bad = known & ((known_tokens < ranges[:, 0]) | (known_tokens >= ranges[:, 1]))
        if bool(bad.any()):
            row, position = (int(i) for i in bad.nonzero()[0])
            lo, hi = (int(v) for v in ranges[position])
            raise ConfigError(
                f"prompt codes must lie in the layout's code range ([0, {layout.codebook_size}) for {layout.name}), "
                f"got token {int(known_tokens[row, position])} at sequence position {position} where "
                f"[{lo}, {hi}) is allowed"
            )
    return torch.where(known, known_tokens, tokens).contiguous(), known
