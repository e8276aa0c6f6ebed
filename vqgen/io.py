"""Atomic writes, shared by every writer: media files, checkpoints, code shards, manifests.

The media file readers and writers live with their medium (``vqgen.media.image``, ``.video``, ``.audio``);
their names stay importable from here (``from vqgen.io import load_image``), loaded on first use.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from vqgen.errors import DataError, VqgenError

__all__ = ["atomic_path", "atomic_write_bytes"]

#: Names of the media modules' file functions this module used to define -> the module that holds them now.
_MOVED = {
    **dict.fromkeys(
        ["IMAGE_FORMATS", "image_mode_channels", "load_image", "make_grid", "pil_to_channels"]
        + ["save_image", "save_images", "to_uint8_images"],
        "vqgen.media.image",
    ),
    **dict.fromkeys(
        ["MAX_VIDEO_FRAMES", "VIDEO_EXTENSIONS", "VIDEO_WRITE_FORMATS", "load_video", "save_video"],
        "vqgen.media.video",
    ),
    **dict.fromkeys(
        ["AUDIO_FORMATS", "MAX_REDUCED_RATE", "check_resampling", "load_audio", "mix_channels"]
        + ["resample_audio", "save_audio"],
        "vqgen.media.audio",
    ),
}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'vqgen.io' has no attribute {name!r}")


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
