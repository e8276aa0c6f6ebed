"""Instrument-notes demo data: single notes of the 128 General MIDI programs, rendered once on disk with
FluidSynth from the FluidR3 GM sound font (real sampled instruments, MIT licence), in the manner of NSynth.

``build_instrument_notes(output)`` writes ``output/{train,test}/<NN>-<family>/<program>-<pitch>-<velocity>.wav``
(16-bit mono WAV, ``seconds`` long, numbers zero-padded to three digits), ``metadata.csv`` (one row per note:
file, family, family_id, program, program_name, pitch, velocity, split, gain_db) and ``manifest.json``.
:class:`~vqgen.data.audio.AudioFolderDataset` reads a split with the 16 family folders as classes; the
``NN-`` prefix (the GM family number) makes its sorted-folder labels equal the ``family_id`` column (in a
full build, where every family has notes in both splits; the dataset numbers only folders holding files).
``demo:instrument-notes`` names the build at :func:`instrument_notes_root`.

What is rendered (all module constants, recorded in the manifest):

* Programs: the 128 melodic GM programs in 16 families of 8 (:data:`INSTRUMENT_FAMILIES`,
  :data:`GM_PROGRAM_NAMES`). The percussion kits (MIDI channel 10) are left out.
* Pitches: per family, every 3rd semitone of :data:`FAMILY_PITCH_RANGES` (all on one grid, C-D#-F#-A, so
  families share pitches); ranges follow where the instruments really play: bass 30-63 (F#1-D#4), pipe
  60-93 (C4-A6, piccolo and flute high), chromatic percussion 48-90, most others 36-84. FluidR3 sounds
  every key of every preset, but far outside an instrument's range the samples are stretched beyond
  recognition.
* Velocities 75 and 127 (:data:`NOTE_VELOCITIES`): loudness is normalised afterwards, so velocity is heard
  as timbre (the FluidR3 presets with velocity layers or velocity-to-filter change brightness).
* Sound effects (GM 120-127: fret noise, breath, seashore, bird, telephone, helicopter, applause,
  gunshot) keep a short range (48-72): the key only transposes the sample, and none has a musical pitch.
  They stay in as a class of their own. :data:`UNPITCHED_FAMILIES` (sound effects and percussive: woodblock,
  taiko, toms, synth drum, reverse cymbal) names the families to leave out of pitch metrics. Synth
  effects (96-103) are pads with noise and movement but follow the key, and count as pitched. Measured on
  the 16 kHz build (``benchmarks/instrument_notes_pitch.py``): YIN's f0 lies within 50 cents of the MIDI
  pitch for 81% of all notes, 89% of the 14 pitched families' notes (78-100% per family; organ 60%:
  drawbars and stops an octave or two below the key lengthen the waveform's period), 14% of percussive
  and 0% of sound-effect notes. What matters for ``pitch_kept`` (original vs reconstruction) is that the
  estimate is stable: through a mild codec (4 kHz low-pass, noise 30 dB down) it held for 89-100% of the
  voiced notes of every pitched family (organ 99%), 75% of percussive and 39% of sound-effect ones.
* The split holds out whole programs, as NSynth does: in every family the 2nd and 6th program (GM
  ``8 f + 1`` and ``8 f + 5``, :data:`TEST_PROGRAMS`: bright piano, electric piano 2, glockenspiel,
  xylophone, ...) go to ``test``, so each test instrument is unseen but has a close relative in train.

Each note is held for 75% of ``seconds`` and released, with FluidSynth's reverb and chorus off; the clip
ends with a 10 ms fade-out, is scaled to -20 dBFS RMS unless that would put its peak above 0.9 (the gain
is the ``gain_db`` column) and written as 16-bit PCM. Renders quieter than -60 dBFS peak at FluidSynth
gain 1 are dropped and listed in the manifest: FluidR3 has no samples for contrabass from C4 (60), tuba
and baritone sax from D#5 (75) up, 30 of 3,808 notes, leaving 2,826 train and 952 test notes.

Speed: one FluidSynth process per program renders all its notes from one MIDI file, 0.1 s apart, and the
long WAV is cut at sample-exact offsets (FluidSynth starts an event one 64-sample block after the block
in which its time falls; the builder checks the silence before every cut). Measured here (2 shared
cores, 16 kHz, 1 s notes): one process per note takes 0.28 s a note (FluidSynth start and sound-font
loading), one per program 0.42 s for all 34 notes of a piano: 22x faster. The full build takes about 40 s
with 2 workers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line, atomic_path

__all__ = [
    "DEFAULT_SOUNDFONTS",
    "FAMILY_PITCH_RANGES",
    "GM_PROGRAM_NAMES",
    "INSTRUMENT_FAMILIES",
    "INSTRUMENT_NOTES_DEMO",
    "INSTRUMENT_NOTES_SPLITS",
    "METADATA_COLUMNS",
    "NOTE_VELOCITIES",
    "PITCH_STEP",
    "TEST_PROGRAMS",
    "UNPITCHED_FAMILIES",
    "FluidSynthRenderer",
    "NoteRenderer",
    "NoteSpec",
    "SineRenderer",
    "build_instrument_notes",
    "family_folder",
    "find_soundfont",
    "fluidsynth_version",
    "instrument_notes_root",
    "load_instrument_notes_metadata",
    "midi_file",
    "normalise_note",
    "note_specs",
]

INSTRUMENT_NOTES_SPLITS: tuple[str, ...] = ("train", "test")
INSTRUMENT_NOTES_DEMO = "demo:instrument-notes"

#: The 16 General MIDI families, in program order: family ``f`` holds programs ``8 f`` to ``8 f + 7``.
INSTRUMENT_FAMILIES: tuple[str, ...] = (
    "piano",
    "chromatic-percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth-lead",
    "synth-pad",
    "synth-effects",
    "ethnic",
    "percussive",
    "sound-effects",
)

#: General MIDI level 1 program names, 0-based (program 0 is "Acoustic Grand Piano").
GM_PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp",
    "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum",
    "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)  # fmt: skip

#: Pitches are taken every PITCH_STEP semitones from each family's low end (all lows are multiples of 3).
PITCH_STEP = 3
#: Inclusive MIDI pitch range per family: where the family's instruments play (see the module docstring).
FAMILY_PITCH_RANGES: dict[str, tuple[int, int]] = {
    "piano": (36, 84),
    "chromatic-percussion": (48, 90),
    "organ": (36, 84),
    "guitar": (42, 81),
    "bass": (30, 63),
    "strings": (36, 84),
    "ensemble": (36, 84),
    "brass": (36, 81),
    "reed": (39, 81),
    "pipe": (60, 93),
    "synth-lead": (36, 84),
    "synth-pad": (36, 84),
    "synth-effects": (36, 84),
    "ethnic": (48, 84),
    "percussive": (48, 84),
    "sound-effects": (48, 72),
}
NOTE_VELOCITIES: tuple[int, ...] = (75, 127)
#: Held out for the test split: the 2nd and 6th program of every family (GM 8 f + 1 and 8 f + 5).
TEST_PROGRAMS: tuple[int, ...] = tuple(8 * f + k for f in range(16) for k in (1, 5))
#: Families whose notes mostly have no musical pitch, to leave out of pitch metrics (labels still hold the key).
UNPITCHED_FAMILIES: tuple[str, ...] = ("percussive", "sound-effects")

#: Columns of ``metadata.csv``.
METADATA_COLUMNS: tuple[str, ...] = (
    "file",
    "family",
    "family_id",
    "program",
    "program_name",
    "pitch",
    "velocity",
    "split",
    "gain_db",
)
#: Where Debian/Ubuntu (``fluid-soundfont-gm``), Fedora and Arch put FluidR3 GM.
DEFAULT_SOUNDFONTS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
)

_HELD_FRACTION = 0.75  # note-off after this share of the clip; the rest is the release
_FADE_SECONDS = 0.01  # fade-out at the end of every clip (a sustained release is cut there)
_TARGET_RMS_DB = -20.0  # loudness normalisation target (dBFS RMS over the clip) ...
_PEAK_LIMIT = 0.9  # ... unless the peak would exceed this
_SILENCE_DB = -60.0  # renders whose peak is below this (dBFS at FluidSynth gain 1) are dropped
_FLUIDSYNTH_GAIN = 1.0  # float output: nothing clips, one note sounds at a time
_BLOCK = 64  # FluidSynth's audio.period-size: events take effect on these block boundaries
_GAP_MS = 100  # silence between notes in one render (the previous note is cut by All Sound Off)
_ENV_VAR = "VQGEN_DATA"
_NAME = "instrument-notes"
_BUILD_HINT = "run `vqgen data build instrument-notes`"
_INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"


# ---------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------


def instrument_notes_root(must_exist: bool = True) -> Path:
    """The folder ``demo:instrument-notes`` names: ``$VQGEN_DATA/instrument-notes`` if ``VQGEN_DATA`` is set,
    else ``$XDG_CACHE_HOME/vqgen/instrument-notes`` (``~/.cache/vqgen/instrument-notes``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` saying how to build it.
    """
    if os.environ.get(_ENV_VAR):
        root = Path(os.environ[_ENV_VAR]).expanduser() / _NAME
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
        root = cache / "vqgen" / _NAME
    if must_exist and not (root / "manifest.json").is_file():
        raise DataError(f"{INSTRUMENT_NOTES_DEMO} has not been built at '{root}': {_BUILD_HINT}")
    return root


def load_instrument_notes_metadata(
    root: str | os.PathLike | None = None, split: str | None = None
) -> list[dict]:
    """The rows of ``metadata.csv`` (default root: :func:`instrument_notes_root`), numbers as int/float;
    only ``split``'s rows when given. ``file`` is relative to the root."""
    if split is not None and split not in INSTRUMENT_NOTES_SPLITS:
        raise ConfigError(f"split {split!r} not in {INSTRUMENT_NOTES_SPLITS}")
    root = Path(root) if root is not None else instrument_notes_root()
    path = root / "metadata.csv"
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise DataError(f"cannot read '{path}': {_one_line(error)} ({_BUILD_HINT})") from None
    if rows and set(METADATA_COLUMNS) - set(rows[0]):
        raise DataError(f"'{path}' lacks the columns {sorted(set(METADATA_COLUMNS) - set(rows[0]))}")
    for row in rows:
        for key in ("family_id", "program", "pitch", "velocity"):
            row[key] = int(row[key])
        row["gain_db"] = float(row["gain_db"])
    return [row for row in rows if split is None or row["split"] == split]


# ---------------------------------------------------------------------------------------------------------
# What gets rendered
# ---------------------------------------------------------------------------------------------------------


def family_folder(family_id: int) -> str:
    """The class folder of GM family ``family_id``: ``"00-piano"`` ... ``"15-sound-effects"``."""
    return f"{family_id:02d}-{INSTRUMENT_FAMILIES[family_id]}"


@dataclass(frozen=True)
class NoteSpec:
    """One note to render: GM program (0-127), MIDI pitch, MIDI velocity, and the split it belongs to."""

    split: str
    program: int
    pitch: int
    velocity: int

    @property
    def family_id(self) -> int:
        return self.program // 8

    @property
    def family(self) -> str:
        return INSTRUMENT_FAMILIES[self.family_id]

    @property
    def program_name(self) -> str:
        return GM_PROGRAM_NAMES[self.program]

    @property
    def relative_path(self) -> str:
        """``<split>/<NN>-<family>/<program>-<pitch>-<velocity>.wav``, numbers zero-padded to 3 digits."""
        return (
            f"{self.split}/{family_folder(self.family_id)}/"
            f"{self.program:03d}-{self.pitch:03d}-{self.velocity:03d}.wav"
        )


def note_specs(
    programs: Sequence[int] | None = None, velocities: Sequence[int] = NOTE_VELOCITIES
) -> list[NoteSpec]:
    """Every note of a build, ordered by program, pitch, velocity: each program's family pitch range every
    :data:`PITCH_STEP` semitones, at each velocity; programs in :data:`TEST_PROGRAMS` go to ``test``.

    ``programs``: a subset of 0-127 (default all). With the defaults: 3,808 notes, 2,856 train and 952 test
    (before silent renders are dropped).
    """
    programs = range(128) if programs is None else programs
    bad = [p for p in programs if not (isinstance(p, (int, np.integer)) and 0 <= p <= 127)]
    if bad or not programs:
        raise ConfigError(f"programs must be General MIDI programs 0-127, got {list(programs)[:10]}")
    bad = [v for v in velocities if not (isinstance(v, (int, np.integer)) and 1 <= v <= 127)]
    if bad or not velocities:
        raise ConfigError(f"velocities must be MIDI velocities 1-127, got {list(velocities)}")
    specs = []
    for program in sorted(set(int(p) for p in programs)):
        low, high = FAMILY_PITCH_RANGES[INSTRUMENT_FAMILIES[program // 8]]
        split = "test" if program in TEST_PROGRAMS else "train"
        for pitch in range(low, high + 1, PITCH_STEP):
            for velocity in velocities:
                specs.append(NoteSpec(split, program, pitch, int(velocity)))
    return specs


# ---------------------------------------------------------------------------------------------------------
# MIDI files
# ---------------------------------------------------------------------------------------------------------


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(
    program: int, notes: Sequence[tuple[int, int, int, int, int]], end_ms: int | None = None
) -> bytes:
    """A Standard MIDI File (format 0, one track, channel 1, 1 tick = 1 ms) that plays ``notes`` on GM
    ``program``.

    ``notes``: ``(on_ms, off_ms, silence_ms, pitch, velocity)``: note-on at ``on_ms``, note-off at ``off_ms``,
    All Sound Off (controller 120, which cuts the release) at ``silence_ms``. The track ends at ``end_ms``
    (default: the last event).
    """
    if not 0 <= int(program) <= 127:
        raise ConfigError(f"program must be 0-127, got {program}")
    events = []  # (ms, order, bytes): at one time, sound off and note off come before the next note-on
    for on, off, silence, pitch, velocity in notes:
        if not (0 <= on < off <= silence and 0 <= pitch <= 127 and 1 <= velocity <= 127):
            raise ConfigError(
                f"bad note (on={on}, off={off}, silence={silence}, pitch={pitch}, vel={velocity})"
            )
        events += [(on, 2, bytes((0x90, pitch, velocity))), (off, 1, bytes((0x80, pitch, 0)))]
        events.append((silence, 0, bytes((0xB0, 120, 0))))
    events.sort(key=lambda event: (event[0], event[1]))
    # Tempo 1,000,000 us per quarter note at 1,000 ticks per quarter: one tick is one millisecond.
    track = bytearray(
        b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big") + bytes((0x00, 0xC0, int(program)))
    )
    now = 0
    for ms, _, data in events:
        track += _vlq(ms - now) + data
        now = ms
    end = max(now, int(end_ms) if end_ms is not None else now)
    track += _vlq(end - now) + b"\xff\x2f\x00"
    return (
        b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)
    )


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


# ---------------------------------------------------------------------------------------------------------
# Renderers
# ---------------------------------------------------------------------------------------------------------


class NoteRenderer(Protocol):
    """Renders notes of one program: ``renderer(program, [(pitch, velocity), ...], sample_rate, seconds)``
    returns float32 ``[N, round(seconds * sample_rate)]`` (raw level, mono, held for ``held_seconds``);
    ``describe()`` returns a JSON-able dict for the manifest (what rendered the notes)."""

    def __call__(
        self, program: int, notes: Sequence[tuple[int, int]], sample_rate: int, seconds: float
    ) -> np.ndarray: ...

    def describe(self) -> dict: ...


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


class SineRenderer:
    """A stand-in for tests and dry runs: a sine at the note's equal-tempered frequency, amplitude
    ``0.5 velocity / 127``, 5 ms attack, decaying with time constant ``decay_seconds``, silent from the
    note-off plus 50 ms. ``silent``: ``(program, pitch)`` pairs rendered as zeros (to exercise dropping)."""

    def __init__(self, decay_seconds: float = 0.5, silent: Sequence[tuple[int, int]] = ()) -> None:
        self.decay_seconds = float(decay_seconds)
        self.silent = {(int(p), int(k)) for p, k in silent}

    def describe(self) -> dict:
        return {
            "renderer": "sine",
            "decay_seconds": self.decay_seconds,
            "silent": [list(p) for p in sorted(self.silent)],
        }

    def __call__(
        self, program: int, notes: Sequence[tuple[int, int]], sample_rate: int, seconds: float
    ) -> np.ndarray:
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        envelope = np.minimum(1.0, t / 0.005) * np.exp(-t / self.decay_seconds)
        envelope *= np.clip((_HELD_FRACTION * seconds + 0.05 - t) / 0.05, 0.0, 1.0)
        out = np.zeros((len(notes), t.size), dtype=np.float32)
        for i, (pitch, velocity) in enumerate(notes):
            if (int(program), int(pitch)) not in self.silent:
                frequency = 440.0 * 2.0 ** ((pitch - 69) / 12)
                out[i] = 0.5 * velocity / 127 * envelope * np.sin(2 * np.pi * frequency * t)
        return out


# ---------------------------------------------------------------------------------------------------------
# Signal processing
# ---------------------------------------------------------------------------------------------------------


def normalise_note(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray | None, float]:
    """Fade out the last 10 ms of ``wave [S]`` and scale it to -20 dBFS RMS, or less where that would put
    its peak above 0.9. Returns ``(float32 [S], gain in dB)``, or ``(None, -inf)`` for a render whose peak
    is below -60 dBFS (silent: dropped from the build)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if not peak >= 10 ** (_SILENCE_DB / 20):
        return None, -math.inf
    fade = min(wave.size, max(1, round(_FADE_SECONDS * sample_rate)))
    wave = wave.copy()
    wave[wave.size - fade :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 1) / fade)
    rms = float(np.sqrt(np.mean(wave**2)))
    gain = min(10 ** (_TARGET_RMS_DB / 20) / max(rms, 1e-12), _PEAK_LIMIT / peak)
    return (wave * gain).astype(np.float32), 20 * math.log10(gain)


# ---------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------


def _parameters(sample_rate: int, seconds: float, programs: list[int]) -> dict:
    return {
        "sample_rate": int(sample_rate),
        "seconds": float(seconds),
        "held_seconds": round(_HELD_FRACTION * seconds, 6),
        "fade_out_seconds": _FADE_SECONDS,
        "programs": programs,
        "velocities": list(NOTE_VELOCITIES),
        "pitch_step": PITCH_STEP,
        "pitch_ranges": {family: list(r) for family, r in FAMILY_PITCH_RANGES.items()},
        "test_programs": [p for p in TEST_PROGRAMS if p in programs],
        "normalisation": {"target_rms_dbfs": _TARGET_RMS_DB, "peak_limit": _PEAK_LIMIT},
        "silence_peak_dbfs": _SILENCE_DB,
    }


def _existing_manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def build_instrument_notes(
    output: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    seconds: float = 1.0,
    progress: bool = True,
    workers: int = 1,
    force: bool = False,
    soundfont: str | os.PathLike | None = None,
    *,
    programs: Sequence[int] | None = None,
    renderer: NoteRenderer | None = None,
) -> dict:
    """Render the instrument-notes data set into ``output`` (default :func:`instrument_notes_root`).

    Every note of :func:`note_specs` (3,808 with the defaults: 16 families x 8 programs x 9-17 pitches x 2
    velocities; 32 programs held out for test) is rendered by ``renderer`` (default
    :class:`FluidSynthRenderer` with ``soundfont``, default FluidR3 GM), loudness-normalised with
    :func:`normalise_note` and written as 16-bit mono WAV, ``seconds`` long at ``sample_rate``; silent renders
    are dropped and listed. ``workers`` programs render at a time. ``programs`` limits the build to some GM
    programs (tests, quick looks).

    Missing ``fluidsynth`` or sound font raises a one-line ``DataError`` naming the apt packages before
    anything is written. The build goes to a temporary sibling folder renamed into place at the end. An
    existing build with the same parameters and renderer is returned as it is; anything else already at
    ``output`` is refused with a one-line ``DataError`` unless ``force``, which replaces it.

    Returns the manifest (also ``output/manifest.json``; the per-note labels are in ``output/metadata.csv``).
    """
    if not 8000 <= int(sample_rate) <= 96000:
        raise ConfigError(f"sample_rate={sample_rate!r} must be between 8000 and 96000 Hz")
    if not (isinstance(seconds, (int, float)) and 0.1 <= seconds <= 30):
        raise ConfigError(f"seconds={seconds!r} must be between 0.1 and 30")
    if int(workers) < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if renderer is not None and soundfont is not None:
        raise ConfigError(
            "pass either a renderer or a soundfont (for the default FluidSynth renderer), not both"
        )
    specs = note_specs(programs)
    program_list = sorted({s.program for s in specs})
    root = Path(output).expanduser() if output is not None else instrument_notes_root(must_exist=False)
    renderer = renderer if renderer is not None else FluidSynthRenderer(soundfont)  # install hint first
    parameters = _parameters(int(sample_rate), float(seconds), program_list)
    description = json.loads(json.dumps(renderer.describe()))  # as a manifest read back holds it
    if root.exists() and not force:
        existing = _existing_manifest(root)
        if existing and existing.get("parameters") == parameters and existing.get("renderer") == description:
            if progress:
                print(f"instrument notes already built at {root} (force=True rebuilds)", file=sys.stderr)
            return existing
        if not root.is_dir() or any(root.iterdir()):
            what = "a build with other settings" if existing else "not an instrument-notes build"
            raise DataError(f"'{root}' already exists ({what}): pass force=True to replace it")

    by_program: dict[int, list[NoteSpec]] = {}
    for spec in specs:
        by_program.setdefault(spec.program, []).append(spec)
    rate, length = int(sample_rate), round(float(seconds) * int(sample_rate))
    start = time.perf_counter()
    rows: dict[int, list[dict]] = {}
    silent: list[str] = []
    with atomic_path(root) as temporary:
        temporary.mkdir()
        for split in INSTRUMENT_NOTES_SPLITS:
            for family_id in range(len(INSTRUMENT_FAMILIES)):
                (temporary / split / family_folder(family_id)).mkdir(parents=True)

        def render(program: int) -> tuple[list[dict], list[str]]:
            import soundfile

            notes = by_program[program]
            waves = np.asarray(
                renderer(program, [(s.pitch, s.velocity) for s in notes], rate, float(seconds))
            )
            if waves.shape != (len(notes), length) or not np.isfinite(waves).all():
                raise DataError(
                    f"the renderer gave {waves.shape} (finite: {bool(np.isfinite(waves).all())}) for program "
                    f"{program}, expected finite [{len(notes)}, {length}]"
                )
            kept, dropped = [], []
            for spec, wave in zip(notes, waves):
                clip, gain_db = normalise_note(wave, rate)
                if clip is None:
                    dropped.append(spec.relative_path)
                    continue
                soundfile.write(str(temporary / spec.relative_path), clip, rate, subtype="PCM_16")
                kept.append(
                    {
                        "file": spec.relative_path,
                        "family": spec.family,
                        "family_id": spec.family_id,
                        "program": spec.program,
                        "program_name": spec.program_name,
                        "pitch": spec.pitch,
                        "velocity": spec.velocity,
                        "split": spec.split,
                        "gain_db": round(gain_db, 2),
                    }
                )
            return kept, dropped

        pool = ThreadPoolExecutor(max_workers=int(workers))
        try:
            for done, (program, (kept, dropped)) in enumerate(
                zip(program_list, pool.map(render, program_list)), start=1
            ):
                rows[program] = kept
                silent += dropped
                if progress and (done % 16 == 0 or done == len(program_list)):
                    notes_done = sum(len(by_program[p]) for p in program_list[:done])
                    print(
                        f"instrument notes: {done}/{len(program_list)} programs, {notes_done} notes "
                        f"({time.perf_counter() - start:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:  # on an error, programs not started yet are not rendered for nothing
            pool.shutdown(wait=True, cancel_futures=True)
        table = [row for program in program_list for row in rows[program]]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=METADATA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        (temporary / "metadata.csv").write_text(text.getvalue())
        counts = {
            split: {
                "notes": sum(row["split"] == split for row in table),
                "programs": sorted({row["program"] for row in table if row["split"] == split}),
                "per_family": {
                    family: sum(row["split"] == split and row["family"] == family for row in table)
                    for family in INSTRUMENT_FAMILIES
                },
            }
            for split in INSTRUMENT_NOTES_SPLITS
        }
        manifest = {
            "name": _NAME,
            "format": "WAV, 16-bit PCM, mono",
            "layout": "<split>/<NN>-<family>/<program>-<pitch>-<velocity>.wav; labels 0-15 from the family "
            "folders (= family_id); metadata.csv has program, pitch, velocity and gain per note",
            "renderer": description,
            "parameters": parameters,
            "families": [family_folder(i) for i in range(len(INSTRUMENT_FAMILIES))],
            "unpitched_families": list(UNPITCHED_FAMILIES),
            "counts": counts,
            "silent_renders": {"count": len(silent), "notes": silent},
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if progress:
        print(
            f"instrument notes: wrote {counts['train']['notes']} train and {counts['test']['notes']} test notes "
            f"to {root} in {manifest['build_seconds']:.0f} s ({len(silent)} silent renders dropped)",
            file=sys.stderr,
        )
    return manifest
