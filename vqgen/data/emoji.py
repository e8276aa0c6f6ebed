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
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

#: Folder name (class) -> Unicode group name, for the nine groups besides "Component".
EMOJI_GROUP_NAMES: dict[str, str] = {
    "activities": "Activities",
    "animals-nature": "Animals & Nature",
    "flags": "Flags",
    "food-drink": "Food & Drink",
    "objects": "Objects",
    "people-body": "People & Body",
    "smileys-emotion": "Smileys & Emotion",
    "symbols": "Symbols",
    "travel-places": "Travel & Places",
}
#: The class folders in label order: sorted by name, as :class:`~vqgen.data.images.ImageFolderDataset`
#: numbers class subfolders, so label ``i`` is ``EMOJI_GROUPS[i]`` in both splits.
EMOJI_GROUPS: tuple[str, ...] = tuple(sorted(EMOJI_GROUP_NAMES))
EMOJI_SPLITS: tuple[str, ...] = ("train", "test")
#: Fraction of base emoji (not of images) held out for ``test``.
EMOJI_TEST_FRACTION = 0.1
#: The only pixel size at which Pillow renders Noto Color Emoji (its CBDT bitmap strike).
NOTO_EMOJI_SIZE = 109
#: How :func:`render_emoji` frames a glyph: ``"canvas"`` keeps the font's glyph cell (every emoji at the
#: font's own scale and placement), ``"bbox"`` crops to the glyph's ink so that each emoji fills the square.
EMOJI_FITS: tuple[str, ...] = ("canvas", "bbox")

#: Where Linux distributions install Noto Color Emoji (Debian/Ubuntu, Fedora, Arch) and emoji-test.txt.
EMOJI_FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-color-emoji/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
)
EMOJI_TEST_PATHS: tuple[str, ...] = (
    "/usr/share/unicode/emoji/emoji-test.txt",
    "/usr/share/unicode-data/emoji/emoji-test.txt",
)

_SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))  # U+1F3FB..U+1F3FF, the Fitzpatrick modifiers
_HAIR_STYLES = frozenset(range(0x1F9B0, 0x1F9B4))  # red, curly, white hair, bald (Emoji_Component)
#: The name qualifiers of those components (``"man: medium skin tone, red hair"`` -> ``"man"``).
_VARIANT_QUALIFIERS = frozenset(
    {
        "light skin tone",
        "medium-light skin tone",
        "medium skin tone",
        "medium-dark skin tone",
        "dark skin tone",
        "red hair",
        "curly hair",
        "white hair",
        "bald",
    }
)
#: Mixed-tone couples are named after their two people, their plain and uniform-tone forms without them.
_BASE_ALIASES = {"kiss: person, person": "kiss", "couple with heart: person, person": "couple with heart"}
_SPLIT_SALT = "vqgen-emoji-split-v1"
_LINE = re.compile(
    r"^(?P<codes>[0-9A-Fa-f]{1,6}(?:\s+[0-9A-Fa-f]{1,6})*)\s*;\s*(?P<status>[a-z-]+)\s*"
    r"#\s*(?P<emoji>\S+)\s+(?:E(?P<version>\d+\.\d+)\s+)?(?P<name>\S.*?)\s*$"
)
_STATUSES = frozenset({"component", "fully-qualified", "minimally-qualified", "unqualified"})
_ENV_VAR = "VQGEN_DATA"
_NAME = "emoji"
_BUILD_HINT = "run `vqgen data build emoji`"
_INSTALL_HINT = "apt-get install fonts-noto-color-emoji unicode-data"
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


class EmojiRenderError(DataError):
    """The font cannot draw this emoji (no glyph, several glyphs, or Pillow failed): the build skips it."""


# ---------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------


def emoji_root(must_exist: bool = True) -> Path:
    """The folder ``demo:emoji`` names: ``$VQGEN_DATA/emoji`` if ``VQGEN_DATA`` is set, else
    ``$XDG_CACHE_HOME/vqgen/emoji`` (``~/.cache/vqgen/emoji``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` saying how to build it.
    """
    if os.environ.get(_ENV_VAR):
        root = Path(os.environ[_ENV_VAR]).expanduser() / _NAME
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
        root = cache / "vqgen" / _NAME
    if must_exist and not (root / "manifest.json").is_file():
        raise DataError(f"demo:emoji has not been built at '{root}': {_BUILD_HINT}")
    return root


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
# emoji-test.txt
# ---------------------------------------------------------------------------------------------------------


def group_slug(group: str) -> str:
    """A Unicode group name as a folder name: ``"Smileys & Emotion"`` -> ``"smileys-emotion"`` (lower case,
    ``&`` dropped, runs of anything but letters and digits become one ``-``)."""
    return re.sub(r"[^a-z0-9]+", "-", group.lower().replace("&", " ")).strip("-")


@dataclass(frozen=True)
class EmojiEntry:
    """One fully-qualified emoji of ``emoji-test.txt``."""

    codepoints: tuple[int, ...]
    name: str
    group: str
    subgroup: str
    version: str | None = None  # the Emoji version that introduced it, "0.6", "15.0", or None if not given

    @property
    def text(self) -> str:
        """The emoji itself, as a string."""
        return "".join(map(chr, self.codepoints))

    @property
    def codepoints_hex(self) -> str:
        """``"1F468 200D 1F9B0"``, as written in emoji-test.txt."""
        return " ".join(f"{c:04X}" for c in self.codepoints)

    @property
    def stem(self) -> str:
        """The file name without suffix: lower-case hex code points joined by ``-`` (``"1f468-200d-1f9b0"``)."""
        return "-".join(f"{c:04x}" for c in self.codepoints)

    @property
    def group_slug(self) -> str:
        return group_slug(self.group)


def parse_emoji_test(path: str | os.PathLike) -> list[EmojiEntry]:
    """Every ``fully-qualified`` emoji of Unicode's ``emoji-test.txt``, in file order, without the
    "Component" group.

    Raises a one-line :class:`DataError` naming the file (and line) when it is missing, unreadable, has a
    line that is neither a comment nor ``code points ; status # emoji [E<version>] name``, an emoji before
    any ``# group:`` / ``# subgroup:`` header, or no fully-qualified emoji at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"emoji test file '{path}' does not exist: {_INSTALL_HINT}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read emoji test file '{path}': {_one_line(error)}") from None
    entries: list[EmojiEntry] = []
    group = subgroup = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            header = re.match(r"#\s*(group|subgroup):\s*(.+?)\s*$", line)
            if header:
                if header[1] == "group":
                    group, subgroup = header[2], None
                else:
                    subgroup = header[2]
            continue
        match = _LINE.match(line)
        if match is None or match["status"] not in _STATUSES:
            raise DataError(
                f"emoji test file '{path}' line {number} is malformed: {line[:80]!r} "
                "(expected 'code points ; status # emoji E<version> name')"
            )
        codepoints = tuple(int(code, 16) for code in match["codes"].split())
        if any(code > 0x10FFFF for code in codepoints):
            raise DataError(f"emoji test file '{path}' line {number} has a code point beyond U+10FFFF")
        if group is None or subgroup is None:
            raise DataError(
                f"emoji test file '{path}' line {number} comes before any '# group:' and '# subgroup:'"
            )
        if match["status"] != "fully-qualified" or group == "Component":
            continue
        entries.append(EmojiEntry(codepoints, match["name"], group, subgroup, match["version"]))
    if not entries:
        raise DataError(f"emoji test file '{path}' lists no fully-qualified emoji (is it emoji-test.txt?)")
    return entries


def _emoji_test_header(path: Path) -> dict:
    """``{"version": "15.0", "date": "2022-08-12, 20:24:39 GMT"}`` from the file's header comments."""
    found = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for _, line in zip(range(40), handle):
            match = re.match(r"#\s*(Version|Date):\s*(.+?)\s*$", line)
            if match:
                found[match[1].lower()] = match[2]
    return found


# ---------------------------------------------------------------------------------------------------------
# The split
# ---------------------------------------------------------------------------------------------------------


def base_key(entry: EmojiEntry) -> str:
    """The emoji an entry is a variant of: its name without skin-tone and hair-style qualifiers.

    ``"thumbs up: medium skin tone"`` -> ``"thumbs up"``, ``"man: dark skin tone, red hair"`` -> ``"man"``,
    ``"kiss: woman, man, light skin tone, dark skin tone"`` -> ``"kiss: woman, man"``,
    ``"handshake: light skin tone, dark skin tone"`` -> ``"handshake"``. Names rather than code points, because
    mixed-tone sequences are built from other code points than their base (the toned handshake is
    ``1FAF1 1F3FB 200D 1FAF2 1F3FF``, the plain one ``1F91D``); ``"kiss: person, person, <tone>, <tone>"``
    -> ``"kiss"`` (the name of ``1F48F`` and its uniform-tone forms), likewise ``"couple with heart"``. Qualifiers that are not skin tones or the four
    hair components (``"woman: blond hair"``, ``"man: beard"``, gender) keep their own key. An entry whose
    code points hold a modifier but whose name has no such qualifier falls back to its code points without
    modifiers, hair components and U+FE0F.
    """
    name, colon, qualifiers = entry.name.partition(": ")
    kept = [q for q in qualifiers.split(", ") if q and q not in _VARIANT_QUALIFIERS]
    key = f"{name}: {', '.join(kept)}" if colon and kept else name
    has_modifier = any(c in _SKIN_TONES or c in _HAIR_STYLES for c in entry.codepoints)
    if has_modifier and key == entry.name:
        codes: list[int] = []
        for code in entry.codepoints:
            if code in _HAIR_STYLES and codes and codes[-1] == 0x200D:
                codes.pop()  # the ZWJ that joined the hair component
            if code not in _SKIN_TONES and code not in _HAIR_STYLES and code != 0xFE0F:
                codes.append(code)
        key = "-".join(f"{c:04x}" for c in codes)
    key = key.lower()
    return _BASE_ALIASES.get(key, key)


def split_of(entry: EmojiEntry, test_fraction: float = EMOJI_TEST_FRACTION) -> str:
    """``"test"`` for about ``test_fraction`` of base emoji, else ``"train"``: the first 8 bytes of
    SHA-256 of the :func:`base_key` as a fraction of 2**64, so all variants of one emoji share a split
    and the split is the same everywhere."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ConfigError(f"test_fraction must be within [0, 1], got {test_fraction}")
    digest = hashlib.sha256(f"{_SPLIT_SALT}/{base_key(entry)}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


# ---------------------------------------------------------------------------------------------------------
# Font and rendering
# ---------------------------------------------------------------------------------------------------------


def _first_existing(candidates: Sequence[str]) -> Path | None:
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


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


def load_emoji_font(path: str | os.PathLike | None = None):
    """Noto Color Emoji as a Pillow ``FreeTypeFont`` at its bitmap size (109 px); ``path`` defaults to the
    first of :data:`EMOJI_FONT_PATHS`. One-line :class:`DataError` when missing or unreadable."""
    from PIL import ImageFont

    if path is None:
        path = _first_existing(EMOJI_FONT_PATHS)
        if path is None:
            raise DataError(f"Noto Color Emoji not found ({', '.join(EMOJI_FONT_PATHS)}): {_INSTALL_HINT}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"emoji font '{path}' does not exist: {_INSTALL_HINT}")
    try:
        return ImageFont.truetype(str(path), NOTO_EMOJI_SIZE)
    except Exception as error:  # noqa: BLE001 - FreeType reports bad files and sizes as OSError or ValueError
        raise DataError(
            f"cannot open emoji font '{path}' at {NOTO_EMOJI_SIZE} px: {_one_line(error)}"
        ) from None


def _check_resolution(resolution: int) -> int:
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not 8 <= resolution <= 1024
    ):
        raise ConfigError(f"resolution must be an integer from 8 to 1024 pixels, got {resolution!r}")
    return int(resolution)


def square_on_white(glyph, resolution: int, fit: str = "canvas") -> np.ndarray:
    """Frame an RGBA Pillow image (straight alpha) as uint8 RGB ``[resolution, resolution, 3]`` on white.

    ``fit="canvas"`` keeps the whole image, ``"bbox"`` first crops it to its non-transparent pixels. The
    result is centred on a white square whose side is the longer side (the extra pixel of an odd
    difference goes right / down), alpha-composited over white at full size and only then resized with
    Lanczos: resampling after compositing equals resampling premultiplied colour, so the colour of
    transparent pixels (black in a fresh RGBA canvas) never bleeds into the edges. Raises
    :class:`EmojiRenderError` when the image is fully transparent.
    """
    from PIL import Image

    resolution = _check_resolution(resolution)
    if fit not in EMOJI_FITS:
        raise ConfigError(f"fit={fit!r} is not supported, expected one of {EMOJI_FITS}")
    glyph = glyph.convert("RGBA")
    ink = glyph.getchannel("A").getbbox()
    if ink is None:
        raise EmojiRenderError("the glyph is a blank (fully transparent) image")
    if fit == "bbox":
        glyph = glyph.crop(ink)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    image = square.convert("RGB")
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def render_emoji(text: str, font, resolution: int = 64, fit: str = "canvas") -> np.ndarray:
    """Draw one emoji: uint8 RGB ``[resolution, resolution, 3]`` on white.

    ``font`` is a Pillow font from :func:`load_emoji_font` (or a font file path, opened at 109 px). The
    glyph is drawn in its own colours (a monochrome font draws black) on a transparent canvas the size of
    its layout box, then framed by :func:`square_on_white`: ``fit="canvas"`` keeps the layout box (136 x 128
    for Noto, so every emoji keeps the font's scale and placement), ``"bbox"`` crops to the drawn pixels so
    each emoji fills the square. Resolutions above 136 px upsample the bitmap.

    Raises :class:`EmojiRenderError` when the font draws nothing (it has no glyph for ``text``), when the
    text lays out wider than 1.5 glyphs (a sequence the font or Pillow's layout engine cannot join: without
    libraqm, ZWJ, keycap and flag sequences fall apart into several glyphs), or when Pillow fails.
    """
    from PIL import Image, ImageDraw

    resolution = _check_resolution(resolution)
    if fit not in EMOJI_FITS:
        raise ConfigError(f"fit={fit!r} is not supported, expected one of {EMOJI_FITS}")
    if isinstance(font, (str, os.PathLike)):
        font = load_emoji_font(font)
    try:
        left, top, right, bottom = font.getbbox(text)
        width, height = right - left, bottom - top
        if width <= 0 or height <= 0:
            raise EmojiRenderError(f"the font has no glyph for {text!r}")
        if width > 1.5 * height:
            raise EmojiRenderError(f"{text!r} lays out as {width / height:.1f} glyphs wide, not one")
        glyph = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((-left, -top), text, font=font, fill=(0, 0, 0, 255), embedded_color=True)
        if glyph.getchannel("A").getbbox() is None:
            raise EmojiRenderError(f"the font draws {text!r} as a blank image")
        return square_on_white(glyph, resolution, fit)
    except EmojiRenderError:
        raise
    except Exception as error:  # noqa: BLE001 - any Pillow / FreeType failure means this emoji is skipped
        raise EmojiRenderError(f"Pillow cannot draw {text!r}: {_one_line(error)}") from None


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
    from PIL import Image

    resolution = _check_resolution(resolution)
    if fit not in EMOJI_FITS:
        raise ConfigError(f"fit={fit!r} is not supported, expected one of {EMOJI_FITS}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    root = Path(output).expanduser() if output is not None else emoji_root(must_exist=False)

    # Everything that can be refused is refused here, before anything is written.
    if renderer is None:
        font_file, test_file = find_emoji_sources(font_path, emoji_test_path)
        font = load_emoji_font(font_file)

        def renderer(text: str, size: int) -> np.ndarray:
            return render_emoji(text, font, size, fit=fit)
    else:
        font_file, test_file = None, _emoji_test_file(emoji_test_path)
    entries = parse_emoji_test(test_file)
    unknown = sorted({e.group for e in entries if e.group_slug not in EMOJI_GROUP_NAMES})
    if unknown:
        raise DataError(
            f"emoji test file '{test_file}' has group(s) {unknown} beyond the known {list(EMOJI_GROUP_NAMES.values())}"
        )
    _refuse_existing(root, force)

    splits = [split_of(e, test_fraction) for e in entries]
    start = time.perf_counter()
    rows: list[dict] = []
    skipped: list[dict] = []
    with atomic_path(root) as temporary:
        temporary.mkdir()
        for number, (entry, split) in enumerate(zip(entries, splits), start=1):
            try:
                pixels = renderer(entry.text, resolution)
            except EmojiRenderError as error:
                skipped.append({"codepoints": entry.codepoints_hex, "name": entry.name, "reason": str(error)})
                continue
            pixels = np.asarray(pixels)
            if pixels.dtype != np.uint8 or pixels.shape != (resolution, resolution, 3):
                raise DataError(
                    f"the emoji renderer returned {pixels.dtype} {list(pixels.shape)} for '{entry.name}', "
                    f"expected uint8 [{resolution}, {resolution}, 3]"
                )
            relative = f"{split}/{entry.group_slug}/{entry.stem}.png"
            (temporary / relative).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(temporary / relative, format="PNG")
            rows.append(
                {
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
            )
            if progress and (number % 500 == 0 or number == len(entries)):
                print(
                    f"emoji: {number}/{len(entries)} rendered ({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        counts = _counts(rows)
        counts["skipped"] = len(skipped)
        present = {split: {r["group"] for r in rows if r["split"] == split} for split in EMOJI_SPLITS}
        lonely = sorted(present["train"] ^ present["test"])
        if lonely:
            raise DataError(
                f"emoji group(s) {lonely} have images in only one split, so the splits' class ids would differ: "
                "use another test_fraction"
            )
        with open(temporary / "metadata.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_METADATA_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        manifest = {
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
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    if progress:
        print(
            f"emoji: wrote {counts['train']['images']} train and {counts['test']['images']} test images "
            f"({len(skipped)} skipped) to {root} in {manifest['build_seconds']:.0f} s",
            file=sys.stderr,
        )
    return manifest


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

    header = _emoji_test_header(test_file)
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
