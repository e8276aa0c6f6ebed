"""Tests for vqgen.data.images and vqgen.data.demo: demo split, tensor and folder datasets, validation."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from vqgen.data.demo import MNIST_LABEL_NAMES, load_mnist_digits, mnist_split
from vqgen.data.images import (
    DataWarning,
    ImageFolderDataset,
    TensorImageDataset,
    infer_image_geometry,
    load_image_dataset,
)
from vqgen.errors import ConfigError, DataError, ShapeError, VqgenError


def _write(path, size=(8, 6), mode="RGB", fmt=None, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "P") else (value, 60, 200)).save(path, format=fmt)
    return path


def _png_bytes(size=(32, 32)):
    """A real PNG of random noise, so that any prefix cuts through the compressed pixel data."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()


def _assert_one_line(error: pytest.ExceptionInfo) -> None:
    assert isinstance(error.value, VqgenError)
    assert "\n" not in str(error.value)


# ---- demo data ------------------------------------------------------------------------------------------


def test_mnist_split_sizes_balanced_disjoint_deterministic():
    all_images, all_labels = load_mnist_digits()
    assert all_images.shape == (5000, 28, 28) and all_images.dtype == np.uint8
    train_x, train_y = mnist_split("train")
    test_x, test_y = mnist_split("test")
    assert train_x.shape == (4500, 28, 28) and test_x.shape == (500, 28, 28)
    assert np.bincount(train_y).tolist() == [450] * 10
    assert np.bincount(test_y).tolist() == [50] * 10
    # Map rows back to original indices through the cached arrays to check disjointness and order.
    flat = all_images.reshape(5000, -1)
    lookup = {row.tobytes() + bytes([label]): i for i, (row, label) in enumerate(zip(flat, all_labels))}
    train_index = [lookup[r.tobytes() + bytes([y])] for r, y in zip(train_x.reshape(4500, -1), train_y)]
    test_index = [lookup[r.tobytes() + bytes([y])] for r, y in zip(test_x.reshape(500, -1), test_y)]
    assert train_index == sorted(train_index) and not set(train_index) & set(test_index)
    expected_test = np.random.default_rng(1234 + 3).permutation(np.flatnonzero(all_labels == 3))[450:]
    assert sorted(expected_test.tolist()) == [i for i, y in zip(test_index, test_y) if y == 3]
    again_x, again_y = mnist_split("test")
    np.testing.assert_array_equal(again_x, test_x)
    np.testing.assert_array_equal(again_y, test_y)
    with pytest.raises(ConfigError, match="'val'") as error:
        mnist_split("val")
    _assert_one_line(error)


def test_load_demo_mnist_items_and_resize():
    data = load_image_dataset("demo:mnist", split="test")
    assert len(data) == 500 and data.channels == 1 and data.resolution == (28, 28)
    assert data.num_classes == 10 and data.label_names == MNIST_LABEL_NAMES
    item = data[0]
    assert item["pixels"].shape == (1, 28, 28) and item["pixels"].dtype == torch.float32
    assert item["pixels"].min() >= -1 and item["pixels"].max() <= 1
    assert item["pixels"].min() == -1 and item["pixels"].max() == 1
    assert 0 <= item["label"] < 10 and item["index"] == 0
    assert data[-1]["index"] == 499
    resized = load_image_dataset("demo:mnist", split="test", resolution=32, channels=1)
    pixels = resized[3]["pixels"]
    assert pixels.shape == (1, 32, 32) and pixels.abs().max() <= 1
    with pytest.raises(ShapeError, match="1 channel, the tokenizer expects 3") as error:
        load_image_dataset("demo:mnist", channels=3)
    _assert_one_line(error)
    with pytest.raises(DataError, match="demo:mnist") as error:
        load_image_dataset("demo:cifar")
    _assert_one_line(error)


def test_tensor_dataset_rgb_without_labels():
    images = np.zeros((2, 5, 6, 3), dtype=np.uint8)
    images[1] = 255
    data = TensorImageDataset(images)
    assert data.channels == 3 and data.resolution == (5, 6) and data.num_classes == 0
    assert data.label_names is None
    item = data[1]
    assert item["pixels"].shape == (3, 5, 6) and torch.all(item["pixels"] == 1) and item["label"] == -1
    with pytest.raises(IndexError):
        data[2]
    with pytest.raises(ShapeError):
        TensorImageDataset(images.astype(np.float32))
    with pytest.raises(ShapeError):
        TensorImageDataset(images, labels=[0])
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))
    assert batch["pixels"].shape == (2, 3, 5, 6) and batch["label"].tolist() == [-1, -1]


# ---- folders --------------------------------------------------------------------------------------------


def test_folder_items_center_crop_and_stretch(tmp_path):
    _write(tmp_path / "a.png", size=(12, 6))
    _write(tmp_path / "nested" / "b.JPG", size=(5, 9), fmt="JPEG")
    (tmp_path / "notes.txt").write_text("ignored")
    data = ImageFolderDataset(tmp_path, resolution=4, channels=3)
    assert [p.name for p in data.files] == ["a.png", "b.JPG"]
    assert data.skipped == [] and data.label_names is None and data.num_classes == 0
    for item in (data[0], data[1]):
        assert item["pixels"].shape == (3, 4, 4) and item["label"] == -1
        assert item["pixels"].min() >= -1 and item["pixels"].max() <= 1
    assert abs(float(data[0]["pixels"][0, 0, 0]) - (128 / 127.5 - 1)) < 0.02
    stretched = ImageFolderDataset(tmp_path, resolution=(3, 7), channels=3, resize="stretch")
    assert stretched[1]["pixels"].shape == (3, 3, 7)


def test_center_crop_keeps_the_middle(tmp_path):
    array = np.zeros((6, 12), dtype=np.uint8)
    array[:, :3] = 255  # outside the centred 6x6 box (columns 3..8)
    array[:, 9:] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    cropped = ImageFolderDataset(tmp_path, resolution=6, channels=1)[0]["pixels"]
    assert cropped.shape == (1, 6, 6) and torch.all(cropped == -1)
    stretched = ImageFolderDataset(tmp_path, resolution=6, channels=1, resize="stretch")[0]["pixels"]
    assert stretched.max() > 0


def test_folder_bad_files_skipped_with_warning(tmp_path):
    _write(tmp_path / "good.png")
    (tmp_path / "x.png").write_text("this is text, not a png")
    (tmp_path / "truncated.png").write_bytes(_png_bytes()[:40])
    (tmp_path / "zero.jpg").write_bytes(b"")
    _write(tmp_path / "gray.png", mode="L")  # a grey image beside colour ones is converted, not skipped
    with pytest.warns(DataWarning) as record:
        data = ImageFolderDataset(tmp_path, resolution=8, channels=3)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 3" in message and "\n" not in message
    for name in ("x.png", "truncated.png", "zero.jpg"):
        assert name in message
    assert [p.name for p in data.files] == ["good.png", "gray.png"]
    assert len(data) == 2 and data[0]["pixels"].shape == data[1]["pixels"].shape == (3, 8, 8)
    assert {p.name for p, _ in data.skipped} == {"x.png", "truncated.png", "zero.jpg"}

    with pytest.raises(DataError, match="truncated.png") as error:
        ImageFolderDataset(tmp_path, resolution=8, channels=3, strict=True)
    _assert_one_line(error)


def test_folder_all_bad_empty_missing(tmp_path):
    gray = tmp_path / "gray"
    _write(gray / "a.png", mode="L")
    _write(gray / "b.png", mode="L")
    with pytest.raises(DataError, match=r"all 2 file.*a\.png.*has 1 channel \(mode L\), expected 3") as error:
        ImageFolderDataset(gray, resolution=8, channels=3)
    _assert_one_line(error)
    assert len(ImageFolderDataset(gray, resolution=8, channels=1)) == 2

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"no image files.*\.png") as error:
        ImageFolderDataset(empty, resolution=8, channels=3)
    _assert_one_line(error)
    with pytest.raises(DataError, match="does not exist") as error:
        ImageFolderDataset(tmp_path / "missing", resolution=8, channels=3)
    _assert_one_line(error)
    with pytest.raises(DataError, match="not a directory"):
        ImageFolderDataset(gray / "a.png", resolution=8, channels=1)


def test_folder_class_labels_from_subfolders(tmp_path):
    _write(tmp_path / "dog" / "1.png", value=10)
    _write(tmp_path / "cat" / "deep" / "1.png", value=20)
    _write(tmp_path / "cat" / "2.webp", fmt="WEBP", value=30)
    _write(tmp_path / ".hidden" / "junk.png")
    data = ImageFolderDataset(tmp_path, resolution=4, channels=3)
    assert data.label_names == ("cat", "dog") and data.num_classes == 2
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in zip(data.files, data.labels)] == [
        ("cat/2.webp", 0),
        ("cat/deep/1.png", 0),
        ("dog/1.png", 1),
    ]
    assert [data[i]["label"] for i in range(3)] == [0, 0, 1]
    single = ImageFolderDataset(tmp_path / "cat", resolution=4, channels=3)
    assert single.label_names is None and single[0]["label"] == -1


def test_load_image_dataset_folder_options_and_splits(tmp_path):
    _write(tmp_path / "train" / "a.png")
    _write(tmp_path / "train" / "b.png")
    _write(tmp_path / "test" / "c.png")
    # Without flags the folder's own size and channels are used (issue: folders without flags).
    inferred = load_image_dataset(str(tmp_path))
    assert inferred.channels == 3 and inferred.resolution == infer_image_geometry(tmp_path / "train")[0]
    train = load_image_dataset(str(tmp_path), split="train", resolution=8, channels=3)
    test = load_image_dataset(str(tmp_path), split="test", resolution=8, channels=3)
    assert [p.name for p in train.files] == ["a.png", "b.png"] and [p.name for p in test.files] == ["c.png"]
    with pytest.raises(DataError, match="does not exist"):
        load_image_dataset(str(tmp_path / "nope"), resolution=8, channels=3)


def test_decode_error_at_getitem_names_file(tmp_path):
    path = _write(tmp_path / "a.png")
    _write(tmp_path / "b.png")
    data = ImageFolderDataset(tmp_path, resolution=4, channels=3)
    path.write_bytes(_png_bytes()[:1000])  # corrupted after validation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="a.png") as error:
            data[0]
    _assert_one_line(error)


def test_folder_resolution_and_channels_come_from_the_images(tmp_path):
    from PIL import Image

    from vqgen.data.images import infer_image_geometry, load_image_dataset

    for name, mode in [("a/1.png", "L"), ("b/2.png", "RGBA"), ("b/3.png", "P")]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new(mode, (12, 10)).save(tmp_path / name)
    assert infer_image_geometry(tmp_path) == ((10, 12), 3)
    dataset = load_image_dataset(str(tmp_path))
    assert dataset[0]["pixels"].shape == (3, 10, 12) and dataset.num_classes == 2
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.new("L", (8, 8)).save(grey / "x.png")
    assert infer_image_geometry(grey) == ((8, 8), 1)
    Image.new("L", (9, 8)).save(grey / "y.png")
    with pytest.raises(ConfigError) as error:
        load_image_dataset(str(grey))
    message = str(error.value)
    assert "\n" not in message and "x.png" in message and "y.png" in message and "--resolution" in message
    assert load_image_dataset(str(grey), resolution=8)[1]["pixels"].shape == (1, 8, 8)
