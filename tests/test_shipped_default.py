"""The shipped default image pipeline: present in the package, small, offline, seeded, the right shapes."""

from __future__ import annotations

import numpy as np
import torch

from vqgen import load_pipeline
from vqgen.pipelines import ImagePipeline
from vqgen.pipelines.loading import PRETRAINED_DIR, SHIPPED_PIPELINES


def test_the_default_ships_inside_the_package_under_15_mb():
    folder = PRETRAINED_DIR / SHIPPED_PIPELINES["image"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 15e6
    assert (folder / "README.md").is_file()  # the model card
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]  # safetensors only


def test_the_default_draws_seeded_digits_and_round_trips(tmp_path):
    pipe = load_pipeline("image")
    assert isinstance(pipe, ImagePipeline) and pipe.num_classes == 10 and pipe.sample_shape == (1, 28, 28)
    kwargs = dict(num_samples=4, class_labels=[7, 7, 1, 0], guidance_scale=3.0, output_type="np")
    a = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images
    b = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images
    assert a.shape == (4, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # Digits are white strokes on black: mostly dark pixels with some bright ones, not noise or blank.
    dark = (a < 64).mean()
    assert 0.6 < dark < 0.95 and (a > 192).mean() > 0.03
    pipe.save_pretrained(tmp_path / "copy")
    c = ImagePipeline.from_pretrained(tmp_path / "copy")(
        **kwargs, generator=torch.Generator().manual_seed(0)
    ).images
    np.testing.assert_array_equal(a, c)


def test_the_default_video_pipeline_draws_seeded_moving_digits(tmp_path):
    from vqgen.cli import main
    from vqgen.media.video import load_video
    from vqgen.pipelines import VideoPipeline

    folder = PRETRAINED_DIR / SHIPPED_PIPELINES["video"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 15e6 and (folder / "README.md").is_file()
    pipe = load_pipeline("video")
    assert isinstance(pipe, VideoPipeline) and pipe.num_classes == 10 and pipe.sample_shape == (1, 9, 32, 32)
    a = pipe(num_samples=2, class_labels=[3, 7], generator=torch.Generator().manual_seed(0)).videos
    b = pipe(num_samples=2, class_labels=[3, 7], generator=torch.Generator().manual_seed(0)).videos
    assert a.shape == (2, 9, 32, 32, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # A bright digit on a dark frame in every frame, not noise or blank.
    dark = (a < 64).mean()
    assert 0.6 < dark < 0.97 and (a > 160).reshape(2, 9, -1).any(-1).all()
    assert (
        main(["generate", "video", "--class-label", "3", "--seed", "0", "--output", str(tmp_path / "3.mp4")])
        == 0
    )
    frames, fps = load_video(tmp_path / "3.mp4")
    assert frames.shape[0] == 9 and fps == pipe.fps


def test_the_default_audio_pipeline_speaks_seeded_digits(tmp_path):
    import soundfile

    from vqgen.cli import main
    from vqgen.pipelines import AudioPipeline

    folder = PRETRAINED_DIR / SHIPPED_PIPELINES["audio"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 15e6 and (folder / "README.md").is_file()
    pipe = load_pipeline("audio")
    assert isinstance(pipe, AudioPipeline) and pipe.num_classes == 10 and pipe.sample_rate == 16000
    a = pipe(num_samples=2, class_labels=[7, 1], generator=torch.Generator().manual_seed(0)).audios
    b = pipe(num_samples=2, class_labels=[7, 1], generator=torch.Generator().manual_seed(0)).audios
    assert a.shape == (2, 1, 16000) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert (np.sqrt((a**2).mean(-1)) > 0.005).all()  # a word, not silence
    assert (
        main(["generate", "audio", "--class-label", "7", "--seed", "0", "--output", str(tmp_path / "7.wav")])
        == 0
    )
    info = soundfile.info(str(tmp_path / "7.wav"))
    assert info.samplerate == 16000 and info.frames == 16000


def test_the_default_ranks_letters_above_digits_by_likelihood_ratio():
    from vqgen.data.demo import mnist_split
    from vqgen.data.glyphs import render_letters

    pipe = load_pipeline("image")
    assert pipe.background is not None
    digits = torch.from_numpy(mnist_split("test")[0][:60].copy()).float()[:, None] / 127.5 - 1
    letters = torch.from_numpy(render_letters(60, seed=1)[0]).float()[:, None] / 127.5 - 1
    normal, odd = pipe.score(digits), pipe.score(letters)

    def auroc(negatives: torch.Tensor, positives: torch.Tensor) -> float:
        """The chance that a random positive outscores a random negative (ties count half)."""
        above = (positives[None, :] > negatives[:, None]).float() + 0.5 * (
            positives[None, :] == negatives[:, None]
        )
        return float(above.mean())

    ratio = auroc(normal.likelihood_ratio, odd.likelihood_ratio)
    raw = auroc(normal.bits_per_dim, odd.bits_per_dim)
    # benchmarks/anomaly.py on all 500 + 500: 0.74 raw, 0.94 ratio (0.955 with 4 views)
    assert ratio > 0.85 and ratio > raw


def test_the_default_scores_are_finite_and_shuffled_codes_cost_more():
    from vqgen.data.demo import mnist_split
    from vqgen.evaluation.background import code_bits

    pipe = load_pipeline("image")
    digits = torch.from_numpy(mnist_split("test")[0][:32].copy()).float()[:, None] / 127.5 - 1
    out = pipe.score(digits)
    for field in ("bits_per_dim", "bits_per_token", "reconstruction_error", "likelihood_ratio"):
        assert torch.isfinite(getattr(out, field)).all(), field
    codes = pipe.tokenizer.encode(digits)  # [32, 7, 7]
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([c.flatten()[torch.randperm(49, generator=generator)].view(7, 7) for c in codes])
    torch.testing.assert_close(code_bits(pipe.prior, codes) / 784, out.bits_per_dim)
    assert (code_bits(pipe.prior, shuffled) > code_bits(pipe.prior, codes)).all()


def test_the_colour_default_ships_under_40_mb_and_draws_groups_by_name():
    folder = PRETRAINED_DIR / SHIPPED_PIPELINES["emoji"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 40e6
    assert (folder / "README.md").is_file()  # the model card
    pipe = load_pipeline("emoji")
    assert isinstance(pipe, ImagePipeline) and pipe.sample_shape == (3, 64, 64)
    kwargs = dict(num_samples=2, class_labels=["animals-nature", "flags"], output_type="np")
    a = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images
    b = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert (a > 240).all(axis=-1).mean() > 0.2  # emoji are drawn on white
    assert pipe.default_guidance_scale == 4.5  # chosen on a held-out draw, stored with the weights


def test_the_instrument_default_ships_under_40_mb_and_plays_the_pitch_asked_for(tmp_path):
    """Family and pitch by name: seeded, reproducible, and the note's f0 (YIN) within 50 cents of MIDI 60."""
    import soundfile

    from vqgen.cli import main
    from vqgen.evaluation.pitch import cents_between, estimate_f0, midi_to_hz
    from vqgen.pipelines import AudioPipeline
    from vqgen.priors.sampling_config import SamplingConfig

    folder = PRETRAINED_DIR / SHIPPED_PIPELINES["instruments"]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 40e6 and (folder / "README.md").is_file()
    pipe = load_pipeline("instruments")
    assert isinstance(pipe, AudioPipeline) and pipe.sample_rate == 16000
    # the sampling chosen on a held-out draw travels with the weights
    weights = (0.75,) * 6 + (1.0,) * 6  # the six finest code levels guided hardest
    assert pipe.default_sampling == SamplingConfig(temperature=0.8, top_k=100, guidance_level_weights=weights)
    assert pipe.default_guidance_scale == 5.0
    conditions = {"family": ["brass", "organ"], "pitch": [60, 60]}
    a = pipe(
        num_samples=2, conditions=conditions, generator=torch.Generator().manual_seed(0), output_type="pt"
    )
    b = pipe(
        num_samples=2, conditions=conditions, generator=torch.Generator().manual_seed(0), output_type="pt"
    )
    torch.testing.assert_close(a.audios, b.audios, rtol=0, atol=0)
    assert a.audios.shape == (2, 1, 16000) and torch.isfinite(a.audios).all()
    cents = cents_between(estimate_f0(a.audios, 16000), midi_to_hz(60))
    assert (cents.abs() <= 50).any(), cents  # pitch is what the codec keeps by construction
    argv = ["generate", "audio", "--pipeline", "instruments", "--condition", "family=brass"]
    assert (
        main([*argv, "--condition", "pitch=60", "--seed", "0", "--output", str(tmp_path / "note.wav")]) == 0
    )
    assert soundfile.info(str(tmp_path / "note.wav")).samplerate == 16000
