"""Two CPU processes under ``accelerate launch`` (gloo): same losses as one process with the same global batch."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
from conftest import cpu_environment, cpu_launcher

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--data",
    "demo:mnist",
    "--base-channels",
    "8",
    "--latent-channels",
    "8",
    "--channel-multipliers",
    "1,2",
    "--codebook-size",
    "16",
    "--no-kmeans-init",
    "--dead-code-threshold",
    "0",
    "--max-steps",
    "4",
    "--checkpoint-every",
    "2",
    "--log-every",
    "1",
    "--no-progress",
    "--seed",
    "3",
]


def run(script: str, arguments: list[str], processes: int) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*cpu_launcher(processes), str(ROOT / "scripts" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=str(ROOT),
        env=cpu_environment(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def column(path: Path, name: str) -> list[float]:
    with open(path, newline="") as f:
        return [float(row[name]) for row in csv.DictReader(f)]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """Batch 4 on each of 2 ranks sees the same 8 items per step as batch 8 on one: DDP-averaged gradients and
    all-reduced EMA codebook statistics then give the same trained weights (and the same losses)."""
    run("train_tokenizer.py", [*TINY, "--batch-size", "4", "--output", str(tmp_path / "two")], 2)
    run("train_tokenizer.py", [*TINY, "--batch-size", "8", "--output", str(tmp_path / "one")], 1)
    two = column(tmp_path / "two" / "log.csv", "reconstruction")
    one = column(tmp_path / "one" / "log.csv", "reconstruction")
    assert len(two) == len(one) == 4
    assert two[0] == pytest.approx(one[0], rel=1e-5)  # logs are the mean over both processes
    assert two == pytest.approx(one, rel=1e-3)  # later steps: float sums in another order, through Adam
    names = sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir())
    assert names == ["checkpoint-00000002", "checkpoint-00000004"]  # written once, by the main process

    # Resume with two processes continues from the last checkpoint.
    result = run(
        "train_tokenizer.py",
        [*TINY, "--batch-size", "4", "--output", str(tmp_path / "two"), "--resume", "--max-steps", "6"],
        2,
    )
    assert "resumed from" in result.stdout and "at step 4" in result.stdout
    assert column(tmp_path / "two" / "log.csv", "step")[-1] == 6


def test_prior_training_with_two_processes_matches_one(tmp_path):
    """The prior loop too: the same global batch split over 2 ranks gives the same logged (mean) losses.
    Class dropout is off, since each rank would draw its own dropout mask."""
    tokenizer = [*TINY, "--batch-size", "8", "--max-steps", "1", "--output", str(tmp_path / "tok")]
    run("train_tokenizer.py", tokenizer, 1)
    from vqgen.cli import main

    assert (
        main(
            [
                "encode",
                "--tokenizer",
                str(tmp_path / "tok"),
                "--data",
                "demo:mnist",
                "--split",
                "test",
                "--output",
                str(tmp_path / "shards"),
                "--no-progress",
            ]
        )
        == 0
    )
    prior = [
        "--shards",
        str(tmp_path / "shards"),
        "--tokenizer",
        str(tmp_path / "tok"),
        "--hidden-size",
        "32",
        "--num-layers",
        "1",
        "--num-heads",
        "4",
        "--class-dropout",
        "0",
        "--max-steps",
        "3",
        "--log-every",
        "1",
        "--eval-every",
        "3",
        "--checkpoint-every",
        "3",
        "--no-progress",
        "--seed",
        "1",
    ]
    run("train_prior.py", [*prior, "--batch-size", "4", "--output", str(tmp_path / "two")], 2)
    run("train_prior.py", [*prior, "--batch-size", "8", "--output", str(tmp_path / "one")], 1)
    two, one = column(tmp_path / "two" / "log.csv", "loss"), column(tmp_path / "one" / "log.csv", "loss")
    assert len(two) == 3 and two == pytest.approx(one, rel=1e-3)
    # One process wrote the pipeline folder: its manifest lists exactly the files there (no rank's temporary).
    from vqgen.integrity import verify_manifest

    manifest = verify_manifest(tmp_path / "two" / "pipeline")
    assert manifest is not None and not any("tmp" in name for name in manifest["files"])


def test_sampling_with_two_processes_gives_the_samples_of_one(tmp_path):
    """``vqgen generate`` under ``accelerate launch``: each process draws its share of the samples with the
    per-item generators, and the gathered grid equals a single process's with the same seed."""
    import numpy as np
    import PIL.Image
    from conftest import make_prior, make_tokenizer

    from vqgen.cli import main
    from vqgen.pipelines import ImagePipeline

    ImagePipeline(make_tokenizer(), make_prior()).save_pretrained(tmp_path / "pipe")
    command = ["generate", "image", "--pipeline", str(tmp_path / "pipe"), "--num-samples", "5", "--seed", "3"]
    command += ["--class-label", "1", "--no-progress"]
    launched = subprocess.run(
        [*cpu_launcher(2), "-m", "vqgen.cli", *command, "--output", str(tmp_path / "two.png")],
        env=cpu_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert main([*command, "--output", str(tmp_path / "one.png")]) == 0
    two = np.asarray(PIL.Image.open(tmp_path / "two.png"))
    one = np.asarray(PIL.Image.open(tmp_path / "one.png"))
    np.testing.assert_array_equal(two, one)
