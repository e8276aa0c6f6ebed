"""Rendered letters (out-of-distribution data): MNIST-like, seeded, and a clear error without the fonts."""

from __future__ import annotations

import numpy as np
import pytest

from vqgen.data import glyphs
from vqgen.errors import DataError


def _have_fonts() -> bool:
    try:
        return bool(glyphs.find_fonts())
    except DataError:
        return False


@pytest.mark.skipif(not _have_fonts(), reason="Debian's fonts-dejavu-core is not installed")
def test_letters_look_like_mnist_digits_and_are_seeded():
    images, letters = glyphs.render_letters(12, seed=3)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8 and letters.shape == (12,)
    assert (images.max(axis=(1, 2)) > 200).all()  # white strokes
    assert (images[:, :2].max() < 50) and (images.mean(axis=(1, 2)) < 100).all()  # on a black field
    again, _ = glyphs.render_letters(12, seed=3)
    other, _ = glyphs.render_letters(12, seed=4)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)


def test_missing_fonts_name_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(glyphs, "FONT_DIRS", (tmp_path,))
    with pytest.raises(DataError, match="apt-get install fonts-dejavu-core"):
        glyphs.render_letters(1)
