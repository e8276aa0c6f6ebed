"""Tests for vqgen.io (atomic writes) and vqgen.media.image (conversion, grids, image save and load)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vqgen.errors import ConfigError, DataError, ShapeError, VqgenError
from vqgen.io import atomic_path, atomic_write_bytes
from vqgen.media.image import (
    load_image,
    make_grid,
    pil_to_channels,
    save_image,
    save_images,
    to_uint8_images,
)


def _single_line_vqgen(error: pytest.ExceptionInfo) -> None:
    assert isinstance(error.value, VqgenError)
    assert "\n" not in str(error.value)


def test_to_uint8_images_maps_range_and_layout():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0, -3.0, float("nan")]).reshape(1, 1, 2, 3)
    out = to_uint8_images(x)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3, 1)
    assert out.ravel().tolist() == [0, 128, 255, 255, 0, 128]
    rgb = to_uint8_images(np.zeros((2, 3, 4, 5), dtype=np.float32))
    assert rgb.shape == (2, 4, 5, 3)
    with pytest.raises(ShapeError) as error:
        to_uint8_images(torch.zeros(3, 4, 5))
    _single_line_vqgen(error)


def test_make_grid_shape_and_placement():
    images = np.stack([np.full((4, 5, 3), i + 1, dtype=np.uint8) for i in range(5)])
    grid = make_grid(images, padding=2)  # nrow = ceil(sqrt(5)) = 3 -> 2 rows
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (5 + 2) + 2, 3)
    assert grid[2, 2, 0] == 1 and grid[2 + 6, 2 + 7, 0] == 5
    assert grid[0, 0, 0] == 0 and grid[2 + 6, 2 + 14, 0] == 0  # border and the empty sixth slot
    one_row = make_grid(images[..., 0], nrow=5, padding=0)
    assert one_row.shape == (4, 25, 1)
    with pytest.raises(ShapeError):
        make_grid(images.astype(np.float32))


def test_save_and_load_roundtrip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    path = save_image(rgb, tmp_path / "new" / "deeper" / "a.png")
    assert path.exists()
    np.testing.assert_array_equal(load_image(path), rgb)
    assert load_image(path, channels=1).shape == (6, 7, 1)
    gray = rgb[..., 0]
    save_image(gray, tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (6, 7, 1)
    assert load_image(tmp_path / "g.png", channels=3).shape == (6, 7, 3)
    save_image(rgb, tmp_path / "a.jpg")
    save_image(rgb, tmp_path / "a.webp")
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    assert Image.open(tmp_path / "a.webp").format == "WEBP"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_save_images_names_sorted_and_no_temp_files(tmp_path):
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    paths = save_images(images, tmp_path / "out", prefix="digit")
    assert [p.name for p in paths] == ["digit_00000.png", "digit_00001.png", "digit_00002.png"]
    assert sorted((tmp_path / "out").iterdir()) == paths


def test_save_errors_are_single_line(tmp_path):
    with pytest.raises(ConfigError) as error:
        save_image(np.zeros((2, 2), np.uint8), tmp_path / "a.bmpx")
    _single_line_vqgen(error)
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot write") as error:
        save_image(np.zeros((2, 2), np.uint8), blocker / "a.png")
    _single_line_vqgen(error)
    with pytest.raises(ShapeError):
        save_image(np.zeros((2, 2), np.float32), tmp_path / "a.png")


def test_load_image_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist") as error:
        load_image(tmp_path / "missing.png")
    _single_line_vqgen(error)
    (tmp_path / "bad.png").write_text("hello")
    with pytest.raises(DataError, match="bad.png") as error:
        load_image(tmp_path / "bad.png")
    _single_line_vqgen(error)


def test_atomic_path_replaces_on_success_and_cleans_on_error(tmp_path):
    target = tmp_path / "ckpt.bin"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            assert temporary.parent == tmp_path and temporary.suffix == ".bin"
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]

    folder = tmp_path / "model"
    for content in ("v1", "v2"):
        with atomic_path(folder) as temporary:
            temporary.mkdir()
            (temporary / "config.json").write_text(content)
    assert (folder / "config.json").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.bin", "model"]


def test_pil_to_channels_rescales_16_bit():
    image = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    assert np.asarray(pil_to_channels(image, 1)).tolist() == [[0, 255]]
    assert pil_to_channels(Image.new("P", (2, 2)), 3).mode == "RGB"
