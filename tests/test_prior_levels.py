"""A prior over the first K levels of a residual tokenizer: ``encode_dataset(num_levels=K)`` /
``vqgen encode --num-levels K`` shards, and pipelines that draw, score, continue and compress those K levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_pipeline_audio import FRAMES, HOP, make_audio_tokenizer, seeded, tone

from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.errors import ConfigError, MismatchError
from vqgen.pipelines import AudioPipeline
from vqgen.priors.prior import CodePrior
from vqgen.tokenizers.image import ImageTokenizer


def prior_over(levels: int, seed: int = 0) -> CodePrior:
    torch.manual_seed(seed)
    return CodePrior(
        codebook_size=16,
        code_grid=[levels, FRAMES],
        num_classes=3,
        layout="delay",
        hidden_size=32,
        num_layers=1,
        num_heads=4,
    ).eval()


def clips(n: int = 5) -> list[dict]:
    return [
        {"audio": torch.from_numpy(tone(FRAMES * HOP, freq=200.0 + 150 * i)), "label": i % 3}
        for i in range(n)
    ]


def test_encode_dataset_keeps_the_first_levels(tmp_path):
    tokenizer = make_audio_tokenizer()
    items = clips()
    manifest = encode_dataset(tokenizer, items, tmp_path / "one", num_levels=1, progress=False)
    assert manifest["code_grid"] == [1, FRAMES]
    shards = CodeShardDataset(tmp_path / "one")
    full = tokenizer.encode(torch.stack([item["audio"] for item in items]))
    assert full.shape[1] == 2
    assert torch.equal(torch.stack([shards[i]["codes"] for i in range(len(items))]).long(), full[:, :1])
    # all levels stay the default
    assert encode_dataset(tokenizer, items, tmp_path / "all", progress=False)["code_grid"] == [2, FRAMES]


def test_encode_dataset_refuses_levels_it_cannot_keep(tmp_path):
    with pytest.raises(ConfigError, match=r"num_levels must be in \[1, 2\].*got 3"):
        encode_dataset(make_audio_tokenizer(), clips(2), tmp_path / "s", num_levels=3, progress=False)
    with pytest.raises(ConfigError, match="num_levels must be an int >= 1"):
        encode_dataset(make_audio_tokenizer(), clips(2), tmp_path / "s", num_levels=0, progress=False)
    torch.manual_seed(0)
    images = ImageTokenizer(in_channels=1, base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1)
    items = [{"pixels": torch.zeros(1, 8, 8), "label": 0}]
    with pytest.raises(ConfigError, match="residual tokenizer"):
        encode_dataset(images, items, tmp_path / "s", num_levels=1, progress=False)
    assert not (tmp_path / "s").exists()


def test_pipeline_draws_scores_continues_and_compresses_the_first_level():
    pipe = AudioPipeline(make_audio_tokenizer(), prior_over(1))
    out = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(), output_type="pt")
    assert out.audios.shape == (2, 1, FRAMES * HOP)
    drawn = []
    sample = pipe.prior.sample
    pipe.prior.sample = lambda **kw: drawn.append(sample(**kw)) or drawn[-1]
    again = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(), output_type="pt").audios
    assert drawn[-1].shape == (2, 1, FRAMES) and torch.equal(again, out.audios)
    # the decoder reads one level: the audio is the tokenizer's decode of the drawn first-level codes
    torch.testing.assert_close(
        again, pipe.tokenizer.decode(drawn[-1]).float().clamp(-1, 1), rtol=0, atol=1e-6
    )
    audio = np.stack([tone(FRAMES * HOP, freq=f) for f in (300.0, 500.0)])
    first = pipe.tokenizer.encode(pipe.preprocess(audio))[:, :1]
    prompt = torch.from_numpy(tone(10 * HOP))[None]
    assert torch.equal(pipe.prompt_codes(tone(10 * HOP)), pipe.tokenizer.encode(prompt)[:, :1])
    assert pipe.score(audio, class_labels=[0, 2]).bits_per_token.shape == (2,)
    data = pipe.compress(audio, class_labels=[0, 2])
    expected = pipe.tokenizer.decode(first).float().clamp(-1, 1)
    torch.testing.assert_close(pipe.decompress(data), expected, rtol=0, atol=0)


def test_pipeline_saves_and_loads_a_prior_over_fewer_levels(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), prior_over(1))
    pipe.save_pretrained(str(tmp_path / "p"))
    loaded = AudioPipeline.from_pretrained(str(tmp_path / "p"))
    assert list(loaded.prior.config.code_grid) == [1, FRAMES]
    a = pipe(num_samples=1, class_labels=[1], generator=seeded(), output_type="np").audios
    b = loaded(num_samples=1, class_labels=[1], generator=seeded(), output_type="np").audios
    np.testing.assert_array_equal(a, b)


def test_pipeline_refuses_a_prior_over_more_levels_than_the_tokenizer_has():
    with pytest.raises(
        MismatchError, match=r"prior models code grid \[3, 25\], the tokenizer makes \[2, 25\]"
    ):
        AudioPipeline(make_audio_tokenizer(), prior_over(3))
