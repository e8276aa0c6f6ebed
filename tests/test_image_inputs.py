"""Unusual image files in a folder: each is converted correctly or refused in one line naming the file.

Fixtures are tiny images Pillow writes into ``tmp_path``. Items come back as float in [-1, 1]; ``_uint8`` maps
them back to 0..255 so the expected pixel values can be written down exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from vqgen import cli
from vqgen.data.folders import DataWarning
from vqgen.data.images import ImageFolderDataset, infer_image_geometry, load_image_dataset
from vqgen.errors import ConfigError, DataError, VqgenError
from vqgen.media.image import load_image

WHITE = [255, 255, 255]


def _uint8(item: dict) -> np.ndarray:
    """An item's pixels ``[C, H, W]`` in [-1, 1] as uint8 ``[H, W, C]``."""
    pixels = ((item["pixels"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).numpy()


def _items(dataset) -> dict[str, np.ndarray]:
    return {path.name: _uint8(dataset[i]) for i, path in enumerate(dataset.files)}


def _one_line(error: BaseException, *names: str) -> None:
    assert isinstance(error, VqgenError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text and "\n" not in text, repr(text)
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"


def _split(size=(8, 8), left=(255, 0, 0, 0), right=(0, 0, 255, 128)) -> Image.Image:
    """RGBA: the left half ``left``, the right half ``right``."""
    image = Image.new("RGBA", size, right)
    image.paste(Image.new("RGBA", (size[0] // 2, size[1]), left), (0, 0))
    return image


def _over_white(value: int, alpha: int) -> int:
    return round((value * alpha + 255 * (255 - alpha)) / 255)


@pytest.fixture
def mixed(tmp_path):
    """One 8x8 folder of every mode a PNG can hold, beside a plain RGB image."""
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "rgb.png")
    _split().save(tmp_path / "rgba.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    keyed = palette.copy()
    keyed.paste(0, (0, 0, 4, 8))  # the left half: palette entry 0, which is transparent
    keyed.save(tmp_path / "palette-transparent.png", transparency=0)
    Image.new("L", (8, 8), 100).save(tmp_path / "grey.png")
    grey_alpha = Image.new("LA", (8, 8), (100, 255))
    grey_alpha.paste((100, 0), (0, 0, 4, 8))
    grey_alpha.save(tmp_path / "grey-alpha.png")
    deep = np.full((8, 8), 65535, np.uint16)
    deep[:, 4:] = 257 * 37
    deep[4:, 4:] = 32896  # 128 * 257
    Image.fromarray(deep).save(tmp_path / "grey-16bit.png")
    assert Image.open(tmp_path / "grey-16bit.png").mode == "I;16"
    return tmp_path


def test_modes_beside_rgb_are_converted_to_rgb(mixed):
    assert infer_image_geometry(mixed) == ((8, 8), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, and no Pillow warning about palette transparency
        dataset = load_image_dataset(str(mixed))
    assert dataset.channels == 3 and len(dataset) == 7
    items = _items(dataset)
    assert items["rgb.png"].tolist() == np.full((8, 8, 3), [10, 20, 30]).tolist()
    # RGBA: composited over white (the emoji builder's rule), not the colour under a transparent pixel.
    rgba = items["rgba.png"]
    assert (rgba[:, :4] == WHITE).all()
    half_blue = [_over_white(0, 128), _over_white(0, 128), 255]
    assert np.abs(rgba[:, 4:].astype(int) - half_blue).max() <= 1
    assert (items["palette.png"] == [200, 100, 50]).all()
    keyed = items["palette-transparent.png"]
    assert (keyed[:, :4] == WHITE).all() and (keyed[:, 4:] == [200, 100, 50]).all()
    assert (items["grey.png"] == 100).all()
    grey_alpha = items["grey-alpha.png"]
    assert (grey_alpha[:, :4] == 255).all() and (grey_alpha[:, 4:] == 100).all()
    # 16-bit grey: divided by 257 (65535 -> 255, 32896 -> 128, 9509 -> 37), not clipped to 255.
    deep = items["grey-16bit.png"]
    assert (deep[:, :4] == 255).all() and (deep[:4, 4:] == 37).all() and (deep[4:, 4:] == 128).all()


def test_modes_beside_rgb_are_converted_to_grey(mixed):
    dataset = load_image_dataset(str(mixed), channels=1)
    items = _items(dataset)
    assert all(pixels.shape == (8, 8, 1) for pixels in items.values())
    assert (items["rgba.png"][:, :4] == 255).all()  # transparent: white, in grey too
    assert (items["grey.png"] == 100).all() and (items["grey-alpha.png"][:, :4] == 255).all()
    assert (items["grey-16bit.png"][4:, 4:] == 128).all()
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # luminance, as Pillow's convert("L")
    assert np.abs(items["palette.png"].astype(int) - expected).max() <= 1


def test_load_image_applies_the_same_conversions(mixed):
    assert (load_image(mixed / "rgba.png")[:, :4] == WHITE).all()
    assert load_image(mixed / "grey-alpha.png").shape == (8, 8, 1)
    assert (load_image(mixed / "grey-16bit.png", channels=3)[4:, 4:] == 128).all()


def test_a_folder_none_of_whose_images_has_the_channels_asked_for(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("L", (8, 8), 9).save(tmp_path / name)
    with pytest.raises(DataError) as error:
        load_image_dataset(str(tmp_path), channels=3)
    _one_line(error.value, "all 2 file(s)", "a.png", "has 1 channel (mode L), expected 3", "--channels 1")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("RGB", (8, 8), (200, 40, 60)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "rgb.png")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert infer_image_geometry(tmp_path) == ((8, 8), 3)
    pixels = _items(load_image_dataset(str(tmp_path)))["cmyk.jpg"]
    assert np.abs(pixels.astype(int) - [200, 40, 60]).max() <= 3
    assert np.abs(load_image(tmp_path / "cmyk.jpg").astype(int) - [200, 40, 60]).max() <= 3


def _exif_rotated(path, orientation: int) -> None:
    """A 16x8 (wide) JPEG, its left half white, tagged to be shown turned by 90 degrees."""
    image = Image.new("L", (16, 8), 0)
    image.paste(255, (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.convert("RGB").save(path, exif=exif, quality=100)


def test_exif_orientation_is_applied(tmp_path):
    _exif_rotated(tmp_path / "turned-6.jpg", 6)  # shown turned 90 degrees clockwise: the left half on top
    _exif_rotated(tmp_path / "turned-8.jpg", 8)  # shown turned counter-clockwise: the left half at the bottom
    Image.new("RGB", (8, 16), (0, 0, 0)).save(tmp_path / "portrait.png")
    # The shown size is 8 wide, 16 high like the portrait beside it: one size, no --resolution needed.
    assert infer_image_geometry(tmp_path) == ((16, 8), 3)
    items = _items(load_image_dataset(str(tmp_path)))
    for name, bright in (("turned-6.jpg", slice(0, 8)), ("turned-8.jpg", slice(8, 16))):
        pixels = items[name].astype(int)
        assert pixels.shape == (16, 8, 3)
        dark = slice(8, 16) if bright.start == 0 else slice(0, 8)
        assert pixels[bright].mean() > 240 and pixels[dark].mean() < 15, name
    shown = load_image(tmp_path / "turned-6.jpg")
    assert shown.shape == (16, 8, 3) and shown[:8].mean() > 240 and shown[8:].mean() < 15


@pytest.mark.parametrize("suffix, options", [(".gif", {}), (".webp", {"lossless": True})])
def test_animated_files_give_their_first_frame(tmp_path, suffix, options):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / f"clip{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **options)
    assert Image.open(path).n_frames == 3
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "still.png")
    items = _items(load_image_dataset(str(tmp_path)))
    assert set(items) == {path.name, "still.png"}
    assert np.abs(items[path.name].astype(int) - [255, 0, 0]).max() <= 2
    assert np.abs(load_image(path).astype(int) - [255, 0, 0]).max() <= 2


def test_a_1x1_image_in_a_folder_of_64x64(tmp_path):
    Image.new("RGB", (1, 1), (250, 10, 20)).save(tmp_path / "a-dot.png")
    for i in range(3):
        Image.new("RGB", (64, 64), (i, i, i)).save(tmp_path / f"b{i}.png")
    # Same-size inference: a mixed-size folder, named by a file of the usual size and the odd one.
    with pytest.raises(ConfigError) as error:
        load_image_dataset(str(tmp_path))
    _one_line(error.value, "b0.png' is 64x64 (as are 2 others)", "a-dot.png' is 1x1", "--resolution")
    # With --resolution every image is resized to it: the 1x1 one becomes one flat colour.
    for resize in ("center-crop", "stretch"):
        dataset = ImageFolderDataset(tmp_path, resolution=64, channels=3, resize=resize)
        items = _items(dataset)
        assert all(pixels.shape == (64, 64, 3) for pixels in items.values())
        assert (items["a-dot.png"] == [250, 10, 20]).all()
    assert len(load_image_dataset(str(tmp_path), resolution=64)) == 4


@pytest.fixture
def bombs(tmp_path, monkeypatch):
    """Two 8x8 images, one 40x40 (over the lowered limit of 1,000 pixels, under twice it: Pillow only warns)
    and one 100x100 (over twice it: Pillow raises); the paths Pillow decodes pixels of are recorded."""
    for name in ("a.png", "c.png"):
        Image.new("RGB", (8, 8), (5, 6, 7)).save(tmp_path / name)
    Image.new("RGB", (40, 40)).save(tmp_path / "bomb.png")
    Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    loaded = []
    load = ImageFile.ImageFile.load

    def recording_load(self):
        loaded.append(getattr(self, "filename", None))
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    return tmp_path, loaded


def test_decompression_bombs_are_skipped_unread(bombs):
    root, loaded = bombs
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert infer_image_geometry(root) == ((8, 8), 3)  # the bombs count neither for size nor channels
        with pytest.warns(DataWarning) as record:
            dataset = load_image_dataset(str(root))
        items = _items(dataset)
    (warning,) = record
    message = str(warning.message)
    assert "\n" not in message and "skipped 2" in message
    assert "bomb.png (declares 1,600 pixels" in message and "huge.png (declares 10,000 pixels" in message
    assert "MAX_IMAGE_PIXELS" in message and "decompression bomb" in message
    assert sorted(items) == ["a.png", "c.png"]
    assert not any(str(path).endswith(("bomb.png", "huge.png")) for path in loaded), loaded


def test_decompression_bombs_stop_a_strict_run_and_load_image(bombs):
    root, loaded = bombs
    with pytest.raises(DataError) as error:
        load_image_dataset(str(root), strict=True)
    _one_line(error.value, "bomb.png", "1,600 pixels", "limit of 1,000", "2 of 4 file(s)")
    for name, pixels in (("bomb.png", "1,600"), ("huge.png", "10,000")):
        with pytest.raises(DataError) as error:
            load_image(root / name)
        _one_line(error.value, f"image '{root / name}' declares {pixels} pixels", "decompression bomb")
    assert not any(str(path).endswith(("bomb.png", "huge.png")) for path in loaded), loaded


def test_a_jpeg_named_png_is_read_by_its_content(tmp_path):
    Image.new("RGB", (8, 8), (30, 160, 90)).save(tmp_path / "photo.png", format="JPEG", quality=100)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "real.png")
    assert Image.open(tmp_path / "photo.png").format == "JPEG"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        items = _items(load_image_dataset(str(tmp_path)))
    assert np.abs(items["photo.png"].astype(int) - [30, 160, 90]).max() <= 3
    assert np.abs(load_image(tmp_path / "photo.png").astype(int) - [30, 160, 90]).max() <= 3


def test_train_tokenizer_help_says_folders_infer_their_size(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train-tokenizer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "required for folders" not in text
    assert "default: an image folder's own" in text


def _cli_error(argv: list[str], capsys) -> str:
    """``vqgen ARGV`` in process: exit status 2 and one ``error:`` line on stderr; returns that line."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("error: ")
    return line


def test_cli_refuses_a_mixed_size_folder_and_a_strict_bomb_in_one_line(tmp_path, bombs, capsys):
    root, loaded = bombs
    train = ["train-tokenizer", "--max-steps=1", "--no-progress", "--output", str(tmp_path / "run")]
    line = _cli_error([*train, "--data", str(root), "--strict"], capsys)
    assert "bomb.png" in line and "decompression bomb" in line
    assert not any(str(path).endswith(("bomb.png", "huge.png")) for path in loaded), loaded
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.new("RGB", (1, 1)).save(odd / "dot.png")
    Image.new("RGB", (16, 16)).save(odd / "full.png")  # under the lowered pixel limit
    line = _cli_error([*train, "--data", str(odd)], capsys)
    assert "dot.png' is 1x1" in line and "full.png' is 16x16" in line and "--resolution" in line
