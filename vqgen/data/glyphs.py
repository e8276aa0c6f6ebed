"""Out-of-distribution images for anomaly tests and benchmarks: letters drawn with the DejaVu fonts.

Rendered like MNIST digits (a white glyph fitted into a 20x20 box, centred in 28x28, on black) with a random
affine jitter, so nothing has to be downloaded. The fonts come from Debian's ``fonts-dejavu-core``.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vqgen.errors import DataError

__all__ = ["FONT_DIRS", "find_fonts", "render_letters"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def find_fonts() -> list[Path]:
    """The DejaVu TrueType fonts on this machine, sorted; a DataError naming the package when there are none."""
    fonts = sorted(p for d in FONT_DIRS if d.is_dir() for p in d.glob("DejaVu*.ttf") if "Math" not in p.name)
    if not fonts:
        raise DataError(
            "no DejaVu fonts found (looked in " + ", ".join(map(str, FONT_DIRS)) + "): "
            "install them with 'apt-get install fonts-dejavu-core'"
        )
    return fonts


def _glyph(letter: str, font: Path, rng: np.random.Generator, size: int) -> np.ndarray:
    face = ImageFont.truetype(str(font), 64)
    canvas = Image.new("L", (96, 96))
    ImageDraw.Draw(canvas).text((48, 48), letter, fill=255, font=face, anchor="mm")
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    box = canvas.getbbox()
    if box is None:
        return np.zeros((size, size), dtype=np.uint8)
    glyph = canvas.crop(box)
    inner = round(size * 20 / 28 * rng.uniform(0.85, 1.0))
    scale = inner / max(glyph.size)
    glyph = glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.Resampling.LANCZOS
    )
    image = Image.new("L", (size, size))
    shift = rng.integers(-2, 3, size=2)
    image.paste(
        glyph, ((size - glyph.width) // 2 + int(shift[0]), (size - glyph.height) // 2 + int(shift[1]))
    )
    return np.asarray(image, dtype=np.uint8)


def render_letters(
    count: int, size: int = 28, seed: int = 0, letters: str = string.ascii_letters
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random letters: uint8 images ``[count, size, size]`` and int64 letter indices ``[count]``."""
    fonts = find_fonts()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(letters), size=count)
    images = np.stack([_glyph(letters[i], fonts[rng.integers(len(fonts))], rng, size) for i in picks])
    return images, picks.astype(np.int64)
