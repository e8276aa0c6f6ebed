"""Unicode's ``emoji-test.txt`` for the emoji demo data: the groups, the parsed entries and the split.

:func:`parse_emoji_test` reads every fully-qualified emoji except the "Component" group (the bare skin-tone
and hair swatches). The split is by base emoji: an emoji's skin-tone and hair-style variants share one
:func:`base_key`, and :func:`split_of` puts about 10% of the keys in ``test`` by a SHA-256 hash of the key, so
every variant of one emoji lands in the same split on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line

__all__ = [
    "EMOJI_GROUPS",
    "EMOJI_GROUP_NAMES",
    "EMOJI_TEST_FRACTION",
    "EmojiEntry",
    "base_key",
    "group_slug",
    "parse_emoji_test",
    "split_of",
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
#: Fraction of base emoji (not of images) held out for ``test``.
EMOJI_TEST_FRACTION = 0.1

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
_INSTALL_HINT = "apt-get install fonts-noto-color-emoji unicode-data"


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


def emoji_test_header(path: Path) -> dict:
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
