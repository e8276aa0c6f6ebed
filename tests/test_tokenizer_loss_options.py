"""The new TokenizerLossOptions (MS-SSIM, VGG16 perceptual file, feature matching, discriminator kind) through
the training objective and the train-tokenizer flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from vqgen.data.images import TensorImageDataset
from vqgen.errors import ConfigError
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.training.common import TrainingOptions
from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer


def tiny_tokenizer(in_channels: int = 3) -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer(
        in_channels=in_channels,
        base_channels=8,
        channel_multipliers=(1, 2),
        latent_channels=8,
        quantizer_config={"type": "vq", "codebook_size": 16, "dead_code_threshold": 2},
    )


def colour_squares(n: int = 24, size: int = 16) -> TensorImageDataset:
    rng = np.random.default_rng(0)
    images = np.full((n, size, size, 3), 255, dtype=np.uint8)
    for i in range(n):  # a coloured square at a random place on white
        r, c = rng.integers(0, size // 2, size=2)
        images[i, r : r + size // 2, c : c + size // 2] = rng.integers(0, 255, size=3)
    return TensorImageDataset(images)


def run(tmp_path, losses: TokenizerLossOptions, steps: int = 3) -> dict[str, list[str]]:
    options = TrainingOptions(
        output=str(tmp_path / "run"),
        max_steps=steps,
        batch_size=4,
        learning_rate=1e-3,
        progress=False,
        eval_every=100,
        checkpoint_every=100,
        log_every=1,
    )
    train_tokenizer(tiny_tokenizer(), colour_squares(), options, losses)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    return {name: [row.split(",")[header.index(name)] for row in rows[1:]] for name in header}


def test_defaults_leave_every_new_term_off():
    options = TokenizerLossOptions()
    assert (options.ms_ssim_weight, options.perceptual_weight, options.feature_matching_weight) == (0, 0, 0)
    assert options.perceptual_network == "" and options.discriminator == "auto"


def test_new_fields_are_train_tokenizer_flags():
    from vqgen.cli import build_parser
    from vqgen.cli.common import dataclass_from_args

    args = build_parser().parse_args(
        [
            "train-tokenizer",
            "--data",
            "demo:mnist",
            "--perceptual-network",
            "/weights/vgg16-397923af.pth",
            "--perceptual-weight",
            "1.0",
            "--ms-ssim-weight",
            "0.5",
            "--feature-matching-weight",
            "2",
            "--discriminator",
            "stft",
        ]
    )
    options = dataclass_from_args(TokenizerLossOptions, args)
    assert options.perceptual_network == "/weights/vgg16-397923af.pth" and options.perceptual_weight == 1.0
    assert (options.ms_ssim_weight, options.feature_matching_weight, options.discriminator) == (
        0.5,
        2.0,
        "stft",
    )


def test_ms_ssim_and_feature_matching_terms_train(tmp_path):
    columns = run(tmp_path / "a", TokenizerLossOptions(ms_ssim_weight=1.0))
    assert all(0 < float(v) < 1 for v in columns["ms_ssim"])
    columns = run(tmp_path / "b", TokenizerLossOptions(feature_matching_weight=1.0, discriminator_start=1))
    assert columns["feature_matching"][0] == "" and all(float(v) > 0 for v in columns["feature_matching"][1:])
    assert "generator_adv" not in columns  # the hinge term stays off: only the discriminator trains
    assert all(np.isfinite(float(v)) for v in columns["discriminator"][1:])


def test_perceptual_network_file_trains(tmp_path):
    with torch.device("meta"):
        features = torchvision.models.vgg16(weights=None).features
    features = features.to_empty(device="cpu")
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
    torch.save(features.state_dict(), tmp_path / "vgg16-features.pth")
    losses = TokenizerLossOptions(
        perceptual_weight=1.0, perceptual_network=str(tmp_path / "vgg16-features.pth")
    )
    columns = run(tmp_path, losses, steps=2)
    assert all(float(v) > 0 for v in columns["perceptual"])


def test_perceptual_settings_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--perceptual-network"):
        run(tmp_path / "a", TokenizerLossOptions(perceptual_weight=1.0))
    with pytest.raises(ConfigError, match="perceptual_weight is 0"):
        run(tmp_path / "b", TokenizerLossOptions(perceptual_network=str(tmp_path / "vgg.pth")))
    with pytest.raises(ConfigError, match="'stft'"):
        run(tmp_path / "c", TokenizerLossOptions(discriminator_weight=0.1, discriminator="stft"))
