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
    "load_video",
    "make_grid",
    "pil_to_channels",
    "save_image",
    "save_images",
    "save_video",
    "VIDEO_EXTENSIONS",
    "VIDEO_WRITE_FORMATS",
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
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"image file '{source}' {why}")
    try:
        with Image.open(source) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
        own = image_mode_channels(image.mode)
        if own is None:
            raise DataError(
                f"image '{source}' has unsupported mode {image.mode}, expected a grayscale or colour image"
            )
        array = np.asarray(pil_to_channels(image, own if channels is None else channels))
    except VqgenError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, ValueError, SyntaxError, ... for bad files
        raise DataError(f"cannot decode image '{source}': {_one_line(error)}") from error
    return array[..., None] if array.ndim == 2 else array


# ---------------------------------------------------------------------------------------------------------
# Audio (soundfile: WAV, FLAC, OGG/Vorbis). Arrays are float32 ``[C, S]`` in [-1, 1].
# ---------------------------------------------------------------------------------------------------------

#: File suffix (lower case) -> (soundfile format, default subtype), for writing.
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
}
__all__ += ["AUDIO_FORMATS", "load_audio", "mix_channels", "save_audio"]


def mix_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Map ``[C, S]`` to ``[channels, S]``: average to mono, duplicate mono, or keep a matching count.

    Any other combination (say 6 channels to 2) raises ``ShapeError``: there is no single right downmix.
    """
    found = audio.shape[0]
    if found == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if found == 1:
        return np.repeat(audio, channels, axis=0)
    raise ShapeError(
        f"cannot mix {found} audio channels to {channels}; expected mono, or {channels} channels"
    )


def save_audio(
    audio: np.ndarray | torch.Tensor, path: str | os.PathLike, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write float audio ``[C, S]`` (or ``[S]`` mono) in [-1, 1] atomically; format from the suffix.

    Values are clamped to [-1, 1] (NaN becomes 0). ``subtype`` is a soundfile subtype (default 16-bit PCM
    for WAV and FLAC, Vorbis for OGG).
    """
    import soundfile

    target = Path(path)
    spec = AUDIO_FORMATS.get(target.suffix.lower())
    if spec is None:
        raise ConfigError(
            f"cannot save audio '{target}': unknown suffix '{target.suffix}', expected one of {sorted(AUDIO_FORMATS)}"
        )
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ShapeError(f"cannot save audio '{target}': expected [C, S] or [S], got {list(array.shape)}")
    if int(sample_rate) < 1:
        raise ConfigError(f"cannot save audio '{target}': sample_rate must be positive, got {sample_rate}")
    array = np.clip(np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    audio_format, default_subtype = spec
    with atomic_path(target) as temporary:
        try:
            soundfile.write(
                temporary, array.T, int(sample_rate), subtype=subtype or default_subtype, format=audio_format
            )
        except (RuntimeError, ValueError, TypeError) as error:  # soundfile.LibsndfileError is a RuntimeError
            raise DataError(f"cannot write audio '{target}': {_one_line(error)}") from error
    return target


#: Largest ``rate / gcd(rate, target)`` either side may have: torchaudio's resampling kernel grows with the
#: product of the reduced rates, so 44,101 Hz -> 16 kHz would take seconds per clip and a made-up rate in a
#: corrupt header gigabytes. Every common pair (8-192 kHz, 11,025 Hz family included) stays far below it.
MAX_REDUCED_RATE = 4000


def check_resampling(rate: int, target: int, what: str) -> None:
    """Raise DataError (naming ``what``) unless ``rate`` -> ``target`` is a resampling torchaudio does cheaply."""
    if rate < 1:
        raise DataError(f"{what} has sample rate {rate} Hz; expected a positive rate")
    common = math.gcd(int(rate), int(target))
    if max(rate // common, target // common) > MAX_REDUCED_RATE:
        raise DataError(
            f"{what} has an unusual sample rate of {rate} Hz that cannot be resampled to {target} Hz "
            f"efficiently; convert it to a standard rate (e.g. 16000, 22050, 44100 or 48000 Hz) first"
        )


def resample_audio(audio: torch.Tensor, rate: int, target: int, what: str = "audio") -> torch.Tensor:
    """``torchaudio.functional.resample`` of float ``[..., S]`` from ``rate`` to ``target`` Hz, clamped to
    [-1, 1]; refuses rates it cannot resample cheaply (:func:`check_resampling`), passes empty audio through."""
    if int(rate) == int(target):
        return audio
    check_resampling(int(rate), int(target), what)
    if audio.shape[-1] == 0:
        return audio
    import torchaudio

    return torchaudio.functional.resample(audio, int(rate), int(target)).clamp(-1.0, 1.0)


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``[C, S]`` in [-1, 1] and its sample rate.

    ``channels`` mixes (see :func:`mix_channels`); ``sample_rate`` resamples (:func:`resample_audio`) and is
    then the rate returned. Missing or undecodable files, and files holding NaN or infinite samples, raise
    ``DataError``; float files are clamped to [-1, 1].
    """
    import soundfile

    source = Path(path)
    if not source.is_file():
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"audio file '{source}' {why}")
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as error:  # noqa: BLE001 - libsndfile raises several types for bad files
        raise DataError(f"cannot decode audio '{source}': {_one_line(error)}") from error
    array = np.ascontiguousarray(data.T)
    if not np.isfinite(array).all():
        raise DataError(f"audio file '{source}' holds NaN or infinite samples")
    array = np.clip(array, -1.0, 1.0)
    if channels is not None:
        array = mix_channels(array, channels)
    if sample_rate is not None and int(sample_rate) != rate:
        resampled = resample_audio(torch.from_numpy(array), rate, int(sample_rate), f"audio file '{source}'")
        array, rate = resampled.numpy(), int(sample_rate)
    return array.astype(np.float32, copy=False), int(rate)


# ---------------------------------------------------------------------------------------------------------
# Video (PyAV)
# ---------------------------------------------------------------------------------------------------------

#: File suffixes ``save_video`` writes; ``load_video`` also reads ``.webm``, ``.avi``, ``.mov`` and ``.mkv``.
VIDEO_WRITE_FORMATS: tuple[str, ...] = (".mp4", ".gif")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")
#: Most frames ``load_video`` returns after resampling in time (a corrupt timestamp can claim years).
MAX_VIDEO_FRAMES = 100_000


def _video_frames_array(frames: np.ndarray | torch.Tensor, target: Path) -> np.ndarray:
    """Validate uint8 frames ``[T, H, W]`` or ``[T, H, W, C]`` (C = 1 or 3) -> ``[T, H, W, C]``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[..., None]
    if (
        array.dtype != np.uint8
        or array.ndim != 4
        or array.shape[-1] not in (1, 3)
        or min(array.shape[:3]) < 1
    ):
        raise ShapeError(
            f"cannot save video '{target}': expected uint8 frames [T, H, W, C] with C in (1, 3) and "
            f"T, H, W >= 1, got {array.dtype} {list(array.shape)}"
        )
    return np.ascontiguousarray(array)


def _even_padded(array: np.ndarray) -> np.ndarray:
    """Pad frames ``[T, H, W, C]`` to even height and width by repeating the last row / column (yuv420p)."""
    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return array


def _gif_palette(array: np.ndarray) -> np.ndarray:
    """One adaptive 256-colour palette for RGB frames ``[T, H, W, 3]``, as PyAV's ``pal8`` ARGB ``[256, 4]``."""
    step = max(1, len(array) // 16)
    mosaic = Image.fromarray(np.concatenate(list(array[::step]), axis=0))
    palette = np.zeros((256, 4), dtype=np.uint8)
    quantized = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    colours = np.asarray(quantized.getpalette() or [], dtype=np.uint8).reshape(-1, 3)[:256]
    palette[: len(colours), 1:] = colours  # each row is [A, R, G, B]
    palette[:, 0] = 255
    return palette


def save_video(frames: np.ndarray | torch.Tensor, path: str | os.PathLike, fps: float = 8.0) -> Path:
    """Write uint8 frames ``[T, H, W, C]`` (C = 1 or 3) or ``[T, H, W]`` as MP4 or GIF, atomically.

    ``.mp4``: H.264 (libx264, yuv420p, constant quality); odd heights or widths are padded to even by
    repeating the last row / column, since yuv420p needs even sizes. ``.gif``: grey frames are stored
    exactly; colour frames share one adaptive 256-colour palette. GIF delays are whole hundredths of a
    second, so the fps read back is ``100 / round(100 / fps)``.
    """
    import av

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_WRITE_FORMATS:
        raise ConfigError(
            f"cannot save video '{target}': unknown suffix '{target.suffix}', expected one of {list(VIDEO_WRITE_FORMATS)}"
        )
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ConfigError(f"cannot save video '{target}': fps must be a positive number, got {fps!r}")
    array = _video_frames_array(frames, target)
    grey = array.shape[-1] == 1
    rate = _fps_fraction(fps if suffix == ".mp4" else 100.0 / max(1, round(100.0 / fps)))
    with atomic_path(target) as temporary:
        try:
            with av.open(str(temporary), mode="w", format="mp4" if suffix == ".mp4" else "gif") as container:
                if suffix == ".mp4":
                    array = _even_padded(array)
                    stream = container.add_stream("libx264", rate=rate)
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "18", "preset": "medium"}
                    source_format = "gray" if grey else "rgb24"
                else:
                    stream = container.add_stream("gif", rate=rate)
                    stream.pix_fmt = "gray" if grey else "pal8"
                    source_format = stream.pix_fmt
                    if not grey:
                        palette = _gif_palette(array)
                stream.height, stream.width = array.shape[1], array.shape[2]
                for index, image in enumerate(array):
                    if suffix == ".gif" and not grey:
                        indices = Image.fromarray(image).quantize(palette=_pil_palette(palette), dither=0)
                        frame = av.VideoFrame.from_ndarray((np.asarray(indices), palette), format="pal8")
                    else:
                        frame = av.VideoFrame.from_ndarray(
                            image[..., 0] if grey else image, format=source_format
                        )
                        if suffix == ".mp4":
                            frame = frame.reformat(format="yuv420p")
                    frame.pts = index
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        except VqgenError:
            raise
        except OSError:
            raise
        except Exception as error:  # noqa: BLE001 - PyAV raises its own FFmpeg error types
            raise DataError(f"cannot write video '{target}': {_one_line(error)}") from error
    return target


def _pil_palette(palette: np.ndarray) -> Image.Image:
    image = Image.new("P", (1, 1))
    image.putpalette(palette[:, 1:].reshape(-1).tolist())
    return image


def _fps_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def load_video(
    path: str | os.PathLike,
    fps: float | None = None,
    max_frames: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decode a video file (MP4, WebM, AVI, GIF, ... anything FFmpeg reads) -> (uint8 ``[T, H, W, C]``, fps).

    ``channels``: 1 (grey) or 3 (RGB, the default). ``fps``: resample in time to this rate by taking, for
    each output time, the latest frame shown at or before it (the returned fps is then ``fps``).
    ``max_frames``: stop after that many output frames. Missing, empty, corrupt or non-video files raise a
    one-line ``DataError`` naming the file.
    """
    import av

    source = Path(path)
    if not source.is_file():
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"video file '{source}' {why}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels={channels!r} is not supported, expected 1 or 3")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps!r}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, got {max_frames}")
    if source.stat().st_size == 0:
        raise DataError(f"cannot decode video '{source}': the file is empty (0 bytes)")
    pixel_format = "gray" if channels == 1 else "rgb24"
    times: list[float] = []
    frames: list[np.ndarray] = []
    try:
        with av.open(str(source), mode="r") as container:
            if not container.streams.video:
                raise DataError(f"cannot decode video '{source}': the file holds no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            source_fps = float(rate) if rate else 0.0
            if not (math.isfinite(source_fps) and source_fps > 0):
                source_fps = float(fps or 25.0)
            for index, frame in enumerate(container.decode(stream)):
                times.append(frame.time if frame.time is not None else index / source_fps)
                frames.append(frame.to_ndarray(format=pixel_format))
                if max_frames is not None:
                    # Without resampling max_frames decoded frames suffice; with it, enough to cover the span.
                    span = times[-1] - times[0]
                    if (fps is None and len(frames) >= max_frames) or (fps and span >= max_frames / fps):
                        break
    except VqgenError:
        raise
    except Exception as error:  # noqa: BLE001 - PyAV raises InvalidDataError, OSError, ... for bad files
        raise DataError(f"cannot decode video '{source}': {_one_line(error)}") from error
    if not frames:
        raise DataError(f"cannot decode video '{source}': no frames could be decoded")
    if fps is not None:
        starts = np.asarray(times, dtype=np.float64) - times[0]
        duration = starts[-1] + 1.0 / source_fps
        count = max(1, int(math.floor(duration * fps + 1e-6)))
        if max_frames is not None:
            count = min(count, max_frames)
        if count > MAX_VIDEO_FRAMES:
            raise DataError(
                f"video '{source}' claims {duration:.0f} s, {count} frames at {fps:g} fps; at most "
                f"{MAX_VIDEO_FRAMES} frames are read (pass max_frames, or check the file's timestamps)"
            )
        # Output frame k shows the latest source frame shown at or before time k / fps.
        chosen = np.searchsorted(starts, np.arange(count) / fps + 1e-6, side="right") - 1
        frames = [frames[i] for i in np.clip(chosen, 0, len(frames) - 1)]
    if max_frames is not None:
        frames = frames[:max_frames]
    array = np.stack(frames)
    array = array[..., None] if array.ndim == 3 else array
    return array, float(fps) if fps else source_fps
