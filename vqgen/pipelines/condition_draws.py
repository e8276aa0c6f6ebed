"""Condition fields a pipeline draws itself when a call leaves them out, from the training data's value table.

A prior conditioned on family, pitch AND program (the General MIDI instrument) can be asked for one instrument,
while users still ask for a family and a pitch. Such a pipeline keeps the value combinations its prior was
trained on with their counts, ``condition_draws`` in ``model_index.json``::

    {"fields": ["program"], "table": [[family, pitch, program, count], ...]}

(value indices, columns in the prior's field order, then the count). For each item that gives at least one
field and leaves a drawn field null, it draws one row among those that agree with the fields given, in
proportion to its count, and takes the drawn fields' values from it. While no row agrees it drops the last
given field in prefix order (a pitch the family never had in training still gets one of the family's programs).
An item that gives no field stays unconditional; a drawn field the caller gives is kept. Only sampling draws:
``score`` and ``compress`` use the conditions as given.

Measured on the instrument notes (``benchmarks/RESULTS.md``, session 11): drawing the program lowered the
judge's family accuracy of the samples (64% -> 52-58%), so the shipped instrument pipeline does not use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from vqgen.errors import ConfigError, MismatchError

__all__ = ["check_condition_draws", "condition_table", "draw_conditions"]


def condition_table(field_labels: Mapping[str, torch.Tensor], fields: Sequence[str]) -> list[list[int]]:
    """The distinct value combinations of ``fields`` (in that order) among items that have all of them, with
    their counts: ``[[v_0, ..., v_{F-1}, count], ...]`` sorted. ``field_labels``: ``{field: long [N]}`` (-1:
    the item has no value), e.g. a ``CodeShardDataset``'s ``field_labels``."""
    missing = [name for name in fields if name not in field_labels]
    if missing:
        raise ConfigError(
            f"no labels for condition field {missing[0]!r}; the data has {', '.join(field_labels)}"
        )
    matrix = torch.stack([field_labels[name].long() for name in fields], dim=1)
    matrix = matrix[(matrix >= 0).all(dim=1)]
    rows, counts = torch.unique(matrix, dim=0, return_counts=True)
    return [row + [count] for row, count in zip(rows.tolist(), counts.tolist())]


def check_condition_draws(prior, draws) -> dict | None:
    """``draws`` ``{"fields": [...], "table": [[..., count], ...]}`` checked against the prior's condition fields
    (one-line errors); None passes."""
    if draws is None:
        return None
    fields = prior.condition_fields
    if not isinstance(draws, Mapping) or set(draws) != {"fields", "table"}:
        raise ConfigError('condition_draws must be a dict {"fields": [names], "table": [[values..., count]]}')
    drawn, table = list(draws["fields"]), draws["table"]
    unknown = [name for name in drawn if name not in fields]
    if not drawn or unknown:
        raise MismatchError(
            f"condition_draws draws {drawn}; the prior's fields are {', '.join(fields) or 'none'}"
        )
    sizes = list(fields.values())
    for row in table:
        if (
            not isinstance(row, (list, tuple))
            or len(row) != len(sizes) + 1
            or not all(isinstance(v, int) and 0 <= v < n for v, n in zip(row, sizes))
            or not (isinstance(row[-1], int) and row[-1] > 0)
        ):
            raise ConfigError(
                f"condition_draws rows must be {len(sizes)} value indices within the fields' sizes {sizes} "
                f"and a positive count, got {row!r}"[:300]
            )
    if not table:
        raise ConfigError("condition_draws has an empty table")
    return {"fields": drawn, "table": [list(row) for row in table]}


def _uniform(generator: torch.Generator | None) -> float:
    if generator is None:
        return float(torch.rand(()))
    return float(torch.rand((), generator=generator, device=generator.device))


def draw_conditions(
    draws: dict | None,
    field_names: Sequence[str],
    indices: torch.Tensor | None,
    generators: Sequence[torch.Generator] | None,
) -> torch.Tensor | None:
    """Value indices ``[B, F]`` (-1: null) with the drawn fields filled where an item gives other fields and
    leaves them null (see the module docstring). ``generators``: one per item (each draws one uniform number
    for an item it fills), or None for torch's global generator. Returns ``indices`` itself when nothing is
    drawn."""
    if draws is None or indices is None:
        return indices
    table = torch.tensor(draws["table"], dtype=torch.long)
    values, counts = table[:, :-1], table[:, -1].double()
    drawn = [list(field_names).index(name) for name in draws["fields"]]
    filled = indices.clone()
    for item, row in enumerate(indices.cpu()):
        given = [f for f in range(len(field_names)) if row[f] >= 0 and f not in drawn]
        if not given or bool((row[drawn] >= 0).all()):
            continue
        agree = (values[:, given] == row[given]).all(dim=1)
        while not agree.any():  # with no given field left every row agrees, so this ends
            given = given[:-1]
            agree = (values[:, given] == row[given]).all(dim=1)
        weights = counts * agree
        cumulative = torch.cumsum(weights, 0)
        u = _uniform(None if generators is None else generators[item]) * float(cumulative[-1])
        choice = min(
            int(torch.searchsorted(cumulative, torch.tensor(u, dtype=torch.float64), right=True)),
            len(values) - 1,
        )
        for f in drawn:
            if row[f] < 0:
                filled[item, f] = values[choice, f]
    return filled
