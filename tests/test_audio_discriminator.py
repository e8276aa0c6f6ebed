"""EnCodec's multi-scale STFT discriminator: shapes, spectrogram, hinge and feature-matching terms inside
TokenizerLoss(dims=1), gradients, and a tiny audio tokenizer training run with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.losses import (
    MultiScaleSTFTDiscriminator,
    PatchDiscriminator,
    STFTDiscriminator,
    TokenizerLoss,
    build_discriminator,
    feature_matching_loss,
    hinge_discriminator_loss,
    stft_sizes,
)


def waves(batch: int = 2, channels: int = 1, samples: int = 800, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 8000
    tones = torch.stack([0.5 * torch.sin(2 * math.pi * (300 + 200 * i) * t) for i in range(batch * channels)])
    return tones.view(batch, channels, samples) + 0.05 * torch.randn(
        batch, channels, samples, generator=generator
    )


def test_stft_sizes_scale_encodec_windows_to_the_sample_rate():
    assert stft_sizes(24000) == (2048, 1024, 512)
    assert stft_sizes(16000) == (1024, 512, 256)
    assert stft_sizes(8000) == (512, 256, 128)
    with pytest.raises(ConfigError):
        stft_sizes(0)


@pytest.mark.parametrize("channels", [1, 2])
def test_multi_scale_stft_discriminator_shapes(channels):
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(channels, sample_rate=8000, channels=4)
    assert disc.fft_sizes == (512, 256, 128)
    x = waves(channels=channels)
    out = disc(x)
    assert len(out.logits) == len(out.features) == 3
    for n_fft, logits, features in zip(disc.fft_sizes, out.logits, out.features):
        frames, bins = 1 + 800 // (n_fft // 4), n_fft // 2 + 1
        widths = [bins]
        for _ in range(3):  # three frequency-strided layers, each halving (rounding up)
            widths.append((widths[-1] + 1) // 2)
        assert logits.shape == (2, 1, frames, widths[-1])
        assert [tuple(f.shape) for f in features] == [(2, 4, frames, w) for w in widths + [widths[-1]]]
        assert torch.isfinite(logits).all()
    # Any length works, even shorter than the longest window.
    assert all(torch.isfinite(o).all() for o in disc(waves(samples=50, channels=channels)).logits)
    with pytest.raises(ShapeError):
        disc(torch.zeros(2, channels, 10, 10))


def test_stft_discriminator_spectrogram_is_encodecs():
    n_fft, hop = 64, 16
    disc = STFTDiscriminator(1, n_fft, channels=2)
    x = waves(batch=1, samples=256)
    spec = disc.spectrogram(x)  # [1, 2, frames, bins]: real, then imaginary
    signal = x[0, 0].double().numpy()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(signal, (n_fft // 2, n_fft // 2))
    frames = [np.fft.rfft(padded[i * hop : i * hop + n_fft] * window) for i in range(1 + 256 // hop)]
    expected = np.stack(frames) / np.sqrt((window**2).sum())
    assert spec.shape == (1, 2, 17, 33)
    np.testing.assert_allclose(spec[0, 0].numpy(), expected.real, atol=1e-5)
    np.testing.assert_allclose(spec[0, 1].numpy(), expected.imag, atol=1e-5)


def test_build_discriminator_picks_by_medium():
    assert isinstance(build_discriminator("auto", 1, dims=1, channels=4), MultiScaleSTFTDiscriminator)
    assert isinstance(build_discriminator("patch", 1, dims=1, channels=4), PatchDiscriminator)
    assert isinstance(build_discriminator("auto", 3, dims=2, channels=4), PatchDiscriminator)
    assert build_discriminator("stft", 1, dims=1).discriminators[0].post.in_channels == 32  # EnCodec's width
    with pytest.raises(ConfigError, match="audio"):
        build_discriminator("stft", 3, dims=3)


def _audio_setup():
    torch.manual_seed(0)
    decoder = nn.Conv1d(2, 1, 7, padding=3)
    latent = torch.randn(2, 2, 800)
    return decoder, latent, waves()


def _criterion(**kwargs) -> TokenizerLoss:
    base = dict(dims=1, sample_rate=8000, discriminator_start=0, discriminator_channels=4)
    return TokenizerLoss(1, **{**base, **kwargs})


def test_stft_hinge_terms_by_hand_and_gradients_reach_the_reconstruction_only():
    decoder, latent, target = _audio_setup()
    criterion = _criterion(discriminator_weight=0.5, feature_matching_weight=2.0)
    assert isinstance(criterion.discriminator, MultiScaleSTFTDiscriminator)  # "auto" for audio
    recon = decoder(latent)
    total, logs = criterion.generator_loss(target, recon, torch.tensor(0.1), 0, decoder.weight)
    with torch.no_grad():
        fake, real = criterion.discriminator(recon), criterion.discriminator(target)
    generator_hinge = sum(-f.mean() for f in fake.logits) / 3
    assert logs["generator_adv"].item() == pytest.approx(generator_hinge.item(), rel=1e-5)
    fm = feature_matching_loss(fake.features, real.features)
    assert logs["feature_matching"].item() == pytest.approx(fm.item(), rel=1e-5)
    expected = logs["reconstruction"] + 0.1 + logs["adaptive_weight"] * 0.5 * generator_hinge + 2.0 * fm
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)

    total.backward()
    assert decoder.weight.grad is not None and decoder.weight.grad.abs().sum() > 0
    params = list(criterion.discriminator.parameters())
    assert params and all(p.grad is None for p in params)  # weight-normalised convs included

    decoder.zero_grad()
    d_loss, d_logs = criterion.discriminator_loss(target, decoder(latent), step=0)
    by_hand = sum(hinge_discriminator_loss(r, f) for r, f in zip(real.logits, fake.logits)) / 3
    assert d_logs["discriminator"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    real_mean = sum(r.mean() for r in real.logits) / 3
    assert d_logs["logits_real"].item() == pytest.approx(real_mean.item(), rel=1e-5)
    d_loss.backward()
    assert decoder.weight.grad is None  # the reconstruction is detached for the discriminator
    assert all(p.grad is not None for p in params)
    # (A bias right before the logits can get exactly zero: the hinge's real and fake halves cancel.)
    assert all(p.grad.abs().sum() > 0 for p in params if p.dim() > 1)


def test_audio_patch_discriminator_values_unchanged():
    """The 1-D patch discriminator stays available ("patch") and gives what it gave before "auto" chose STFT."""
    torch.manual_seed(2)
    decoder = nn.Conv1d(2, 1, 7, padding=3)
    latent = torch.randn(2, 2, 4000)
    target = torch.rand(2, 1, 4000) * 2 - 1
    criterion = TokenizerLoss(
        1,
        dims=1,
        spectral_weight=1.0,
        sample_rate=8000,
        discriminator="patch",
        discriminator_weight=0.5,
        discriminator_start=0,
        discriminator_channels=4,
        discriminator_layers=2,
    )
    q = torch.tensor(0.25, requires_grad=True)
    _, logs = criterion.generator_loss(target, decoder(latent), q, step=0, last_layer_weight=decoder.weight)
    golden = {  # commit 7d925c2, before the STFT discriminator existed
        "reconstruction": 0.5815067291259766,
        "quantizer": 0.25,
        "spectral": 2.2330727577209473,
        "generator_adv": 0.03880101442337036,
        "adaptive_weight": 168.7113494873047,
        "total": 6.337665557861328,
    }
    assert list(logs) == list(golden)
    for key, value in golden.items():
        assert logs[key].item() == pytest.approx(value, rel=1e-5), key
    _, d_logs = criterion.discriminator_loss(target, decoder(latent), 0)
    assert d_logs["discriminator"].item() == pytest.approx(1.0002115964889526, rel=1e-6)


class _Clips(torch.utils.data.Dataset):
    def __init__(self, n: int = 16, samples: int = 512):
        self.items = [waves(batch=1, samples=samples, seed=i)[0].clamp(-1, 1) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return {"audio": self.items[index], "label": index % 2, "index": index}


def test_tiny_audio_training_with_stft_discriminator_and_feature_matching(tmp_path):
    from vqgen.tokenizers import AudioTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer

    torch.manual_seed(0)
    tokenizer = AudioTokenizer(
        sample_rate=8000,
        strides=(2, 4),
        base_channels=4,
        max_channels=8,
        latent_channels=8,
        dilations=(1,),
        quantizer_config={"type": "rvq", "num_quantizers": 2, "codebook_size": 8, "kmeans_init": False},
    )
    options = TrainingOptions(
        output=str(tmp_path / "run"),
        max_steps=3,
        batch_size=4,
        progress=False,
        eval_every=100,
        checkpoint_every=3,
        log_every=1,
    )
    losses = TokenizerLossOptions(
        spectral_weight=1.0, discriminator_weight=0.1, feature_matching_weight=1.0, discriminator_start=1
    )
    train_tokenizer(tokenizer, _Clips(), options, losses)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    columns = {name: [r.split(",")[header.index(name)] for r in rows[1:]] for name in header}
    assert columns["feature_matching"][0] == "" and columns["generator_adv"][0] == ""
    for name in ("feature_matching", "generator_adv", "discriminator", "total"):
        assert all(np.isfinite(float(v)) for v in columns[name][1:]), name
