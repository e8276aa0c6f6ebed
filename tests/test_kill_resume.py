"""Tokenizer training survives SIGKILL: ``vqgen train-tokenizer --resume`` continues from the last complete
checkpoint and ends with the weights of an uninterrupted run.

Each case trains a tiny tokenizer on demo:mnist in a subprocess (12 steps, a checkpoint every 2), kills it
with SIGKILL (during a checkpoint write: as soon as a ``.tmp-checkpoint-*`` folder appears; or after a
random logged step), restarts it with ``--resume`` and checks that

* ``CheckpointManager.list()`` never lists a folder without ``trainer_state.json`` (polled while running);
* the resumed run starts from the newest complete checkpoint (its ``trainer_state.json`` step);
* ``log.csv`` ends with exactly one row per step 1..12, and its losses match the uninterrupted run's;
* the final weights equal the uninterrupted run's with the same seed within atol 1e-5.

The fast case (one kill during a checkpoint write) runs by default; several random kills are ``slow``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vqgen.training.common import STATE_FILE, CheckpointManager

MAX_STEPS = 12
WEIGHTS = "diffusion_pytorch_model.safetensors"
ATOL = 1e-5


def _train(output: Path, resume: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "vqgen.cli", "train-tokenizer", "--data", "demo:mnist"]
    argv += ["--base-channels=8", "--latent-channels=8", "--channel-multipliers=1,2", "--codebook-size=16"]
    argv += ["--batch-size=8", "--checkpoint-every=2", f"--max-steps={MAX_STEPS}", "--log-every=1"]
    argv += ["--seed=7", "--no-progress", "--output", str(output)]
    if resume:
        argv.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _finish(process: subprocess.Popen, timeout: float = 180) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def _check_listing(output: Path) -> None:
    """Every folder ``list()`` returns is complete (or was rotated away since, which is allowed)."""
    for path in CheckpointManager(output, keep=2).list():
        assert (path / STATE_FILE).is_file() or not path.exists(), f"incomplete checkpoint listed: {path}"


def _kill_when(process: subprocess.Popen, output: Path, ready) -> bool:
    """Poll until ``ready()``; then SIGKILL. Returns False if the run ended first."""
    while process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        _check_listing(output)
        time.sleep(0.001)
    return False


def _temporary_checkpoint(output: Path, step: int):
    name = f".tmp-checkpoint-{step:08d}"
    root = output / "checkpoints"
    return lambda: (root / name).is_dir()


def _logged_step(output: Path, step: int):
    path = output / "log.csv"

    def ready() -> bool:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return False
        return any(line.startswith(f"{step},") for line in lines[1:])

    return ready


def _log(output: Path) -> list[dict]:
    with (output / "log.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _latest_step(output: Path) -> int:
    latest = CheckpointManager(output, keep=2).latest()
    if latest is None:
        return 0
    return int(json.loads((latest / STATE_FILE).read_text())["step"])


def _resume(output: Path) -> tuple[int, subprocess.Popen]:
    """Restart with --resume; returns the step of the newest complete checkpoint and the process."""
    return _latest_step(output), _train(output, resume=True)


def _check_resumed_output(out: str, output: Path, expected: int) -> None:
    if expected:
        assert f"at step {expected}" in out, out
    else:
        assert "starting from step 0" in out, out


def _compare_with_reference(output: Path, reference: Path) -> None:
    steps = [int(row["step"]) for row in _log(output)]
    assert steps == list(range(1, MAX_STEPS + 1)), steps
    for mine, theirs in zip(_log(output), _log(reference), strict=True):
        for key in ("total", "reconstruction", "quantizer"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-4, abs=1e-6), (mine, theirs)
    got, want = load_file(str(output / WEIGHTS)), load_file(str(reference / WEIGHTS))
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(
            got[name], want[name], atol=ATOL, rtol=0, msg=lambda m, n=name: f"{n}: {m}"
        )
    final = CheckpointManager(output, keep=2).list()
    assert final and final[-1].name == f"checkpoint-{MAX_STEPS:08d}"
    leftovers = [p.name for p in (output / "checkpoints").iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary folders left behind: {leftovers}"


@pytest.fixture(scope="module")
def reference_process(tmp_path_factory):
    """The uninterrupted run, started once and shared (it runs while the first case is being killed)."""
    output = tmp_path_factory.mktemp("reference") / "run"
    return output, _train(output)


@pytest.fixture(scope="module")
def reference(reference_process) -> Path:
    output, process = reference_process
    _finish(process)
    return output


def test_kill_during_a_checkpoint_write_then_resume(tmp_path, reference_process, reference):
    seed = random.randrange(1 << 30)
    step = random.Random(seed).choice([4, 6, 8])
    output = tmp_path / "run"
    process = _train(output)
    killed = _kill_when(process, output, _temporary_checkpoint(output, step))
    assert killed, f"the run ended before its step-{step} checkpoint was caught being written (seed {seed})"
    _check_listing(output)
    expected, process = _resume(output)
    # step - 2 unless the rename of the step's folder won the race against the kill (a window of ~1 ms).
    assert expected in (step - 2, step), (
        f"newest complete checkpoint after a kill writing step {step}: {expected}"
    )
    out = _finish(process)
    _check_resumed_output(out, output, expected)
    _compare_with_reference(output, reference)


@pytest.mark.slow
def test_several_random_kills_then_resume(tmp_path, reference):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    output = tmp_path / "run"
    process = _train(output)
    kills = sorted(rng.sample(range(1, MAX_STEPS), 3))
    for at in kills:
        # Half the time at a random logged step, half while a checkpoint is being written.
        checkpoint = 2 * (at // 2 + 1)
        ready = _logged_step(output, at) if rng.random() < 0.5 else _temporary_checkpoint(output, checkpoint)
        if not _kill_when(process, output, ready):
            break  # this moment was already past when the run resumed: it finished, nothing left to kill
        _check_listing(output)
        expected, process = _resume(output)
        assert expected <= at + 2, (seed, at, expected)
    out = _finish(process)
    assert "saved tokenizer" in out, (seed, out)
    _compare_with_reference(output, reference)


def test_same_seed_gives_the_same_run(tmp_path):
    from vqgen import cli

    weights = []
    for name in ("a", "b"):
        argv = ["train-tokenizer", "--data", "demo:mnist", "--base-channels=8", "--latent-channels=8"]
        argv += ["--channel-multipliers=1,2", "--codebook-size=16", "--batch-size=8", "--max-steps=1"]
        argv += ["--seed=7", "--no-progress", "--output", str(tmp_path / name)]
        assert cli.main(argv) == 0
        weights.append(load_file(str(tmp_path / name / WEIGHTS)))
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=ATOL, rtol=0)
