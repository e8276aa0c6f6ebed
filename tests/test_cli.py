"""The command line end to end on tiny models: encode -> train-prior -> generate, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cpu_environment, cpu_launcher, make_images
from PIL import Image

from vqgen.cli import main
from vqgen.data.shards import CodeShardDataset
from vqgen.pipelines import ImagePipeline


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny tokenizer trained by the CLI, its shards, and a prior + pipeline trained on them."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "images"
    for i, label in enumerate(["a", "b"] * 12):
        (data / label).mkdir(parents=True, exist_ok=True)
        pixels = make_images(24)[i]["pixels"][0].numpy()
        Image.fromarray(((pixels + 1) * 127.5).astype(np.uint8)).save(data / label / f"{i}.png")
    common = ["--no-progress", "--log-every", "1", "--batch-size", "8"]
    assert (
        main(
            [
                "train-tokenizer",
                "--data",
                str(data),
                "--resolution",
                "8",
                "--channels",
                "1",
                "--output",
                str(root / "tok"),
                "--max-steps",
                "3",
                "--base-channels",
                "8",
                "--latent-channels",
                "8",
                "--channel-multipliers",
                "1,2",
                "--codebook-size",
                "16",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "encode",
                "--tokenizer",
                str(root / "tok"),
                "--data",
                str(data),
                "--resolution",
                "8",
                "--output",
                str(root / "shards"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train-prior",
                "--shards",
                str(root / "shards"),
                "--val-shards",
                str(root / "shards"),
                "--tokenizer",
                str(root / "tok"),
                "--output",
                str(root / "prior"),
                "--hidden-size",
                "32",
                "--num-layers",
                "1",
                "--num-heads",
                "4",
                "--max-steps",
                "3",
                "--eval-every",
                "3",
                *common,
            ]
        )
        == 0
    )
    return root


def test_encode_and_train_prior_make_a_pipeline(trained):
    shards = CodeShardDataset(trained / "shards")
    assert len(shards) == 24 and shards.label_names == ["a", "b"] and shards.code_grid == (4, 4)
    pipe = ImagePipeline.from_pretrained(trained / "prior" / "pipeline")
    assert pipe.num_classes == 2
    assert (trained / "prior" / "eval.csv").is_file() and (trained / "prior" / "samples").is_dir()


def test_generate_writes_a_grid_or_one_file_per_sample(trained, tmp_path):
    pipeline = str(trained / "prior" / "pipeline")
    assert (
        main(
            [
                "generate",
                "image",
                "--pipeline",
                pipeline,
                "--num-samples",
                "6",
                "--nrow",
                "3",
                "--output",
                str(tmp_path / "grid.png"),
                "--no-progress",
            ]
        )
        == 0
    )
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape[:2] == (2 * 10 + 2, 3 * 10 + 2)  # 8x8 tiles with 2-pixel padding
    assert (
        main(
            [
                "generate",
                "image",
                "--pipeline",
                pipeline,
                "--num-samples",
                "3",
                "--class-label",
                "1",
                "--seed",
                "5",
                "--output",
                str(tmp_path / "dir"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == [f"sample_0000{i}.png" for i in range(3)]
    again = tmp_path / "again"
    main(
        [
            "generate",
            "image",
            "--pipeline",
            pipeline,
            "--num-samples",
            "3",
            "--class-label",
            "1",
            "--seed",
            "5",
            "--output",
            str(again),
        ]
    )
    for name in ("sample_00000.png", "sample_00002.png"):  # same seed, same images
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "dir" / name)), np.asarray(Image.open(again / name))
        )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--class-label", "12"], "class_labels must lie in [0, 2)"),
        (["--top-p", "1.5"], "top_p must be None or a number in (0, 1]"),
        (["--temperature", "-1"], "temperature must be a finite number >= 0"),
        (["--class-label", "0", "1"], "one label or one per sample"),
        (["--output", "out.txt"], "must be an image file"),
    ],
)
def test_bad_generate_arguments_give_one_line(trained, tmp_path, capsys, arguments, message):
    argv = [
        "generate",
        "image",
        "--pipeline",
        str(trained / "prior" / "pipeline"),
        "--num-samples",
        "4",
        "--output",
        str(tmp_path / "x.png"),
    ]
    argv = argv[:-2] + arguments if "--output" in arguments else argv + arguments
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("error: ")
    assert not list(tmp_path.iterdir())  # nothing half written


def test_shards_from_another_tokenizer_are_refused(trained, tmp_path, capsys):
    main(
        [
            "train-tokenizer",
            "--data",
            "demo:mnist",
            "--output",
            str(tmp_path / "other"),
            "--max-steps",
            "1",
            "--base-channels",
            "8",
            "--latent-channels",
            "8",
            "--channel-multipliers",
            "1,2",
            "--codebook-size",
            "16",
            "--batch-size",
            "8",
            "--no-progress",
        ]
    )
    assert (
        main(
            [
                "train-prior",
                "--shards",
                str(trained / "shards"),
                "--tokenizer",
                str(tmp_path / "other"),
                "--output",
                str(tmp_path / "p"),
            ]
        )
        == 2
    )
    assert "re-encode them with vqgen encode" in capsys.readouterr().err


def test_errors_exit_non_zero_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vqgen.cli",
            "generate",
            "image",
            "--pipeline",
            str(tmp_path / "nope"),
            "--output",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "nope" in result.stderr


def test_a_reader_that_leaves_early_is_no_traceback():
    """``vqgen info vqgen/pretrained/audio-instruments | head -1``: the pipe closes while info still prints."""
    folder = Path(__file__).resolve().parents[1] / "vqgen" / "pretrained" / "audio-instruments"
    command = [sys.executable, "-m", "vqgen.cli", "info", str(folder)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cpu_environment()
    ) as info:
        assert info.stdout.readline().startswith(b"vqgen ")
        info.stdout.close()  # as head does after its line
        error = info.stderr.read().decode()
        status = info.wait(timeout=120)
    assert "Traceback" not in error and "BrokenPipeError" not in error, error
    assert status in (0, 1)


def test_accelerate_launch_splits_generation_across_processes(trained, tmp_path):
    """Two CPU processes share the samples (PartialState) and only the main process writes the files."""
    result = subprocess.run(
        [
            *cpu_launcher(2),
            "scripts/generate.py",
            "image",
            "--pipeline",
            str(trained / "prior" / "pipeline"),
            "--num-samples",
            "5",
            "--class-label",
            "1",
            "--output",
            str(tmp_path / "multi"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(Path(__file__).resolve().parent.parent),
        env=cpu_environment(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == [f"sample_0000{i}.png" for i in range(5)]
    assert result.stdout.count("wrote 5 images") == 1


def test_generate_device_and_dtype(trained, tmp_path):
    """``--device cpu`` is the default here (same bytes); ``--dtype bfloat16`` casts tokenizer and prior and
    still writes real images (the float32 codebook lookup is cast to the decoder's dtype)."""
    base = ["generate", "image", "--pipeline", str(trained / "prior" / "pipeline"), "--num-samples", "4"]
    base += ["--seed", "3", "--no-progress", "--output"]
    assert main(base + [str(tmp_path / "auto.png")]) == 0
    assert main(base + [str(tmp_path / "cpu.png"), "--device", "cpu"]) == 0
    assert (tmp_path / "auto.png").read_bytes() == (tmp_path / "cpu.png").read_bytes()
    assert main(base + [str(tmp_path / "bf16.png"), "--dtype", "bfloat16"]) == 0
    grid = np.asarray(Image.open(tmp_path / "bf16.png"))
    assert grid.shape == np.asarray(Image.open(tmp_path / "cpu.png")).shape and grid.std() > 0
