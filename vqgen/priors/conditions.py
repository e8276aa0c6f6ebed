"""Condition fields of a ``CodePrior``: their tokens in the vocabulary, and ``class_labels`` / ``conditions``
normalised to value indices.

A prior has ``F >= 0`` named condition fields, each with its number of values: ``{"family": 16, "pitch": 22}``
(``condition_fields``), or ``num_classes=C``, the single field ``{"class": C}``. The prefix order of the fields
is their names sorted (the saved config sorts its keys, so no other order would survive a save and load). After
the ``N`` code tokens the vocabulary holds, field by field, the field's value tokens and then its OWN null token
(its value "unknown": classifier-free guidance and label dropout use it), then BOS::

    [N, N + n_0)                        field 0's values
    N + n_0                             field 0's null
    [N + n_0 + 1, N + n_0 + 1 + n_1)    field 1's values, then its null, ...
    last id                             BOS

With one field this is the class-conditional vocabulary of ``num_classes`` exactly (classes, null class, BOS).

Everything here works on value indices, LongTensor ``[B, F]`` in prefix order with ``-1`` where a field is null
(unconditional in that field). Value names ("brass", "60") belong to pipelines (``vqgen.pipelines.conditions``),
never to priors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

from vqgen.checks import whole_number
from vqgen.errors import ConfigError, ShapeError

__all__ = [
    "CLASS_FIELD",
    "ConditionTokens",
    "ConditionValues",
    "Conditions",
    "check_condition_fields",
    "value_tensor",
]

#: The name of the one field of a ``num_classes`` prior (and of folder-class labels in code shards).
CLASS_FIELD = "class"
#: One field's values: an int for every item, a list of ints or a LongTensor ``[B]`` (``-1``: that item's null).
ConditionValues = int | Sequence[int] | torch.Tensor | None
#: ``{field: values}`` (a missing field, or None, is that field's null), or value indices LongTensor ``[B, F]``
#: in prefix order (``-1``: null).
Conditions = Mapping[str, ConditionValues] | torch.Tensor | None

_FIELD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def check_condition_fields(num_classes: int, condition_fields: Mapping[str, int] | None) -> dict[str, int]:
    """A prior's fields ``{name: number of values}`` in prefix order (sorted by name), from its config; a
    one-line ``ConfigError`` for anything it cannot build. ``num_classes=C`` is ``{"class": C}``."""
    whole_number("num_classes", num_classes, 0)
    if condition_fields is None or (isinstance(condition_fields, Mapping) and not condition_fields):
        return {CLASS_FIELD: num_classes} if num_classes else {}
    if not isinstance(condition_fields, Mapping):
        raise ConfigError(
            f"condition_fields must be a dict {{name: number of values}}, got {condition_fields!r}"[:300]
        )
    if num_classes:
        raise ConfigError(
            f"give num_classes or condition_fields, not both (num_classes={num_classes}, condition_fields "
            f"{sorted(condition_fields)})"
        )
    for name, size in condition_fields.items():
        if not (isinstance(name, str) and _FIELD_NAME.fullmatch(name)):
            raise ConfigError(
                f"condition field names are letters, digits, '_' and '-' (not first), got {name!r}"
            )
        whole_number(f"condition_fields[{name!r}]", size, 1)
    return {name: int(condition_fields[name]) for name in sorted(condition_fields)}


def value_tensor(
    what: str, values, size: int, batch_size: int, device: torch.device, lowest: int = 0
) -> torch.Tensor:
    """One field's values -> LongTensor ``[batch_size]`` on ``device``, each in ``[lowest, size)``.

    Accepts an int, a list of ints, or a tensor ``[]``, ``[1]`` (broadcast) or ``[batch_size]``. ``what`` names
    the argument in the one-line errors (``"class_labels"``, ``"condition 'pitch'"``); ``lowest=-1`` lets ``-1``
    mark an item's null.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.to(device)
    else:
        try:
            tensor = torch.as_tensor(values, device=device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(
                f"{what} must be an int, a list of ints or a LongTensor, got {values!r}"
            ) from err
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ShapeError(f"{what} must be integers, got dtype {tensor.dtype}")
    if tensor.numel():
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < lowest or hi >= size:
            null = " (-1: the field's null)" if lowest < 0 else ""
            raise ConfigError(f"{what} must lie in [{lowest}, {size}){null}, got values in [{lo}, {hi}]")
    tensor = tensor.long().reshape(-1) if tensor.dim() <= 1 else tensor
    if tensor.dim() != 1 or tensor.shape[0] not in (1, batch_size):
        raise ShapeError(f"{what} must have shape [{batch_size}] or [1], got {list(tensor.shape)}")
    return tensor.expand(batch_size).contiguous()


class ConditionTokens:
    """The condition tokens of a vocabulary: ``fields`` ``{name: n}`` in prefix order, token ids from ``first_id``
    (field ``f``'s value ``v`` is ``offsets[f] + v``, its null ``null_ids[f] = offsets[f] + n_f``)."""

    def __init__(self, fields: Mapping[str, int], first_id: int) -> None:
        self.fields = dict(fields)
        self.offsets: list[int] = []
        start = first_id
        for size in self.fields.values():
            self.offsets.append(start)
            start += size + 1
        self.null_ids = [offset + size for offset, size in zip(self.offsets, self.fields.values())]
        #: Vocabulary ids they take: ``sum(n_f + 1)``.
        self.num_tokens = start - first_id

    def __len__(self) -> int:
        return len(self.fields)

    def describe(self) -> str:
        """``"family (16 values), pitch (22 values)"``."""
        return ", ".join(f"{name} ({size} values)" for name, size in self.fields.items())

    def indices(self, conditions: Conditions, batch_size: int, device: torch.device) -> torch.Tensor | None:
        """``conditions`` -> value indices LongTensor ``[batch_size, F]`` (``-1``: null) on ``device``, or None
        when no field is given (every field null).

        A dict names fields (each value: see :func:`value_tensor`, ``-1`` allowed; a missing field or None is
        that field's null); a tensor ``[batch_size or 1, F]`` holds indices in prefix order already.
        """
        if conditions is None:
            return None
        if isinstance(conditions, torch.Tensor):
            return self._checked_matrix(conditions, batch_size, device)
        if not isinstance(conditions, Mapping):
            raise ConfigError(
                f"conditions must be a dict {{field: values}} or a LongTensor [B, {len(self)}], "
                f"got {type(conditions).__name__}"
            )
        unknown = [name for name in conditions if name not in self.fields]
        if unknown:
            raise ConfigError(
                f"unknown condition field {unknown[0]!r}: this prior's fields are {', '.join(self.fields)}"
            )
        if all(conditions.get(name) is None for name in self.fields):
            return None
        columns = [
            torch.full((batch_size,), -1, dtype=torch.long, device=device)
            if conditions.get(name) is None
            else value_tensor(f"condition {name!r}", conditions[name], size, batch_size, device, lowest=-1)
            for name, size in self.fields.items()
        ]
        return torch.stack(columns, dim=1)

    def _checked_matrix(self, matrix: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
        fields = len(self)
        if matrix.dim() != 2 or matrix.shape[0] not in (1, batch_size) or matrix.shape[1] != fields:
            raise ShapeError(
                f"conditions as a tensor must have shape [{batch_size}, {fields}] or [1, {fields}] "
                f"(fields {', '.join(self.fields)}), got {list(matrix.shape)}"
            )
        columns = [
            value_tensor(f"condition {name!r}", matrix[:, f], size, batch_size, device, lowest=-1)
            for f, (name, size) in enumerate(self.fields.items())
        ]
        return torch.stack(columns, dim=1)

    def tokens(self, indices: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor:
        """Value indices ``[B, F]`` (``-1``: null; None: all null) -> token ids LongTensor ``[B, F]``."""
        null = torch.tensor(self.null_ids, dtype=torch.long, device=device).expand(batch_size, -1)
        if indices is None:
            return null.clone()
        offsets = torch.tensor(self.offsets, dtype=torch.long, device=device)
        return torch.where(indices >= 0, indices + offsets, null)

    def null_tokens(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """Every field's null: LongTensor ``[batch_size, F]``."""
        return self.tokens(None, batch_size, device)
