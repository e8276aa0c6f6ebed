"""vqgen.media: the registry, the one uint8 <-> float conversion, medium-owned flags, tokenizer defaults, and
the library calls behind the commands giving what the commands give, and the medium ``--data`` holds."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import soundfile
import torch
from conftest import make_tokenizer
from PIL import Image

from vqgen import io
from vqgen.cli import main
from vqgen.cli.common import add_medium_flags, refuse_foreign_flags
from vqgen.errors import ConfigError, DataError
from vqgen.media import (
    TokenizerSettings,
    base,
    build_tokenizer,
    get_medium,
    infer_medium,
    item_medium,
    media,
    medium_names,
    medium_of,
    register_medium,
    to_uint8,
    to_unit_range,
)
from vqgen.media.base import _REGISTRY, Flag, Medium
from vqgen.media.image import IMAGE, images_from_uint8, save_image, to_uint8_images
from vqgen.media.video import VIDEO, to_uint8_videos, videos_from_uint8
from vqgen.pipelines import AudioPipeline, ImagePipeline, VideoPipeline
from vqgen.tokenizers.audio import AudioTokenizer
from vqgen.tokenizers.video import VideoTokenizer


def test_registry_finds_a_medium_by_name_model_and_item():
    assert medium_names() == ["image", "video", "audio"]
    assert get_medium("video") is VIDEO and get_medium(VIDEO) is VIDEO
    assert medium_of(make_tokenizer()) is IMAGE and medium_of(VideoTokenizer) is VIDEO
    for pipeline, name in ((ImagePipeline, "image"), (VideoPipeline, "video"), (AudioPipeline, "audio")):
        assert medium_of(pipeline).name == name and medium_of(pipeline).pipeline_class is pipeline
    assert get_medium("audio").tokenizer_class is AudioTokenizer
    assert item_medium({"audio": torch.zeros(1, 8), "label": 0}).name == "audio"
    with pytest.raises(ConfigError, match="unknown medium 'smell'"):
        get_medium("smell")
    with pytest.raises(ConfigError, match="object names no medium"):
        medium_of(object())
    with pytest.raises(ConfigError, match="must hold one of pixels, video, audio"):
        item_medium({"label": 0})


def test_a_registered_medium_joins_the_list_and_its_flags():
    class Text(Medium):
        name, item_key = "text", "tokens"
        flags = {"generate": (Flag("--prompt", "text: words to continue"),)}

    text = register_medium(Text())
    try:
        assert media()[-1] is text and get_medium("text") is text
        parser = argparse.ArgumentParser()
        add_medium_flags(parser, "generate")
        prompt = next(a for a in parser._actions if a.dest == "prompt")
        assert prompt.help == (
            "video: a clip whose first frames the videos continue; audio: a file the clips continue; "
            "text: words to continue"
        )
    finally:
        del _REGISTRY["text"]


def test_uint8_conversion_round_trips_every_value():
    values = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(to_unit_range(values)), values)
    assert to_unit_range(values).dtype == torch.float32
    assert to_uint8(torch.tensor([-3.0, float("nan"), 7.0])).tolist() == [0, 128, 255]
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    assert tuple(images_from_uint8(images).shape) == (2, 3, 5, 6)
    np.testing.assert_array_equal(to_uint8_images(images_from_uint8(images)), images)
    clips = np.random.default_rng(1).integers(0, 256, (2, 4, 5, 6, 1), dtype=np.uint8)
    assert tuple(videos_from_uint8(clips).shape) == (2, 1, 4, 5, 6)
    np.testing.assert_array_equal(to_uint8_videos(videos_from_uint8(clips)), clips)


def test_io_still_offers_the_media_file_functions():
    from vqgen.media import audio, image, video

    assert io.load_image is image.load_image and io.save_video is video.save_video
    assert io.load_audio is audio.load_audio
    with pytest.raises(AttributeError):
        io.load_text  # noqa: B018


def test_tokenizer_defaults_per_medium():
    settings = TokenizerSettings()
    audio = get_medium("audio").tokenizer_config(settings, 1)
    assert audio == {
        "in_channels": 1,
        "sample_rate": 16000,
        "strides": [2, 4, 5, 8],
        "base_channels": 32,
        "latent_channels": 128,  # the parametric codec's 128 measured features a channel
        "causal": False,
        "quantizer_config": {
            "type": "rvq",
            "codebook_size": 1024,
            "codebook_dim": None,
            "beta": 0.25,
            "ema": True,
            "kmeans_init": True,
            "dead_code_threshold": 50,
            "l2_normalize": False,
            "num_quantizers": 11,
            "quantizer_dropout": 0.5,
        },
        "frontend": "parametric-harmonic",
    }
    learned = get_medium("audio").tokenizer_config(TokenizerSettings(frontend="stft-harmonic"), 1)
    assert (learned["max_channels"], learned["latent_channels"]) == (256, 64)
    waveform = get_medium("audio").tokenizer_config(TokenizerSettings(frontend="waveform"), 1)
    assert waveform["frontend"] == "waveform" and "max_channels" not in waveform  # the codec's own 512
    image = IMAGE.tokenizer_config(settings, 3)
    assert (image["base_channels"], image["quantizer_config"]["type"], "temporal_factor" in image) == (
        64,
        "vq",
        False,
    )
    assert VIDEO.tokenizer_config(TokenizerSettings(temporal_factor=2), 1)["temporal_factor"] == 2
    rvq = IMAGE.tokenizer_config(TokenizerSettings(quantizer="rvq"), 1)["quantizer_config"]
    assert (rvq["num_quantizers"], rvq["quantizer_dropout"]) == (2, 0.0)
    with pytest.raises(
        ConfigError,
        match="--norm, --activation, --frontend, --max-channels and --phase-levels shape the audio codec, not a video tokenizer",
    ):
        build_tokenizer(VIDEO, TokenizerSettings(norm="weight"), 1)
    with pytest.raises(ConfigError, match="need --quantizer rvq, got --quantizer fsq"):
        IMAGE.tokenizer_config(TokenizerSettings(quantizer="fsq", num_quantizers=2), 1)


def test_flags_of_another_medium_are_refused_by_name():
    args = argparse.Namespace(num_frames=None, prompt="x.wav", seconds=None)
    refuse_foreign_flags(args, get_medium("audio"), "generate", "'generate {}'")
    with pytest.raises(ConfigError, match="^--prompt works with 'generate video' or 'generate audio' only$"):
        refuse_foreign_flags(args, IMAGE, "generate", "'generate {}'")
    args = argparse.Namespace(frames=3, levels=None)
    with pytest.raises(ConfigError, match="^--frames works with video tokenizers only$"):
        refuse_foreign_flags(args, get_medium("audio"), "reconstruct", "{} tokenizers")


def test_reconstruct_from_python_writes_what_the_command_writes(tmp_path):
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tok")
    picture = np.zeros((8, 8, 1), dtype=np.uint8)
    picture[2:6, 3:5] = 255
    save_image(picture, tmp_path / "in.png")
    argv = ["reconstruct", "--tokenizer", str(tmp_path / "tok"), "--input", str(tmp_path / "in.png")]
    assert main([*argv, "--output", str(tmp_path / "cli.png")]) == 0
    summary = IMAGE.reconstruct_file(tokenizer, tmp_path / "in.png", tmp_path / "py.png")
    assert summary.startswith("4x4 codes, PSNR ")
    assert (tmp_path / "cli.png").read_bytes() == (tmp_path / "py.png").read_bytes()


def test_each_demo_name_infers_its_medium_from_the_loaders_own_lists():
    from vqgen.data.audio import AUDIO_EXTENSIONS, DEMO_AUDIO_DATASETS
    from vqgen.data.images import DEMO_IMAGE_DATASETS, IMAGE_EXTENSIONS
    from vqgen.data.video import DEMO_VIDEO_DATASETS
    from vqgen.media.video import VIDEO_EXTENSIONS

    expected = {
        "demo:mnist": "image",
        "demo:emoji": "image",
        "demo:moving-mnist": "video",
        "demo:spoken-digits": "audio",
        "demo:instrument-notes": "audio",
    }
    assert {name: infer_medium(name).name for name in expected} == expected  # nothing built or loaded
    assert IMAGE.demo_datasets is DEMO_IMAGE_DATASETS and IMAGE.folder_suffixes is IMAGE_EXTENSIONS
    assert VIDEO.demo_datasets is DEMO_VIDEO_DATASETS and VIDEO.folder_suffixes is VIDEO_EXTENSIONS
    audio = get_medium("audio")
    assert audio.demo_datasets is DEMO_AUDIO_DATASETS and audio.folder_suffixes is AUDIO_EXTENSIONS
    with pytest.raises(
        DataError, match="^unknown demo dataset 'demo:smells', available: demo:mnist, .*demo:"
    ):
        infer_medium("demo:smells")


def _wav(path, seconds: float = 0.01, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.zeros(round(seconds * rate), dtype=np.float32), rate)


def _png(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (4, 4)).save(path)


def _touch(folder, *names) -> None:
    """Empty files: inference goes by suffix and never opens a file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_a_folder_infers_the_medium_most_of_its_files_are(tmp_path):
    for i, label in enumerate(["low", "high", "low"]):  # class subfolders: found recursively
        _wav(tmp_path / "wav" / label / f"{i}.wav")
    assert infer_medium(tmp_path / "wav") is get_medium("audio")
    for i in range(2):
        _png(tmp_path / "png" / f"{i}.png")
    assert infer_medium(str(tmp_path / "png")) is IMAGE
    _touch(tmp_path / "mp4", "clip.mp4")
    assert infer_medium(tmp_path / "mp4") is VIDEO
    _touch(
        tmp_path / "upper", "A.WAV", "b.Flac", "notes.txt", ".hidden.png"
    )  # any case; hidden files skipped
    assert infer_medium(tmp_path / "upper").name == "audio"
    # mixed: the majority wins, whatever the order of the files
    _touch(tmp_path / "mixed", "a.png", "b.wav", "c.ogg", "d.opus", "e.mp4", "f.jpg", "readme.md")
    assert infer_medium(tmp_path / "mixed").name == "audio"
    _touch(tmp_path / "mixed", "g.webp", "h.jpeg")
    assert infer_medium(tmp_path / "mixed").name == "image"  # 4 images, 3 audio files, 1 video
    _touch(tmp_path / "tie", "a.wav", "b.mkv")
    assert (
        infer_medium(tmp_path / "tie").name == "video"
    )  # a tie goes to the first medium: image, video, audio


def test_gifs_count_as_images_unless_only_video_files_sit_beside_them(tmp_path):
    _touch(tmp_path / "gifs", "a.gif", "b.GIF")
    assert infer_medium(tmp_path / "gifs").name == "image"
    _touch(tmp_path / "clips", "a.gif", "b.gif", "c.gif", "d.webm")
    assert infer_medium(tmp_path / "clips").name == "video"
    _touch(tmp_path / "both", "a.gif", "b.gif", "c.gif", "d.png", "e.mp4", "f.mov")
    assert infer_medium(tmp_path / "both").name == "image"  # 4 images (the GIFs among them), 2 videos
    _touch(tmp_path / "sound", "a.gif", "b.gif", "c.wav")
    assert infer_medium(tmp_path / "sound").name == "image"


def test_a_folder_without_media_files_or_a_missing_path_is_one_line(tmp_path, monkeypatch):
    cases = {
        tmp_path / "empty": "holds no image, video or audio files",
        tmp_path / "missing": "does not exist (demo datasets: demo:mnist, ",
        tmp_path / "notes.txt": "is not a directory",
        tmp_path / "text": "holds no image, video or audio files",
    }
    (tmp_path / "empty").mkdir()
    _touch(tmp_path, "notes.txt")
    _touch(tmp_path / "text", "a.txt", "b.csv", ".c.wav")
    for path, why in cases.items():
        with pytest.raises(DataError) as error:
            infer_medium(path)
        message = str(error.value)
        assert "\n" not in message and f"'{path}'" in message and why in message, message
        assert message.endswith("; pass --modality image|video|audio"), message
    # the walk stops after base.INFER_MAX_FILES files
    monkeypatch.setattr(base, "INFER_MAX_FILES", 3)
    _touch(tmp_path / "many" / "a", "1.txt", "2.txt", "3.txt")
    _touch(tmp_path / "many" / "b", "4.wav")
    with pytest.raises(
        DataError, match=re.escape("holds no image, video or audio files among its first 3 files")
    ):
        infer_medium(tmp_path / "many")
    _touch(tmp_path / "many" / "a", "0.wav")
    assert infer_medium(tmp_path / "many").name == "audio"
