"""The video command line on tiny models: train-tokenizer -> encode -> train-prior -> generate, reconstruct,
evaluate-tokenizer, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_pipeline_video import GRID, make_video_tokenizer

from vqgen.cli import main
from vqgen.data.shards import CodeShardDataset
from vqgen.io import load_video, save_video
from vqgen.pipelines import VideoPipeline
from vqgen.priors.prior import CodePrior


def moving_square(offset: int, frames: int = 5) -> np.ndarray:
    """uint8 ``[frames, 8, 8, 1]``: a bright 3x3 square moving one pixel right per frame."""
    clip = np.zeros((frames, 8, 8, 1), dtype=np.uint8)
    for t in range(frames):
        col = (offset + t) % 6
        clip[t, 2:5, col : col + 3] = 255
    return clip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A video tokenizer trained by the CLI on a folder of GIFs, its shards, a prior and its pipeline."""
    root = tmp_path_factory.mktemp("cli-video")
    data = root / "clips"
    for i, label in enumerate(["left", "right"] * 4):
        (data / label).mkdir(parents=True, exist_ok=True)
        save_video(moving_square(i), data / label / f"{i}.gif", fps=8)
    common = ["--no-progress", "--log-every", "1", "--batch-size", "4"]
    video_data = ["--data", str(data), "--resolution", "8", "--frames", "5"]
    argv = [
        "train-tokenizer",
        "--modality",
        "video",
        *video_data,
        "--channels",
        "1",
        "--temporal-factor",
        "2",
        "--output",
        str(root / "tok"),
        "--max-steps",
        "2",
        "--eval-every",
        "2",
        "--base-channels",
        "4",
        "--latent-channels",
        "4",
        "--channel-multipliers",
        "1,2",
        "--codebook-size",
        "16",
        *common,
    ]
    assert main(argv) == 0
    assert (
        main(["encode", "--tokenizer", str(root / "tok"), *video_data, "--output", str(root / "shards")]) == 0
    )
    argv = [
        "train-prior",
        "--shards",
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
        "2",
        "--eval-every",
        "2",
        "--fps",
        "6",
        *common,
    ]
    assert main(argv) == 0
    return root


def test_train_encode_and_train_prior_make_a_video_pipeline(trained):
    config = json.loads((trained / "tok" / "config.json").read_text())
    assert config["_class_name"] == "VideoTokenizer" and config["temporal_factor"] == 2
    shards = CodeShardDataset(trained / "shards")
    assert len(shards) == 8 and shards.code_grid == GRID and shards.label_names == ["left", "right"]
    pipe = VideoPipeline.from_pretrained(trained / "prior" / "pipeline")
    assert pipe.fps == 6.0 and pipe.num_classes == 2
    assert list((trained / "prior" / "samples").glob("*.png"))  # rows of frames
    assert list((trained / "tok" / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A tiny untrained pipeline saved to disk (fast: no training)."""
    torch.manual_seed(0)
    prior = CodePrior(
        codebook_size=16, code_grid=list(GRID), num_classes=3, hidden_size=32, num_layers=1, num_heads=4
    )
    folder = tmp_path_factory.mktemp("video-pipe") / "pipe"
    VideoPipeline(make_video_tokenizer(), prior.eval(), fps=10).save_pretrained(folder)
    return folder


def generate(pipeline_dir, *arguments) -> int:
    return main(["generate", "video", "--pipeline", str(pipeline_dir), "--no-progress", *arguments])


def test_generate_video_to_mp4_gif_and_directory(pipeline_dir, tmp_path):
    assert (
        generate(
            pipeline_dir, "--num-samples", "1", "--class-label", "2", "--output", str(tmp_path / "a.mp4")
        )
        == 0
    )
    frames, fps = load_video(tmp_path / "a.mp4", channels=1)
    assert frames.shape == (5, 8, 8, 1) and fps == pytest.approx(10.0)
    assert (
        generate(pipeline_dir, "--num-samples", "1", "--num-frames", "3", "--output", str(tmp_path / "b.gif"))
        == 0
    )
    assert load_video(tmp_path / "b.gif", channels=1)[0].shape == (3, 8, 8, 1)
    # Several samples in one file tile a grid in every frame.
    assert (
        generate(pipeline_dir, "--num-samples", "4", "--nrow", "2", "--output", str(tmp_path / "grid.gif"))
        == 0
    )
    assert load_video(tmp_path / "grid.gif", channels=1)[0].shape == (5, 22, 22, 1)
    for folder in ("d1", "d2"):
        argv = ["--num-samples", "3", "--seed", "4", "--format", "gif", "--output", str(tmp_path / folder)]
        assert generate(pipeline_dir, *argv) == 0
    names = sorted(p.name for p in (tmp_path / "d1").iterdir())
    assert names == ["sample_00000.gif", "sample_00001.gif", "sample_00002.gif"]
    for name in names:  # same seed, same videos (grey GIFs are exact)
        np.testing.assert_array_equal(
            load_video(tmp_path / "d1" / name)[0], load_video(tmp_path / "d2" / name)[0]
        )


def test_generate_with_a_prompt_keeps_its_opening(pipeline_dir, tmp_path):
    save_video(moving_square(0), tmp_path / "prompt.gif", fps=10)
    argv = ["--num-samples", "2", "--prompt", str(tmp_path / "prompt.gif"), "--output", str(tmp_path / "o")]
    assert generate(pipeline_dir, *argv, "--format", "gif") == 0
    a, b = (load_video(tmp_path / "o" / f"sample_0000{i}.gif")[0] for i in (0, 1))
    np.testing.assert_array_equal(a[:3], b[:3])  # the decoded prompt frames open every video


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num-frames", "4"], "it makes 1 + n * 2 frames up to 5 (1, 3, 5)"),
        (["--num-frames", "9"], "it makes 1 + n * 2 frames up to 5"),
        (["--output", "out.avi"], "must be a video file (.mp4, .gif)"),
        (["--prompt", "missing.mp4"], "does not exist"),
        (["--prompt", "EMPTY"], "the file is empty"),
        (["--prompt", "CORRUPT"], "cannot decode video"),
        (["--prompt", "BIG"], "frames of 8x8"),
        (["--class-label", "7"], "class_labels must lie in [0, 3)"),
    ],
)
def test_bad_generate_video_arguments_give_one_line(pipeline_dir, tmp_path, capsys, arguments, message):
    (tmp_path / "EMPTY.mp4").write_bytes(b"")
    (tmp_path / "CORRUPT.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 20)
    save_video(np.zeros((5, 16, 16, 1), np.uint8), tmp_path / "BIG.gif")
    names = {"EMPTY": "EMPTY.mp4", "CORRUPT": "CORRUPT.mp4", "BIG": "BIG.gif", "out.avi": "out.avi"}
    arguments = [str(tmp_path / names[a]) if a in names else a for a in arguments]
    output = [] if "--output" in arguments else ["--output", str(tmp_path / "x.mp4")]
    assert generate(pipeline_dir, *arguments, *output) == 2
    err = capsys.readouterr().err.strip().splitlines()  # (after diffusers' loading bar, if any)
    assert err[-1].startswith("error: ") and message in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "x.mp4").exists()


def test_generate_video_refuses_an_image_pipeline_and_a_missing_default(tmp_path, capsys, monkeypatch):
    from vqgen.pipelines import loading

    assert main(["generate", "video", "--pipeline", "vqgen/pretrained/image-mnist", "--output", "x.mp4"]) == 2
    assert "(ImagePipeline) cannot generate video" in capsys.readouterr().err
    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path)
    assert main(["generate", "video", "--output", str(tmp_path / "x.mp4")]) == 2
    assert "shipped default 'video' pipeline is not installed" in capsys.readouterr().err


def test_reconstruct_a_video_and_bad_inputs(trained, tmp_path, capsys):
    tok = str(trained / "tok")
    save_video(moving_square(1), tmp_path / "in.mp4", fps=12)
    assert (
        main(
            [
                "reconstruct",
                "--tokenizer",
                tok,
                "--input",
                str(tmp_path / "in.mp4"),
                "--output",
                str(tmp_path / "out.mp4"),
            ]
        )
        == 0
    )
    assert "PSNR" in capsys.readouterr().out
    frames, fps = load_video(tmp_path / "out.mp4", channels=1)
    assert frames.shape == (5, 8, 8, 1) and fps == pytest.approx(12.0)
    save_video(moving_square(1, frames=6), tmp_path / "six.gif")
    argv = [
        "reconstruct",
        "--tokenizer",
        tok,
        "--input",
        str(tmp_path / "six.gif"),
        "--output",
        str(tmp_path / "o.gif"),
    ]
    assert main(argv) == 2
    assert "holds 6 frames; the tokenizer needs 1 + n * 2 frames" in capsys.readouterr().err
    assert main([*argv, "--frames", "5"]) == 0 and (tmp_path / "o.gif").is_file()
    capsys.readouterr()
    for bad_output, message in (("o.wav", "must be a video file"), ("o.mp4", "cannot decode video")):
        (tmp_path / "bad.mp4").write_bytes(b"not a video")
        argv = [
            "reconstruct",
            "--tokenizer",
            tok,
            "--input",
            str(tmp_path / "bad.mp4"),
            "--output",
            str(tmp_path / bad_output),
        ]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_evaluate_video_tokenizer_reports_psnr_per_frame(trained, tmp_path, capsys):
    output = tmp_path / "eval.json"
    argv = ["evaluate-tokenizer", "--tokenizer", str(trained / "tok"), "--data", str(trained / "clips")]
    argv += ["--resolution", "8", "--frames", "5", "--output", str(output), "--no-progress"]
    assert main(argv) == 0
    results = json.loads(output.read_text())
    assert len(results["psnr_per_frame"]) == 5 and results["code_grid"] == list(GRID)
    assert "PSNR per frame" in capsys.readouterr().out
    assert main([*argv[:-3], "--frames", "4", "--no-progress"]) == 2
    assert "the tokenizer needs 1 + n * 2 frames" in capsys.readouterr().err


def test_train_tokenizer_video_refuses_bad_data(tmp_path, capsys):
    base = ["train-tokenizer", "--modality", "video", "--output", str(tmp_path / "t"), "--max-steps", "1"]
    assert main([*base, "--data", "demo:nothing"]) == 2
    assert (
        "unknown demo video dataset 'demo:nothing', available: demo:moving-mnist" in capsys.readouterr().err
    )
    assert main([*base, "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*base, "--data", str(tmp_path / "empty")]) == 2
    assert "needs a resolution" in capsys.readouterr().err


def test_train_tokenizer_video_from_an_image_tokenizer(tmp_path, capsys):
    """--init-from inflates a trained image tokenizer: step 0 codes a one-frame clip as the image tokenizer does."""
    from vqgen.loading import load_tokenizer
    from vqgen.tokenizers.image import ImageTokenizer

    torch.manual_seed(0)
    image = ImageTokenizer(
        in_channels=1,
        base_channels=4,
        channel_multipliers=(1, 2),
        latent_channels=4,
        quantizer_config={"type": "vq", "codebook_size": 8, "kmeans_init": False, "ema": False},
    )
    image.save_pretrained(tmp_path / "image")
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(4):
        save_video(moving_square(i), clips / f"{i}.gif", fps=8)
    argv = [
        "train-tokenizer",
        "--modality",
        "video",
        "--data",
        str(clips),
        "--resolution",
        "8",
        "--frames",
        "5",
        "--channels",
        "1",
        "--temporal-factor",
        "2",
        "--no-progress",
        "--batch-size",
        "4",
        "--max-steps",
        "1",
        "--learning-rate",
        "1e-12",
        "--init-from",
        str(tmp_path / "image"),
        "--output",
        str(tmp_path / "video"),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    video = load_tokenizer(tmp_path / "video")
    assert video.config.base_channels == 4 and video.config.temporal_factor == 2
    frame = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(video.encode(frame[:, :, None])[:, 0], image.encode(frame))
    # A saved video tokenizer is fine-tuned from its own weights and config.
    assert main([*argv[:-4], "--init-from", str(tmp_path / "video"), "--output", str(tmp_path / "v2")]) == 0
    with torch.no_grad():
        clip = torch.rand(2, 1, 5, 8, 8) * 2 - 1
        torch.testing.assert_close(load_tokenizer(tmp_path / "v2").encode(clip), video.encode(clip))
    image_argv = ["train-tokenizer", "--data", str(clips), "--init-from", str(tmp_path / "video")]
    assert main([*image_argv, "--output", str(tmp_path / "i"), "--max-steps", "1"]) == 2
    assert "found VideoTokenizer; --modality image starts from: ImageTokenizer" in capsys.readouterr().err
