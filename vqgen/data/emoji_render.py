"""Drawing one emoji with Noto Color Emoji, composited on white.

Noto Color Emoji is a CBDT bitmap font whose only strike Pillow renders is 109 px (136 x 128 glyph cells).
:func:`render_emoji` draws a glyph on a transparent canvas, centres it on a white square, composites it
(before any resampling, so no dark fringes) and resizes with Lanczos. Emoji the font cannot render (blank
glyph, several glyphs where one was expected, or Pillow raising) raise :class:`EmojiRenderError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqgen.data.emoji_unicode import _INSTALL_HINT
from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line

__all__ = [
    "EMOJI_FITS",
    "EMOJI_FONT_PATHS",
    "EmojiRenderError",
    "NOTO_EMOJI_SIZE",
    "load_emoji_font",
    "render_emoji",
    "square_on_white",
]

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


class EmojiRenderError(DataError):
    """The font cannot draw this emoji (no glyph, several glyphs, or Pillow failed): the build skips it."""


def _first_existing(candidates: Sequence[str]) -> Path | None:
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


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


def check_resolution(resolution: int) -> int:
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

    resolution = check_resolution(resolution)
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

    resolution = check_resolution(resolution)
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
