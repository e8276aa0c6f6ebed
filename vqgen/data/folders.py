"""What every media-folder dataset shares: finding files, labels from class subfolders, skipping bad files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line

__all__ = ["DataWarning", "MediaFolder", "find_media_files"]

_NAMES_IN_WARNING = 5


def folder_split_root(
    spec: str, split: str, resolution: object, channels: int | None, demo_names: Sequence[str]
) -> Path:
    """The folder a data spec names, checked: it exists, ``resolution`` and ``channels`` are given, and
    ``root/split`` when the folder holds both ``train`` and ``test`` (otherwise the folder itself)."""
    root = Path(spec)
    if not root.exists():
        raise DataError(f"data folder '{root}' does not exist (demo datasets: {', '.join(demo_names)})")
    if resolution is None:
        raise ConfigError(
            f"folder dataset '{root}' needs a resolution: pass --resolution (e.g. --resolution 64)"
        )
    if channels is None:
        raise ConfigError(f"folder dataset '{root}' needs a channel count: pass --channels 1 or --channels 3")
    if (root / "train").is_dir() and (root / "test").is_dir():
        root = root / split
    return root


def demo_data_root(name: str, build_hint: str, must_exist: bool = True) -> Path:
    """The folder ``demo:NAME`` names: ``$VQGEN_DATA/NAME`` if ``VQGEN_DATA`` is set, else
    ``$XDG_CACHE_HOME/vqgen/NAME`` (``~/.cache/vqgen/NAME``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` ending in ``build_hint`` (how to build it).
    """
    if os.environ.get("VQGEN_DATA"):
        root = Path(os.environ["VQGEN_DATA"]).expanduser() / name
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
        root = cache / "vqgen" / name
    if must_exist and not (root / "manifest.json").is_file():
        raise DataError(f"demo:{name} has not been built at '{root}': {build_hint}")
    return root


class DataWarning(UserWarning):
    """Some data was skipped or adjusted, but the dataset is still usable."""


def find_media_files(root: Path, extensions: Sequence[str]) -> list[Path]:
    """Files under ``root`` ending in ``extensions`` (any case), recursively, sorted by relative path;
    hidden files and folders are skipped."""

    def unreadable(error: OSError) -> None:
        # os.walk silently skips folders it cannot list; a folder the user pointed at must not vanish.
        raise DataError(
            f"cannot read data folder '{error.filename or root}': {error.strerror or _one_line(error)}"
        )

    found = []
    suffixes = tuple(extensions)
    for folder, subfolders, names in os.walk(root, onerror=unreadable):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(
            Path(folder) / name
            for name in names
            if not name.startswith(".") and name.lower().endswith(suffixes)
        )
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


class MediaFolder:
    """The usable media files of a folder, validated up front.

    ``check(path)`` returns a reason string when the file cannot be used, anything else (kept in ``infos``)
    when it can. Unusable files are skipped with one :class:`DataWarning` naming them and their count, or
    refused with a :class:`DataError` when ``strict``. If files sit in two or more first-level subfolders, the
    sorted subfolder names are classes and files directly in ``root`` get label -1; otherwise every label is -1
    and ``label_names`` is None. Classes come from every candidate, so one corrupt file cannot shift the ids.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        extensions: Sequence[str],
        noun: tuple[str, str],
        check: Callable[[Path], Any],
        strict: bool = False,
    ) -> None:
        self.root = Path(root)
        singular, plural = noun
        if not self.root.is_dir():
            why = "is not a directory" if self.root.exists() else "does not exist"
            raise DataError(f"data folder '{self.root}' {why}")
        candidates = find_media_files(self.root, extensions)
        if not candidates:
            raise DataError(
                f"data folder '{self.root}' holds no {singular} files, expected files ending in "
                f"{', '.join(extensions)} (any case)"
            )
        class_folders = sorted(
            {p.relative_to(self.root).parts[0] for p in candidates if p.parent != self.root}
        )
        self.label_names: tuple[str, ...] | None = tuple(class_folders) if len(class_folders) >= 2 else None
        self.num_classes = len(self.label_names) if self.label_names else 0

        self.files: list[Path] = []
        self.infos: list[Any] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in candidates:
            found = check(path)
            if isinstance(found, str):
                self.skipped.append((path, found))
            else:
                self.files.append(path)
                self.infos.append(found)
        self._report_skipped(strict, len(candidates), singular, plural)
        class_index = {name: i for i, name in enumerate(self.label_names or ())}
        self.labels = [
            class_index.get(p.relative_to(self.root).parts[0], -1) if p.parent != self.root else -1
            for p in self.files
        ]

    def _report_skipped(self, strict: bool, total: int, singular: str, plural: str) -> None:
        if not self.skipped:
            return
        first, reason = self.skipped[0]
        count = len(self.skipped)
        if not self.files:
            raise DataError(
                f"no usable {plural} in '{self.root}': all {count} file(s) are unreadable or mismatched; "
                f"first: '{first}' {reason}"
            )
        if strict:
            raise DataError(
                f"{singular} file '{first}' {reason} ({count} of {total} file(s) in '{self.root}' are bad; "
                f"strict=False would skip them)"
            )
        names = ", ".join(
            f"{path.relative_to(self.root).as_posix()} ({why})"
            for path, why in self.skipped[:_NAMES_IN_WARNING]
        )
        more = f" and {count - _NAMES_IN_WARNING} more" if count > _NAMES_IN_WARNING else ""
        warnings.warn(
            f"skipped {count} unreadable or mismatched {singular} file(s) in {self.root}: {names}{more}",
            DataWarning,
            stacklevel=4,
        )
