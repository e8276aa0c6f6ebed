"""Emoji demo data: Noto Color Emoji glyphs composited on white, built once on disk.

``build_emoji(output)`` renders every fully-qualified emoji of Unicode's ``emoji-test.txt`` (Debian
``unicode-data``) with the Noto Color Emoji font (Debian ``fonts-noto-color-emoji``, Apache-2.0 art) and
writes ``output/{train,test}/<group>/<codepoints>.png`` (RGB, ``resolution`` square, e.g.
``train/smileys-emotion/1f600.png``), which :class:`~vqgen.data.images.ImageFolderDataset` reads with labels
0..8 (the group folders, sorted: :data:`EMOJI_GROUPS`), plus ``metadata.csv`` (one row per image: name,
group, subgroup, code points, split, base key) and ``manifest.json``. ``demo:emoji`` names the build at
:func:`emoji_root`.

The split is by base emoji: an emoji's skin-tone and hair-style variants share one :func:`base_key`, and
:func:`split_of` puts about 10% of the keys in ``test`` by a SHA-256 hash of the key, so every variant of
one emoji lands in the same split on every machine and Python version. The Unicode group "Component" (the
bare skin-tone and hair swatches) is left out.

Noto Color Emoji is a CBDT bitmap font whose only strike Pillow renders is 109 px (136 x 128 glyph cells).
:func:`render_emoji` draws a glyph on a transparent canvas, centres it on a white square, composites it
(before any resampling, so no dark fringes) and resizes with Lanczos. Emoji the font cannot render (blank
glyph, several glyphs where one was expected, or Pillow raising) are skipped and counted in the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vqgen.data.emoji_render import (
    EMOJI_FITS,
    EMOJI_FONT_PATHS,
    NOTO_EMOJI_SIZE,
    EmojiRenderError,
    _first_existing,
    check_resolution,
    load_emoji_font,
    render_emoji,
    square_on_white,
)
from vqgen.data.emoji_unicode import (
    _INSTALL_HINT,
    _SPLIT_SALT,
    EMOJI_GROUP_NAMES,
    EMOJI_GROUPS,
    EMOJI_TEST_FRACTION,
    EmojiEntry,
    base_key,
    emoji_test_header,
    group_slug,
    parse_emoji_test,
    split_of,
)
from vqgen.data.folders import demo_data_root
from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line, atomic_path

__all__ = [
    "EMOJI_FITS",
    "EMOJI_FONT_PATHS",
    "EMOJI_GROUPS",
    "EMOJI_GROUP_NAMES",
    "EMOJI_SPLITS",
    "EMOJI_TEST_FRACTION",
    "EMOJI_TEST_PATHS",
    "EmojiEntry",
    "EmojiRenderError",
    "NOTO_EMOJI_SIZE",
    "base_key",
    "build_emoji",
    "emoji_root",
    "emoji_split_root",
    "find_emoji_sources",
    "group_slug",
    "load_emoji_dataset",
    "load_emoji_font",
    "parse_emoji_test",
    "render_emoji",
    "split_of",
    "square_on_white",
]

EMOJI_SPLITS: tuple[str, ...] = ("train", "test")

EMOJI_TEST_PATHS: tuple[str, ...] = (
    "/usr/share/unicode/emoji/emoji-test.txt",
    "/usr/share/unicode-data/emoji/emoji-test.txt",
)

_NAME = "emoji"
_BUILD_HINT = "run `vqgen data build emoji`"
_METADATA_FIELDS = (
    "file",
    "split",
    "label",
    "group",
    "subgroup",
    "name",
    "codepoints",
    "emoji",
    "base_key",
    "emoji_version",
)


# ---------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------


def emoji_root(must_exist: bool = True) -> Path:
    """The folder ``demo:emoji`` names: ``$VQGEN_DATA/emoji`` if ``VQGEN_DATA`` is set, else
    ``$XDG_CACHE_HOME/vqgen/emoji`` (``~/.cache/vqgen/emoji``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` saying how to build it.
    """
    return demo_data_root(_NAME, _BUILD_HINT, must_exist)


def emoji_split_root(split: str = "train", root: str | os.PathLike | None = None) -> Path:
    """The folder of one split of an emoji build (``root`` defaults to :func:`emoji_root`, which must have
    been built): what ``demo:emoji`` resolves to for ``split``. Its class subfolders are the groups."""
    if split not in EMOJI_SPLITS:
        raise ConfigError(f"split {split!r} not in {EMOJI_SPLITS}")
    base = emoji_root() if root is None else Path(root)
    if not (base / "manifest.json").is_file():
        raise DataError(f"'{base}' is not an emoji build (no manifest.json): {_BUILD_HINT}")
    return base / split


def load_emoji_dataset(
    split: str = "train",
    resolution: int | Sequence[int] | None = None,
    root: str | os.PathLike | None = None,
    strict: bool = False,
):
    """``demo:emoji`` as an :class:`~vqgen.data.images.ImageFolderDataset`: 3 channels, labels 0..8 in
    :data:`EMOJI_GROUPS` order, at the build's resolution unless ``resolution`` is given."""
    from vqgen.data.images import ImageFolderDataset

    folder = emoji_split_root(split, root)
    if resolution is None:
        try:
            resolution = int(json.loads((folder.parent / "manifest.json").read_text())["resolution"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"cannot read '{folder.parent / 'manifest.json'}': {_one_line(error)}") from None
    dataset = ImageFolderDataset(folder, resolution=resolution, channels=3, strict=strict)
    if dataset.label_names is not None and tuple(dataset.label_names) != EMOJI_GROUPS:
        raise DataError(
            f"emoji split '{folder}' has class folders {list(dataset.label_names)}, expected {list(EMOJI_GROUPS)}"
        )
    return dataset


# ---------------------------------------------------------------------------------------------------------
# The font and emoji-test.txt
# ---------------------------------------------------------------------------------------------------------


def find_emoji_sources(
    font_path: str | os.PathLike | None = None, emoji_test_path: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """The Noto Color Emoji font and ``emoji-test.txt``: the given paths, else the first of
    :data:`EMOJI_FONT_PATHS` / :data:`EMOJI_TEST_PATHS` that exists. One-line :class:`DataError` with the
    install command when either is missing."""
    if font_path is not None:
        font = Path(font_path).expanduser()
        if not font.is_file():
            raise DataError(f"emoji font '{font}' does not exist: {_INSTALL_HINT}")
    else:
        font = _first_existing(EMOJI_FONT_PATHS)
        if font is None:
            raise DataError(f"Noto Color Emoji not found ({', '.join(EMOJI_FONT_PATHS)}): {_INSTALL_HINT}")
    return font, _emoji_test_file(emoji_test_path)


def _emoji_test_file(emoji_test_path: str | os.PathLike | None) -> Path:
    if emoji_test_path is not None:
        test = Path(emoji_test_path).expanduser()
        if not test.is_file():
            raise DataError(f"emoji test file '{test}' does not exist: {_INSTALL_HINT}")
        return test
    test = _first_existing(EMOJI_TEST_PATHS)
    if test is None:
        raise DataError(f"Unicode emoji-test.txt not found ({', '.join(EMOJI_TEST_PATHS)}): {_INSTALL_HINT}")
    return test


# ---------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------


def _package_version(package: str) -> str | None:
    """The installed Debian package's version (``dpkg-query -W``), or None off Debian or if not installed."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _refuse_existing(root: Path, force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise DataError(f"cannot build emoji data at '{root}': it is a file, not a folder")
    if force or not root.is_dir():
        return
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            found = json.loads(manifest.read_text())
            what = f" ({found['counts']['total']} images at {found['resolution']} px)"
        except (OSError, ValueError, KeyError, TypeError):
            what = ""
        raise DataError(
            f"emoji data already built at '{root}'{what}: pass force=True (--force) to rebuild it"
        )
    if any(root.iterdir()):
        raise DataError(
            f"'{root}' exists and is not an emoji build (no manifest.json): choose another output folder "
            "or pass force=True (--force) to replace it"
        )


def build_emoji(
    output: str | os.PathLike | None = None,
    resolution: int = 64,
    progress: bool = True,
    force: bool = False,
    font_path: str | os.PathLike | None = None,
    emoji_test_path: str | os.PathLike | None = None,
    *,
    fit: str = "canvas",
    test_fraction: float = EMOJI_TEST_FRACTION,
    renderer: Callable[[str, int], np.ndarray] | None = None,
) -> dict:
    """Render the emoji data set into ``output`` (default :func:`emoji_root`).

    Every fully-qualified emoji of ``emoji_test_path`` (3,655 in Unicode 15.0) except the "Component"
    group goes to ``<split>/<group>/<codepoints>.png``: uint8 RGB, ``resolution`` square, made by
    :func:`render_emoji` with ``fit``; the split is :func:`split_of` with ``test_fraction``. Also written:
    ``metadata.csv`` (columns ``file, split, label, group, subgroup, name, codepoints, emoji, base_key,
    emoji_version``; ``label`` indexes :data:`EMOJI_GROUPS`) and ``manifest.json`` (sources with package
    versions and SHA-256, parameters, counts per split and group, skipped emoji).

    ``renderer(text, resolution) -> uint8 [resolution, resolution, 3]`` replaces the font (then no font is
    needed); raising :class:`EmojiRenderError` skips that emoji, any other error stops the build.

    A missing font or emoji-test.txt raises a one-line :class:`DataError` before anything is written; so
    does an existing ``output`` (a complete build, or a non-empty folder) unless ``force``. The build goes to
    a temporary sibling folder renamed into place at the end, so ``output`` is either the previous complete
    build or the new one. If a group lands in only one split the build fails, since the splits' class ids
    would then differ.

    Returns the manifest (also written to ``output/manifest.json``).
    """
    resolution = _check_build_options(resolution, fit, test_fraction)
    root = Path(output).expanduser() if output is not None else emoji_root(must_exist=False)

    # Everything that can be refused is refused here, before anything is written.
    renderer, font_file, test_file = _renderer_and_sources(renderer, font_path, emoji_test_path, fit)
    entries = _parse_known_groups(test_file)
    _refuse_existing(root, force)

    splits = [split_of(e, test_fraction) for e in entries]
    start = time.perf_counter()
    with atomic_path(root) as temporary:
        temporary.mkdir()
        rows, skipped = _render_entries(temporary, entries, splits, renderer, resolution, progress, start)
        counts = _counts(rows)
        counts["skipped"] = len(skipped)
        _check_groups_in_both_splits(rows)
        _write_metadata(temporary / "metadata.csv", rows)
        manifest = _manifest(resolution, fit, test_fraction, font_file, test_file, counts, skipped, start)
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    if progress:
        print(
            f"emoji: wrote {counts['train']['images']} train and {counts['test']['images']} test images "
            f"({len(skipped)} skipped) to {root} in {manifest['build_seconds']:.0f} s",
            file=sys.stderr,
        )
    return manifest


def _check_build_options(resolution: int, fit: str, test_fraction: float) -> int:
    """The checked ``resolution`` (a one-line ``ConfigError`` for a bad resolution, fit or test fraction)."""
    resolution = check_resolution(resolution)
    if fit not in EMOJI_FITS:
        raise ConfigError(f"fit={fit!r} is not supported, expected one of {EMOJI_FITS}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    return resolution


def _renderer_and_sources(
    renderer: Callable[[str, int], np.ndarray] | None,
    font_path: str | os.PathLike | None,
    emoji_test_path: str | os.PathLike | None,
    fit: str,
) -> tuple[Callable[[str, int], np.ndarray], Path | None, Path]:
    """``(renderer, font file, emoji-test.txt)``: the font renderer (:func:`render_emoji` with the found font)
    unless a ``renderer`` is given, in which case no font is needed and the font file is None."""
    if renderer is not None:
        return renderer, None, _emoji_test_file(emoji_test_path)
    font_file, test_file = find_emoji_sources(font_path, emoji_test_path)
    font = load_emoji_font(font_file)

    def render_with_font(text: str, size: int) -> np.ndarray:
        return render_emoji(text, font, size, fit=fit)

    return render_with_font, font_file, test_file


def _parse_known_groups(test_file: Path) -> list[EmojiEntry]:
    """The entries of ``test_file``, refused when it has a group beyond :data:`EMOJI_GROUP_NAMES`."""
    entries = parse_emoji_test(test_file)
    unknown = sorted({e.group for e in entries if e.group_slug not in EMOJI_GROUP_NAMES})
    if unknown:
        raise DataError(
            f"emoji test file '{test_file}' has group(s) {unknown} beyond the known {list(EMOJI_GROUP_NAMES.values())}"
        )
    return entries


def _render_entries(
    folder: Path,
    entries: list[EmojiEntry],
    splits: list[str],
    renderer: Callable[[str, int], np.ndarray],
    resolution: int,
    progress: bool,
    start: float,
) -> tuple[list[dict], list[dict]]:
    """Render every entry into ``folder/<split>/<group>/<codepoints>.png``: ``(metadata rows, skipped)``."""
    from PIL import Image

    rows: list[dict] = []
    skipped: list[dict] = []
    for number, (entry, split) in enumerate(zip(entries, splits), start=1):
        try:
            pixels = _render_checked(renderer, entry, resolution)
        except EmojiRenderError as error:
            skipped.append({"codepoints": entry.codepoints_hex, "name": entry.name, "reason": str(error)})
            continue
        relative = f"{split}/{entry.group_slug}/{entry.stem}.png"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / relative, format="PNG")
        rows.append(_metadata_row(entry, split, relative))
        if progress and (number % 500 == 0 or number == len(entries)):
            print(
                f"emoji: {number}/{len(entries)} rendered ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return rows, skipped


def _render_checked(
    renderer: Callable[[str, int], np.ndarray], entry: EmojiEntry, resolution: int
) -> np.ndarray:
    """``renderer``'s image of ``entry``, refused unless uint8 ``[resolution, resolution, 3]``."""
    pixels = np.asarray(renderer(entry.text, resolution))
    if pixels.dtype != np.uint8 or pixels.shape != (resolution, resolution, 3):
        raise DataError(
            f"the emoji renderer returned {pixels.dtype} {list(pixels.shape)} for '{entry.name}', "
            f"expected uint8 [{resolution}, {resolution}, 3]"
        )
    return pixels


def _metadata_row(entry: EmojiEntry, split: str, relative: str) -> dict:
    """One row of ``metadata.csv`` (:data:`_METADATA_FIELDS`)."""
    return {
        "file": relative,
        "split": split,
        "label": EMOJI_GROUPS.index(entry.group_slug),
        "group": entry.group_slug,
        "subgroup": entry.subgroup,
        "name": entry.name,
        "codepoints": entry.codepoints_hex,
        "emoji": entry.text,
        "base_key": base_key(entry),
        "emoji_version": entry.version or "",
    }


def _check_groups_in_both_splits(rows: list[dict]) -> None:
    """Refuse a build where a group has images in only one split (the splits' class ids would differ)."""
    present = {split: {r["group"] for r in rows if r["split"] == split} for split in EMOJI_SPLITS}
    lonely = sorted(present["train"] ^ present["test"])
    if lonely:
        raise DataError(
            f"emoji group(s) {lonely} have images in only one split, so the splits' class ids would differ: "
            "use another test_fraction"
        )


def _write_metadata(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_METADATA_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _manifest(
    resolution: int,
    fit: str,
    test_fraction: float,
    font_file: Path | None,
    test_file: Path,
    counts: dict,
    skipped: list[dict],
    start: float,
) -> dict:
    """The build's ``manifest.json`` (``build_seconds`` counted from ``start``)."""
    return {
        "name": _NAME,
        "format": "PNG, 8-bit RGB on white",
        "layout": "<split>/<group>/<codepoints>.png; labels 0-8 from the sorted group folders; metadata.csv",
        "resolution": resolution,
        "groups": {slug: EMOJI_GROUP_NAMES[slug] for slug in EMOJI_GROUPS},
        "parameters": {
            "fit": fit,
            "test_fraction": test_fraction,
            "split": f"sha256('{_SPLIT_SALT}/' + base_key)[:8] / 2**64 < test_fraction",
            "font_size": NOTO_EMOJI_SIZE,
            "resample": "LANCZOS after compositing on white",
            "renderer": "render_emoji" if font_file is not None else "custom",
        },
        "sources": _sources(font_file, test_file),
        "counts": counts,
        "skipped": skipped,
        "build_seconds": round(time.perf_counter() - start, 1),
    }


def _counts(rows: list[dict]) -> dict:
    counts: dict = {"total": len(rows)}
    for split in EMOJI_SPLITS:
        mine = [r for r in rows if r["split"] == split]
        counts[split] = {
            "images": len(mine),
            "base_emoji": len({r["base_key"] for r in mine}),
            "per_group": {g: sum(r["group"] == g for r in mine) for g in EMOJI_GROUPS},
        }
    return counts


def _sources(font_file: Path | None, test_file: Path) -> dict:
    from PIL import Image, features

    header = emoji_test_header(test_file)
    sources = {
        "emoji_test": {
            "path": str(test_file),
            "sha256": _sha256(test_file),
            "unicode_emoji_version": header.get("version"),
            "date": header.get("date"),
            "package": "unicode-data",
            "package_version": _package_version("unicode-data"),
        },
        "font": None,
        "pillow": Image.__version__,
        "raqm": bool(features.check("raqm")),
    }
    if font_file is not None:
        sources["font"] = {
            "path": str(font_file),
            "sha256": _sha256(font_file),
            "package": "fonts-noto-color-emoji",
            "package_version": _package_version("fonts-noto-color-emoji"),
            "license": "Apache-2.0 (Noto Emoji art)",
        }
    return sources
