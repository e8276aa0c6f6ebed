"""The one decode walk over a layout: prefix -> prefill -> for each step: logits -> pick the step's tokens -> feed.

Sampling (``vqgen.priors.sampling``) and compression (``vqgen.compression``) both run :func:`walk`; they differ
in the decoder that turns ids into logits (the fast ``KVDecoder`` from ``decoder_for``, or the pinned float64
``ReferenceDecoder``) and in the ``pick`` callback (draw from the logits, or range-code under them).

A decoder is any callable ``decoder(ids) -> logits [rows, N]`` holding a KV cache: ``ids [rows, T]`` (one token
per position) or ``[rows, T, S]`` (the ``S`` tokens of a multi-stream step, their embeddings summed; ``-1``
marks no token, as in the single-token prefix steps), the logits those of the last position fed. The first call
passes the prefix and the known steps, every later call one step.

Rows: ``rows = copies * B``. Under classifier-free guidance the prefix holds the ``B`` conditional rows and then
``B`` rows with every condition field null (``CodePrior.prefix(..., guided=True)``), and every step's tokens are
fed to both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from vqgen.errors import ShapeError

__all__ = ["walk", "step_ids", "Decoder", "Pick"]

#: ``decoder(ids [rows, T] or [rows, T, S]) -> code logits [rows, N]`` of the last position fed.
Decoder = Callable[[torch.Tensor], torch.Tensor]
#: ``pick(step, logits [rows, N]) -> the step's tokens [B, S]`` (LongTensor on the tokens' device).
Pick = Callable[[int, torch.Tensor], torch.Tensor]


def step_ids(prefix: torch.Tensor | None, tokens: torch.Tensor, streams: int) -> torch.Tensor:
    """Decoder input for ``prefix [rows, P]`` (single-token steps; or None) then ``tokens [rows, n * S]`` of
    ``n`` whole steps: ``[rows, P + n]`` for one stream, else ``[rows, P + n, S]`` with the prefix ids in
    column 0 and ``-1`` beside them."""
    rows = tokens.shape[0]
    if streams == 1:
        return tokens if prefix is None else torch.cat([prefix, tokens], dim=1)
    steps = tokens.view(rows, -1, streams)
    if prefix is None:
        return steps
    head = torch.full((rows, prefix.shape[1], streams), -1, dtype=torch.long, device=tokens.device)
    head[:, :, 0] = prefix
    return torch.cat([head, steps], dim=1)


def walk(
    decoder: Decoder,
    prefix: torch.Tensor,
    tokens: torch.Tensor,
    pick: Pick,
    *,
    streams: int = 1,
    first: int = 0,
    steps: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Walk the steps ``first .. steps - 1`` of a layout, writing each picked step into ``tokens``.

    Args:
        decoder: see the module docstring; empty, built for ``prefix.shape[0]`` rows and at least
            ``P + steps - 1`` positions.
        prefix: the condition tokens ``[rows, P]`` (BOS and one per condition field, ``CodePrior.prefix``).
        tokens: LongTensor ``[B, L]`` (``L >= steps * S``), ``rows`` a multiple of ``B``: the steps before
            ``first`` are known and prefilled with the prefix; the rest is written here, step by step.
        pick: ``pick(step, logits)`` returns the tokens ``[B, S]`` of ``step`` given the decoder's logits
            ``[rows, N]`` for it; they are written into ``tokens`` and fed to every row copy.
        streams: tokens per step ``S`` (``layout.streams``).
        first: the first step to pick.
        steps: the number of steps (default: all of ``tokens``).
        progress: a tqdm bar over the picked steps.

    Returns:
        ``tokens``, filled.
    """
    batch = tokens.shape[0]
    steps = tokens.shape[1] // streams if steps is None else steps
    copies = prefix.shape[0] // batch
    if copies * batch != prefix.shape[0] or not 0 <= first < steps or steps * streams > tokens.shape[1]:
        raise ShapeError(
            f"walk needs prefix rows a multiple of {batch} and 0 <= first < steps <= {tokens.shape[1] // streams}, "
            f"got {prefix.shape[0]} rows, first={first}, steps={steps}"
        )
    known = tokens[:, : first * streams]
    logits = decoder(step_ids(prefix, known.repeat(copies, 1) if copies > 1 else known, streams))
    for step in tqdm(range(first, steps), total=steps - first, disable=not progress, desc="sampling"):
        picked = pick(step, logits)
        tokens[:, step * streams : (step + 1) * streams] = picked
        if step + 1 < steps:
            feed = picked.repeat(copies, 1) if copies > 1 else picked
            logits = decoder(feed.unsqueeze(1) if streams > 1 else feed)
    return tokens
