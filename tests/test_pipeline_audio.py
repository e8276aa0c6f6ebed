"""AudioPipeline: output types, seeding, audio_length_in_s, prompt continuation, save/load, preprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vqgen import load_pipeline
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.media.audio import save_audio
from vqgen.pipelines import AudioPipeline, AudioPipelineOutput
from vqgen.pipelines.loading import SHIPPED_PIPELINES, pipeline_class_for
from vqgen.priors.prior import CodePrior
from vqgen.priors.sampling_config import SamplingConfig
from vqgen.tokenizers.audio import AudioTokenizer

RATE = 8000
HOP = 8  # strides (2, 4)
FRAMES = 25  # the prior's clip: 25 frames of 8 samples, 200 samples, 25 ms
GRID = (2, FRAMES)


def make_audio_tokenizer(seed: int = 0, causal: bool = False) -> AudioTokenizer:
    """8 kHz mono, hop 8, 2 residual levels of 16 codes."""
    torch.manual_seed(seed)
    return AudioTokenizer(
        sample_rate=RATE,
        strides=(2, 4),
        base_channels=4,
        max_channels=8,
        latent_channels=4,
        causal=causal,
        quantizer_config={"type": "rvq", "num_quantizers": 2, "codebook_size": 16, "kmeans_init": False},
    ).eval()


def make_audio_prior(layout: str = "delay", num_classes: int = 3, seed: int = 0) -> CodePrior:
    torch.manual_seed(seed)
    return CodePrior(
        codebook_size=16,
        code_grid=list(GRID),
        num_classes=num_classes,
        layout=layout,
        hidden_size=32,
        num_layers=1,
        num_heads=4,
    ).eval()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tone(samples: int, channels: int = 1, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(samples) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * freq * t))[None], channels, axis=0).astype(np.float32)


@pytest.fixture(params=["flatten", "delay"])
def pipe(request):
    return AudioPipeline(make_audio_tokenizer(), make_audio_prior(request.param))


def test_output_types_sample_rate_and_seeding(pipe):
    out = pipe(num_samples=2, class_labels=[0, 2], generator=seeded())
    assert isinstance(out, AudioPipelineOutput) and out.sample_rate == RATE
    assert isinstance(out.audios, np.ndarray) and out.audios.dtype == np.float32
    assert out.audios.shape == (2, 1, FRAMES * HOP) and np.abs(out.audios).max() <= 1
    again = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(), output_type="pt")
    assert isinstance(again.audios, torch.Tensor) and np.array_equal(again.audios.numpy(), out.audios)
    other = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(1)).audios
    assert not np.array_equal(other, out.audios)
    assert pipe.max_seconds == pytest.approx(FRAMES * HOP / RATE)
    with pytest.raises(ConfigError, match="output_type"):
        pipe(output_type="pil")


def test_audio_length_in_s_samples_only_the_frames_needed(pipe):
    seconds = 0.0101  # 81 samples: 11 frames
    calls = []
    sample = pipe.prior.sample
    pipe.prior.sample = lambda **kw: calls.append(kw) or sample(**kw)
    short = pipe(num_samples=2, audio_length_in_s=seconds, generator=seeded(), output_type="pt").audios
    assert short.shape == (2, 1, 81) and calls[-1]["time_steps"] == 11
    full = pipe(num_samples=2, generator=seeded(), output_type="pt").audios
    assert full.shape == (2, 1, FRAMES * HOP) and calls[-1].get("time_steps") is None
    with pytest.raises(ConfigError, match=r"at most 0\.025 s"):
        pipe(audio_length_in_s=0.5)
    with pytest.raises(ConfigError, match="positive"):
        pipe(audio_length_in_s=0)


def test_prompt_continuation_keeps_the_prompt_codes(pipe):
    prompt = tone(10 * HOP + 3)  # 10 whole frames and a partial one, dropped
    expected = pipe.prompt_codes(prompt)
    assert expected.shape == (1, 2, 10)
    drawn = []
    sample = pipe.prior.sample
    pipe.prior.sample = lambda **kw: drawn.append(sample(**kw)) or drawn[-1]
    out = pipe(num_samples=3, prompt_audio=prompt, audio_length_in_s=0.02, generator=seeded())
    assert out.audios.shape == (3, 1, 160)
    codes = drawn[-1]
    assert codes.shape == (3, 2, 20) and torch.equal(codes[:, :, :10], expected.expand(3, -1, -1))
    # one prompt per sample; a prompt longer than the request and one under a frame are one-line errors
    prompts = np.stack([tone(12 * HOP), tone(12 * HOP, freq=880.0)])
    assert pipe(num_samples=2, prompt_audio=prompts, generator=seeded()).audios.shape == (2, 1, 200)
    with pytest.raises(ConfigError, match="one clip or one per sample"):
        pipe(num_samples=3, prompt_audio=prompts)
    with pytest.raises(ConfigError, match="longer than the 0.01 s of audio requested"):
        pipe(prompt_audio=prompt, audio_length_in_s=0.01)
    with pytest.raises(ConfigError, match="shorter than one code frame"):
        pipe(prompt_audio=tone(HOP - 1))


def test_output_begins_with_the_decoded_prompt_for_a_causal_tokenizer():
    pipe = AudioPipeline(make_audio_tokenizer(causal=True), make_audio_prior("delay"))
    prompt = tone(8 * HOP)
    out = pipe(num_samples=2, prompt_audio=prompt, generator=seeded(), output_type="pt").audios
    head = pipe.tokenizer.decode(pipe.prompt_codes(prompt)).clamp(-1, 1)
    torch.testing.assert_close(out[:, :, : 8 * HOP], head.expand(2, -1, -1), atol=1e-5, rtol=0)


def test_prompt_files_and_arrays_are_resampled_and_mixed(pipe, tmp_path):
    stereo = tone(441 * 2, channels=2, rate=44100)  # 20 ms at 44.1 kHz -> 160 samples at 8 kHz
    save_audio(stereo, tmp_path / "prompt.wav", 44100)
    from_file = pipe.audio_tensor(tmp_path / "prompt.wav")
    from_array = pipe.audio_tensor(stereo, sample_rate=44100)
    assert from_file.shape == from_array.shape == (1, 1, 160)
    torch.testing.assert_close(from_file, from_array, atol=2e-3, rtol=0)  # 16-bit WAV rounding
    assert pipe(prompt_audio=tmp_path / "prompt.wav", generator=seeded()).audios.shape == (1, 1, 200)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match="empty.wav"):
        pipe(prompt_audio=tmp_path / "empty.wav")
    with pytest.raises(ShapeError, match="holds no samples"):
        pipe.audio_tensor(np.zeros((1, 0), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"\[N, C, S\]"):
        pipe.audio_tensor(np.zeros(10, dtype=np.float32))


def test_preprocess_and_score(pipe):
    x = pipe.preprocess(tone(FRAMES * HOP - 3))  # a partial last frame is padded
    assert x.shape == (1, 1, FRAMES * HOP)
    scores = pipe.score(torch.from_numpy(tone(FRAMES * HOP)))
    assert scores.bits_per_token.shape == (1,) and torch.isfinite(scores.bits_per_dim).all()
    with pytest.raises(ShapeError, match="must last 200 samples"):
        pipe.preprocess(tone(100))


def test_save_load_round_trip(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"))
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["_class_name"] == "AudioPipeline" and index["tokenizer"][1] == "AudioTokenizer"
    loaded = load_pipeline(tmp_path / "pipe")
    assert isinstance(loaded, AudioPipeline) and loaded.prior.layout.name == "delay"
    assert loaded.sample_rate == RATE
    a = pipe(num_samples=2, class_labels=1, audio_length_in_s=0.01, generator=seeded()).audios
    b = loaded(num_samples=2, class_labels=1, audio_length_in_s=0.01, generator=seeded()).audios
    np.testing.assert_array_equal(a, b)
    assert AudioPipeline.from_pretrained(tmp_path / "pipe").prior.config.layout == "delay"


def test_a_stored_default_guidance_is_saved_loaded_and_drawn_with(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"))
    assert pipe.default_guidance_scale == 3.0  # the library-wide default
    pipe.set_default_guidance_scale(5)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = load_pipeline(tmp_path / "pipe")
    assert loaded.default_guidance_scale == 5.0
    kwargs = dict(num_samples=4, class_labels=1)
    drawn = loaded(**kwargs, generator=seeded()).audios
    np.testing.assert_array_equal(drawn, loaded(**kwargs, guidance_scale=5.0, generator=seeded()).audios)
    assert not np.array_equal(drawn, loaded(**kwargs, guidance_scale=1.0, generator=seeded()).audios)
    for bad in (0, -1.0, float("nan"), "5", True):
        with pytest.raises(ConfigError, match="default_guidance_scale must be a positive number"):
            AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"), default_guidance_scale=bad)


def test_a_stored_default_sampling_is_saved_loaded_and_drawn_with(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"))
    assert pipe.default_sampling == SamplingConfig()  # temperature 1, no filter
    pipe.set_default_sampling(SamplingConfig(temperature=0.7, top_k=3, guidance_scale=4))
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["default_sampling"] == {"temperature": 0.7, "top_k": 3}
    loaded = load_pipeline(tmp_path / "pipe")
    assert loaded.default_sampling == SamplingConfig(temperature=0.7, top_k=3)
    assert loaded.default_guidance_scale == 4.0  # the guidance goes to its own default
    kwargs = dict(num_samples=4, class_labels=1)
    drawn = loaded(**kwargs, generator=seeded()).audios
    same = loaded(**kwargs, temperature=0.7, top_k=3, guidance_scale=4, generator=seeded()).audios
    np.testing.assert_array_equal(drawn, same)
    # a whole SamplingConfig replaces the stored defaults; a shortcut replaces one field of them
    plain = loaded(**kwargs, sampling=SamplingConfig(guidance_scale=4), generator=seeded()).audios
    assert not np.array_equal(drawn, plain)
    assert loaded.sampling_config(None, temperature=0.9) == SamplingConfig(temperature=0.9, top_k=3)
    for bad in ({"temperature": -1}, {"top_k": 0}, {"beam_width": 2}, [0.7]):
        with pytest.raises(ConfigError, match="temperature|top_k|default_sampling"):
            AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"), default_sampling=bad)


def test_a_stored_guidance_schedule_is_saved_loaded_and_drawn_with(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"))
    pipe.set_default_sampling(SamplingConfig(guidance_schedule="rising", guidance_scale=5))
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = load_pipeline(tmp_path / "pipe")
    assert loaded.default_sampling == SamplingConfig(guidance_schedule="rising")
    kwargs = dict(num_samples=4, class_labels=1)
    drawn = loaded(**kwargs, generator=seeded()).audios
    same = loaded(**kwargs, guidance_schedule="rising", guidance_scale=5, generator=seeded()).audios
    constant = loaded(**kwargs, guidance_schedule="constant", generator=seeded()).audios
    np.testing.assert_array_equal(drawn, same)
    assert not np.array_equal(drawn, constant)
    with pytest.raises(ConfigError, match="guidance_schedule"):
        loaded(**kwargs, guidance_schedule="steps")


def test_stored_guidance_level_weights_are_saved_loaded_and_drawn_with(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay"))
    pipe.set_default_sampling(SamplingConfig(guidance_level_weights=(0.5, 2), guidance_scale=5))
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = load_pipeline(tmp_path / "pipe")
    assert loaded.default_sampling == SamplingConfig(guidance_level_weights=(0.5, 2.0))
    kwargs = dict(num_samples=4, class_labels=1)
    drawn = loaded(**kwargs, generator=seeded()).audios
    weighted = SamplingConfig(guidance_scale=5, guidance_level_weights=[0.5, 2])
    np.testing.assert_array_equal(drawn, loaded(**kwargs, sampling=weighted, generator=seeded()).audios)
    plain = loaded(**kwargs, sampling=SamplingConfig(guidance_scale=5), generator=seeded()).audios
    assert not np.array_equal(drawn, plain)
    with pytest.raises(ConfigError, match="guidance_level_weights has 3 values; the prior has 2 code levels"):
        loaded(**kwargs, sampling=SamplingConfig(guidance_level_weights=(1, 1, 1)))


def test_pipeline_class_for_audio_and_missing_shipped_default():
    assert pipeline_class_for(make_audio_tokenizer()) is AudioPipeline
    assert SHIPPED_PIPELINES["audio"] == "audio-spoken-digits"
    from vqgen.pipelines.loading import PRETRAINED_DIR

    if not (PRETRAINED_DIR / SHIPPED_PIPELINES["audio"] / "model_index.json").is_file():
        from vqgen.errors import CheckpointError

        with pytest.raises(CheckpointError, match="'audio' pipeline is not installed"):
            load_pipeline("audio")


def test_raster_prior_draws_whole_clips_only():
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("raster"))
    assert pipe(generator=seeded()).audios.shape == (1, 1, FRAMES * HOP)
    with pytest.raises(ConfigError, match="frame by frame"):
        pipe(audio_length_in_s=0.01)
    with pytest.raises(ConfigError, match="frame by frame"):
        pipe(prompt_audio=tone(4 * HOP))


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_compression_round_trips_audio_and_beats_raw_codes(layout):
    """Range coding walks the layout step by step (summed delay steps, per-level ranges, pads not coded)."""
    import math

    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior(layout))
    audio = np.stack([tone(FRAMES * HOP, freq=f) for f in (300.0, 500.0)])
    data = pipe.compress(audio, class_labels=[0, 2])
    expected = pipe.tokenizer.decode(pipe.tokenizer.encode(pipe.preprocess(audio))).float().clamp(-1, 1)
    torch.testing.assert_close(pipe.decompress(data), expected, rtol=0, atol=0)
    # Per-position ranges: never worse than 4 bits per code plus the header, far below the flattened vocabulary.
    codes = math.prod(GRID) * 2
    assert len(data) * 8 < codes * math.log2(16) + 8 * 64
