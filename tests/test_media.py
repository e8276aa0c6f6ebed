"""vqgen.media: the registry, the one uint8 <-> float conversion, medium-owned flags, tokenizer defaults, and
the library calls behind the commands giving what the commands give."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from conftest import make_tokenizer

from vqgen import io
from vqgen.cli import main
from vqgen.cli.common import add_medium_flags, refuse_foreign_flags
from vqgen.errors import ConfigError
from vqgen.media import (
    TokenizerSettings,
    build_tokenizer,
    get_medium,
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
        "latent_channels": 64,
        "causal": False,
        "quantizer_config": {
            "type": "rvq",
            "codebook_size": 256,
            "codebook_dim": None,
            "beta": 0.25,
            "ema": True,
            "kmeans_init": True,
            "dead_code_threshold": 50,
            "l2_normalize": False,
            "num_quantizers": 4,
            "quantizer_dropout": 0.5,
        },
    }
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
        match="--norm, --activation, --frontend and --max-channels shape the audio codec, not a video tokenizer",
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
