"""Condition fields of a folder data set read from a ``metadata.csv`` beside its files.

``vqgen encode --condition-fields family,pitch`` wraps the data set in :class:`ConditionedDataset`: every item
gains ``"conditions": {"family": index, "pitch": index}``, read from those columns of the folder's
``metadata.csv`` (one row per file, its path in the ``file`` column, relative to the CSV's folder). The CSV is
looked for in the data folder and then in its parent, where a split folder's build keeps it: the
instrument-notes build (``vqgen data build instrument-notes``) writes ``metadata.csv`` with ``family``,
``pitch``, ``velocity`` and ``program`` columns for ``train/`` and ``test/`` alike.

The value names of a field are the distinct values of its column over ALL rows, so the train and test splits
number them alike: sorted as numbers when every value is an integer (pitch: ``"30"``, ``"33"``, ... ``"93"``),
else as text (family: ``"bass"``, ``"brass"``, ...). An empty cell gives that item no value (-1: the field's
null in training).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line
from vqgen.priors.conditions import check_condition_fields

__all__ = ["METADATA_NAME", "ConditionedDataset", "parse_condition_fields", "value_names"]

METADATA_NAME = "metadata.csv"


def parse_condition_fields(text: str) -> list[str]:
    """``"family,pitch"`` -> ``["family", "pitch"]``; a one-line ``ConfigError`` for empty or repeated names."""
    names = [name.strip() for name in str(text).split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise ConfigError(f"--condition-fields takes distinct column names separated by commas, got {text!r}")
    check_condition_fields(0, dict.fromkeys(names, 1))  # the names a prior can take
    return names


def value_names(values: Sequence[str]) -> tuple[str, ...]:
    """The distinct non-empty ``values``, sorted as integers when all are (written without leading zeros), else
    as text."""
    distinct = {value.strip() for value in values if value.strip()}
    try:
        return tuple(str(number) for number in sorted({int(value) for value in distinct}))
    except ValueError:
        return tuple(sorted(distinct))


def _canonical(value: str, numeric: bool) -> str:
    return str(int(value)) if numeric and value.strip() else value.strip()


def _find_metadata(root: Path) -> Path:
    for folder in (root, root.parent):
        if (folder / METADATA_NAME).is_file():
            return folder / METADATA_NAME
    raise DataError(
        f"condition fields are read from a {METADATA_NAME} in the data folder or its parent; there is none in "
        f"'{root}' or '{root.parent}'"
    )


def _read_rows(path: Path, fields: Sequence[str]) -> list[dict]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = list(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read '{path}': {_one_line(error)}") from None
    if "file" not in columns:
        raise DataError(f"'{path}' has no 'file' column (its columns: {', '.join(columns) or 'none'})")
    for field in fields:
        if field not in columns:
            raise DataError(
                f"'{path}' has no column {field!r} for --condition-fields; its columns: {', '.join(columns)}"
            )
    return rows


class ConditionedDataset(Dataset):
    """``dataset`` (a folder data set: ``files`` and ``root``) whose items gain ``"conditions": {field: index}``
    from the ``fields`` columns of its ``metadata.csv`` (-1 where a cell is empty). Everything else is
    ``dataset``'s own (attributes pass through).

    Attributes:
        condition_names: ``{field: value names}``, what the code shards and the pipeline keep.
        metadata: the CSV read.
    """

    def __init__(self, dataset, fields: Sequence[str]) -> None:
        files, root = getattr(dataset, "files", None), getattr(dataset, "root", None)
        if files is None or root is None:
            raise ConfigError(
                f"condition fields are read from the {METADATA_NAME} of a data folder; "
                f"a {type(dataset).__name__} has none"
            )
        self.dataset = dataset
        self.metadata = _find_metadata(Path(root))
        rows = _read_rows(self.metadata, fields)
        self.condition_names: dict[str, tuple[str, ...]] = {}
        by_file = {row["file"].strip().replace("\\", "/"): row for row in rows}
        base = self.metadata.parent
        keys = [Path(os.path.relpath(path, base)).as_posix() for path in files]
        missing = [key for key in keys if key not in by_file]
        if missing:
            raise DataError(
                f"'{self.metadata}' has no row for '{missing[0]}' ({len(missing)} of {len(keys)} files have none): "
                "condition fields need one row per file"
            )
        self._indices: list[dict[str, int]] = [{} for _ in keys]
        for field in fields:
            names = value_names([row[field] or "" for row in rows])
            numeric = all(name.lstrip("-").isdigit() for name in names)
            index = {name: i for i, name in enumerate(names)}
            self.condition_names[field] = names
            for item, key in zip(self._indices, keys):
                item[field] = index.get(_canonical(by_file[key][field] or "", numeric), -1)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]  # IndexError past the end; negative indices normalised
        return {**self.dataset[index], "conditions": dict(self._indices[index])}

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet: no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.dataset, name)
