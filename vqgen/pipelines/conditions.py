"""Condition values by name: the value names a pipeline stores, and ``class_labels`` / ``conditions`` with
names resolved to the value indices its prior takes (priors know indices only, ``vqgen.priors.conditions``).

A pipeline stores ``condition_names`` ``{field: [value names]}`` in ``model_index.json`` (``vqgen train-prior``
copies them from the code shards: the class sub-folders as field ``"class"``, or the ``metadata.csv`` columns of
``vqgen encode --condition-fields``). Pipelines saved without them keep loading; their fields then take
numbers (indices) only.

How a value is read:

* a name (``"brass"``, ``"smileys-emotion"``) is looked up among the field's names;
* an int given to ``class_labels`` is an index (as it always was);
* an int given to ``conditions`` is an index, except for a field whose names are all integers (pitch:
  ``"36"`` .. ``"84"``), where it is the value itself: ``conditions={"pitch": 60}`` is the name ``"60"``;
* text that is a number (``"3"``, from the command line) is read as that int when it is not a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from vqgen.errors import ConfigError, MismatchError

__all__ = [
    "check_condition_names",
    "class_label_word",
    "condition_call_arguments",
    "parse_condition_flags",
    "resolve_class_labels",
    "resolve_conditions",
]

_INTEGER = re.compile(r"[+-]?\d+")
_NAMES_SHOWN = 60


def check_condition_names(prior, names) -> dict[str, list[str]] | None:
    """``names`` ``{field: [value names] or None}`` checked against the prior's fields (one-line errors):
    ``{field: names}`` in the prior's field order without the None entries, or None when none is left."""
    if names is None:
        return None
    if not isinstance(names, Mapping):
        raise ConfigError(
            f"condition_names must be a dict {{field: [value names]}}, got {type(names).__name__}"
        )
    fields = prior.condition_fields
    for field, values in names.items():
        if field not in fields:
            have = ", ".join(fields) or "none (unconditional)"
            raise MismatchError(f"condition_names names field {field!r}; the prior's fields are {have}")
        if values is None:
            continue
        if not (isinstance(values, (list, tuple)) and all(isinstance(v, str) and v for v in values)):
            raise ConfigError(f"condition_names[{field!r}] must be a list of non-empty strings")
        if len(values) != fields[field]:
            raise MismatchError(
                f"condition_names[{field!r}] holds {len(values)} names; the prior's field has {fields[field]} values"
            )
        if len(set(values)) != len(values):
            raise ConfigError(f"condition_names[{field!r}] holds a name twice")
    kept = {field: list(names[field]) for field in fields if names.get(field) is not None}
    return kept or None


def _allowed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown if len(names) <= _NAMES_SHOWN else f"{shown}, ... ({len(names)} in all)"


def _integer_names(names: Sequence[str] | None) -> bool:
    return bool(names) and all(_INTEGER.fullmatch(name) for name in names)


def _as_list(values):
    """``values`` as a Python scalar or list (tensors and arrays ``[]`` / ``[B]`` converted)."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return values.tolist()
    if isinstance(values, np.integer):
        return int(values)
    return list(values) if isinstance(values, (list, tuple)) else values


def _resolve_one(value, field: str, size: int, names: Sequence[str] | None, by_value: bool, what: str):
    """One value -> an index (or the int as given where the prior checks it)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} takes names or ints, got {value!r}")
    if isinstance(value, str):
        if names and value in names:
            return names.index(value)
        if not _INTEGER.fullmatch(value.strip()):
            if not names:
                raise ConfigError(
                    f"{what} {value!r}: this pipeline stores no value names for {field!r}; "
                    f"pass an index in [0, {size})"
                )
            raise ConfigError(f"unknown {what} {value!r}; {field} takes {_allowed(names)}")
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} takes names or ints, got {value!r}")
    if by_value and _integer_names(names):
        if str(int(value)) not in names:
            raise ConfigError(
                f"{what} {int(value)} is not a value this pipeline was trained on; {field} takes {_allowed(names)}"
            )
        return names.index(str(int(value)))
    return int(value)


def _resolve_values(values, field: str, size: int, names, by_value: bool, what: str):
    """One field's values (int, name, list, tensor ``[B]``) -> indices; ints as indices pass unchanged (and
    tensors of them stay tensors) unless ``by_value`` reads them as integer names."""
    plain = _as_list(values)
    items = plain if isinstance(plain, list) else [plain]
    if not any(isinstance(item, str) for item in items) and not (by_value and _integer_names(names)):
        return values
    resolved = [_resolve_one(item, field, size, names, by_value, what) for item in items]
    return resolved if isinstance(plain, list) else resolved[0]


def resolve_class_labels(pipe, class_labels):
    """``class_labels`` with names replaced by indices: ints are indices, names those of the prior's one field
    (``model_index.json``'s ``condition_names``). Anything else passes to the prior unchanged."""
    fields = pipe.prior.condition_fields
    if class_labels is None or len(fields) != 1:
        return class_labels
    ((field, size),) = fields.items()
    names = pipe.condition_names.get(field)
    return _resolve_values(class_labels, field, size, names, by_value=False, what="class label")


def resolve_conditions(pipe, conditions):
    """``conditions`` ``{field: values}`` with names (and, for integer-named fields, values) replaced by
    indices; an unknown field is refused listing the prior's fields. A tensor ``[B, F]`` passes unchanged."""
    if conditions is None or isinstance(conditions, torch.Tensor):
        return conditions
    if not isinstance(conditions, Mapping):
        raise ConfigError(f"conditions must be a dict {{field: values}}, got {type(conditions).__name__}")
    fields = pipe.prior.condition_fields
    if not fields:
        raise ConfigError("conditions were given to a pipeline whose prior is unconditional; pass None")
    resolved = {}
    for field, values in conditions.items():
        if field not in fields:
            raise ConfigError(f"unknown condition {field!r}: this pipeline's fields are {', '.join(fields)}")
        names = pipe.condition_names.get(field)
        resolved[field] = (
            None if values is None else _resolve_values(values, field, fields[field], names, True, field)
        )
    return resolved


def parse_condition_flags(pipe, flags: Sequence[str]) -> dict[str, str]:
    """``--condition FIELD=VALUE`` flags -> ``{field: value}`` (values resolved later, by name or number)."""
    fields = ", ".join(pipe.prior.condition_fields) or "none: its prior is unconditional"
    parsed: dict[str, str] = {}
    for flag in flags:
        field, equals, value = flag.partition("=")
        if not equals or not field.strip() or not value.strip():
            raise ConfigError(
                f"--condition takes FIELD=VALUE (this pipeline's fields: {fields}), got {flag!r}"
            )
        if field.strip() in parsed:
            raise ConfigError(f"--condition gives {field.strip()!r} twice")
        parsed[field.strip()] = value.strip()
    return parsed


def condition_call_arguments(
    pipe,
    num_samples: int,
    class_labels: Sequence[int | str] | None = None,
    condition_flags: Sequence[str] | None = None,
    unconditional: bool = False,
) -> dict:
    """The condition keyword of ``vqgen generate``'s pipeline calls: ``{"class_labels": [one per sample]}``,
    ``{"conditions": {field: value}}`` or ``{}``.

    ``--class-label`` gives one label or one per sample (names or indices). ``--condition`` gives one value per
    field (missing fields null). Without either, a conditional pipeline (unless ``unconditional``) draws every
    class in turn, or with several fields sample ``i`` takes value ``i % n`` of every field.
    """
    if class_labels and condition_flags:
        raise ConfigError("pass --class-label or --condition, not both")
    if condition_flags:
        return {"conditions": parse_condition_flags(pipe, condition_flags)}
    labels = None if class_labels is None else [class_label_word(label) for label in class_labels]
    if labels and len(labels) not in (1, num_samples):
        raise ConfigError(
            f"--class-label takes one label or one per sample ({num_samples}), got {len(labels)}"
        )
    if labels:
        return {"class_labels": labels * num_samples if len(labels) == 1 else labels}
    fields = pipe.prior.condition_fields
    if unconditional or not fields:
        return {}
    if len(fields) == 1:
        return {"class_labels": [i % pipe.num_classes for i in range(num_samples)]}
    cycled = {}
    for field, size in fields.items():
        names = pipe.condition_names.get(field)
        cycled[field] = [names[i % size] if names else i % size for i in range(num_samples)]
    return {"conditions": cycled}


def class_label_word(label):
    """A ``--class-label`` word: an int when it is one (an index, as before), else a name."""
    return int(label) if isinstance(label, str) and _INTEGER.fullmatch(label.strip()) else label
