"""Hypothesis fuzzing of every loader that reads user files: never a hang, never an error but a VqgenError.

Fuzzed inputs: random bytes and PNG-looking files for ``vqgen.media.image.load_image``; garbage or mutated
``config.json`` and safetensors-like weights (8-byte little-endian header length + junk JSON + junk) for
``vqgen.loading.load_tokenizer``; garbage or mutated ``model_index.json`` for
``ImagePipeline.from_pretrained``; garbage or mutated ``manifest.json`` and shard files for
``CodeShardDataset``. Each example runs under a wall-clock alarm, so a hang fails the test instead of
stalling the suite. ``max_examples`` is kept small (the file runs in well under a minute on two cores);
set ``HYPOTHESIS_MAX_EXAMPLES`` to fuzz longer.

Audio and video: random bytes, RIFF/WAVE headers with random fields (then maybe cut short), and truncated or
byte-flipped copies of real WAV / FLAC / OGG files for ``vqgen.media.audio.load_audio``; random bytes, container
signatures followed by junk, and truncated or byte-flipped copies of a real MP4 and GIF (written with
``vqgen.media.video.save_video``) for ``vqgen.media.video.load_video``, under the suffixes ``.mp4 .gif .webm .avi``. The folder
datasets (``AudioFolderDataset``, ``VideoFolderDataset``) get one fuzzed file among good ones: it is skipped
with a ``DataWarning`` naming it, or kept, and then its item loads or raises a ``VqgenError``.

Deliberately not fuzzed here: a ``model_index.json`` naming a missing ``vqgen.*`` module (its own test in
``tests/test_bad_input.py``). Cases once found here have their own tests in ``tests/test_bad_input.py``:
resampling audio whose header claims an arbitrary sample rate (refused: the resampling kernel grows with the
rates' coprime parts) or holding no samples at all, and ``load_video(fps=...)`` of an MP4 whose timestamps a
flipped byte made enormous (refused beyond ``MAX_VIDEO_FRAMES``). Here audio
is only resampled when the file's rate is a usual one or at most 1000 Hz (a flipped byte in the first 64 bytes,
where the headers keep the rate, turns resampling off), and ``fps`` is only asked of GIFs, random bytes and
truncated copies.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vqgen.data.audio import AudioFolderDataset
from vqgen.data.folders import DataWarning
from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.data.video import VideoFolderDataset
from vqgen.errors import VqgenError
from vqgen.loading import load_tokenizer
from vqgen.media.audio import load_audio, save_audio
from vqgen.media.image import load_image
from vqgen.media.video import load_video, save_video
from vqgen.pipelines.image import ImagePipeline

MAX_EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # timing varies with the machine's load; hangs are caught by _no_hang instead
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PER_EXAMPLE_SECONDS = 30
WEIGHTS = "diffusion_pytorch_model.safetensors"


class Hang(Exception):
    """An example ran longer than PER_EXAMPLE_SECONDS."""


@contextlib.contextmanager
def _no_hang(seconds: float = PER_EXAMPLE_SECONDS):
    def alarm(signum, frame):
        raise Hang(f"a loader ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _only_vqgen_errors(load) -> None:
    """Call ``load()``; success or a one-line VqgenError pass, anything else (or a hang) fails."""
    with _no_hang():
        try:
            load()
        except VqgenError as error:
            assert "\n" not in str(error), repr(str(error))


# ----------------------------------------------------------------------------------------- strategies

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _mutated_json(valid: dict) -> st.SearchStrategy[bytes]:
    """Bytes of: random bytes, random JSON, ``valid`` with some keys replaced/deleted, or ``valid`` cut short."""
    keys = sorted(valid)

    @st.composite
    def mutate(draw) -> bytes:
        document = dict(valid)
        for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3)):
            if draw(st.booleans()):
                document[key] = draw(JSON)
            else:
                document.pop(key, None)
        return json.dumps(document).encode()

    text = json.dumps(valid).encode()
    return st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda value: json.dumps(value).encode()),
        mutate(),
        st.integers(0, len(text)).map(lambda cut: text[:cut]),
    )


@st.composite
def safetensors_like(draw) -> bytes:
    """An 8-byte little-endian header length, a JSON-ish header (maybe tensor-shaped), then junk bytes."""
    tensor = st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(["F32", "F16", "I64", "I32", "BOOL", "U8", "XX"]) | JSON,
            "shape": st.lists(st.integers(-2, 1 << 40), max_size=4) | JSON,
            "data_offsets": st.lists(st.integers(-2, 1 << 40), min_size=0, max_size=3) | JSON,
        }
    )
    header = draw(
        st.dictionaries(st.text(max_size=30), tensor | JSON, max_size=4).map(json.dumps)
        | st.text(max_size=60)
    ).encode()
    length = draw(st.sampled_from([len(header), 0, 1, len(header) + 1]) | st.integers(0, (1 << 64) - 1))
    return struct.pack("<Q", length) + header + draw(st.binary(max_size=64))


def _png(size: int = 16, mode: str = "L") -> bytes:
    rng = np.random.default_rng(size)
    shape = (size, size) if mode == "L" else (size, size, 3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


REAL_PNGS = [_png(16, "L"), _png(24, "RGB")]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@st.composite
def png_like(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "signature+junk", "ihdr+junk", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "signature+junk":
        return PNG_SIGNATURE + draw(st.binary(max_size=300))
    if kind == "ihdr+junk":  # a header claiming any size, then garbage instead of image data
        width, height = draw(st.integers(0, 1 << 31)), draw(st.integers(0, 1 << 31))
        fields = struct.pack(">IIBBBBB", width, height, draw(st.sampled_from([1, 8, 16, 3])), 0, 0, 0, 0)
        return PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + fields + b"\0\0\0\0" + draw(st.binary())
    data = draw(st.sampled_from(REAL_PNGS))
    if kind == "truncated":
        return data[: draw(st.integers(0, len(data) - 1))]
    position = draw(st.integers(0, len(data) - 1))
    return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("saved")
    tokenizer, prior = make_tokenizer(), make_prior()
    tokenizer.save_pretrained(str(root / "tok"))
    ImagePipeline(tokenizer, prior).save_pretrained(str(root / "pipe"))
    encode_dataset(tokenizer, make_images(n=12), root / "shards", progress=False)
    return {"tok": root / "tok", "pipe": root / "pipe", "shards": root / "shards"}


@contextlib.contextmanager
def _copy_of(folder: Path):
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / folder.name
        shutil.copytree(folder, target)
        yield target


# ------------------------------------------------------------------------------------------------ tests


@FUZZ
@given(
    data=png_like(),
    suffix=st.sampled_from([".png", ".jpg", ".webp", ".PNG"]),
    channels=st.sampled_from([None, 1, 3]),
)
def test_load_image_never_fails_but_with_a_vqgen_error(data, suffix, channels):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"fuzz{suffix}"
        path.write_bytes(data)
        _only_vqgen_errors(lambda: load_image(path, channels=channels))


def test_the_image_fuzzer_reaches_real_decoding():
    """Guard against a fuzzer that only ever produces garbage: some real PNGs load through the same path."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "ok.png"
        path.write_bytes(REAL_PNGS[1])
        assert load_image(path).shape == (24, 24, 3)


@FUZZ
@given(data=st.data())
def test_load_tokenizer_with_fuzzed_config_and_weights(saved, data):
    valid_config = json.loads((saved["tok"] / "config.json").read_text())
    which = data.draw(st.sampled_from(["config", "weights", "both"]))
    config = data.draw(_mutated_json(valid_config)) if which != "weights" else None
    real_weights = (saved["tok"] / WEIGHTS).read_bytes()
    weights = None
    if which != "config":
        weights = data.draw(
            safetensors_like()
            | st.binary(max_size=100)
            | st.integers(0, len(real_weights) - 1).map(lambda cut: real_weights[:cut])
        )
    with _copy_of(saved["tok"]) as folder:
        if config is not None:
            (folder / "config.json").write_bytes(config)
        if weights is not None:
            (folder / WEIGHTS).write_bytes(weights)
        _only_vqgen_errors(lambda: load_tokenizer(folder))


MODULES = ["vqgen", "vqgen.tokenizers.image", "vqgen.priors.prior", "os", "diffusers", "transformers", ""]
CLASSES = ["ImageTokenizer", "CodePrior", "ImagePipeline", "LlamaForCausalLM", "system", "", "Nope"]


@st.composite
def model_index(draw, valid: dict) -> bytes:
    if draw(st.booleans()):
        return draw(_mutated_json(valid))
    document = dict(valid)
    for name in draw(st.lists(st.sampled_from(["tokenizer", "prior", "extra"]), min_size=1, max_size=2)):
        entry = [draw(st.sampled_from(MODULES)), draw(st.sampled_from(CLASSES) | st.text(max_size=10))]
        document[name] = draw(st.just(entry) | st.lists(st.sampled_from(MODULES + CLASSES), max_size=3))
    return json.dumps(document).encode()


@FUZZ
@given(data=st.data())
def test_pipeline_from_pretrained_with_a_fuzzed_model_index(saved, data):
    valid = json.loads((saved["pipe"] / "model_index.json").read_text())
    index = data.draw(model_index(valid))
    with _copy_of(saved["pipe"]) as folder:
        (folder / "model_index.json").write_bytes(index)
        _only_vqgen_errors(lambda: ImagePipeline.from_pretrained(str(folder)))


@FUZZ
@given(data=st.data())
def test_code_shard_dataset_with_a_fuzzed_manifest_or_shard(saved, data):
    valid = json.loads((saved["shards"] / "manifest.json").read_text())
    shard_path = saved["shards"] / valid["shards"][0]["file"]
    real = shard_path.read_bytes()
    which = data.draw(st.sampled_from(["manifest", "shard", "both", "shard-entry"]))
    manifest = data.draw(_mutated_json(valid)) if which in ("manifest", "both") else None
    if which == "shard-entry":  # a well-formed manifest whose shard list is fuzzed
        entries = st.fixed_dictionaries(
            {
                "file": st.sampled_from([shard_path.name, "", ".", "..", "../x", "/etc/passwd"])
                | st.text(max_size=10),
                "items": JSON,
            }
        )
        manifest = json.dumps({**valid, "shards": data.draw(st.lists(entries | JSON, max_size=3))}).encode()
    shard = None
    if which in ("shard", "both"):
        shard = data.draw(
            safetensors_like()
            | st.binary(max_size=100)
            | st.integers(0, len(real) - 1).map(lambda cut: real[:cut])
        )
    with _copy_of(saved["shards"]) as folder:
        if manifest is not None:
            (folder / "manifest.json").write_bytes(manifest)
        if shard is not None:
            (folder / shard_path.name).write_bytes(shard)
        _only_vqgen_errors(lambda: CodeShardDataset(folder))


@FUZZ
@given(
    codes=st.lists(st.integers(-2, 17) | st.integers(-(1 << 40), 1 << 40), min_size=16, max_size=16),
    labels=st.integers(-5, 5),
)
def test_code_shard_dataset_with_fuzzed_code_values(saved, codes, labels):
    """Well-formed safetensors holding out-of-range codes or labels are refused, never loaded or crashed on."""
    from safetensors.torch import save_file

    valid = json.loads((saved["shards"] / "manifest.json").read_text())
    entry = valid["shards"][0]
    tensors = {
        "codes": torch.tensor(codes, dtype=torch.int64).reshape(1, 4, 4).repeat(entry["items"], 1, 1),
        "labels": torch.full((entry["items"],), labels, dtype=torch.int64),
    }
    with _copy_of(saved["shards"]) as folder:
        save_file(tensors, str(folder / entry["file"]))
        in_range = min(codes) >= 0 and max(codes) < valid["codebook_size"] and -1 <= labels < 3
        if in_range:
            assert len(CodeShardDataset(folder)) == entry["items"]
        else:
            with pytest.raises(VqgenError):
                CodeShardDataset(folder)


# ---------------------------------------------------------------------------------------- audio, video

RATE = 8000
#: Sample rates a header may claim that are still cheap to resample to RATE (see the module docstring).
USUAL_RATES = [8000, 16000, 11025, 22050, 44100, 48000, 96000]
#: Bytes at the start of a WAV, FLAC or OGG file that hold its sample rate (WAV 44, FLAC 42, OGG 58).
HEADER_BYTES = 64


def _written(save, suffix: str, *arguments, **options) -> bytes:
    """The bytes ``save(arguments[0], path, *arguments[1:], **options)`` writes to a file ending in ``suffix``."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"media{suffix}"
        save(*arguments[:1], path, *arguments[1:], **options)
        return path.read_bytes()


def _tone(samples: int = 240, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    wave = 0.5 * np.sin(2 * np.pi * freq * np.arange(samples) / RATE)
    return np.repeat(wave[None], channels, axis=0).astype(np.float32)


def _clip(frames: int = 5, size: int = 8, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, size, size, channels), dtype=np.uint8)


REAL_AUDIO = {
    suffix: _written(save_audio, suffix, _tone(channels=channels), RATE)
    for suffix, channels in ((".wav", 1), (".flac", 2), (".ogg", 1))
}
REAL_VIDEOS = {
    "mp4": _written(save_video, ".mp4", _clip(channels=3), fps=10.0),
    "gif": _written(save_video, ".gif", _clip(channels=3, seed=1), fps=10.0),
    "grey-gif": _written(save_video, ".gif", _clip(channels=1, seed=2), fps=10.0),
}
AUDIO_SIGNATURES = [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02", b"RIFF"]
VIDEO_SIGNATURES = [
    b"GIF89a",
    b"GIF87a\x08\x00\x08\x00\xf7\x00\x00",
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"RIFF\x00\x10\x00\x00AVI LIST",
]


def _flipped(draw, data: bytes, start: int = 0) -> tuple[bytes, int]:
    """``data`` with 1 to 4 bytes from ``start`` on replaced; returns it and the first changed position."""
    changed = bytearray(data)
    positions = draw(st.lists(st.integers(start, len(data) - 1), min_size=1, max_size=4))
    for position in positions:
        changed[position] = draw(st.integers(0, 255))
    return bytes(changed), min(positions)


@st.composite
def riff_wave(draw, usual_rate: bool = False) -> tuple[bytes, bool]:
    """A RIFF/WAVE file whose every header field may be wrong, maybe cut short; and whether its rate is cheap
    to resample (a usual rate or at most 1000 Hz)."""
    tag = draw(st.sampled_from([1, 3, 6, 7, 0xFFFE, 0]) | st.integers(0, 0xFFFF))
    channels = draw(st.sampled_from([1, 2]) | st.integers(0, 0xFFFF))
    cheap = st.sampled_from(USUAL_RATES) | st.integers(0, 1000)
    rate = draw(cheap if usual_rate else cheap | st.integers(0, (1 << 32) - 1))
    bits = draw(st.sampled_from([8, 16, 24, 32, 64]) | st.integers(0, 0xFFFF))
    block = draw(st.just(channels * bits // 8 & 0xFFFF) | st.integers(0, 0xFFFF))
    byte_rate = draw(st.just(rate * block & 0xFFFFFFFF) | st.integers(0, (1 << 32) - 1))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, block, bits) + draw(st.binary(max_size=24))
    fmt_size = draw(st.just(len(fmt)) | st.sampled_from([16, 18, 40]) | st.integers(0, (1 << 32) - 1))
    payload = draw(st.binary(max_size=256))
    data_size = draw(st.just(len(payload)) | st.integers(0, (1 << 32) - 1))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", fmt_size)
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
        + payload
    )
    riff_size = draw(st.just(len(body)) | st.integers(0, (1 << 32) - 1))
    whole = b"RIFF" + struct.pack("<I", riff_size) + body
    cut = draw(st.none() | st.integers(0, len(whole)))
    return whole[:cut], rate in USUAL_RATES or rate <= 1000


@st.composite
def audio_like(draw, resample_only_cheap: bool = False) -> tuple[bytes, bool]:
    """Fuzzed audio bytes and whether resampling them is in scope (their header rate is left cheap).

    ``resample_only_cheap``: produce only files that keep a cheap rate (for the folder dataset, which always
    resamples to its own rate)."""
    kind = draw(st.sampled_from(["random", "signature+junk", "riff", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=300)), True
    if kind == "signature+junk":
        return draw(st.sampled_from(AUDIO_SIGNATURES)) + draw(st.binary(max_size=300)), True
    if kind == "riff":
        return draw(riff_wave(usual_rate=resample_only_cheap))
    data = REAL_AUDIO[draw(st.sampled_from(sorted(REAL_AUDIO)))]
    if kind == "truncated":
        return data[: draw(st.integers(0, len(data) - 1))], True
    data, first = _flipped(draw, data, HEADER_BYTES if resample_only_cheap else 0)
    return data, first >= HEADER_BYTES


@st.composite
def video_like(draw) -> tuple[bytes, bool]:
    """Fuzzed video bytes and whether ``fps`` resampling is in scope (not a byte-flipped MP4)."""
    kind = draw(st.sampled_from(["random", "signature+junk", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=400)), True
    if kind == "signature+junk":
        return draw(st.sampled_from(VIDEO_SIGNATURES)) + draw(st.binary(max_size=400)), True
    name = draw(st.sampled_from(sorted(REAL_VIDEOS)))
    data = REAL_VIDEOS[name]
    if kind == "truncated":
        return data[: draw(st.integers(0, len(data) - 1))], True
    return _flipped(draw, data)[0], name != "mp4"


AUDIO_SUFFIXES = st.sampled_from([".wav", ".flac", ".ogg", ".WAV"])
VIDEO_SUFFIXES = st.sampled_from([".mp4", ".gif", ".webm", ".avi"])


@FUZZ
@given(data=st.data(), fuzzed=audio_like(), suffix=AUDIO_SUFFIXES, channels=st.sampled_from([None, 1, 2]))
def test_load_audio_never_fails_but_with_a_vqgen_error(data, fuzzed, suffix, channels):
    payload, cheap = fuzzed
    sample_rate = data.draw(st.sampled_from([None, RATE, 16000])) if cheap else None
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"fuzz{suffix}"
        path.write_bytes(payload)
        _only_vqgen_errors(lambda: load_audio(path, sample_rate=sample_rate, channels=channels))


def _decodes_to_no_samples(path: Path) -> bool:
    import soundfile

    try:
        return len(soundfile.read(str(path), dtype="float32", always_2d=True)[0]) == 0
    except Exception:  # noqa: BLE001 - load_audio itself refuses what soundfile cannot read
        return False


def test_the_audio_fuzzer_reaches_real_decoding():
    """The real files behind the truncations and flips decode, also resampled and mixed."""
    with tempfile.TemporaryDirectory() as scratch:
        for suffix, data in REAL_AUDIO.items():
            path = Path(scratch) / f"ok{suffix}"
            path.write_bytes(data)
            audio, rate = load_audio(path, sample_rate=16000, channels=1)
            assert rate == 16000 and audio.shape[0] == 1 and 470 <= audio.shape[1] <= 490, suffix


@FUZZ
@given(
    data=st.data(),
    fuzzed=video_like(),
    suffix=VIDEO_SUFFIXES,
    channels=st.sampled_from([None, 1, 3]),
    max_frames=st.sampled_from([None, 1, 3]),
)
def test_load_video_never_fails_but_with_a_vqgen_error(data, fuzzed, suffix, channels, max_frames):
    payload, fps_in_scope = fuzzed
    fps = data.draw(st.sampled_from([None, 4.0, 25.0])) if fps_in_scope else None
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"fuzz{suffix}"
        path.write_bytes(payload)
        _only_vqgen_errors(lambda: load_video(path, fps=fps, max_frames=max_frames, channels=channels))


def test_the_video_fuzzer_reaches_real_decoding():
    with tempfile.TemporaryDirectory() as scratch:
        for name, data in REAL_VIDEOS.items():
            path = Path(scratch) / f"ok.{name.removeprefix('grey-')}"
            path.write_bytes(data)
            frames, fps = load_video(path, channels=1)
            assert frames.shape == (5, 8, 8, 1) and fps == pytest.approx(10.0), name


def _check_folder_with_one_fuzzed_file(make_dataset, root: Path, fuzzed: Path, good: list[Path], item_shape):
    """Build the dataset (non-strict): the good files are kept; the fuzzed one is skipped with one DataWarning
    naming it, or kept, and then its item has ``item_shape`` or raises a one-line VqgenError."""
    with _no_hang(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = make_dataset(root)
    skipped = [str(warning.message) for warning in caught if issubclass(warning.category, DataWarning)]
    assert all(path in dataset.files for path in good), (dataset.files, skipped)
    if fuzzed in dataset.files:
        assert not skipped, skipped
        index = dataset.files.index(fuzzed)
        _only_vqgen_errors(lambda: _check_item(dataset[index], item_shape))
    else:
        assert [path for path, _ in dataset.skipped] == [fuzzed]
        assert len(skipped) == 1 and fuzzed.name in skipped[0] and "skipped 1 " in skipped[0], skipped
        assert "\n" not in skipped[0]


def _check_item(item: dict, shape) -> None:
    media = item["audio"] if "audio" in item else item["video"]
    assert tuple(media.shape) == shape and media.dtype == torch.float32


@FUZZ
@given(fuzzed=audio_like(resample_only_cheap=True), suffix=AUDIO_SUFFIXES, train=st.booleans())
def test_audio_folder_skips_or_reads_one_fuzzed_file_among_good_ones(fuzzed, suffix, train):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        good = [root / "a.wav", root / "b.flac"]
        for path in good:
            path.write_bytes(REAL_AUDIO[path.suffix])
        path = root / f"fuzz{suffix}"
        path.write_bytes(fuzzed[0])
        _check_folder_with_one_fuzzed_file(
            lambda folder: AudioFolderDataset(folder, RATE, channels=1, segment_seconds=0.01, train=train),
            root,
            path,
            good,
            (1, 80),
        )


@FUZZ
@given(fuzzed=video_like(), suffix=VIDEO_SUFFIXES, train=st.booleans())
def test_video_folder_skips_or_reads_one_fuzzed_file_among_good_ones(fuzzed, suffix, train):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        good = [root / "a.gif", root / "b.mp4"]
        good[0].write_bytes(REAL_VIDEOS["grey-gif"])
        good[1].write_bytes(REAL_VIDEOS["mp4"])
        path = root / f"fuzz{suffix}"
        path.write_bytes(fuzzed[0])
        _check_folder_with_one_fuzzed_file(
            lambda folder: VideoFolderDataset(folder, frames=3, resolution=8, channels=1, train=train),
            root,
            path,
            good,
            (1, 3, 8, 8),
        )
