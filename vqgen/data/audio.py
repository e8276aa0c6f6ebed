"""Audio folder dataset: validated WAV/FLAC/OGG files cut into fixed-length segments.

Every item is ``{"audio": float32 [C, S] in [-1, 1], "label": int (-1 if unlabelled), "index": int}``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vqgen.data.folders import DataWarning, MediaFolder
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.io import _one_line
from vqgen.media.audio import (
    AUDIO_EXTENSIONS,
    DEMO_AUDIO_DATASETS,
    check_resampling,
    mix_channels,
    resample_audio,
    unreadable_audio_hint,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEMO_AUDIO_DATASETS",
    "AudioFolderDataset",
    "audio_data_root",
    "load_audio_dataset",
]

# Extra source samples read on each side of a crop, so the resampling filter sees real context at its edges.
_RESAMPLE_MARGIN = 64


_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # the only encodings that can hold NaN or infinity


def _holds_a_finite_sample(path: Path) -> bool:
    """Whether a float file holds any finite sample: read block by block up to the first one (one block for
    any usable file; a whole read only for the file about to be refused)."""
    import soundfile

    for block in soundfile.blocks(str(path), blocksize=1 << 16, dtype="float32", always_2d=True):
        if np.isfinite(block).any():
            return True
    return False


def _inspect(path: Path, channels: int, sample_rate: int):
    """``(frames, sample_rate, channels)`` of ``path``, or a reason string why it cannot be used."""
    import soundfile

    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
        info = soundfile.info(str(path))
    except Exception as error:  # noqa: BLE001 - libsndfile raises several types for bad files
        return f"cannot be read as audio ({_one_line(error)}){unreadable_audio_hint(path)}"
    if info.frames < 1 or info.samplerate < 1 or info.channels < 1:
        return f"holds no audio ({info.frames} frames, {info.channels} channels, {info.samplerate} Hz)"
    if info.channels != channels and channels != 1 and info.channels != 1:
        return f"has {info.channels} channels, which cannot be mixed to {channels}"
    try:
        check_resampling(int(info.samplerate), sample_rate, "it")
        if info.subtype in _FLOAT_SUBTYPES and not _holds_a_finite_sample(path):
            return f"holds no finite sample (all {info.frames} frames are NaN or infinite)"
    except DataError as error:
        return str(error).removeprefix("it ")
    except Exception as error:  # noqa: BLE001 - libsndfile raises several types for bad files
        return f"cannot be read as audio ({_one_line(error)})"
    return int(info.frames), int(info.samplerate), int(info.channels)


class AudioFolderDataset(Dataset):
    """Every audio file under ``root`` (recursive; ``.wav``, ``.flac``, ``.ogg``, ``.opus``), validated up front.

    Each file is read with ``soundfile``, mixed to ``channels`` (mono: channel average; more channels from
    mono: duplicated), resampled to ``sample_rate`` with ``torchaudio.functional.resample`` and cut to
    ``segment_seconds`` (``S = round(segment_seconds * sample_rate)`` samples). Longer files are cropped:
    with ``train=True`` at an offset drawn from a generator seeded by ``(seed, index)``, so an item is a
    pure function of its index (the batch schedule stays reproducible across resumes and processes);
    with ``train=False`` the centre. Shorter files are zero-padded on the right.

    Unreadable files (empty, header only, a float file of NaN or infinity only, a format this libsndfile
    cannot decode, channels that cannot be mixed) are skipped with a :class:`DataWarning` naming them and
    their count (``strict=True``: ``DataError`` instead); NaN or infinite samples in an otherwise usable file
    are found only when read, and read as 0 with a warning. Labels come from first-level subfolders when
    there are two or more (sorted names; files directly in ``root`` get -1).

    Items: ``{"audio": float32 [channels, S] in [-1, 1], "label": int, "index": int}``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        sample_rate: int,
        channels: int = 1,
        segment_seconds: float = 1.0,
        train: bool = True,
        strict: bool = False,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if int(sample_rate) < 1:
            raise ConfigError(f"sample_rate={sample_rate!r} must be a positive number of samples per second")
        if int(channels) < 1:
            raise ConfigError(f"channels={channels!r} must be at least 1")
        if not (isinstance(segment_seconds, (int, float)) and math.isfinite(segment_seconds)):
            raise ConfigError(f"segment_seconds={segment_seconds!r} must be a positive number")
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.segment_samples = round(float(segment_seconds) * self.sample_rate)
        if self.segment_samples < 1:
            raise ConfigError(
                f"segment_seconds={segment_seconds!r} gives no samples at {self.sample_rate} Hz"
            )
        self.train, self.seed = bool(train), int(seed)
        folder = MediaFolder(
            self.root,
            AUDIO_EXTENSIONS,
            ("audio", "audio"),
            lambda path: _inspect(path, self.channels, self.sample_rate),
            strict,
        )
        self.files, self.skipped, self._labels = folder.files, folder.skipped, folder.labels
        self._info: list[tuple[int, int, int]] = folder.infos
        self.label_names: tuple[str, ...] | None = folder.label_names
        self.num_classes: int = folder.num_classes

    @property
    def labels(self) -> list[int]:
        """Label of every kept file, in ``files`` order (-1 where unlabelled)."""
        return list(self._labels)

    def __len__(self) -> int:
        return len(self.files)

    def resampled_length(self, index: int) -> int:
        """Length of file ``index`` once resampled to ``sample_rate``."""
        frames, rate, _ = self._info[index]
        return math.ceil(frames * self.sample_rate / rate)

    def crop_offset(self, index: int) -> int:
        """First output sample of the segment for item ``index`` (0 when the file is not longer)."""
        spare = self.resampled_length(index) - self.segment_samples
        if spare <= 0:
            return 0
        if not self.train:
            return spare // 2
        return int(np.random.default_rng([self.seed, index]).integers(0, spare + 1))

    def _read(self, index: int) -> torch.Tensor:
        """The segment of file ``index``: float32 ``[channels, <= segment_samples]`` at ``sample_rate``."""
        import soundfile

        path = self.files[index]
        frames, rate, _ = self._info[index]
        offset = self.crop_offset(index)
        # Source samples covering [offset, offset + segment) at the target rate, plus a margin. The read
        # starts on a multiple of rate / gcd(rate, sample_rate) source samples, which is a whole number
        # of output samples, so the crop lands on the same sample grid as resampling the whole file.
        start = math.floor(offset * rate / self.sample_rate)
        stop = math.ceil((offset + self.segment_samples) * rate / self.sample_rate)
        if rate == self.sample_rate:
            read_start, read_stop = start, min(frames, stop)
        else:
            step = rate // math.gcd(rate, self.sample_rate)
            read_start = max(0, start - _RESAMPLE_MARGIN) // step * step
            read_stop = min(frames, stop + _RESAMPLE_MARGIN)
        try:
            data, _ = soundfile.read(
                str(path), start=read_start, stop=read_stop, dtype="float32", always_2d=True
            )
            audio = mix_channels(np.ascontiguousarray(data.T), self.channels)
        except ShapeError as error:
            raise DataError(f"cannot use audio '{path}': {error}") from error
        except Exception as error:  # noqa: BLE001 - libsndfile raises several types for bad files
            raise DataError(f"cannot decode audio '{path}': {_one_line(error)}") from error
        wave = torch.from_numpy(audio)
        if not torch.isfinite(wave).all():
            # Found only when read (a scan would decode every file): warn and silence the bad samples.
            warnings.warn(
                f"audio file '{path}' holds NaN or infinite samples; they are read as 0",
                DataWarning,
                stacklevel=2,
            )
            wave = torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
        if rate != self.sample_rate:
            wave = resample_audio(wave, rate, self.sample_rate, f"audio file '{path}'")
            wave = wave[:, offset - read_start * self.sample_rate // rate :]
        return wave[:, : self.segment_samples]

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]  # IndexError past the end; negative indices normalised
        wave = self._read(index).clamp(-1.0, 1.0)
        if wave.shape[-1] < self.segment_samples:
            wave = torch.nn.functional.pad(wave, (0, self.segment_samples - wave.shape[-1]))
        return {"audio": wave.contiguous(), "label": int(self._labels[index]), "index": index}


def _demo_root(spec: str) -> Path:
    """The built folder of a named audio data set (a one-line ``DataError`` saying how to build it)."""
    if spec == "demo:instrument-notes":
        from vqgen.data.instrument_notes import instrument_notes_root

        return instrument_notes_root()
    from vqgen.data.spoken_digits import spoken_digits_root

    return spoken_digits_root()


def audio_data_root(spec: str, split: str = "train") -> Path:
    """The folder an audio dataset name points at, for :class:`AudioFolderDataset`.

    ``"demo:spoken-digits"`` / ``"demo:instrument-notes"``: the built folder ``/ split`` (a one-line ``DataError`` saying how to build
    it if it has not been built). A folder path: ``path / split`` when it holds both ``train`` and ``test``
    subfolders, else the folder itself. Unknown ``demo:`` names and missing folders raise ``DataError``.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split {split!r} not in ('train', 'test')")
    if spec.startswith("demo:"):
        if spec not in DEMO_AUDIO_DATASETS:
            raise DataError(f"unknown demo dataset '{spec}', available: {', '.join(DEMO_AUDIO_DATASETS)}")
        return _demo_root(spec) / split
    root = Path(spec)
    if not root.exists():
        raise DataError(
            f"data folder '{root}' does not exist (demo datasets: {', '.join(DEMO_AUDIO_DATASETS)})"
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root / split
    return root


def load_audio_dataset(
    spec: str,
    split: str,
    sample_rate: int | None = None,
    channels: int | None = None,
    segment_seconds: float | None = None,
    strict: bool = False,
) -> AudioFolderDataset:
    """An audio data set: ``demo:spoken-digits`` (``vqgen data build spoken-digits``) or a folder of audio files
    (``AudioFolderDataset``: resampled to ``sample_rate`` (default 16 kHz), mixed to ``channels`` (default mono),
    cut to ``segment_seconds`` (default 1); labels from subfolders)."""
    return AudioFolderDataset(
        audio_data_root(spec, split),
        sample_rate or 16000,
        channels or 1,
        segment_seconds or 1.0,
        train=split == "train",
        strict=strict,
    )
