"""Code shards: encode writes codes, labels and a manifest; the reader refuses what does not belong."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_prior, make_tokenizer

from vqgen.data.shards import CodeShardDataset, encode_dataset, tokenizer_fingerprint
from vqgen.errors import ConfigError, DataError, MismatchError


def test_encode_writes_the_tokenizers_codes_and_a_manifest(tmp_path, tokenizer, images):
    manifest = encode_dataset(
        tokenizer, images, tmp_path / "shards", batch_size=10, shard_size=20, progress=False
    )
    assert manifest["num_items"] == 48 and manifest["code_grid"] == [4, 4] and manifest["codebook_size"] == 16
    assert [s["items"] for s in manifest["shards"]] == [20, 20, 8]
    assert manifest["label_names"] == ["a", "b", "c"]
    shards = CodeShardDataset(tmp_path / "shards")
    assert len(shards) == 48 and shards.num_classes == 3
    pixels = torch.stack([images[i]["pixels"] for i in range(48)])
    assert torch.equal(shards.codes, tokenizer.encode(pixels))
    assert shards[5]["label"] == images[5]["label"]
    shards.check_tokenizer(tokenizer)
    shards.check_prior(make_prior())


def test_augmented_copies_follow_each_original(tmp_path, tokenizer, images):
    manifest = encode_dataset(
        tokenizer, images, tmp_path / "s", batch_size=48, augment_copies=2, progress=False
    )
    shards = CodeShardDataset(tmp_path / "s")
    assert manifest["num_items"] == 3 * 48
    plain = tokenizer.encode(torch.stack([images[i]["pixels"] for i in range(48)]))
    assert torch.equal(shards.codes[:48], plain)
    assert not torch.equal(shards.codes[48:96], plain)  # jittered views encode differently
    assert torch.equal(shards.labels[48:96], shards.labels[:48])


@pytest.mark.parametrize("copies", [-1, 1.5, True, "2"])
def test_a_bad_number_of_augmented_copies_is_refused_in_one_line(tmp_path, tokenizer, images, copies):
    with pytest.raises(ConfigError, match=r"augment_copies must be an int >= 0, got"):
        encode_dataset(tokenizer, images, tmp_path / "s", augment_copies=copies, progress=False)
    assert not (tmp_path / "s").exists()


def test_shards_from_another_tokenizer_are_refused(tmp_path, tokenizer, images):
    encode_dataset(tokenizer, images, tmp_path / "s", progress=False)
    other = make_tokenizer(seed=1)
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(tokenizer)
    with pytest.raises(MismatchError, match="re-encode"):
        CodeShardDataset(tmp_path / "s").check_tokenizer(other)
    with pytest.raises(MismatchError, match="grid"):
        CodeShardDataset(tmp_path / "s").check_prior(make_prior(grid=(2, 8)))
    with pytest.raises(MismatchError, match="codes"):
        CodeShardDataset(tmp_path / "s").check_prior(make_prior(codebook_size=32))


def test_bad_shard_folders_give_one_line_errors(tmp_path, tokenizer, images):
    with pytest.raises(DataError, match="no manifest.json"):
        CodeShardDataset(tmp_path)
    encode_dataset(tokenizer, images, tmp_path / "s", progress=False)
    shard = tmp_path / "s" / "shard-00000.safetensors"
    shard.write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="cannot read code shard"):
        CodeShardDataset(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").write_text("{broken")
    with pytest.raises(DataError, match="not valid JSON"):
        CodeShardDataset(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DataError, match="not a vqgen code-shard manifest"):
        CodeShardDataset(tmp_path / "s")


def test_an_empty_data_set_is_refused(tmp_path, tokenizer):
    with pytest.raises(DataError, match="empty"):
        encode_dataset(tokenizer, [], tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("background", [-1.0, 1.0])
def test_jittered_images_keep_their_own_background(background):
    from vqgen.media.image import jitter_images

    images = torch.full((8, 3, 32, 32), background)
    images[:, :, 12:20, 12:20] = -background  # an object in the middle, on a black or a white page
    jittered = jitter_images(images, torch.Generator().manual_seed(0))
    corners = jittered[..., [0, 0, -1, -1], [0, -1, 0, -1]]
    torch.testing.assert_close(corners, torch.full_like(corners, background))  # no frame of the other colour
    assert not torch.equal(jittered, images)


def test_jitter_audio_changes_speed_shift_and_gain_within_bounds():
    from vqgen.media.audio import jitter_audio

    t = torch.arange(8000) / 8000
    tone = (0.5 * torch.sin(2 * torch.pi * 100 * t)).expand(8, 1, -1).contiguous()
    still = jitter_audio(tone, torch.Generator().manual_seed(0), speed=0, shift=0, gain_db=0)
    assert torch.allclose(still, tone, atol=1e-6)  # no jitter reads every sample where it was

    jittered = jitter_audio(tone, torch.Generator().manual_seed(0))
    assert jittered.shape == tone.shape
    assert torch.equal(jittered, jitter_audio(tone, torch.Generator().manual_seed(0)))
    assert not torch.equal(jittered, jitter_audio(tone, torch.Generator().manual_seed(1)))
    peak_hz = torch.fft.rfft(jittered[:, 0]).abs().argmax(-1).float()  # 1 Hz bins for one second
    assert ((peak_hz >= 89) & (peak_hz <= 111)).all() and (peak_hz != 100).any()  # speed 0.9-1.1
    # the shift zero-fills one end of each clip
    assert ((jittered[:, 0, :40] == 0).all(-1) | (jittered[:, 0, -40:] == 0).all(-1)).sum() >= 6

    loud = tone * 1.98  # peak 0.99: 6 dB more gain would clip, so it is held at full scale
    boosted = jitter_audio(loud, torch.Generator().manual_seed(2), speed=0, shift=0)
    assert boosted.abs().max() <= 0.99 + 1e-6


def test_augmented_audio_copies_follow_each_original(tmp_path):
    from test_audio_tokenizer import make_audio_tokenizer

    tokenizer = make_audio_tokenizer(levels=2).eval()
    t = torch.arange(400) / 8000
    clips = [
        {"audio": (0.3 * torch.sin(2 * torch.pi * (200 + 50 * i) * t))[None], "label": i % 2}
        for i in range(6)
    ]
    manifest = encode_dataset(
        tokenizer, clips, tmp_path / "s", batch_size=6, augment_copies=1, progress=False
    )
    shards = CodeShardDataset(tmp_path / "s")
    assert manifest["num_items"] == 12 and manifest["augment_copies"] == 1
    plain = tokenizer.encode(torch.stack([c["audio"] for c in clips]))
    assert torch.equal(shards.codes[:6], plain)
    assert not torch.equal(shards.codes[6:], plain)  # speed, shift and gain change the codes
    assert torch.equal(shards.labels[6:], shards.labels[:6])
