"""vqgen score / compress / decompress for video and audio pipelines: sorted CSV and plot, exact round trips,
and one-line errors (nothing written) for bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile
import torch
from conftest import make_prior
from test_cli_video import moving_square
from test_pipeline_audio import FRAMES, HOP, RATE, make_audio_prior, make_audio_tokenizer, tone
from test_pipeline_video import GRID, make_video_tokenizer

from vqgen.cli import main
from vqgen.io import load_video, save_audio, save_video
from vqgen.pipelines import AudioPipeline, VideoPipeline
from vqgen.pipelines.video import to_uint8_videos


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny pipelines saved to folders: ``video`` (5 frames of 8x8 at 10 fps), ``other`` (a video pipeline with
    other weights) and ``audio`` (25 code frames of 8 samples at 8 kHz), with the objects themselves."""
    root = tmp_path_factory.mktemp("media-likelihood")
    pipes = {
        "video": VideoPipeline(make_video_tokenizer(), make_prior(num_classes=3, grid=GRID), fps=10),
        "other": VideoPipeline(make_video_tokenizer(seed=1), make_prior(num_classes=3, grid=GRID), fps=10),
        "audio": AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay")),
    }
    for name, pipe in pipes.items():
        pipe.save_pretrained(root / name)
    return root, pipes


def run(capsys, *argv) -> tuple[int, str]:
    """``vqgen *argv`` in process -> (exit status, stderr)."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def assert_one_line_error(status: int, err: str, match: str) -> None:
    lines = err.strip().splitlines()  # (after diffusers' loading bar, if any)
    assert status == 2 and lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert match in lines[-1], err


def reconstruction(pipe, path) -> torch.Tensor:
    """What decompress must give back: the tokenizer's round trip of the file as the pipeline reads it."""
    with torch.no_grad():
        return pipe.tokenizer.decode(pipe.tokenizer.encode(pipe.preprocess(path))).float().clamp(-1, 1)


def read_rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("medium", ["video", "audio"])
def test_score_writes_rows_most_anomalous_first_and_a_plot(saved, tmp_path, capsys, medium):
    root, pipes = saved
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        if medium == "video":
            save_video(moving_square(2 * i), data / f"clip{i}.mp4", fps=10)
        else:  # one file at twice the rate: read at the pipeline's
            rate = RATE * (1 + i % 2)
            save_audio(
                tone(FRAMES * HOP * rate // RATE, rate=rate, freq=300.0 * (i + 1)), data / f"a{i}.wav", rate
            )
    csv_path = tmp_path / "scores.csv"
    status, err = run(
        capsys, "score", "--pipeline", root / medium, "--data", data, "--output", csv_path, "--plot"
    )
    assert status == 0, err
    rows = read_rows(csv_path)
    scores = [float(row["bits_per_dim"]) for row in rows]
    assert len(rows) == 3 and scores == sorted(scores, reverse=True) and len(set(scores)) == 3
    expected = pipes[medium].score(rows[0]["item"]).bits_per_dim  # the file as the Python API reads it
    assert scores[0] == pytest.approx(float(expected), rel=1e-4)
    assert (tmp_path / "scores.png").stat().st_size > 1000


def test_score_refuses_a_frame_count_the_pipeline_cannot_take(saved, tmp_path, capsys):
    root, _ = saved
    status, err = run(
        capsys, "score", "--pipeline", root / "video", "--data", tmp_path, "--output", tmp_path / "s.csv",
        "--frames", "9",
    )  # fmt: skip
    assert_one_line_error(status, err, "clips of 5 frames")
    assert not (tmp_path / "s.csv").exists()


def test_video_round_trip_is_the_tokenizers_reconstruction(saved, tmp_path, capsys):
    root, pipes = saved
    save_video(moving_square(1), tmp_path / "in.mp4", fps=10)
    vqz, out = tmp_path / "clip.vqz", tmp_path / "out.gif"
    status, err = run(
        capsys, "compress", "--pipeline", root / "video", "--input", tmp_path / "in.mp4", "--output", vqz,
        "--class-label", "1",
    )  # fmt: skip
    assert status == 0, err
    assert run(capsys, "decompress", "--pipeline", root / "video", "--input", vqz, "--output", out)[0] == 0
    frames, fps = load_video(out, channels=1)  # grey GIF frames are stored exactly
    expected = to_uint8_videos(reconstruction(pipes["video"], tmp_path / "in.mp4"))[0]
    np.testing.assert_array_equal(frames, expected)
    assert fps == pipes["video"].fps


def test_audio_round_trip_is_the_tokenizers_reconstruction(saved, tmp_path, capsys):
    root, pipes = saved
    source = tmp_path / "in.flac"  # 16 kHz stereo in, 8 kHz mono out
    save_audio(tone(2 * FRAMES * HOP, channels=2, rate=2 * RATE), source, 2 * RATE)
    vqz, out = tmp_path / "clip.vqz", tmp_path / "out.wav"
    assert run(capsys, "compress", "--pipeline", root / "audio", "--input", source, "--output", vqz)[0] == 0
    assert run(capsys, "decompress", "--pipeline", root / "audio", "--input", vqz, "--output", out)[0] == 0
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (RATE, 1, FRAMES * HOP)
    save_audio(reconstruction(pipes["audio"], source)[0], tmp_path / "expected.wav", RATE)
    got, _ = soundfile.read(str(out), dtype="int16")
    want, _ = soundfile.read(str(tmp_path / "expected.wav"), dtype="int16")
    np.testing.assert_array_equal(got, want)


def test_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, capsys):
    root, _ = saved
    video, audio = root / "video", root / "audio"
    save_video(moving_square(0, frames=9), tmp_path / "long.gif", fps=10)
    save_video(moving_square(0), tmp_path / "clip.gif", fps=10)
    save_audio(tone(FRAMES * HOP), tmp_path / "clip.wav", RATE)
    save_audio(tone(4 * FRAMES * HOP), tmp_path / "long.wav", RATE)
    cases = [
        (["compress", "--pipeline", video, "--input", tmp_path / "clip.gif", "--output", "x.gif"], ".vqz"),
        (
            ["compress", "--pipeline", video, "--input", tmp_path / "none.gif", "--output", "x.vqz"],
            "not exist",
        ),
        (
            ["compress", "--pipeline", video, "--input", tmp_path / "long.gif", "--output", "x.vqz"],
            "5 frames",
        ),
        (
            ["compress", "--pipeline", audio, "--input", tmp_path / "long.wav", "--output", "x.vqz"],
            "must last",
        ),
        (
            ["compress", "--pipeline", video, "--input", tmp_path / "clip.wav", "--output", "x.vqz"],
            "cannot decode",
        ),
    ]
    for argv, match in cases:
        argv[-1] = tmp_path / argv[-1]
        assert_one_line_error(*run(capsys, *argv), match)
        assert not argv[-1].exists()
    assert run(capsys, "compress", "--pipeline", video, "--input", tmp_path / "clip.gif",
               "--output", tmp_path / "v.vqz")[0] == 0  # fmt: skip
    assert run(capsys, "compress", "--pipeline", audio, "--input", tmp_path / "clip.wav",
               "--output", tmp_path / "a.vqz")[0] == 0  # fmt: skip
    data = (tmp_path / "v.vqz").read_bytes()
    (tmp_path / "cut.vqz").write_bytes(data[:-1])
    (tmp_path / "junk.vqz").write_bytes(b"PK\x03\x04" + data[4:])
    cases = [
        ([video, "v.vqz", "out.wav"], "must be a video file (.mp4, .gif)"),
        ([audio, "a.vqz", "out.ogg"], "must be an audio file (.wav, .flac)"),
        ([video, "cut.vqz", "out.gif"], "truncated"),
        ([video, "junk.vqz", "out.gif"], "not a vqgen compressed file"),
        ([root / "other", "v.vqz", "out.gif"], "compressed with pipeline"),
        ([audio, "v.vqz", "out.wav"], "compressed with pipeline"),
    ]
    for (pipeline, source, output), match in cases:
        argv = [
            "decompress",
            "--pipeline",
            pipeline,
            "--input",
            tmp_path / source,
            "--output",
            tmp_path / output,
        ]
        assert_one_line_error(*run(capsys, *argv), match)
        assert not (tmp_path / output).exists()


@pytest.mark.parametrize("medium", ["video", "audio"])
def test_black_video_and_silent_audio_round_trip(saved, medium):
    """The empty-ish extremes: an all-black clip and digital silence, each of the pipeline's full length."""
    _, pipes = saved
    pipe = pipes[medium]
    media = torch.full((1, *pipe.sample_shape), -1.0 if medium == "video" else 0.0)
    expected = pipe.tokenizer.decode(pipe.tokenizer.encode(media)).float().clamp(-1, 1)
    torch.testing.assert_close(pipe.decompress(pipe.compress(media)), expected, rtol=0, atol=0)
