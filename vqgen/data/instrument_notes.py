"""Instrument-notes demo data: single notes of the 128 General MIDI programs, rendered once on disk with
FluidSynth from the FluidR3 GM sound font (real sampled instruments, MIT licence), in the manner of NSynth.

``build_instrument_notes(output)`` writes ``output/{train,test}/<NN>-<family>/<program>-<pitch>-<velocity>.wav``
(16-bit mono WAV, ``seconds`` long, numbers zero-padded to three digits), ``metadata.csv`` (one row per note:
file, family, family_id, program, program_name, pitch, velocity, split, gain_db) and ``manifest.json``.
:class:`~vqgen.data.audio.AudioFolderDataset` reads a split with the 16 family folders as classes; the
``NN-`` prefix (the GM family number) makes its sorted-folder labels equal the ``family_id`` column (in a
full build, where every family has notes in both splits; the dataset numbers only folders holding files).
``demo:instrument-notes`` names the build at :func:`instrument_notes_root`. ``vqgen encode --condition-fields
family,pitch`` conditions a prior on two fields instead, read from ``metadata.csv`` (``vqgen.data.conditions``).

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
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqgen.data.fluidsynth import (
    DEFAULT_SOUNDFONTS,
    FluidSynthRenderer,
    find_soundfont,
    fluidsynth_version,
)
from vqgen.data.folders import demo_data_root
from vqgen.data.midi import midi_file
from vqgen.data.note_renderers import _HELD_FRACTION, NoteRenderer, SineRenderer
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

_FADE_SECONDS = 0.01  # fade-out at the end of every clip (a sustained release is cut there)
_TARGET_RMS_DB = -20.0  # loudness normalisation target (dBFS RMS over the clip) ...
_PEAK_LIMIT = 0.9  # ... unless the peak would exceed this
_SILENCE_DB = -60.0  # renders whose peak is below this (dBFS at FluidSynth gain 1) are dropped
_NAME = "instrument-notes"
_BUILD_HINT = "run `vqgen data build instrument-notes`"


# ---------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------


def instrument_notes_root(must_exist: bool = True) -> Path:
    """The folder ``demo:instrument-notes`` names: ``$VQGEN_DATA/instrument-notes`` if ``VQGEN_DATA`` is set,
    else ``$XDG_CACHE_HOME/vqgen/instrument-notes`` (``~/.cache/vqgen/instrument-notes``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` saying how to build it.
    """
    return demo_data_root(_NAME, _BUILD_HINT, must_exist)


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
    _check_build_options(sample_rate, seconds, workers, renderer, soundfont)
    specs = note_specs(programs)
    program_list = sorted({s.program for s in specs})
    root = Path(output).expanduser() if output is not None else instrument_notes_root(must_exist=False)
    renderer = renderer if renderer is not None else FluidSynthRenderer(soundfont)  # install hint first
    parameters = _parameters(int(sample_rate), float(seconds), program_list)
    description = json.loads(json.dumps(renderer.describe()))  # as a manifest read back holds it
    if root.exists() and not force:
        existing = _reuse_or_refuse(root, parameters, description)
        if existing is not None:
            if progress:
                print(f"instrument notes already built at {root} (force=True rebuilds)", file=sys.stderr)
            return existing

    by_program: dict[int, list[NoteSpec]] = {}
    for spec in specs:
        by_program.setdefault(spec.program, []).append(spec)
    start = time.perf_counter()
    with atomic_path(root) as temporary:
        temporary.mkdir()
        _make_family_folders(temporary)
        render = _ProgramWriter(temporary, renderer, by_program, int(sample_rate), float(seconds))
        table, silent = _render_programs(render, program_list, by_program, int(workers), progress, start)
        _write_metadata(temporary / "metadata.csv", table)
        counts = _counts(table)
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


def _check_build_options(
    sample_rate: int,
    seconds: float,
    workers: int,
    renderer: NoteRenderer | None,
    soundfont: str | os.PathLike | None,
) -> None:
    """One-line ``ConfigError`` for a bad sample rate, length or worker count, or both renderer and soundfont."""
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


def _reuse_or_refuse(root: Path, parameters: dict, description: dict) -> dict | None:
    """The manifest of the build at ``root`` if it has these parameters and renderer; None if ``root`` is an
    empty folder (build there); else a one-line ``DataError``."""
    existing = _existing_manifest(root)
    if existing and existing.get("parameters") == parameters and existing.get("renderer") == description:
        return existing
    if not root.is_dir() or any(root.iterdir()):
        what = "a build with other settings" if existing else "not an instrument-notes build"
        raise DataError(f"'{root}' already exists ({what}): pass force=True to replace it")
    return None


def _make_family_folders(folder: Path) -> None:
    for split in INSTRUMENT_NOTES_SPLITS:
        for family_id in range(len(INSTRUMENT_FAMILIES)):
            (folder / split / family_folder(family_id)).mkdir(parents=True)


class _ProgramWriter:
    """Renders one program's notes and writes them under ``folder``: ``writer(program) -> (rows, silent)``,
    the metadata rows of the notes written and the relative paths of the silent notes dropped."""

    def __init__(
        self,
        folder: Path,
        renderer: NoteRenderer,
        by_program: dict[int, list[NoteSpec]],
        sample_rate: int,
        seconds: float,
    ) -> None:
        self.folder, self.renderer, self.by_program = folder, renderer, by_program
        self.sample_rate, self.seconds = sample_rate, seconds
        self.length = round(seconds * sample_rate)

    def __call__(self, program: int) -> tuple[list[dict], list[str]]:
        import soundfile

        notes = self.by_program[program]
        waves = self._render(program, notes)
        kept, dropped = [], []
        for spec, wave in zip(notes, waves):
            clip, gain_db = normalise_note(wave, self.sample_rate)
            if clip is None:
                dropped.append(spec.relative_path)
                continue
            soundfile.write(str(self.folder / spec.relative_path), clip, self.sample_rate, subtype="PCM_16")
            kept.append(_metadata_row(spec, gain_db))
        return kept, dropped

    def _render(self, program: int, notes: list[NoteSpec]) -> np.ndarray:
        """The renderer's waves for ``notes``, refused unless finite ``[len(notes), length]``."""
        waves = np.asarray(
            self.renderer(program, [(s.pitch, s.velocity) for s in notes], self.sample_rate, self.seconds)
        )
        if waves.shape != (len(notes), self.length) or not np.isfinite(waves).all():
            raise DataError(
                f"the renderer gave {waves.shape} (finite: {bool(np.isfinite(waves).all())}) for program "
                f"{program}, expected finite [{len(notes)}, {self.length}]"
            )
        return waves


def _metadata_row(spec: NoteSpec, gain_db: float) -> dict:
    """One row of ``metadata.csv`` (:data:`METADATA_COLUMNS`)."""
    return {
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


def _render_programs(
    render: _ProgramWriter,
    program_list: list[int],
    by_program: dict[int, list[NoteSpec]],
    workers: int,
    progress: bool,
    start: float,
) -> tuple[list[dict], list[str]]:
    """Render every program, ``workers`` at a time: ``(metadata rows in program order, silent notes)``."""
    rows: dict[int, list[dict]] = {}
    silent: list[str] = []
    pool = ThreadPoolExecutor(max_workers=workers)
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
    return [row for program in program_list for row in rows[program]], silent


def _write_metadata(path: Path, table: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METADATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    path.write_text(text.getvalue())


def _counts(table: list[dict]) -> dict:
    """Notes, programs and notes per family in each split."""
    return {
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
