"""Spoken-digits demo data: the ten English digit words synthesised with espeak-ng, built once on disk.

``build_spoken_digits(output_dir)`` writes ``output_dir/{train,test}/<digit>/<voice>_p<pitch>_s<speed>_t<take>.wav``
(16-bit mono WAV, exactly 1.0 s, the word centred), which :class:`~vqgen.data.audio.AudioFolderDataset`
reads with labels 0..9 (the sorted digit folders), plus ``manifest.json``. A voice is an espeak-ng English
accent with a voice variant (``en-us+f3``); the split is by variant, so every test voice has a timbre that
no train voice has. ``demo:spoken-digits`` names the build at :func:`spoken_digits_root`.

Synthesis is deterministic: each clip's pitch, speed and level come from a generator seeded by
``(seed, voice, digit, take)``, and espeak-ng itself is deterministic.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vqgen.data.folders import demo_data_root
from vqgen.errors import ConfigError, DataError
from vqgen.io import _one_line, atomic_path

__all__ = [
    "DIGIT_WORDS",
    "SPOKEN_DIGITS_ACCENTS",
    "SPOKEN_DIGITS_SPLITS",
    "SPOKEN_DIGITS_TEST_VARIANTS",
    "SPOKEN_DIGITS_VARIANTS",
    "ClipSpec",
    "build_spoken_digits",
    "check_voices",
    "clip_specs",
    "espeak_ng_version",
    "fit_to_length",
    "spoken_digits_root",
    "split_voices",
]

DIGIT_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
SPOKEN_DIGITS_SPLITS: tuple[str, ...] = ("train", "test")

#: espeak-ng's own English accents in Debian's ``espeak-ng`` package (the MBROLA voices need extra packages).
SPOKEN_DIGITS_ACCENTS: tuple[str, ...] = (
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
)
#: Voice variants (timbre: formants, pitch range, breathiness); ``""`` is the accent's own default voice.
SPOKEN_DIGITS_VARIANTS: tuple[str, ...] = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
)
#: Variants held out for the test split (one male, one female): test voices are timbres never trained on.
SPOKEN_DIGITS_TEST_VARIANTS: tuple[str, ...] = ("m4", "f3")

_PITCH_RANGE = (25, 75)  # espeak-ng -p, 0..99 (50 is the voice's own pitch)
_SPEED_RANGE = (120, 190)  # espeak-ng -s, words per minute (175 is the default)
_PEAK_RANGE = (0.3, 0.9)  # peak amplitude of the written clip
_FADE_SECONDS = 0.005  # fade applied to both ends of a word that had to be cropped
_SILENCE_FRACTION = 0.01  # samples below 1% of the peak (-40 dB) at either end count as silence
_NAME = "spoken-digits"
_BUILD_HINT = "run `vqgen data build spoken-digits`"


# ---------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------


def spoken_digits_root(must_exist: bool = True) -> Path:
    """The folder ``demo:spoken-digits`` names: ``$VQGEN_DATA/spoken-digits`` if ``VQGEN_DATA`` is set, else
    ``$XDG_CACHE_HOME/vqgen/spoken-digits`` (``~/.cache/vqgen/spoken-digits``).

    With ``must_exist`` (the default) a folder without a ``manifest.json`` (never built, or a build that did
    not finish) raises a one-line :class:`DataError` saying how to build it.
    """
    return demo_data_root(_NAME, _BUILD_HINT, must_exist)


# ---------------------------------------------------------------------------------------------------------
# What gets synthesised
# ---------------------------------------------------------------------------------------------------------


def voice_name(accent: str, variant: str) -> str:
    """The espeak-ng ``-v`` argument: ``"en-us"`` or ``"en-us+f3"``."""
    return f"{accent}+{variant}" if variant else accent


def split_voices(
    accents: Sequence[str] = SPOKEN_DIGITS_ACCENTS,
    variants: Sequence[str] = SPOKEN_DIGITS_VARIANTS,
    test_variants: Sequence[str] = SPOKEN_DIGITS_TEST_VARIANTS,
) -> dict[str, list[str]]:
    """``{"train": [...], "test": [...]}``: every accent x variant voice, split by variant.

    A voice is in ``test`` exactly when its variant is in ``test_variants``, so no test timbre occurs in
    train (accents occur in both). Raises ``ConfigError`` if a test variant is unknown or either split would
    be empty.
    """
    unknown = [v for v in test_variants if v not in variants]
    if unknown:
        raise ConfigError(f"test variants {unknown} are not among the variants {list(variants)}")
    if not accents:
        raise ConfigError("spoken digits need at least one accent")
    train = [voice_name(a, v) for v in variants if v not in test_variants for a in accents]
    test = [voice_name(a, v) for v in variants if v in test_variants for a in accents]
    if not train or not test:
        raise ConfigError(
            f"test variants {list(test_variants)} leave an empty split (variants: {list(variants)})"
        )
    return {"train": train, "test": test}


@dataclass(frozen=True)
class ClipSpec:
    """One clip to synthesise: the word, the espeak-ng voice and settings, and where it goes."""

    split: str
    digit: int
    voice: str
    take: int
    pitch: int
    speed: int
    peak: float

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.digit]

    @property
    def relative_path(self) -> str:
        """``<split>/<digit>/<voice>_p<pitch>_s<speed>_t<take>.wav``."""
        return f"{self.split}/{self.digit}/{self.voice}_p{self.pitch}_s{self.speed}_t{self.take}.wav"


def clip_specs(voices: dict[str, list[str]], takes: int = 4, seed: int = 0) -> list[ClipSpec]:
    """Every clip of a build: for each split, voice, digit and take, a pitch, speed and peak level drawn
    from a generator seeded by ``(seed, crc32(voice), digit, take)``, so a clip does not depend on which
    other voices are built."""
    if takes < 1:
        raise ConfigError(f"takes must be at least 1, got {takes}")
    specs = []
    for split in SPOKEN_DIGITS_SPLITS:
        for voice in voices[split]:
            for digit in range(len(DIGIT_WORDS)):
                for take in range(takes):
                    rng = np.random.default_rng([seed, zlib.crc32(voice.encode()), digit, take])
                    pitch = int(rng.integers(_PITCH_RANGE[0], _PITCH_RANGE[1] + 1))
                    speed = int(rng.integers(_SPEED_RANGE[0], _SPEED_RANGE[1] + 1))
                    peak = round(float(rng.uniform(*_PEAK_RANGE)), 3)
                    specs.append(ClipSpec(split, digit, voice, take, pitch, speed, peak))
    return specs


# ---------------------------------------------------------------------------------------------------------
# Signal processing
# ---------------------------------------------------------------------------------------------------------


def fit_to_length(
    wave: np.ndarray, length: int, sample_rate: int, peak: float | None = None
) -> tuple[np.ndarray, bool]:
    """Trim silence from both ends of mono ``wave [S]``, centre the rest in ``length`` samples.

    Silence is every sample below 1% of the peak (-40 dB) before the first and after the last louder one.
    A word shorter than ``length`` is zero-padded on both sides (the extra sample, if odd, goes right). A
    longer one keeps its centre ``length`` samples with a 5 ms fade at both cut ends, and the second return
    value is True. ``peak``: scale so that the largest magnitude equals it. An all-silent input gives zeros.

    Returns float32 ``[length]`` and whether the word was cropped.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if length < 1:
        raise ConfigError(f"length must be at least 1 sample, got {length}")
    loudest = float(np.abs(wave).max()) if wave.size else 0.0
    if loudest == 0.0:
        return np.zeros(length, dtype=np.float32), False
    loud = np.flatnonzero(np.abs(wave) >= _SILENCE_FRACTION * loudest)
    word = wave[loud[0] : loud[-1] + 1]
    cropped = word.size > length
    if cropped:
        start = (word.size - length) // 2
        word = word[start : start + length].copy()
        fade = min(length // 2, max(1, round(_FADE_SECONDS * sample_rate)))
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
        word[:fade] *= ramp
        word[length - fade :] *= ramp[::-1]
    out = np.zeros(length, dtype=np.float32)
    left = (length - word.size) // 2
    out[left : left + word.size] = word
    if peak is not None:
        top = float(np.abs(out).max())
        if top > 0:
            out *= peak / top
    return out, cropped


# ---------------------------------------------------------------------------------------------------------
# espeak-ng
# ---------------------------------------------------------------------------------------------------------


def _espeak_ng() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        install = "brew install espeak-ng" if sys.platform == "darwin" else "apt-get install espeak-ng"
        raise DataError(
            f"building spoken digits needs the espeak-ng program, which is not on PATH: install it (`{install}`)"
        )
    return path


def espeak_ng_version() -> str:
    """The installed espeak-ng's version line (``"eSpeak NG text-to-speech: 1.51 ..."``, data path dropped)."""
    result = subprocess.run([_espeak_ng(), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().split("  Data at:")[0].strip() or "unknown"


def check_voices(voices: Sequence[str]) -> None:
    """Raise ``DataError`` naming any voice whose accent or variant this espeak-ng lacks (espeak-ng itself
    falls back to its default voice without a word)."""
    espeak = _espeak_ng()
    listings = []
    for flag in ("--voices", "--voices=variant"):
        result = subprocess.run([espeak, flag], capture_output=True, text=True, check=False)
        listings.append([line.split() for line in result.stdout.splitlines()[1:] if len(line.split()) >= 5])
    languages = {row[1] for row in listings[0]}
    variants = {row[4].rpartition("/")[2] for row in listings[1]}
    missing = [
        voice
        for voice in voices
        if voice.partition("+")[0] not in languages or (voice.partition("+")[2] or "") not in variants | {""}
    ]
    if missing:
        raise DataError(
            f"this espeak-ng ({espeak_ng_version()}) lacks the voice(s) {', '.join(missing[:5])}"
            f"{' and more' if len(missing) > 5 else ''}: install the full espeak-ng data package"
        )


def synthesize(word: str, voice: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of ``word``: float32 mono ``[S]`` and its sample rate (22,050 Hz)."""
    import io

    import soundfile

    command = [_espeak_ng(), "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", word]
    try:
        result = subprocess.run(command, capture_output=True, check=True, timeout=60)
        data, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    except subprocess.CalledProcessError as error:
        message = " ".join(error.stderr.decode(errors="replace").split())[:200]
        raise DataError(
            f"espeak-ng failed for voice '{voice}' ({message or f'exit {error.returncode}'})"
        ) from None
    except Exception as error:  # noqa: BLE001 - a timeout or unreadable output
        raise DataError(f"espeak-ng gave no usable audio for voice '{voice}': {_one_line(error)}") from None
    if data.shape[0] == 0:
        raise DataError(f"espeak-ng produced no audio for voice '{voice}' (is the voice installed?)")
    return data.mean(axis=1), int(rate)


def _render(spec: ClipSpec, sample_rate: int, length: int) -> tuple[np.ndarray, bool]:
    import torchaudio

    wave, rate = synthesize(spec.word, spec.voice, spec.pitch, spec.speed)
    if rate != sample_rate:
        wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, sample_rate).numpy()
    return fit_to_length(wave, length, sample_rate, peak=spec.peak)


# ---------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------


def _parameters(sample_rate: int, takes: int, seed: int, clip_seconds: float) -> dict:
    return {
        "sample_rate": int(sample_rate),
        "clip_seconds": clip_seconds,
        "takes_per_voice_and_digit": int(takes),
        "seed": int(seed),
        "accents": list(SPOKEN_DIGITS_ACCENTS),
        "variants": list(SPOKEN_DIGITS_VARIANTS),
        "test_variants": list(SPOKEN_DIGITS_TEST_VARIANTS),
        "pitch_range": list(_PITCH_RANGE),
        "speed_range_wpm": list(_SPEED_RANGE),
        "peak_range": list(_PEAK_RANGE),
        "words": list(DIGIT_WORDS),
    }


def _existing_build(manifest_path: Path, parameters: dict, version: str) -> dict | None:
    """The manifest of a complete build with these parameters and espeak-ng version, else None."""
    if not manifest_path.is_file():
        return None
    try:
        existing = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if (
        isinstance(existing, dict)
        and existing.get("parameters") == parameters
        and existing.get("espeak_ng_version") == version
    ):
        return existing
    return None


def _write_clips(
    folder: Path, specs: list, sample_rate: int, length: int, workers: int, progress: bool, start: float
) -> list[str]:
    """Render every clip of ``specs`` into ``folder`` (``workers`` espeak-ng processes at a time); returns the
    relative paths of words that had to be cropped."""
    import soundfile

    def write(spec: ClipSpec) -> bool:
        wave, was_cropped = _render(spec, sample_rate, length)
        soundfile.write(str(folder / spec.relative_path), wave, sample_rate, subtype="PCM_16")
        return was_cropped

    cropped: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (spec, was_cropped) in enumerate(zip(specs, pool.map(write, specs)), start=1):
            if was_cropped:
                cropped.append(spec.relative_path)
            if progress and (done % 500 == 0 or done == len(specs)):
                print(
                    f"spoken digits: {done}/{len(specs)} clips ({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return cropped


def build_spoken_digits(
    output_dir: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    progress: bool = True,
    *,
    takes: int = 4,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
) -> dict:
    """Synthesise the spoken-digits data set into ``output_dir`` (default :func:`spoken_digits_root`).

    8 accents x 13 variants = 104 voices; the 16 voices of variants ``m4`` and ``f3`` form the test split.
    Each voice says each digit ``takes`` times with its own pitch, speed and level (see :func:`clip_specs`):
    with the defaults 3,520 train and 640 test clips, 1.0 s each at ``sample_rate``, made by resampling
    espeak-ng's 22,050 Hz output with ``torchaudio.functional.resample`` and :func:`fit_to_length`. Words
    longer than 1 s (none with these settings) are centre-cropped with a fade and counted in the manifest.

    The build goes to a temporary sibling folder renamed into place at the end, so ``output_dir`` is either
    the previous complete build or the new one. An existing build with the same parameters and espeak-ng
    version is kept as it is unless ``force``. ``workers`` espeak-ng processes run at a time.

    Returns the manifest (also written to ``output_dir/manifest.json``).
    """
    if int(sample_rate) < 1000:
        raise ConfigError(f"sample_rate={sample_rate!r} is too low for speech, expected e.g. 16000")
    if int(workers) < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(output_dir).expanduser() if output_dir is not None else spoken_digits_root(must_exist=False)
    version = espeak_ng_version()  # raises the install hint first, before anything is written
    clip_seconds = 1.0
    parameters = _parameters(sample_rate, takes, seed, clip_seconds)
    existing = None if force else _existing_build(root / "manifest.json", parameters, version)
    if existing is not None:
        if progress:
            print(f"spoken digits already built at {root} (force=True rebuilds)", file=sys.stderr)
        return existing

    voices = split_voices()
    check_voices([*voices["train"], *voices["test"]])
    specs = clip_specs(voices, takes=takes, seed=seed)
    length = round(clip_seconds * int(sample_rate))
    start = time.perf_counter()
    with atomic_path(root) as temporary:
        temporary.mkdir()
        for split in SPOKEN_DIGITS_SPLITS:
            for digit in range(len(DIGIT_WORDS)):
                (temporary / split / str(digit)).mkdir(parents=True)

        cropped = _write_clips(temporary, specs, int(sample_rate), length, int(workers), progress, start)
        counts = {
            split: {
                "clips": sum(s.split == split for s in specs),
                "voices": len(voices[split]),
                "per_digit": [sum(s.split == split and s.digit == d for s in specs) for d in range(10)],
            }
            for split in SPOKEN_DIGITS_SPLITS
        }
        manifest = {
            "name": _NAME,
            "format": "WAV, 16-bit PCM, mono",
            "layout": "<split>/<digit>/<voice>_p<pitch>_s<speed>_t<take>.wav; labels 0-9 from the digit folders",
            "espeak_ng_version": version,
            "parameters": parameters,
            "voices": voices,
            "counts": counts,
            "cropped_words": cropped,
            "build_seconds": round(time.perf_counter() - start, 1),
            "clips": [asdict(s) for s in specs],
        }
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if progress:
        print(
            f"spoken digits: wrote {counts['train']['clips']} train and {counts['test']['clips']} test clips "
            f"to {root} in {manifest['build_seconds']:.0f} s",
            file=sys.stderr,
        )
    return manifest
