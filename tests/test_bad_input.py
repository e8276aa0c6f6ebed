"""A catalogue of bad inputs: each is refused with ONE line naming the file or value and what is expected.

Through the Python API every case must raise a :class:`vqgen.errors.VqgenError` subclass; through the CLI
(``vqgen.cli.main`` in process, and a handful as real subprocesses) it must exit with status 2 and print
``error: ...`` as one line, never a traceback. Images are the only medium for now.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer
from PIL import Image

from vqgen import cli
from vqgen.data.images import ImageFolderDataset, load_image_dataset
from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.errors import CheckpointError, ConfigError, DataError, MismatchError, ShapeError, VqgenError
from vqgen.io import load_image, save_image
from vqgen.loading import load_tokenizer
from vqgen.pipelines.image import ImagePipeline

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
    "prefix, message",
    [
        (torch.full((1, 3), float("nan")), "integer dtype"),
        (torch.full((1, 3), float("inf")), "integer dtype"),
        (torch.zeros(1, 2, 3, 4, dtype=torch.long), "prefix must have shape"),
        (torch.zeros(1, 17, dtype=torch.long), "prefix must have shape"),
        (torch.full((1, 3), 16), "code range"),
    ],
    ids=["nan", "inf", "4d", "too-long", "out-of-range"],
)
def test_bad_prefix_to_sample(prefix, message):
    with pytest.raises(VqgenError) as error:
        make_prior().sample(1, class_labels=[0], prefix=prefix)
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
        "top-k-0": (generate + ["--top-k", "0", *grid], "top_k must be None or an int in [1, 16], got 0"),
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
            "holds no image files",
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
