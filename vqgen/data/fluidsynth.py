"""Rendering instrument notes with the ``fluidsynth`` program and the FluidR3 GM sound font.

One FluidSynth process per call (one GM program) renders all its notes from one MIDI file, 0.1 s apart, and
the long WAV is cut at sample-exact offsets: FluidSynth starts an event one 64-sample block after the block in
which its time falls (:func:`_onset_sample`), and :class:`FluidSynthRenderer` checks the silence before every
cut.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqgen.data.midi import midi_file
from vqgen.data.note_renderers import _HELD_FRACTION
from vqgen.errors import DataError
from vqgen.io import _one_line

__all__ = ["DEFAULT_SOUNDFONTS", "FluidSynthRenderer", "find_soundfont", "fluidsynth_version"]

#: Where Debian/Ubuntu (``fluid-soundfont-gm``), Fedora and Arch put FluidR3 GM.
DEFAULT_SOUNDFONTS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
)

_FLUIDSYNTH_GAIN = 1.0  # float output: nothing clips, one note sounds at a time
_BLOCK = 64  # FluidSynth's audio.period-size: events take effect on these block boundaries
_GAP_MS = 100  # silence between notes in one render (the previous note is cut by All Sound Off)
_INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"


def _onset_sample(ms: int, sample_rate: int) -> int:
    """The first sample FluidSynth's fast renderer plays an event at ``ms`` milliseconds from: its sample
    timer hands the MIDI player ``int(1000 * block_start / sample_rate)`` ms at each 64-sample block, and the
    events due then sound from the next block."""
    block = math.ceil(ms * sample_rate / (1000 * _BLOCK))
    while int(1000.0 * block * _BLOCK / sample_rate) < ms:
        block += 1
    while block > 0 and int(1000.0 * (block - 1) * _BLOCK / sample_rate) >= ms:
        block -= 1
    return (block + 1) * _BLOCK


def _fluidsynth() -> str:
    path = shutil.which("fluidsynth")
    if path is None:
        raise DataError(
            f"building instrument notes needs the fluidsynth program, which is not on PATH: install it "
            f"(`{_INSTALL_HINT}`)"
        )
    return path


def fluidsynth_version() -> str:
    """The installed FluidSynth's version line (``"FluidSynth runtime version 2.3.1"``)."""
    result = subprocess.run([_fluidsynth(), "--version"], capture_output=True, text=True, check=False)
    lines = [line.strip() for line in result.stdout.splitlines() if "version" in line.lower()]
    return lines[0] if lines else "unknown"


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """``soundfont`` if given, else the first of :data:`DEFAULT_SOUNDFONTS` that exists; a one-line
    ``DataError`` with the install hint when there is none."""
    candidates = (
        [Path(soundfont).expanduser()] if soundfont is not None else [Path(p) for p in DEFAULT_SOUNDFONTS]
    )
    for path in candidates:
        if path.is_file():
            return path
    where = f"'{candidates[0]}' does not exist" if soundfont is not None else "no FluidR3 GM sound font found"
    raise DataError(f"building instrument notes needs the FluidR3 GM sound font: {where} (`{_INSTALL_HINT}`)")


class FluidSynthRenderer:
    """Renders with the ``fluidsynth`` program: one process per call (one program), all its notes in one MIDI
    file spaced :data:`_GAP_MS` apart, the long render cut at the exact onset samples. Reverb and chorus off,
    gain 1, float output (nothing clips), mono as the mean of FluidSynth's stereo.

    Raises the install hint as a one-line ``DataError`` when ``fluidsynth`` or the sound font is missing.
    """

    def __init__(self, soundfont: str | os.PathLike | None = None) -> None:
        self.executable = _fluidsynth()
        self.soundfont = find_soundfont(soundfont)
        self._description: dict | None = None

    def describe(self) -> dict:
        if self._description is None:
            digest = hashlib.sha256()
            with open(self.soundfont, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
            self._description = {
                "renderer": "fluidsynth",
                "fluidsynth_version": fluidsynth_version(),
                "soundfont": {
                    "path": str(self.soundfont),
                    "bytes": self.soundfont.stat().st_size,
                    "sha256_prefix": digest.hexdigest()[:16],
                },
                "settings": {
                    "gain": _FLUIDSYNTH_GAIN,
                    "reverb": False,
                    "chorus": False,
                    "held_fraction": _HELD_FRACTION,
                },
            }
        return self._description

    def __call__(
        self, program: int, notes: Sequence[tuple[int, int]], sample_rate: int, seconds: float
    ) -> np.ndarray:
        import soundfile

        length = round(seconds * sample_rate)
        if not notes:
            return np.zeros((0, length), dtype=np.float32)
        clip_ms = math.ceil(1000 * seconds)
        margin_ms = math.ceil(2000 * _BLOCK / sample_rate)  # the cut may land up to a block late
        slot_ms = clip_ms + margin_ms + _GAP_MS
        held_ms = max(1, round(_HELD_FRACTION * 1000 * seconds))
        events = [
            (
                _GAP_MS + i * slot_ms,
                _GAP_MS + i * slot_ms + held_ms,
                _GAP_MS + i * slot_ms + clip_ms + margin_ms,
                p,
                v,
            )
            for i, (p, v) in enumerate(notes)
        ]
        end_ms = _GAP_MS + len(notes) * slot_ms
        with tempfile.TemporaryDirectory(prefix="vqgen-notes-") as folder:
            midi, wav = Path(folder) / "notes.mid", Path(folder) / "notes.wav"
            midi.write_bytes(midi_file(program, events, end_ms))
            command = [
                self.executable, "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(_FLUIDSYNTH_GAIN),
                "-r", str(int(sample_rate)), "-O", "float", "-T", "wav", "-o", f"audio.period-size={_BLOCK}",
                "-o", "synth.dynamic-sample-loading=1", "-F", str(wav), str(self.soundfont), str(midi),
            ]  # fmt: skip
            try:
                result = subprocess.run(command, capture_output=True, check=False, timeout=600)
                if result.returncode != 0 or not wav.is_file():
                    message = " ".join(result.stderr.decode(errors="replace").split())[:200]
                    raise DataError(
                        f"fluidsynth failed for program {program} ({message or f'exit {result.returncode}'})"
                    )
                data, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
            except DataError:
                raise
            except Exception as error:  # noqa: BLE001 - a timeout or unreadable output
                raise DataError(
                    f"fluidsynth gave no usable audio for program {program}: {_one_line(error)}"
                ) from None
        if rate != sample_rate:
            raise DataError(
                f"fluidsynth rendered {rate} Hz instead of {sample_rate} Hz for program {program}"
            )
        mono = data.mean(axis=1)
        starts = [_onset_sample(on, sample_rate) for on, *_ in events]
        mono = np.pad(mono, (0, max(0, starts[-1] + length - mono.size)))
        clips = np.stack([mono[start : start + length] for start in starts])
        before = np.stack([mono[start - _BLOCK : start] for start in starts])
        sounding = np.abs(clips) > 0
        first = sounding.argmax(axis=1)[sounding.any(axis=1)]  # each sounding note's first non-zero sample
        if np.abs(before).max() > 0 or (first.size and first.min() >= _BLOCK):
            when = "earlier" if np.abs(before).max() > 0 else "later"
            raise DataError(
                f"fluidsynth ({fluidsynth_version()}) started the notes of program {program} {when} than expected: "
                "its event timing differs from the one this builder cuts at"
            )
        return clips
