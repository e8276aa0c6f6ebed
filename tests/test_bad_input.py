"""A catalogue of bad inputs: each is refused with ONE line naming the file or value and what is expected.

Through the Python API every case must raise a :class:`vqgen.errors.VqgenError` subclass; through the CLI
(``vqgen.cli.main`` in process, and a handful as real subprocesses) it must exit with status 2 and print
``error: ...`` as one line, never a traceback. Images first, then audio and video (tiny models from
``tests/test_pipeline_audio.py`` and ``tests/test_pipeline_video.py``): their in-process CLI cases capture
file descriptor 2 too, so a log line that FFmpeg or libsndfile writes past Python would fail them.

"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import make_images, make_prior, make_tokenizer
from PIL import Image
from test_pipeline_audio import make_audio_prior, make_audio_tokenizer
from test_pipeline_video import make_video_tokenizer

from vqgen import cli
from vqgen.data.audio import AudioFolderDataset
from vqgen.data.folders import DataWarning
from vqgen.data.images import ImageFolderDataset, load_image_dataset
from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.data.video import VideoFolderDataset
from vqgen.errors import CheckpointError, ConfigError, DataError, MismatchError, ShapeError, VqgenError
from vqgen.io import load_audio, load_image, load_video, save_audio, save_image, save_video
from vqgen.loading import load_tokenizer
from vqgen.pipelines.audio import AudioPipeline
from vqgen.pipelines.image import ImagePipeline
from vqgen.pipelines.video import VideoPipeline

WEIGHTS = "diffusion_pytorch_model.safetensors"


def _png_bytes(size: int = 32, mode: str = "L") -> bytes:
    rng = np.random.default_rng(0)
    shape = (size, size) if mode == "L" else (size, size, 3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> dict[str, Path]:
    """Valid artifacts to corrupt: a pipeline, tokenizers, shards, a grayscale image folder."""
    root = tmp_path_factory.mktemp("artifacts")
    tokenizer, prior = make_tokenizer(), make_prior()
    ImagePipeline(tokenizer, prior).save_pretrained(str(root / "pipe"))
    tokenizer.save_pretrained(str(root / "tok"))
    make_tokenizer(seed=1).save_pretrained(str(root / "other-tok"))
    torch.manual_seed(0)
    from vqgen.tokenizers.image import ImageTokenizer

    ImageTokenizer(
        in_channels=3,
        base_channels=8,
        channel_multipliers=(1, 2),
        latent_channels=8,
        quantizer_config={"type": "vq", "codebook_size": 16, "kmeans_init": False},
    ).save_pretrained(str(root / "rgb-tok"))
    encode_dataset(tokenizer, make_images(), root / "shards", progress=False)
    gray = root / "gray"
    gray.mkdir()
    for i in range(16):
        (gray / f"{i:02d}.png").write_bytes(_png_bytes(8))
    (root / "empty").mkdir()
    (root / "a-file").write_text("I am a regular file, not a folder")
    return {p.name: p for p in root.iterdir()} | {"root": root}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _one_line(error: BaseException, *names: str) -> None:
    """The error is a VqgenError, its message one line, and it names each of ``names``."""
    assert isinstance(error, VqgenError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text and "\n" not in text, repr(text)
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"


# --------------------------------------------------------------------------------------------- files


def test_non_image_file_with_an_image_extension(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are words, not pixels")
    with pytest.raises(DataError) as error:
        load_image(path)
    _one_line(error.value, "notes.png", "cannot decode image")


@pytest.mark.parametrize("cut", [0, 8, 40, "half"])
def test_zero_byte_and_truncated_pngs(tmp_path, cut):
    data = _png_bytes(64)
    size = len(data) // 2 if cut == "half" else cut
    path = tmp_path / f"cut-{cut}.png"
    path.write_bytes(data[:size])
    with pytest.raises(DataError) as error:
        load_image(path)
    _one_line(error.value, path.name)
    # A folder holding only such files is refused as a whole, naming the first bad file.
    with pytest.raises(DataError) as error:
        ImageFolderDataset(tmp_path, resolution=8, channels=1)
    _one_line(error.value, path.name, "no usable images")


def test_a_folder_passed_as_an_image_file(tmp_path):
    with pytest.raises(DataError) as error:
        load_image(tmp_path)
    _one_line(error.value, str(tmp_path), "is not a file")


def test_empty_folder(art):
    with pytest.raises(DataError) as error:
        load_image_dataset(str(art["empty"]), resolution=8, channels=1)
    _one_line(error.value, str(art["empty"]), "holds no image files")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_chmod_000(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.png").write_bytes(_png_bytes(8))
    locked.chmod(0)
    try:
        with pytest.raises(DataError) as error:
            load_image_dataset(str(locked), resolution=8, channels=1)
    finally:
        locked.chmod(0o755)
    _one_line(error.value, str(locked), "cannot read")


def test_unreadable_subfolder_is_an_error_not_silently_skipped(tmp_path, monkeypatch):
    """The same failure as chmod 000 simulated for root: listing a class folder raises PermissionError."""
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(_png_bytes(8))
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "dogs":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError) as error:
        ImageFolderDataset(tmp_path, resolution=8, channels=1)
    _one_line(error.value, "dogs", "Permission denied")


def test_grayscale_folder_for_a_three_channel_tokenizer(art):
    with pytest.raises(DataError) as error:
        load_image_dataset(str(art["gray"]), resolution=8, channels=3)
    _one_line(error.value, "00.png", "has 1 channel", "expected 3")


def test_output_under_a_regular_file_cannot_be_written(art):
    target = art["a-file"] / "sub" / "grid.png"
    with pytest.raises(DataError) as error:
        save_image(np.zeros((8, 8), np.uint8), target)
    _one_line(error.value, str(target), "cannot write")


# ------------------------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_images_to_encode(value):
    images = torch.zeros(2, 1, 8, 8)
    images[1, 0, 3, 3] = value
    with pytest.raises(ShapeError) as error:
        make_tokenizer().encode(images)
    _one_line(error.value, "NaN or infinite")


@pytest.mark.parametrize(
    "shape, message",
    [((1, 8, 8), "4 dimensions"), ((1, 3, 8, 8), "3 channels"), ((1, 1, 7, 7), "not divisible")],
)
def test_wrong_image_shapes_to_encode(shape, message):
    with pytest.raises(ShapeError) as error:
        make_tokenizer().encode(torch.zeros(shape))
    _one_line(error.value, message)


def test_resolution_not_divisible_by_the_downsampling_factor():
    with pytest.raises(ShapeError) as error:
        make_tokenizer().code_grid((1, 9, 8))
    _one_line(error.value, "9x8", "downsampling factor 2")


@pytest.mark.parametrize(
    "codes, message",
    [
        (torch.full((1, 4, 4), float("nan")), "codes must"),
        (torch.full((1, 4, 4), 99), "[0, 16)"),
        (torch.zeros(4, 4, dtype=torch.long), "3 dimensions"),
        (np.zeros((1, 4, 4), np.int64), "ndarray"),
    ],
    ids=["nan", "out-of-range", "2d", "numpy"],
)
def test_bad_codes_to_decode(codes, message):
    with pytest.raises(ShapeError) as error:
        make_tokenizer().decode(codes)
    _one_line(error.value, message)


def test_float_codes_to_decode_are_refused_by_dtype():
    with pytest.raises(ShapeError, match="dtype|integer"):
        make_tokenizer().decode(torch.zeros(1, 4, 4))


@pytest.mark.parametrize(
    "prompt, message",
    [
        (torch.full((1, 3), float("nan")), "integer dtype"),
        (torch.full((1, 3), float("inf")), "integer dtype"),
        (torch.zeros(1, 2, 3, 4, dtype=torch.long), "prompt must have shape"),
        (torch.zeros(1, 17, dtype=torch.long), "prompt must have shape"),
        (torch.full((1, 3), 16), "code range"),
    ],
    ids=["nan", "inf", "4d", "too-long", "out-of-range"],
)
def test_bad_prompt_to_sample(prompt, message):
    with pytest.raises(VqgenError) as error:
        make_prior().sample(1, class_labels=[0], prompt=prompt)
    _one_line(error.value, message)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"class_labels": [12]}, "[0, 3), got values in [12, 12]"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"guidance_scale": float("inf")}, "guidance_scale"),
    ],
)
def test_out_of_range_sampling_arguments(arguments, message):
    with pytest.raises(ConfigError) as error:
        make_prior().sample(1, **{"class_labels": [0], **arguments})
    _one_line(error.value, message)


def test_zero_samples_from_a_pipeline(art):
    pipe = ImagePipeline.from_pretrained(str(art["pipe"]))
    with pytest.raises(ConfigError) as error:
        pipe(num_samples=0)
    _one_line(error.value, "num_samples", "got 0")


# ------------------------------------------------------------------------------- saved model folders


def test_tokenizer_folder_with_a_corrupted_config(art, tmp_path):
    folder = _copy(art["tok"], tmp_path / "tok")
    (folder / "config.json").write_text('{"_class_name": "ImageTokenizer", "base_ch')
    with pytest.raises(CheckpointError) as error:
        load_tokenizer(folder)
    _one_line(error.value, "config.json", "not valid JSON")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"_class_name": ["ImageTokenizer"]}, "expected a tokenizer"),
        ({"_class_name": "CodePrior"}, "expected a tokenizer"),
        ({"_class_name": "ImageTokenizer", "base_channels": -3}, "must be positive"),
        ({"_class_name": "ImageTokenizer", "quantizer_config": [1]}, "cannot load tokenizer"),
    ],
    ids=["class-name-list", "wrong-class", "negative-width", "bad-quantizer"],
)
def test_tokenizer_folder_with_wrong_config_values(art, tmp_path, config, message):
    folder = _copy(art["tok"], tmp_path / "tok")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as error:
        load_tokenizer(folder)
    _one_line(error.value, str(folder), message)


@pytest.mark.parametrize("weights", [b"", b"junk", (1 << 62).to_bytes(8, "little") + b"{}"], ids=len)
def test_tokenizer_folder_with_corrupted_weights(art, tmp_path, weights):
    folder = _copy(art["tok"], tmp_path / "tok")
    (folder / WEIGHTS).write_bytes(weights)
    with pytest.raises(CheckpointError) as error:
        load_tokenizer(folder)
    _one_line(error.value, str(folder), "cannot load tokenizer")


def _break_pipeline(art, tmp_path, how: str) -> Path:
    folder = _copy(art["pipe"], tmp_path / "pipe")
    if how != "tampered-weights":
        # A hand-assembled folder without checksums: the loaders themselves must refuse what is broken.
        (folder / "vqgen_manifest.json").unlink()
    if how == "no-tokenizer":
        shutil.rmtree(folder / "tokenizer")
    elif how == "no-prior-weights":
        (folder / "prior" / WEIGHTS).unlink()
    elif how == "junk-prior-weights":
        (folder / "prior" / WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    elif how == "junk-tokenizer-config":
        (folder / "tokenizer" / "config.json").write_text("{nope")
    elif how == "junk-model-index":
        (folder / "model_index.json").write_text('{"tokenizer": ["vqgen", ')
    elif how == "model-index-list":
        (folder / "model_index.json").write_text("[]")
    elif how == "foreign-module":
        index = json.loads((folder / "model_index.json").read_text())
        index["prior"] = ["os", "system"]
        (folder / "model_index.json").write_text(json.dumps(index))
    elif how == "tampered-weights":
        with open(folder / "prior" / WEIGHTS, "r+b") as handle:
            handle.seek(-1, 2)
            last = handle.read(1)
            handle.seek(-1, 2)
            handle.write(bytes([last[0] ^ 1]))
    elif how == "mismatched-tokenizer":
        shutil.rmtree(folder / "tokenizer")
        make_tokenizer(codebook_size=8).save_pretrained(str(folder / "tokenizer"))
    return folder


@pytest.mark.parametrize(
    "how, error_type, message",
    [
        ("no-tokenizer", CheckpointError, "missing its tokenizer folder"),
        ("no-prior-weights", CheckpointError, "no safetensors weights"),
        ("junk-prior-weights", CheckpointError, "cannot load pipeline"),
        ("junk-tokenizer-config", CheckpointError, "cannot load pipeline"),
        ("junk-model-index", CheckpointError, "not valid JSON"),
        ("model-index-list", CheckpointError, "JSON object"),
        ("foreign-module", CheckpointError, "must name a vqgen 'prior'"),
        ("mismatched-tokenizer", MismatchError, "16 codes but the tokenizer has 8"),
        ("tampered-weights", CheckpointError, "does not match its SHA-256"),
    ],
)
def test_broken_pipeline_folders(art, tmp_path, how, error_type, message):
    folder = _break_pipeline(art, tmp_path, how)
    with pytest.raises(error_type) as error:
        ImagePipeline.from_pretrained(str(folder))
    _one_line(error.value, message)


def test_model_index_naming_a_missing_vqgen_module(art, tmp_path):
    folder = _copy(art["pipe"], tmp_path / "pipe")
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["vqgen.no_such_module", "ImageTokenizer"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError):
        ImagePipeline.from_pretrained(str(folder))


# ---------------------------------------------------------------------------------------- code shards


def test_shards_from_another_tokenizer_or_for_another_prior(art):
    shards = CodeShardDataset(art["shards"])
    with pytest.raises(MismatchError) as error:
        shards.check_tokenizer(make_tokenizer(seed=1))
    _one_line(error.value, str(art["shards"]), "re-encode")
    with pytest.raises(MismatchError) as error:
        shards.check_prior(make_prior(codebook_size=8))
    _one_line(error.value, "16 codes", "8 codes")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"code_grid": None}, "code_grid"),
        ({"code_grid": 5}, "code_grid"),
        ({"codebook_size": "sixteen"}, "codebook_size"),
        ({"shards": None}, "shards"),
        ({"shards": "shard-00000.safetensors"}, "shards"),
        ({"shards": [{"file": "../../../etc/passwd", "items": 1}]}, "a file name in the folder"),
        ({"shards": [{"file": "shard-00000.safetensors", "items": -1}]}, "a count"),
        ({"label_names": 3}, "label_names"),
        ({"tokenizer_fingerprint": None}, "tokenizer_fingerprint"),
        ({"shards": []}, "holds no items"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_corrupted_shard_manifests(art, tmp_path, change, message):
    folder = _copy(art["shards"], tmp_path / "shards")
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, value in change.items():
        if value is None:
            del manifest[key]
        else:
            manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError) as error:
        CodeShardDataset(folder)
    _one_line(error.value, message)


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"codes": torch.zeros(48, 4, 4, dtype=torch.int32)}, "labels none"),
        ({"codes": torch.zeros(48, 4, 4, dtype=torch.int32), "labels": torch.zeros(3)}, "48 integer labels"),
        ({"codes": torch.full((48, 4, 4), float("nan")), "labels": torch.zeros(48)}, "integer code grids"),
        ({"codes": torch.zeros(48, 2, 2, dtype=torch.int32), "labels": torch.zeros(48)}, "[4, 4]"),
        ({"codes": torch.full((48, 4, 4), 16, dtype=torch.int32), "labels": torch.zeros(48)}, "codebook"),
        ({"codes": torch.zeros(48, 4, 4, dtype=torch.int32), "labels": torch.full((48,), 7)}, "labels in"),
    ],
    ids=[
        "no-labels",
        "short-labels",
        "nan-codes",
        "wrong-grid",
        "codes-past-codebook",
        "labels-past-classes",
    ],
)
def test_corrupted_shard_contents(art, tmp_path, tensors, message):
    from safetensors.torch import save_file

    folder = _copy(art["shards"], tmp_path / "shards")
    tensors = {k: v.to(torch.int64) if k == "labels" else v for k, v in tensors.items()}
    save_file(tensors, str(folder / "shard-00000.safetensors"))
    with pytest.raises(DataError) as error:
        CodeShardDataset(folder)
    _one_line(error.value, message)


# ----------------------------------------------------------------------------------- CLI, in process


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``vqgen.cli.main(argv)``; returns (exit status, stderr). argparse errors exit via SystemExit."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


TRAIN = [
    "train-tokenizer",
    "--base-channels=8",
    "--latent-channels=8",
    "--channel-multipliers=1,2",
    "--codebook-size=16",
    "--batch-size=8",
    "--max-steps=1",
    "--no-progress",
]


def _cli_cases(art: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], str]]:
    generate = ["generate", "image", "--pipeline", str(art["pipe"]), "--no-progress"]
    grid = ["--output", str(tmp / "grid.png")]
    bad_tok = _copy(art["tok"], tmp / "bad-tok")
    (bad_tok / "config.json").write_text("{nope")
    run = ["--output", str(tmp / "run")]
    return {
        "class-label-12": (generate + ["--class-label", "12", *grid], "[0, 3), got values in [12, 12]"),
        "top-p-1.5": (
            generate + ["--top-p", "1.5", *grid],
            "top_p must be None or a number in (0, 1], got 1.5",
        ),
        "negative-temperature": (generate + ["--temperature", "-1", *grid], "temperature must be"),
        "device-unknown": (
            generate + ["--device", "tpu9", *grid],
            "--device must be auto, cpu, cuda or cuda:N",
        ),
        "device-cuda-99": (generate + ["--device", "cuda:99", *grid], "--device cuda:99: this machine has"),
        "top-k-0": (generate + ["--top-k", "0", *grid], "top_k must be None or an int >= 1, got 0"),
        "output-under-a-file": (
            generate + ["--num-samples", "2", "--output", str(art["a-file"] / "sub" / "g.png")],
            f"cannot write '{art['a-file'] / 'sub' / 'g.png'}'",
        ),
        "output-dir-under-a-file": (
            generate + ["--num-samples", "2", "--output", str(art["a-file"] / "samples")],
            "cannot write",
        ),
        "output-not-an-image": (generate + ["--output", str(tmp / "x.txt")], "must be an image file"),
        "missing-pipeline": (
            ["generate", "image", "--pipeline", str(tmp / "nope"), *grid],
            "no model_index.json",
        ),
        "tokenizer-as-pipeline": (
            ["generate", "image", "--pipeline", str(art["tok"]), *grid],
            "is not a pipeline folder",
        ),
        "empty-folder": (
            TRAIN + ["--data", str(art["empty"]), "--resolution=8", "--channels=1", *run],
            "holds no image, video or audio files; pass --modality image|video|audio",
        ),
        "gray-to-3-channels": (
            TRAIN + ["--data", str(art["gray"]), "--resolution=8", "--channels=3", *run],
            "has 1 channel (mode L), expected 3",
        ),
        "demo-to-3-channels": (TRAIN + ["--data", "demo:mnist", "--channels=3", *run], "1 channel"),
        "resolution-7": (
            TRAIN + ["--data", str(art["gray"]), "--resolution=7", "--channels=1", *run],
            "image size 7x7 is not divisible by the tokenizer's downsampling factor 2",
        ),
        "data-is-a-file": (
            TRAIN + ["--data", str(art["a-file"]), "--resolution=8", "--channels=1", *run],
            "is not a directory",
        ),
        "channels-2": (
            TRAIN + ["--data", str(art["gray"]), "--resolution=8", "--channels=2", *run],
            "channels=2 is not supported",
        ),
        "batch-size-0": (
            TRAIN + ["--data", str(art["gray"]), "--resolution=8", "--channels=1", "--batch-size=0", *run],
            "--batch-size must be at least 1, got 0",
        ),
        "encode-corrupted-tokenizer": (
            ["encode", "--tokenizer", str(bad_tok), "--data", str(art["gray"]), "--output", str(tmp / "s")],
            "config.json' is not valid JSON",
        ),
        "encode-gray-with-rgb-tokenizer": (
            ["encode", "--tokenizer", str(art["rgb-tok"]), "--data", str(art["gray"]), "--resolution=8"]
            + ["--output", str(tmp / "s"), "--no-progress"],
            "expected 3",
        ),
        "encode-output-under-a-file": (
            ["encode", "--tokenizer", str(art["tok"]), "--data", str(art["gray"]), "--resolution=8"]
            + ["--output", str(art["a-file"] / "s"), "--no-progress"],
            "cannot write",
        ),
        "train-prior-foreign-shards": (
            ["train-prior", "--tokenizer", str(art["other-tok"]), "--shards", str(art["shards"])]
            + ["--output", str(tmp / "p"), "--max-steps=1", "--no-progress"],
            "re-encode them with vqgen encode",
        ),
        "train-prior-not-shards": (
            ["train-prior", "--tokenizer", str(art["tok"]), "--shards", str(art["empty"])]
            + ["--output", str(tmp / "p"), "--max-steps=1", "--no-progress"],
            "no manifest.json",
        ),
        "info-corrupted-config": (["info", str(bad_tok)], "not valid JSON"),
    }


CLI_CASES = [
    "class-label-12",
    "top-p-1.5",
    "negative-temperature",
    "device-unknown",
    "device-cuda-99",
    "top-k-0",
    "output-under-a-file",
    "output-dir-under-a-file",
    "output-not-an-image",
    "missing-pipeline",
    "tokenizer-as-pipeline",
    "empty-folder",
    "gray-to-3-channels",
    "demo-to-3-channels",
    "resolution-7",
    "data-is-a-file",
    "channels-2",
    "batch-size-0",
    "encode-corrupted-tokenizer",
    "encode-gray-with-rgb-tokenizer",
    "encode-output-under-a-file",
    "train-prior-foreign-shards",
    "train-prior-not-shards",
    "info-corrupted-config",
]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_bad_input_with_one_line(art, tmp_path, capsys, case):
    argv, message = _cli_cases(art, tmp_path)[case]
    status, err = _cli(argv, capsys)
    assert status == 2, err
    line = _error_line(err)
    assert message in line, line


def test_cli_zero_samples_is_a_usage_error(art, tmp_path, capsys):
    argv = ["generate", "image", "--pipeline", str(art["pipe"]), "--num-samples", "0"]
    status, err = _cli(argv + ["--output", str(tmp_path / "g.png")], capsys)
    assert status == 2
    assert "--num-samples: expected a positive integer, got 0" in err.splitlines()[-1]


def test_cli_evaluate_output_that_cannot_be_written(art, capsys):
    argv = ["evaluate-tokenizer", "--tokenizer", str(art["tok"]), "--data", str(art["gray"])]
    argv += ["--resolution=8", "--no-progress", "--output", str(art["a-file"] / "r.json")]
    status, err = _cli(argv, capsys)
    assert status == 2
    assert "cannot write" in _error_line(err)


# --------------------------------------------------------------------------- CLI, real subprocesses


def _subprocess_cases(art: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], str]]:
    cases = _cli_cases(art, tmp)
    return {
        "num-samples-0": (
            ["generate", "image", "--pipeline", str(art["pipe"]), "--num-samples", "0", "--output", "x.png"],
            "--num-samples",
        ),
        "encode-corrupted-tokenizer": cases["encode-corrupted-tokenizer"],
        "gray-to-3-channels": cases["gray-to-3-channels"],
        "output-under-a-file": cases["output-under-a-file"],
    }


@pytest.mark.parametrize(
    "case", ["num-samples-0", "encode-corrupted-tokenizer", "gray-to-3-channels", "output-under-a-file"]
)
def test_cli_subprocess_exits_2_without_a_traceback(art, tmp_path, case):
    argv, message = _subprocess_cases(art, tmp_path)[case]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vqgen.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert message in last, result.stderr


# ===================================================================================== audio and video

RATE = 8000  # the tiny audio tokenizer: 8 kHz mono, hop 8, 2 residual levels; its prior draws 200 samples
HOP = 8


def _tone(samples: int, channels: int = 1, rate: int = RATE) -> np.ndarray:
    wave = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(samples) / rate)
    return np.repeat(wave[None], channels, axis=0).astype(np.float32)


def _frames(count: int, size: int = 8, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), dtype=np.uint8)


def _huge_timestamps(mp4: bytes) -> bytes:
    """``mp4`` (one video track) with a time scale of 1 per second and ~68 years between frames."""
    data = bytearray(mp4)
    mdhd = data.index(b"mdhd")  # version/flags, creation, modification, then the time scale
    data[mdhd + 16 : mdhd + 20] = struct.pack(">I", 1)
    stts = data.index(b"stts")  # version/flags, entry count, then (sample count, sample delta) pairs
    data[stts + 16 : stts + 20] = struct.pack(">I", 0x7FFFFFF0)  # the largest that is not negative as int32
    return bytes(data)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Tiny audio / video tokenizers and pipelines, good files to compare with, and bad files."""
    root = tmp_path_factory.mktemp("media")
    audio_tokenizer = make_audio_tokenizer()
    audio_tokenizer.save_pretrained(str(root / "audio-tok"))
    AudioPipeline(audio_tokenizer, make_audio_prior("delay")).save_pretrained(str(root / "audio-pipe"))
    video_tokenizer = make_video_tokenizer()
    video_tokenizer.save_pretrained(str(root / "video-tok"))
    # GRID (3, 4, 4): 5 frames of 8x8 at temporal factor 2.
    VideoPipeline(video_tokenizer, make_prior(grid=(3, 4, 4)), fps=10).save_pretrained(
        str(root / "video-pipe")
    )

    save_audio(_tone(200), root / "tone.wav", RATE)
    save_audio(_tone(600), root / "long.wav", RATE)  # 75 ms, three times the prior's clip
    save_audio(_tone(5), root / "short.wav", RATE)  # less than one 8-sample code frame
    save_audio(_tone(200, channels=3), root / "three-channels.wav", RATE)
    save_audio(_tone(200), root / "tone.flac", RATE)
    soundfile.write(str(root / "header-only.wav"), np.zeros(0, np.float32), RATE, subtype="PCM_16")
    soundfile.write(str(root / "header-only-16k.wav"), np.zeros(0, np.float32), 16000, subtype="PCM_16")
    soundfile.write(str(root / "odd-rate.wav"), np.zeros(64, np.float32), 1_000_003, subtype="PCM_16")
    nan = _tone(200)[0]
    nan[50:60] = np.nan
    soundfile.write(str(root / "nan.wav"), nan, RATE, subtype="FLOAT")
    (root / "zero.wav").write_bytes(b"")
    (root / "text.wav").write_text("these are words, not samples")
    (root / "cut-header.wav").write_bytes((root / "tone.wav").read_bytes()[:30])
    (root / "cut.flac").write_bytes((root / "tone.flac").read_bytes()[:20])

    save_video(_frames(5), root / "clip.gif", fps=10)
    save_video(_frames(4), root / "four.gif", fps=10)
    save_video(_frames(5, size=9), root / "nine.gif", fps=10)
    save_video(_frames(5, channels=3), root / "clip.mp4", fps=10)
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.gif").write_text("GIF? no: words")
    (root / "cut.mp4").write_bytes((root / "clip.mp4").read_bytes()[:40])
    (root / "noise.webm").write_bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes())
    (root / "huge-timestamps.mp4").write_bytes(_huge_timestamps((root / "clip.mp4").read_bytes()))
    return {p.name: p for p in root.iterdir()} | {"root": root}


def _stderr_line(err: str) -> str:
    """The one line of ``err`` (besides diffusers' loading bar): ``error: ...``, no traceback, no library log."""
    lines = [line for line in err.splitlines() if line.strip() and "Loading pipeline components" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------------------- audio, Python API


@pytest.mark.parametrize(
    "name, message",
    [
        ("zero.wav", "cannot decode audio"),
        ("text.wav", "cannot decode audio"),
        ("cut-header.wav", "cannot decode audio"),
        ("cut.flac", "cannot decode audio"),
        ("missing.wav", "does not exist"),
    ],
)
def test_bad_audio_files_to_load_audio(media, name, message):
    path = media["root"] / name
    with pytest.raises(DataError) as error:
        load_audio(path, sample_rate=RATE, channels=1)
    _one_line(error.value, str(path), message)


def test_three_channel_audio_to_a_stereo_mix(media):
    """There is no single right downmix of three channels to two: refused, naming both counts."""
    with pytest.raises(ShapeError) as error:
        load_audio(media["three-channels.wav"], channels=2)
    _one_line(error.value, "cannot mix 3 audio channels to 2")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_audio_to_encode_and_preprocess(media, value):
    audio = torch.from_numpy(_tone(200))[None]
    audio[0, 0, 17] = value
    with pytest.raises(ShapeError) as error:
        make_audio_tokenizer().encode(audio)
    _one_line(error.value, "NaN or infinite")
    pipe = AudioPipeline.from_pretrained(str(media["audio-pipe"]))
    with pytest.raises(ShapeError) as error:
        pipe.preprocess(audio.numpy())
    _one_line(error.value, "finite floats in [-1, 1]")


@pytest.mark.parametrize(
    "call, error_type, message",
    [
        (lambda t: t.encode(torch.zeros(1, 2, 64)), ShapeError, "2 channels, the tokenizer expects 1"),
        (lambda t: t.encode(torch.zeros(1, 1, 64, dtype=torch.int16)), ShapeError, "float tensor"),
        (lambda t: t.encode(torch.zeros(1, 1, 0)), ShapeError, "at least one sample"),
        (
            lambda t: t.encode(torch.zeros(1, 1, 64), num_levels=3),
            ConfigError,
            "num_levels must be in [1, 2]",
        ),
        (lambda t: t.decode(torch.zeros(1, 3, 4, dtype=torch.long)), ShapeError, "decodes 1 to 2"),
    ],
    ids=["stereo-to-mono", "int16", "no-samples", "levels-3-of-2", "decode-3-levels"],
)
def test_bad_audio_tensors_to_the_tokenizer(call, error_type, message):
    with pytest.raises(error_type) as error:
        call(make_audio_tokenizer())
    _one_line(error.value, message)


@pytest.mark.parametrize(
    "audio, sample_rate, error_type, message",
    [
        (_tone(100), None, ShapeError, "must last 200 samples"),
        (_tone(200), 0, ConfigError, "must be a positive int, got 0"),
        (_tone(200), 8000.0, ConfigError, "must be a positive int, got 8000.0"),
        (_tone(200).astype(np.int32), None, ShapeError, "got int32"),
        ([], None, ShapeError, "empty list"),
    ],
    ids=["too-short", "rate-0", "rate-float", "int32-array", "empty-list"],
)
def test_bad_audio_to_preprocess(media, audio, sample_rate, error_type, message):
    pipe = AudioPipeline.from_pretrained(str(media["audio-pipe"]))
    with pytest.raises(error_type) as error:
        pipe.preprocess(audio, sample_rate=sample_rate)
    _one_line(error.value, message)


def test_a_sample_rate_disagreeing_with_the_file(media):
    pipe = AudioPipeline.from_pretrained(str(media["audio-pipe"]))
    with pytest.raises(VqgenError) as error:
        pipe.preprocess(media["tone.wav"], sample_rate=16000)
    _one_line(error.value, "tone.wav", "16000")


def test_audio_folder_of_bad_files_and_strict_mode(media, tmp_path):
    for name in ("zero.wav", "text.wav", "header-only.wav"):
        shutil.copy(media[name], tmp_path / name)
    with pytest.raises(DataError) as error:
        AudioFolderDataset(tmp_path, RATE)
    _one_line(error.value, "no usable audio", str(tmp_path / "header-only.wav"), "holds no audio")
    shutil.copy(media["tone.wav"], tmp_path / "tone.wav")
    with pytest.raises(DataError) as error:
        AudioFolderDataset(tmp_path, RATE, strict=True)
    _one_line(error.value, "header-only.wav", "3 of 4 file(s)", "strict=False would skip them")
    with pytest.warns(DataWarning, match=r"skipped 3 .*text\.wav .*zero\.wav \(is empty \(0 bytes\)\)"):
        assert len(AudioFolderDataset(tmp_path, RATE)) == 1


@pytest.mark.parametrize(
    "arguments, error_type, message",
    [
        ({"sample_rate": 0}, ConfigError, "sample_rate=0"),
        ({"segment_seconds": float("nan")}, ConfigError, "segment_seconds=nan"),
        ({"segment_seconds": 1e-6}, ConfigError, "gives no samples at 8000 Hz"),
        ({"channels": 0}, ConfigError, "channels=0"),
    ],
    ids=["rate-0", "nan-seconds", "tiny-seconds", "channels-0"],
)
def test_bad_audio_folder_arguments(media, arguments, error_type, message):
    with pytest.raises(error_type) as error:
        AudioFolderDataset(media["root"], **{"sample_rate": RATE, **arguments})
    _one_line(error.value, message)


def test_audio_output_with_an_unknown_extension(tmp_path):
    with pytest.raises(ConfigError) as error:
        save_audio(_tone(16), tmp_path / "clip.mp3", RATE)
    _one_line(error.value, "clip.mp3", "unknown suffix '.mp3'", ".wav")


def test_audio_folder_item_from_a_float_wav_holding_nan(media, tmp_path):
    shutil.copy(media["nan.wav"], tmp_path / "nan.wav")
    shutil.copy(media["tone.wav"], tmp_path / "tone.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        dataset = AudioFolderDataset(tmp_path, RATE, segment_seconds=0.025, train=False)
    # Found only when the item is read: a warning naming the file, and the bad samples read as silence.
    with pytest.warns(DataWarning, match="nan.wav"):
        item = dataset[dataset.files.index(tmp_path / "nan.wav")]
    assert torch.isfinite(item["audio"]).all()


# ------------------------------------------------------------------------------------- video, Python API


@pytest.mark.parametrize(
    "name, message",
    [
        ("zero.mp4", "the file is empty (0 bytes)"),
        ("text.gif", "cannot decode video"),
        ("cut.mp4", "cannot decode video"),
        ("noise.webm", "cannot decode video"),
        ("missing.avi", "does not exist"),
    ],
)
def test_bad_video_files_to_load_video(media, name, message):
    path = media["root"] / name
    with pytest.raises(DataError) as error:
        load_video(path, channels=1)
    _one_line(error.value, str(path), message)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"channels": 2}, "channels=2 is not supported, expected 1 or 3"),
        ({"fps": 0.0}, "fps must be a positive number, got 0.0"),
        ({"fps": float("nan")}, "fps must be a positive number, got nan"),
        ({"max_frames": 0}, "max_frames must be at least 1, got 0"),
    ],
    ids=["channels-2", "fps-0", "fps-nan", "max-frames-0"],
)
def test_bad_load_video_arguments(media, arguments, message):
    with pytest.raises(ConfigError) as error:
        load_video(media["clip.gif"], **arguments)
    _one_line(error.value, message)


@pytest.mark.parametrize(
    "video, error_type, message",
    [
        (torch.zeros(1, 1, 4, 8, 8), ShapeError, "video has 4 frames, the tokenizer needs 1 + n * 2 frames"),
        (torch.zeros(1, 1, 4, 8, 8), ShapeError, "e.g. 3 or 5"),
        (torch.zeros(1, 3, 5, 8, 8), ShapeError, "3 channels, the tokenizer expects 1"),
        (torch.zeros(1, 1, 5, 9, 9), ShapeError, "frame size 9x9 is not divisible"),
        (torch.zeros(1, 5, 8, 8), ShapeError, "must have 5 dimensions"),
        (torch.full((1, 1, 5, 8, 8), float("nan")), ShapeError, "NaN or infinite"),
        (torch.full((1, 1, 5, 8, 8), -float("inf")), ShapeError, "NaN or infinite"),
        (torch.zeros(1, 1, 5, 8, 8, dtype=torch.uint8), ShapeError, "float tensor in [-1, 1]"),
    ],
    ids=["4-frames", "4-frames-says-which", "rgb", "9x9", "4d", "nan", "inf", "uint8"],
)
def test_bad_video_tensors_to_the_tokenizer(video, error_type, message):
    with pytest.raises(error_type) as error:
        make_video_tokenizer().encode(video)
    _one_line(error.value, message)


@pytest.mark.parametrize(
    "videos, message",
    [
        (_frames(5, channels=3), "[N, 1, T, 8, 8] (frames of 8x8, 1 channel)"),
        (_frames(5).astype(np.float64), "must be uint8"),
        (_frames(3), "must have 5 frames"),
        (np.zeros((1, 1, 5, 8, 8, 1), np.uint8), "must be [N, T, H, W, C]"),
        ("MISSING", "does not exist"),
    ],
    ids=["rgb", "float64", "3-frames", "6d", "missing-file"],
)
def test_bad_videos_to_preprocess(media, videos, message):
    pipe = VideoPipeline.from_pretrained(str(media["video-pipe"]))
    if isinstance(videos, str):
        videos = media["root"] / "missing.mp4"
    with pytest.raises(VqgenError) as error:
        pipe.preprocess(videos)
    _one_line(error.value, message)


@pytest.mark.parametrize("num_frames", [4, 7, 0, True, 3.0])
def test_frame_counts_a_video_pipeline_cannot_draw(media, num_frames):
    pipe = VideoPipeline.from_pretrained(str(media["video-pipe"]))
    with pytest.raises(ConfigError) as error:
        pipe(num_frames=num_frames)
    _one_line(error.value, f"num_frames={num_frames!r}", "1 + n * 2 frames up to 5 (1, 3, 5)")


@pytest.mark.parametrize(
    "name, frames, message",
    [
        ("clip.avi", _frames(2), "unknown suffix '.avi', expected one of ['.mp4', '.gif']"),
        ("clip.gif", _frames(2).astype(np.float32), "expected uint8 frames"),
        ("clip.gif", np.zeros((2, 8, 8, 2), np.uint8), "C in (1, 3)"),
        ("clip.mp4", np.zeros((0, 8, 8, 1), np.uint8), "T, H, W >= 1"),
    ],
    ids=["avi", "float-frames", "two-channels", "no-frames"],
)
def test_bad_videos_to_save_video(tmp_path, name, frames, message):
    with pytest.raises(VqgenError) as error:
        save_video(frames, tmp_path / name)
    _one_line(error.value, name, message)
    assert not list(tmp_path.iterdir())


def test_video_folder_of_bad_files_and_strict_mode(media, tmp_path):
    for name in ("zero.mp4", "text.gif", "cut.mp4"):
        shutil.copy(media[name], tmp_path / name)
    with pytest.raises(DataError) as error:
        VideoFolderDataset(tmp_path, frames=5, resolution=8, channels=1)
    _one_line(error.value, "no usable videos", "cut.mp4", "cannot decode video")
    shutil.copy(media["clip.gif"], tmp_path / "clip.gif")
    with pytest.raises(DataError) as error:
        VideoFolderDataset(tmp_path, frames=5, resolution=8, channels=1, strict=True)
    _one_line(error.value, "video file", "cut.mp4", "3 of 4 file(s)")
    with pytest.warns(DataWarning, match=r"skipped 3 .*text\.gif .*zero\.mp4"):
        assert len(VideoFolderDataset(tmp_path, frames=5, resolution=8, channels=1)) == 1
    with pytest.raises(ConfigError) as error:
        VideoFolderDataset(tmp_path, frames=0, resolution=8, channels=1)
    _one_line(error.value, "got 0 and 1")


# ----------------------------------------------------------------------------- audio and video, CLI


def _media_cli_cases(media: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (argv writing to ``tmp/out.*`` or ``tmp/out-dir``, fragments the error line must hold)."""
    m = {name: str(path) for name, path in media.items()}
    audio = ["reconstruct", "--tokenizer", m["audio-tok"], "--output", str(tmp / "out.wav"), "--input"]
    video = ["reconstruct", "--tokenizer", m["video-tok"], "--output", str(tmp / "out.gif"), "--input"]
    gen_audio = ["generate", "audio", "--pipeline", m["audio-pipe"], "--no-progress"]
    gen_video = ["generate", "video", "--pipeline", m["video-pipe"], "--no-progress"]
    wav, gif = ["--output", str(tmp / "out.wav")], ["--output", str(tmp / "out.gif")]
    return {
        # audio
        "audio-zero-byte-wav": (audio + [m["zero.wav"]], [m["zero.wav"], "cannot decode audio"]),
        "audio-text-as-wav": (audio + [m["text.wav"]], [m["text.wav"], "Format not recognised"]),
        "audio-truncated-header": (audio + [m["cut-header.wav"]], [m["cut-header.wav"], "cannot decode"]),
        "audio-header-only": (
            audio + [m["header-only.wav"]],
            [m["header-only.wav"], "holds no audio samples"],
        ),
        "audio-shorter-than-a-frame": (
            audio + [m["short.wav"]],
            [m["short.wav"], "lasts 5 samples at 8000 Hz, shorter than one code frame (8 samples)"],
        ),
        "audio-levels-above-the-tokenizer": (
            audio + [m["tone.wav"], "--levels", "3"],
            ["--levels 3: the tokenizer has 2 levels"],
        ),
        "audio-nan-samples": (audio + [m["nan.wav"]], ["holds NaN or infinite samples"]),
        "audio-frames-flag": (audio + [m["tone.wav"], "--frames", "3"], ["--frames works with video"]),
        "audio-reconstruct-to-mp3": (
            ["reconstruct", "--tokenizer", m["audio-tok"], "--output", str(tmp / "out.mp3")]
            + ["--input", m["tone.wav"]],
            ["out.mp3' must be an audio file (.wav, .flac, .ogg)"],
        ),
        "audio-seconds-past-the-prior": (
            gen_audio + ["--seconds", "1", *wav],
            ["1 s of audio", "at most 0.025 s (the 25 code frames its prior was trained on)"],
        ),
        "audio-prompt-longer-than-requested": (
            gen_audio + ["--seconds", "0.01", "--prompt", m["long.wav"], *wav],
            ["prompt_audio lasts 0.075 s, longer than the 0.01 s of audio requested"],
        ),
        "audio-prompt-shorter-than-a-frame": (
            gen_audio + ["--prompt", m["short.wav"], *wav],
            ["prompt_audio lasts 5 samples, shorter than one code frame (8 samples"],
        ),
        "audio-prompt-zero-byte": (gen_audio + ["--prompt", m["zero.wav"], *wav], [m["zero.wav"]]),
        "audio-output-mp3": (
            gen_audio + ["--output", str(tmp / "out.mp3")],
            ["out.mp3' must be an audio file (.wav, .flac, .ogg) or a directory"],
        ),
        "audio-format-gif": (
            gen_audio + ["--format", "gif", "--output", str(tmp / "out-dir")],
            ["--format gif does not work with 'generate audio'"],
        ),
        "audio-num-frames": (
            gen_audio + ["--num-frames", "3", *wav],
            ["--num-frames works with 'generate video'"],
        ),
        "audio-from-a-video-pipeline": (
            ["generate", "audio", "--pipeline", m["video-pipe"], *wav],
            ["(VideoPipeline) cannot generate audio"],
        ),
        # video
        "video-zero-byte-mp4": (video + [m["zero.mp4"]], [m["zero.mp4"], "the file is empty (0 bytes)"]),
        "video-text-as-gif": (video + [m["text.gif"]], [m["text.gif"], "cannot decode video"]),
        "video-truncated-mp4": (video + [m["cut.mp4"]], [m["cut.mp4"], "cannot decode video"]),
        "video-frame-count": (
            video + [m["four.gif"]],
            [m["four.gif"], "holds 4 frames; the tokenizer needs 1 + n * 2 frames", "pass --frames 3"],
        ),
        "video-frames-4": (
            video + [m["clip.gif"], "--frames", "4"],
            ["needs 1 + n * 2 frames", "--frames 3"],
        ),
        "video-frames-past-the-clip": (
            video + [m["clip.gif"], "--frames", "7"],
            [m["clip.gif"], "holds 5 frames, fewer than --frames 7"],
        ),
        "video-frame-size": (video + [m["nine.gif"]], ["frame size 9x9", "downsampling factor 2"]),
        "video-levels-flag": (video + [m["clip.gif"], "--levels", "1"], ["--levels works with audio"]),
        "video-reconstruct-to-webm": (
            ["reconstruct", "--tokenizer", m["video-tok"], "--output", str(tmp / "out.webm")]
            + ["--input", m["clip.gif"]],
            ["out.webm' must be a video file (.mp4, .gif)"],
        ),
        "video-num-frames-4": (
            gen_video + ["--num-frames", "4", *gif],
            ["num_frames=4 does not work", "1 + n * 2 frames up to 5 (1, 3, 5)"],
        ),
        "video-output-avi": (
            gen_video + ["--output", str(tmp / "out.avi")],
            ["out.avi' must be a video file (.mp4, .gif) or a directory"],
        ),
        "video-format-wav": (
            gen_video + ["--format", "wav", "--output", str(tmp / "out-dir")],
            ["--format wav does not work with 'generate video'"],
        ),
        "video-seconds": (gen_video + ["--seconds", "1", *gif], ["--seconds works with 'generate audio'"]),
        "video-prompt-text-as-gif": (gen_video + ["--prompt", m["text.gif"], *gif], [m["text.gif"]]),
        "video-prompt-wrong-size": (
            gen_video + ["--prompt", m["nine.gif"], *gif],
            ["prompt_frames must be [N, 1, T, 8, 8] (frames of 8x8, 1 channel)", "[1, 1, 5, 9, 9]"],
        ),
        "video-from-an-audio-pipeline": (
            ["generate", "video", "--pipeline", m["audio-pipe"], *gif],
            ["(AudioPipeline) cannot generate video"],
        ),
    }


MEDIA_CLI_CASES = [
    "audio-zero-byte-wav",
    "audio-text-as-wav",
    "audio-truncated-header",
    "audio-header-only",
    "audio-shorter-than-a-frame",
    "audio-levels-above-the-tokenizer",
    "audio-nan-samples",
    "audio-frames-flag",
    "audio-reconstruct-to-mp3",
    "audio-seconds-past-the-prior",
    "audio-prompt-longer-than-requested",
    "audio-prompt-shorter-than-a-frame",
    "audio-prompt-zero-byte",
    "audio-output-mp3",
    "audio-format-gif",
    "audio-num-frames",
    "audio-from-a-video-pipeline",
    "video-zero-byte-mp4",
    "video-text-as-gif",
    "video-truncated-mp4",
    "video-frame-count",
    "video-frames-4",
    "video-frames-past-the-clip",
    "video-frame-size",
    "video-levels-flag",
    "video-reconstruct-to-webm",
    "video-num-frames-4",
    "video-output-avi",
    "video-format-wav",
    "video-seconds",
    "video-prompt-text-as-gif",
    "video-prompt-wrong-size",
    "video-from-an-audio-pipeline",
]


@pytest.mark.parametrize("case", MEDIA_CLI_CASES)
def test_cli_refuses_bad_audio_and_video_with_one_line(media, tmp_path, capfd, case):
    argv, fragments = _media_cli_cases(media, tmp_path)[case]
    status, err = _cli(argv, capfd)
    assert status == 2, err
    line = _stderr_line(err)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def test_cli_num_frames_0_is_a_usage_error(media, tmp_path, capfd):
    argv = ["generate", "video", "--pipeline", str(media["video-pipe"]), "--num-frames", "0"]
    status, err = _cli(argv + ["--output", str(tmp_path / "out.gif")], capfd)
    assert status == 2
    assert "--num-frames: expected a positive integer, got 0" in err.splitlines()[-1]


@pytest.mark.parametrize(
    "case, name",
    [("audio-text-as-wav", "text.wav"), ("video-truncated-mp4", "cut.mp4")],
)
def test_cli_subprocess_audio_and_video_give_exactly_one_line(media, tmp_path, case, name):
    """The whole of stderr, libsndfile's and FFmpeg's own output included, is the one error line."""
    argv, _ = _media_cli_cases(media, tmp_path)[case]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vqgen.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], result.stderr


# ------------------------------------------------ bugs these tests found (fixed): runaway resampling


class _Runaway(Exception):
    """A bounded block ran past its time."""


@contextlib.contextmanager
def _bounded(seconds: float = 60.0, extra_bytes: int = 3 << 30):
    """Run the block with at most ``extra_bytes`` more address space and ``seconds`` of wall time, so that a
    runaway allocation fails at once (MemoryError / RuntimeError) instead of exhausting the machine."""
    import resource

    def alarm(signum, frame):
        raise _Runaway(f"ran longer than {seconds} s")

    size = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmSize:")
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bounds memory with RLIMIT_AS")


@LINUX_ONLY
def test_cli_reconstruct_audio_with_an_odd_sample_rate(media, tmp_path, capfd):
    argv = ["reconstruct", "--tokenizer", str(media["audio-tok"]), "--input", str(media["odd-rate.wav"])]
    with _bounded():
        status, err = _cli([*argv, "--output", str(tmp_path / "out.wav")], capfd)
    assert status == 0 or "odd-rate.wav" in _stderr_line(err), err


@LINUX_ONLY
def test_audio_folder_item_from_a_file_with_an_odd_sample_rate(media, tmp_path):
    shutil.copy(media["odd-rate.wav"], tmp_path / "odd-rate.wav")
    shutil.copy(media["tone.wav"], tmp_path / "tone.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        dataset = AudioFolderDataset(tmp_path, RATE, segment_seconds=0.01, train=False)
    if tmp_path / "odd-rate.wav" in dataset.files:
        with _bounded():
            try:
                item = dataset[dataset.files.index(tmp_path / "odd-rate.wav")]
            except VqgenError as error:
                _one_line(error, "odd-rate.wav")
            else:
                assert item["audio"].shape == (1, 80)


@pytest.mark.parametrize("command", ["reconstruct", "generate-prompt"])
def test_cli_audio_holding_no_samples_at_another_rate(media, tmp_path, capfd, command):
    empty = str(media["header-only-16k.wav"])
    if command == "reconstruct":
        argv = ["reconstruct", "--tokenizer", str(media["audio-tok"]), "--input", empty]
    else:
        argv = ["generate", "audio", "--pipeline", str(media["audio-pipe"]), "--prompt", empty]
    status, err = _cli([*argv, "--output", str(tmp_path / "out.wav")], capfd)
    assert status == 2 and "header-only-16k.wav" in _stderr_line(err), err


@LINUX_ONLY
@pytest.mark.parametrize("max_frames", [None, 5])
def test_load_video_resampling_a_file_with_huge_timestamps(media, max_frames):
    path = media["huge-timestamps.mp4"]
    assert load_video(path, channels=1)[0].shape[1:] == (8, 8, 1)  # decodes without fps
    with _bounded():
        try:
            frames, fps = load_video(path, fps=8.0, max_frames=max_frames, channels=1)
        except VqgenError as error:
            _one_line(error, str(path))
        else:
            assert fps == 8.0 and math.prod(frames.shape) < 1 << 28


# ----------------------------------------------------------------------------------- condition fields

FAMILIES = ["bass", "brass", "organ"]
PITCHES = ["36", "48", "60", "72", "84"]


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> dict[str, Path]:
    """Saved pipelines with value names: fields family (3) and pitch (5), and one class field cat/dog/owl."""
    from vqgen.priors.prior import CodePrior

    root = tmp_path_factory.mktemp("named")
    torch.manual_seed(0)
    fields = CodePrior(
        16, [4, 4], condition_fields={"family": 3, "pitch": 5}, hidden_size=32, num_layers=1, num_heads=4
    ).eval()
    names = {"family": FAMILIES, "pitch": PITCHES}
    ImagePipeline(make_tokenizer(), fields, condition_names=names).save_pretrained(str(root / "fields"))
    classes = {"class": ["cat", "dog", "owl"]}
    ImagePipeline(make_tokenizer(), make_prior(), condition_names=classes).save_pretrained(
        str(root / "classes")
    )
    return {"fields": root / "fields", "classes": root / "classes"}


@pytest.mark.parametrize(
    "which, arguments, names",
    [
        ("fields", {"conditions": {"velocity": 100}}, ["unknown condition 'velocity'", "family, pitch"]),
        ("fields", {"conditions": {"pitch": 61}}, ["pitch 61 is not a value this pipeline was trained on", "36, 48, 60, 72, 84"]),
        ("fields", {"conditions": {"pitch": [60, 96]}}, ["pitch 96", "36, 48, 60, 72, 84"]),
        ("fields", {"conditions": {"family": "kazoo"}}, ["unknown family 'kazoo'", "bass, brass, organ"]),
        ("fields", {"conditions": {"family": 3}}, ["condition 'family' must lie in [-1, 3)"]),
        ("fields", {"conditions": {"family": True}}, ["condition 'family' must be integers"]),
        ("fields", {"class_labels": 1}, ["need a prior with one condition field", "family, pitch"]),
        ("classes", {"class_labels": "cow"}, ["unknown class label 'cow'", "cat, dog, owl"]),
        ("classes", {"class_labels": ["cat", "cow"]}, ["unknown class label 'cow'"]),
        ("classes", {"conditions": {"colour": "red"}}, ["unknown condition 'colour'", "class"]),
    ],
)  # fmt: skip
def test_bad_conditions_to_a_pipeline(named, which, arguments, names):
    pipe = ImagePipeline.from_pretrained(named[which])
    with pytest.raises(VqgenError) as error:
        pipe(num_samples=2, **arguments)
    _one_line(error.value, *names)


@pytest.mark.parametrize(
    "which, flags, message",
    [
        ("fields", ["--condition", "velocity=100"], "unknown condition 'velocity': this pipeline's fields are family, pitch"),
        ("fields", ["--condition", "pitch=61"], "pitch 61 is not a value this pipeline was trained on; pitch takes 36, 48, 60, 72, 84"),
        ("fields", ["--condition", "family=kazoo"], "unknown family 'kazoo'; family takes bass, brass, organ"),
        ("fields", ["--condition", "family"], "--condition takes FIELD=VALUE (this pipeline's fields: family, pitch), got 'family'"),
        ("fields", ["--condition", "=brass"], "--condition takes FIELD=VALUE"),
        ("classes", ["--class-label", "cow"], "unknown class label 'cow'; class takes cat, dog, owl"),
        ("classes", ["--class-label", "cat", "cow"], "unknown class label 'cow'; class takes cat, dog, owl"),
        ("classes", ["--condition", "class=cow"], "unknown class 'cow'; class takes cat, dog, owl"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_conditions_with_one_line(named, tmp_path, capsys, which, flags, message):
    argv = ["generate", "image", "--pipeline", str(named[which]), "--num-samples", "2", *flags]
    status, err = _cli([*argv, "--output", str(tmp_path / "g.png"), "--no-progress"], capsys)
    assert status == 2, err
    assert message in _error_line(err)


def test_cli_compress_by_condition_names(named, tmp_path, capsys):
    image = tmp_path / "in.png"
    image.write_bytes(_png_bytes(8))
    compress = ["compress", "--pipeline", str(named["fields"]), "--input", str(image)]
    assert cli.main([*compress, "--condition", "family=brass", "--output", str(tmp_path / "a.vqz")]) == 0
    status, err = _cli([*compress, "--condition", "pitch=61", "--output", str(tmp_path / "b.vqz")], capsys)
    assert status == 2 and "pitch takes 36, 48, 60, 72, 84" in _error_line(err)
