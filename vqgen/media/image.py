"""Images: files (Pillow), uint8 <-> float, grids and previews, data sets, jitter, tokenizer defaults, metrics.

Media tensors are float ``[B, C, H, W]`` in [-1, 1]; uint8 arrays are ``[B, H, W, C]`` (or one ``[H, W, C]``).
Writes are atomic and anything unreadable is a one-line :class:`~vqgen.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from vqgen.errors import ConfigError, DataError, ShapeError, VqgenError
from vqgen.io import _one_line, atomic_path
from vqgen.media.base import Medium, register_medium, to_uint8, to_unit_range

__all__ = [
    "DEMO_IMAGE_DATASETS",
    "IMAGE",
    "IMAGE_EXTENSIONS",
    "IMAGE_FORMATS",
    "ImageMedium",
    "image_mode_channels",
    "images_from_uint8",
    "jitter_images",
    "load_image",
    "make_grid",
    "on_white",
    "open_image",
    "oriented_size",
    "pil_to_channels",
    "read_image",
    "save_image",
    "save_images",
    "to_uint8_images",
]

# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

#: File suffix (lower case) -> Pillow format name, for writing.
IMAGE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_ONE_CHANNEL_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_THREE_CHANNEL_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})


def image_mode_channels(mode: str) -> int | None:
    """How many channels a Pillow image of ``mode`` has once alpha is composited away: 1, 3, or None if
    unsupported."""
    if mode in _ONE_CHANNEL_MODES or mode.startswith("I;16"):
        return 1
    if mode in _THREE_CHANNEL_MODES:
        return 3
    return None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def on_white(image: Image.Image) -> Image.Image:
    """An image with alpha (or a transparent palette entry or colour key) composited over white, as RGB.

    The emoji builder's rule (``vqgen.data.emoji_render.square_on_white``): straight alpha composited at full
    size, before any resampling, so the colour under transparent pixels never shows.
    """
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def pil_to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Convert ``image`` to mode ``"L"`` (``channels=1``) or ``"RGB"`` (``channels=3``).

    Alpha (RGBA, LA, palettes with a transparent entry, colour keys) is composited over white; palettes are
    expanded; CMYK and other colour modes go through Pillow's RGB conversion; colour becomes grey by
    luminance and grey becomes colour by repeating it. High-bit-depth grayscale (``I;16``, ``I``, ``F``) is
    rescaled to 0..255 (``I;16``: divided by 257) rather than clipped, as Pillow's own ``convert("L")`` does.
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels!r} is not supported, expected 1 or 3")
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        peak = float(finite.max()) if finite.size else 0.0
        if mode.startswith("I;16") or (mode == "I" and peak > 255):
            values = values / 257.0
        elif mode == "F" and peak <= 1.0:
            values = values * 255.0
        gray = Image.fromarray(np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8), mode="L")
        return gray if channels == 1 else gray.convert("RGB")
    if _has_alpha(image):
        image = on_white(image)
    elif mode in ("P", "PA"):
        image = image.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def to_uint8_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Map float images ``[B, C, H, W]`` in [-1, 1] to uint8 ``[B, H, W, C]`` in 0..255.

    Values are clamped (NaN becomes mid-gray) and rounded. Accepts a tensor on any device or a numpy array.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise ShapeError(f"images must be a torch.Tensor or numpy array, got {type(images).__name__}")
    if images.ndim != 4:
        raise ShapeError(f"images must have shape [B, C, H, W], got {list(images.shape)}")
    return to_uint8(images).permute(0, 2, 3, 1).contiguous().numpy()


def images_from_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images ``[B, H, W, C]`` -> float32 ``[B, C, H, W]`` in [-1, 1] (the inverse of :func:`to_uint8_images`)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.array(images, copy=True))
    return to_unit_range(images.permute(0, 3, 1, 2))


def make_grid(
    images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0
) -> np.ndarray:
    """Tile uint8 images ``[B, H, W, C]`` (or ``[B, H, W]``) into one uint8 image ``[H', W', C]``.

    ``nrow`` images per row (default ``ceil(sqrt(B))``); ``padding`` pixels of ``pad_value`` between tiles
    and around the border, so ``H' = rows * (H + padding) + padding`` and ``W' = nrow * (W + padding) + padding``.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ShapeError(f"make_grid expects uint8 images [B, H, W, C] with B >= 1, got {list(images.shape)}")
    if images.dtype != np.uint8:
        raise ShapeError(f"make_grid expects uint8 images, got dtype {images.dtype}")
    count, height, width, channels = images.shape
    nrow = math.ceil(math.sqrt(count)) if nrow is None else nrow
    if nrow < 1 or padding < 0:
        raise ConfigError(f"make_grid needs nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    nrow = min(nrow, count)
    rows = math.ceil(count / nrow)
    grid = np.full(
        (rows * (height + padding) + padding, nrow * (width + padding) + padding, channels),
        pad_value,
        dtype=np.uint8,
    )
    for index in range(count):
        top = padding + (index // nrow) * (height + padding)
        left = padding + (index % nrow) * (width + padding)
        grid[top : top + height, left : left + width] = images[index]
    return grid


def _image_format(path: Path) -> str:
    image_format = IMAGE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ConfigError(
            f"cannot save image '{path}': unknown suffix '{path.suffix}', expected one of {sorted(IMAGE_FORMATS)}"
        )
    return image_format


def save_image(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 image ``[H, W, C]`` (C = 1, 3 or 4) or ``[H, W]`` atomically; format from the suffix."""
    target = Path(path)
    image_format = _image_format(target)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if (
        array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[-1] not in (3, 4))
    ):
        raise ShapeError(
            f"cannot save image '{target}': expected uint8 [H, W], [H, W, 1|3|4], got {array.dtype} {list(array.shape)}"
        )
    image = Image.fromarray(np.ascontiguousarray(array))
    if image_format == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
    with atomic_path(target) as temporary:
        image.save(temporary, format=image_format, **options)
    return target


def save_images(
    images: np.ndarray,
    directory: str | os.PathLike,
    prefix: str = "sample",
    suffix: str = ".png",
    start: int = 0,
) -> list[Path]:
    """Write uint8 images ``[B, H, W, C]`` as ``directory/{prefix}_{i:05d}{suffix}`` for i from ``start``.

    Names are zero-padded (at least 5 digits) so they sort in order; each write is atomic.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ShapeError(f"save_images expects uint8 images [B, H, W, C], got {list(images.shape)}")
    folder = Path(directory)
    _image_format(folder / f"{prefix}{suffix}")
    width = max(5, len(str(start + len(images) - 1)))
    return [
        save_image(image, folder / f"{prefix}_{start + offset:0{width}d}{suffix}")
        for offset, image in enumerate(images)
    ]


_EXIF_ORIENTATION = 0x0112
_PILLOW_PIXELS = re.compile(r"\((\d+) pixels\)")


def _pixel_limit_reason(pixels: int | None) -> str:
    limit = Image.MAX_IMAGE_PIXELS
    count = f"{pixels:,} pixels" if pixels is not None else "more pixels"
    return (
        f"declares {count}, over Pillow's limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS): refused unread as a "
        f"possible decompression bomb"
    )


@contextlib.contextmanager
def open_image(path: str | os.PathLike, what: str | None = None) -> Iterator[Image.Image]:
    """``Image.open(path)``: the header only (the format found by content, not by suffix), and the file open
    while the ``with`` block runs. An image declaring more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (Pillow
    itself only warns up to twice that) raises a one-line ``DataError`` starting with ``what`` (default:
    ``image 'PATH'``) before any pixel is decoded; other failures are Pillow's own exceptions."""
    what = f"image '{path}'" if what is None else what
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        found = _PILLOW_PIXELS.search(str(error))
        raise DataError(f"{what} {_pixel_limit_reason(int(found.group(1)) if found else None)}") from None
    with image:
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and image.width * image.height > limit:
            raise DataError(f"{what} {_pixel_limit_reason(image.width * image.height)}")
        yield image


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an opened image as it is shown: swapped when its EXIF orientation turns it a
    quarter turn."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation, as in exif_transpose
        orientation = 1
    return (image.height, image.width) if orientation in (5, 6, 7, 8) else image.size


def read_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image file (its first frame when animated) with its EXIF orientation applied.

    The format comes from the content, not the suffix. Images over Pillow's pixel limit are refused before
    decoding (:func:`open_image`); anything unreadable is a one-line ``DataError`` naming the file.
    """
    source = Path(path)
    try:
        with open_image(source) as image:
            image.load()  # the first frame of an animated GIF, WebP or PNG
            return ImageOps.exif_transpose(image)  # a copy, so it outlives the file
    except VqgenError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, ValueError, SyntaxError, ... for bad files
        raise DataError(f"cannot decode image '{source}': {_one_line(error)}") from error


def load_image(path: str | os.PathLike, channels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 ``[H, W, C]``; C is ``channels`` (1 or 3) or, if None, the file's own (1 or 3).

    EXIF orientation is applied, alpha composited over white, an animated file's first frame taken and
    everything converted as :func:`pil_to_channels` says. Missing, undecodable or oversized files (over
    ``PIL.Image.MAX_IMAGE_PIXELS``) raise ``DataError``.
    """
    source = Path(path)
    if not source.is_file():
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"image file '{source}' {why}")
    image = read_image(source)
    own = image_mode_channels(image.mode)
    if own is None:
        raise DataError(
            f"image '{source}' has unsupported mode {image.mode}, expected a grayscale or colour image"
        )
    try:
        array = np.asarray(pil_to_channels(image, own if channels is None else channels))
    except VqgenError:
        raise
    except Exception as error:  # noqa: BLE001 - a conversion Pillow cannot do
        raise DataError(f"cannot convert image '{source}': {_one_line(error)}") from error
    return array[..., None] if array.ndim == 2 else array


# ---------------------------------------------------------------------------------------------------------
# Previews and augmentation
# ---------------------------------------------------------------------------------------------------------


def interleave(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """``[N, ...]`` and ``[N, ...]`` -> ``[2N, ...]``: each original followed by its reconstruction (float, CPU)."""
    return torch.stack([originals.float().cpu(), reconstructions.float().cpu()], dim=1).flatten(0, 1)


def save_reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path) -> None:
    """Images ``[N, C, H, W]``: each original beside its reconstruction, 8 images a row, as one PNG."""
    save_image(make_grid(to_uint8_images(interleave(originals, reconstructions)), nrow=8), path)


def imshow_arguments(image: np.ndarray) -> tuple[np.ndarray, dict]:
    """uint8 ``[H, W, C]`` -> (what ``imshow`` shows, its keyword arguments): grey as ``[H, W]`` 0..255."""
    if image.shape[-1] == 1:
        return image[..., 0], {"cmap": "gray", "vmin": 0, "vmax": 255}
    return image, {}


def jitter_images(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random affine jitter of ``images [B, C, H, W]``: rotation +-8 deg, shift +-8 %, scale 0.9-1.1
    (the augmentation of ``--augment-copies``, and the views of ``ImagePipeline.score(views=...)``).

    Pixels moved in from outside take each image's own background: the mean colour of its one-pixel border
    per channel (black for digits, white for emoji), so a jittered copy never gains a frame the data lacks."""
    batch = images.shape[0]
    angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(8)
    scale = 0.9 + 0.2 * torch.rand(batch, generator=generator)
    shift = (torch.rand(batch, 2, generator=generator) * 2 - 1) * 0.16  # fraction of the half-size
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    background = border_colour(images)
    # grid_sample pads with zeros: sample the difference from the background so padding means background.
    warped = torch.nn.functional.grid_sample(images - background, grid.to(images.dtype), align_corners=False)
    return warped + background


def border_colour(images: torch.Tensor) -> torch.Tensor:
    """Mean of each image's one-pixel border per channel: ``[B, C, H, W] -> [B, C, 1, 1]``."""
    border = torch.cat(
        [images[..., 0, :], images[..., -1, :], images[..., 1:-1, 0], images[..., 1:-1, -1]], dim=-1
    )
    return border.mean(-1)[..., None, None]


# ---------------------------------------------------------------------------------------------------------
# The medium
# ---------------------------------------------------------------------------------------------------------

#: Files ``generate``, ``reconstruct`` and ``decompress`` write images to.
IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")
#: Files image folders are made of (``vqgen.data.images``). Read by content, whatever the suffix says;
#: animated GIF, WebP and PNG files give their first frame.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".gif")
#: The named image data sets ``--data`` takes.
DEMO_IMAGE_DATASETS: tuple[str, ...] = ("demo:mnist", "demo:emoji")


def image_tokenizer_config(medium: Medium, settings, channels: int) -> dict:
    """Constructor arguments of a convolutional image (or, with a temporal factor added, video) tokenizer."""
    from vqgen.media.settings import quantizer_config

    return {
        "in_channels": channels,
        "base_channels": settings.base_channels or medium.defaults["base_channels"],
        "channel_multipliers": settings.channel_multipliers,
        "num_res_blocks": settings.num_res_blocks,
        "latent_channels": settings.latent_channels,
        "quantizer_config": quantizer_config(medium, settings),
    }


class ImageMedium(Medium):
    """Still images: PNG / JPEG / WebP files, ``ImageTokenizer``, ``ImagePipeline``."""

    name = "image"
    item_key = "pixels"
    tokenizer_path = "vqgen.tokenizers.image:ImageTokenizer"
    pipeline_path = "vqgen.pipelines.image:ImagePipeline"
    output_suffixes = reconstruct_suffixes = decompress_suffixes = IMAGE_OUTPUTS
    folder_suffixes = IMAGE_EXTENSIONS
    demo_datasets = DEMO_IMAGE_DATASETS
    fits_background = True
    init_from_media = ("image",)
    dataset_options = ("resolution",)

    def load_dataset(self, spec, split="train", *, channels=None, strict=False, resolution=None):
        """``demo:mnist`` or a folder of images (``vqgen.data.images.load_image_dataset``)."""
        from vqgen.data.images import load_image_dataset

        return load_image_dataset(spec, split, resolution=resolution, channels=channels, strict=strict)

    def augment(self, media, generator, **options):
        return jitter_images(media, generator, **options)

    def write_samples(self, samples, output, nrow=None, file_format=None) -> str:
        """One grid of ``nrow`` images a row to a file path, else one PNG per image in the folder."""
        images = samples.images
        if output.suffix:
            save_image(make_grid(images, nrow=nrow), output)
            return f"wrote a grid of {len(images)} images to {output}"
        paths = save_images(images, output)
        return f"wrote {len(paths)} images to {output}/"

    def write_item(self, media, path, rate=None) -> None:
        save_image(to_uint8_images(media)[0], path)

    def thumbnail(self, media):
        return imshow_arguments(to_uint8_images(media[None])[0])

    def tokenizer_config(self, settings, channels: int) -> dict:
        return image_tokenizer_config(self, settings, channels)

    def reconstruction_preview(self, dataset):
        return save_reconstruction_grid

    def sample_preview(self, media, path, tokenizer) -> None:
        save_image(make_grid(to_uint8_images(media), nrow=8), path)

    def evaluate(self, tokenizer, dataset, batch_size=100, progress=True) -> dict:
        from vqgen.evaluation.tokenizer import evaluate_tokenizer

        return evaluate_tokenizer(tokenizer, dataset, batch_size=batch_size, progress=progress)

    def print_evaluation(self, results: dict) -> None:
        from vqgen.evaluation.tokenizer import print_table

        print_table(results)

    def read_file(self, path, tokenizer):
        return images_from_uint8(load_image(path, channels=tokenizer.config.in_channels)[None]), None

    def default_num_samples(self, output) -> int:
        return 16


IMAGE = register_medium(ImageMedium())
