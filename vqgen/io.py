"""Reading and writing media files, organised by medium.

Sections: atomic writes (shared by every writer: media, checkpoints, code shards), then images.
Video (PyAV) and audio (soundfile) sections follow the same conventions: arrays in, files out, writes
atomic, one-line :class:`~vqgen.errors.DataError` for anything that cannot be read or written.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from vqgen.errors import ConfigError, DataError, ShapeError, VqgenError

__all__ = [
    "IMAGE_FORMATS",
    "atomic_path",
    "atomic_write_bytes",
    "image_mode_channels",
    "load_image",
    "make_grid",
    "pil_to_channels",
    "save_image",
    "save_images",
    "to_uint8_images",
]


def _one_line(error: BaseException) -> str:
    """``error`` as ``Type: message`` on a single line (messages from libraries may span several)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ---------------------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------------------


def _temporary_sibling(path: Path) -> Path:
    # Same folder (so os.replace is a rename on one filesystem), hidden, and ending in the target's
    # suffix so that writers which pick a format or append an extension from the name behave as for `path`.
    return path.parent / f".{path.stem}.tmp-{secrets.token_hex(6)}{path.suffix}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    The parent folder is created if missing. The block writes a file (or a directory) at the yielded
    path; on success it replaces ``path`` (a directory target is swapped in with two renames), on any
    error the temporary is removed and the error re-raised, so ``path`` is never left half written.
    ``OSError`` from the block or the rename becomes ``DataError("cannot write 'P': <reason>")``.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot write '{target}': {_one_line(error)}") from error
    temporary = _temporary_sibling(target)
    try:
        yield temporary
        if not temporary.exists():
            raise DataError(f"cannot write '{target}': nothing was written to the temporary '{temporary}'")
        if temporary.is_dir():
            _replace_directory(temporary, target)
        else:
            _fsync_file(temporary)
            os.replace(temporary, target)
    except VqgenError:
        _remove(temporary)
        raise
    except OSError as error:
        _remove(temporary)
        raise DataError(f"cannot write '{target}': {_one_line(error)}") from error
    except BaseException:
        _remove(temporary)
        raise


def _replace_directory(temporary: Path, target: Path) -> None:
    if not target.exists():
        os.replace(temporary, target)
        return
    old = target.parent / f".{target.name}.old-{secrets.token_hex(6)}"
    os.replace(target, old)
    try:
        os.replace(temporary, target)
    except OSError:
        os.replace(old, target)  # put the previous version back
        raise
    _remove(old)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


# ---------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------

#: File suffix (lower case) -> Pillow format name, for writing.
IMAGE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_ONE_CHANNEL_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_THREE_CHANNEL_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})


def image_mode_channels(mode: str) -> int | None:
    """How many channels a Pillow image of ``mode`` has once alpha is dropped: 1, 3, or None if unsupported."""
    if mode in _ONE_CHANNEL_MODES or mode.startswith("I;16"):
        return 1
    if mode in _THREE_CHANNEL_MODES:
        return 3
    return None


def pil_to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Convert ``image`` to mode ``"L"`` (``channels=1``) or ``"RGB"`` (``channels=3``).

    Alpha is dropped and palettes are expanded. High-bit-depth grayscale (``I;16``, ``I``, ``F``) is
    rescaled to 0..255 rather than clipped, which is what Pillow's own ``convert("L")`` does.
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
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
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
    values = images.detach().to("cpu", torch.float32).nan_to_num(0.0)
    values = ((values.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return values.permute(0, 2, 3, 1).contiguous().numpy()


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


def load_image(path: str | os.PathLike, channels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 ``[H, W, C]``; C is ``channels`` (1 or 3) or, if None, the file's own (1 or 3).

    EXIF orientation is applied and alpha dropped. Missing or undecodable files raise ``DataError``.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"image file '{source}' does not exist")
    try:
        with Image.open(source) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except Exception as error:
        raise DataError(f"cannot decode image '{source}': {_one_line(error)}") from error
    own = image_mode_channels(image.mode)
    if own is None:
        raise DataError(
            f"image '{source}' has unsupported mode {image.mode}, expected a grayscale or colour image"
        )
    array = np.asarray(pil_to_channels(image, own if channels is None else channels))
    return array[..., None] if array.ndim == 2 else array
