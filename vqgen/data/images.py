"""Image datasets: in-memory uint8 arrays and validated image folders, both yielding the same items.

Every item is ``{"pixels": float32 [C, H, W] in [-1, 1], "label": int (-1 if unlabelled), "index": int}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from vqgen.data.demo import MNIST_LABEL_NAMES, MNIST_SPLITS, mnist_split
from vqgen.data.folders import DataWarning, MediaFolder, find_media_files, folder_split_root
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.io import _one_line
from vqgen.media.base import to_unit_range
from vqgen.media.image import (
    DEMO_IMAGE_DATASETS,
    IMAGE_EXTENSIONS,
    image_mode_channels,
    open_image,
    oriented_size,
    pil_to_channels,
    read_image,
)

__all__ = [
    "DEMO_IMAGE_DATASETS",
    "IMAGE_EXTENSIONS",
    "DataWarning",
    "ImageFolderDataset",
    "TensorImageDataset",
    "load_image_dataset",
]

RESIZE_MODES: tuple[str, ...] = ("center-crop", "stretch")


def _resolution_pair(resolution: int | Sequence[int], what: str = "resolution") -> tuple[int, int]:
    if isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool):
        pair = (int(resolution), int(resolution))
    elif (
        isinstance(resolution, Sequence)
        and len(resolution) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in resolution)
    ):
        pair = (int(resolution[0]), int(resolution[1]))
    else:
        raise ConfigError(f"{what}={resolution!r} is not valid, expected a positive int or (height, width)")
    if min(pair) < 1:
        raise ConfigError(f"{what}={resolution!r} is not valid, expected positive sizes")
    return pair


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels!r} is not supported, expected 1 or 3")
    return channels


def _item(pixels: torch.Tensor, label: int, index: int) -> dict:
    return {"pixels": pixels, "label": int(label), "index": int(index)}


class TensorImageDataset(Dataset):
    """Images held in memory as uint8 ``[N, H, W]`` or ``[N, H, W, C]`` (C = 1 or 3), with optional labels.

    Items are ``{"pixels": float32 [C, H', W'] in [-1, 1], "label": int, "index": int}``; if ``resolution``
    differs from the stored size, pixels are resized per item (bilinear, antialiased).
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | Sequence[int] | torch.Tensor | None = None,
        resolution: int | Sequence[int] | None = None,
        label_names: Sequence[str] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8:
            raise ShapeError(f"TensorImageDataset expects uint8 images, got {images.dtype}")
        if images.ndim == 3:
            images = images.unsqueeze(-1)
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
            raise ShapeError(
                f"TensorImageDataset expects images [N, H, W] or [N, H, W, C] with N >= 1 and C in (1, 3), "
                f"got {list(images.shape)}"
            )
        self._images = images.permute(0, 3, 1, 2)  # a view: [N, C, H, W], converted to float per item
        self.channels: int = int(images.shape[-1])
        self.stored_resolution: tuple[int, int] = (int(images.shape[1]), int(images.shape[2]))
        self.resolution: tuple[int, int] = (
            self.stored_resolution if resolution is None else _resolution_pair(resolution)
        )
        self.label_names: tuple[str, ...] | None = tuple(label_names) if label_names is not None else None
        if labels is None:
            if self.label_names is not None:
                raise ConfigError("TensorImageDataset got label_names but no labels")
            self._labels = None
            self.num_classes = 0
        else:
            self._labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
            if len(self._labels) != len(images):
                raise ShapeError(
                    f"TensorImageDataset got {len(images)} images but {len(self._labels)} labels"
                )
            self.num_classes = (
                len(self.label_names) if self.label_names is not None else int(self._labels.max()) + 1
            )
            if int(self._labels.min()) < 0 or int(self._labels.max()) >= self.num_classes:
                raise ShapeError(
                    f"TensorImageDataset labels must lie in [0, {self.num_classes}), "
                    f"got [{int(self._labels.min())}, {int(self._labels.max())}]"
                )

    def __len__(self) -> int:
        return self._images.shape[0]

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]  # IndexError past the end; negative indices normalised
        pixels = to_unit_range(self._images[index])
        if self.resolution != self.stored_resolution:
            pixels = F.interpolate(
                pixels[None], size=self.resolution, mode="bilinear", align_corners=False, antialias=True
            )[0].clamp_(-1.0, 1.0)
        label = -1 if self._labels is None else int(self._labels[index])
        return _item(pixels.contiguous(), label, index)


def _check_image_file(path: Path) -> str | tuple[int, str]:
    """Why ``path`` cannot be used as an image, or its ``(channels, mode)`` if it can (cheap: no full decode;
    an image over Pillow's pixel limit is refused from its header, unread)."""
    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
        with open_image(path, "it") as image:
            mode = image.mode
            width, height = image.size
            image.verify()  # reads the file through (chunk checksums), decodes no pixel
    except DataError as error:
        return str(error).removeprefix("it ")
    except UnidentifiedImageError:
        return "is not a recognisable image (unknown format or truncated header)"
    except Exception as error:
        return f"cannot be read as an image ({_one_line(error)})"
    if width < 1 or height < 1:
        return f"has an empty size {width}x{height}"
    found = image_mode_channels(mode)
    if found is None:
        return f"has unsupported mode {mode}, expected a grayscale or colour image"
    return found, mode


def _refuse_foreign_channels(folder: MediaFolder, channels: int) -> None:
    """A one-line ``DataError`` when no usable image has ``channels`` channels: converting every one of them
    (all grey for a colour tokenizer, say) is far more likely a wrong ``--channels`` or tokenizer than intended."""
    if not folder.files or any(found == channels for found, _ in folder.infos):
        return
    found, mode = folder.infos[0]
    kind = "grey" if found == 1 else "in colour"
    raise DataError(
        f"all {len(folder.files)} file(s) read in '{folder.root}' are {kind}; first: '{folder.files[0]}' has "
        f"{found} channel{'s' if found != 1 else ''} (mode {mode}), expected {channels} (pass --channels "
        f"{found}, or a tokenizer for {found}-channel images)"
    )


class ImageFolderDataset(Dataset):
    """Every image file under ``root`` (recursive; extensions in ``IMAGE_EXTENSIONS``), validated up front.

    Files that cannot be read (or declare more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels) are skipped with a
    :class:`DataWarning` (``strict=True``: ``DataError`` instead). The others are converted to ``channels``
    (:func:`~vqgen.media.image.pil_to_channels`: alpha composited over white, palettes expanded, 16-bit grey
    scaled, grey repeated or colour made grey), with their EXIF orientation applied and, when animated, their
    first frame taken; a folder none of whose images has ``channels`` channels is refused. If ``root`` holds
    images in two or more first-level subfolders, the subfolder names are classes (sorted, like torchvision's
    ``ImageFolder``) and files directly in ``root`` get label -1; otherwise every label is -1 and
    ``label_names`` is None.

    Items are ``{"pixels": float32 [channels, H, W] in [-1, 1], "label": int, "index": int}`` where
    ``(H, W) = resolution``; ``resize="center-crop"`` scales the short side then crops the centre,
    ``"stretch"`` resizes to the exact size ignoring aspect ratio.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        resolution: int | Sequence[int],
        channels: int,
        strict: bool = False,
        resize: str = "center-crop",
    ) -> None:
        self.root = Path(root)
        self.resolution: tuple[int, int] = _resolution_pair(resolution)
        self.channels: int = _check_channels(channels)
        if resize not in RESIZE_MODES:
            raise ConfigError(f"resize={resize!r} is not supported, expected one of {RESIZE_MODES}")
        self.resize = resize
        folder = MediaFolder(
            self.root,
            IMAGE_EXTENSIONS,
            ("image", "images"),
            _check_image_file,
            strict,
        )
        _refuse_foreign_channels(folder, self.channels)
        self.files, self.skipped, self._labels = folder.files, folder.skipped, folder.labels
        self.label_names: tuple[str, ...] | None = folder.label_names
        self.num_classes: int = folder.num_classes

    @property
    def labels(self) -> list[int]:
        """Label of every kept file, in ``files`` order (-1 where unlabelled)."""
        return list(self._labels)

    def __len__(self) -> int:
        return len(self.files)

    def _resized(self, image: Image.Image) -> Image.Image:
        height, width = self.resolution
        if image.size == (width, height):
            return image
        if self.resize == "stretch":
            return image.resize((width, height), Image.Resampling.BICUBIC)
        # Cover the target with one resample: crop the largest centred box of the target's aspect ratio.
        scale = max(width / image.width, height / image.height)
        box_width, box_height = width / scale, height / scale
        left, top = (image.width - box_width) / 2, (image.height - box_height) / 2
        box = (left, top, left + box_width, top + box_height)
        return image.resize((width, height), Image.Resampling.BICUBIC, box=box)

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]
        path = self.files[index]
        image = read_image(path)
        try:
            image = pil_to_channels(image, self.channels)
        except Exception as error:
            raise DataError(f"cannot convert image '{path}': {_one_line(error)}") from error
        array = np.asarray(self._resized(image), dtype=np.uint8)
        pixels = to_unit_range(torch.from_numpy(array.copy()))
        pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        return _item(pixels.contiguous(), self._labels[index], index)


def infer_image_geometry(root: str | os.PathLike, same_size: bool = True) -> tuple[tuple[int, int], int]:
    """``((height, width), channels)`` shared by the images under ``root``, read from their headers.

    Sizes are as shown (EXIF orientation applied). Channels: 3 when any image is in colour (RGB, RGBA, CMYK,
    palette, ...), else 1 (grey). Images of two or more sizes: a one-line ``ConfigError`` naming a file of the
    most common size, one of another size and the flag that resolves it (unless ``same_size`` is False: the
    most common size is returned then). Unreadable and oversized files are left to the dataset to report.
    """
    files = find_media_files(Path(root), IMAGE_EXTENSIONS)
    by_size: dict[tuple[int, int], list[Path]] = {}
    colour = False
    for path in files:
        try:
            with open_image(path) as image:
                size, channels = oriented_size(image), image_mode_channels(image.mode)
        except Exception:  # unreadable files are reported (and skipped) by the dataset itself
            continue
        if channels is None:
            continue
        colour = colour or channels == 3
        by_size.setdefault(size, []).append(path)
    if not by_size:
        raise DataError(f"no readable image under '{root}' (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    sizes = sorted(by_size, key=lambda size: -len(by_size[size]))  # stable: ties keep the first file's order
    common = sizes[0]
    if same_size and len(sizes) > 1:
        odd = min((by_size[size][0] for size in sizes[1:]), key=files.index)
        odd_size = next(size for size in sizes if odd in by_size[size])
        others = len(by_size[common]) - 1
        like = f" (as are {others} other{'s' if others != 1 else ''})" if others else ""
        raise ConfigError(
            f"images in '{root}' differ in size: '{by_size[common][0]}' is {common[0]}x{common[1]}{like}, "
            f"'{odd}' is {odd_size[0]}x{odd_size[1]} ({len(sizes)} sizes in all): pass --resolution N to "
            f"resize them all"
        )
    width, height = common
    return (height, width), 3 if colour else 1


def load_image_dataset(
    spec: str,
    split: str = "train",
    resolution: int | Sequence[int] | None = None,
    channels: int | None = None,
    strict: bool = False,
) -> TensorImageDataset | ImageFolderDataset:
    """Open an image dataset by name: ``"demo:mnist"``, ``"demo:emoji"`` or a folder path.

    ``demo:mnist``: the bundled digits (1 channel, 28x28, 10 classes), resized if ``resolution`` differs.
    ``demo:emoji``: the Noto emoji build (``vqgen data build emoji``; 3 channels, 9 groups).
    A folder's ``resolution`` and ``channels`` default to its images' own (:func:`infer_image_geometry`); ``split`` selects ``root/train`` or ``root/test`` when
    both exist and is otherwise ignored.
    """
    if split not in MNIST_SPLITS:
        raise ConfigError(f"split {split!r} not in {MNIST_SPLITS}")
    if spec == "demo:emoji":
        from vqgen.data.emoji import load_emoji_dataset

        if channels is not None and channels != 3:
            raise ShapeError(f"demo:emoji has 3 channels, the tokenizer expects {channels}")
        return load_emoji_dataset(split, resolution, strict=strict)
    if spec.startswith("demo:"):
        if spec != "demo:mnist":
            raise DataError(f"unknown demo dataset '{spec}', available: {', '.join(DEMO_IMAGE_DATASETS)}")
        if channels is not None and channels != 1:
            raise ShapeError(f"demo:mnist has 1 channel, the tokenizer expects {channels}")
        images, labels = mnist_split(split)
        return TensorImageDataset(images, labels, resolution=resolution, label_names=MNIST_LABEL_NAMES)

    if resolution is None or channels is None:
        if not Path(spec).exists():
            folder_split_root(spec, split, 1, 1, DEMO_IMAGE_DATASETS)  # the one-line "does not exist"
        found_resolution, found_channels = infer_image_geometry(spec, same_size=resolution is None)
        resolution = found_resolution if resolution is None else resolution
        channels = found_channels if channels is None else channels
    root = folder_split_root(spec, split, resolution, channels, DEMO_IMAGE_DATASETS)
    return ImageFolderDataset(root, resolution=resolution, channels=channels, strict=strict)
