"""Fingerprints stay promises: a config key added in a later release must not make a model refuse the code
shards and ``.vqz`` files it wrote before (``vqgen.fingerprints``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_pipeline_audio import make_audio_tokenizer
from test_prior_levels import clips

from vqgen.compression import decompress_codes, iter_pipeline_checksums, pipeline_checksum
from vqgen.data.shards import CodeShardDataset, encode_dataset, tokenizer_fingerprint
from vqgen.errors import MismatchError
from vqgen.fingerprints import LATER_TOKENIZER_KEYS, config_eras, tokenizer_fingerprints
from vqgen.loading import load_tokenizer
from vqgen.pipelines.loading import load_pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "vqz"
PRETRAINED = Path(__file__).parents[1] / "vqgen" / "pretrained"


def test_config_eras_leave_out_later_keys_newest_first_while_they_hold_their_neutral_value():
    later = (("a", 0), ("b", [1.0, 2.0]))
    config = {"_name_or_path": "x", "size": 4, "a": 0, "b": (1.0, 2.0)}
    assert config_eras(config, later) == [
        {"size": 4, "a": 0, "b": (1.0, 2.0)},
        {"size": 4, "a": 0},
        {"size": 4},
    ]
    # a key at another value cannot have been written before it existed: the walk stops there
    assert config_eras({**config, "a": 1}, later) == [
        {"size": 4, "a": 1, "b": (1.0, 2.0)},
        {"size": 4, "a": 1},
    ]
    assert config_eras({**config, "b": [0.0, 2.0]}, later) == [{"size": 4, "a": 0, "b": [0.0, 2.0]}]
    # keys a model never had give one era
    assert config_eras({"size": 4}, later) == [{"size": 4}]


# Fingerprints the shipped audio tokenizers had under earlier releases, newest first: with phase_levels
# (2026-12-04 on), before it, before pitch_range, before frontend (.vqz format 5, 2026-12-02).
@pytest.mark.parametrize(
    "name, written",
    [
        (
            "audio-spoken-digits",
            ["7bf56f769be3811e", "6c12ca3d8c2ead7b", "9403d597958576b8", "83937c379052a093"],
        ),
        ("audio-instruments", ["c86237feb021c6d4", "0dec4fb8a369456b"]),
    ],
)
def test_the_shipped_audio_tokenizers_answer_to_every_fingerprint_written_for_them(name, written):
    fingerprints = tokenizer_fingerprints(load_tokenizer(PRETRAINED / name / "tokenizer"))
    assert fingerprints[: len(written)] == written
    assert [key for key, _ in LATER_TOKENIZER_KEYS] == ["frontend", "pitch_range", "phase_levels"]


def test_shards_written_before_a_later_key_still_match_their_tokenizer(tmp_path):
    tokenizer = make_audio_tokenizer()
    encode_dataset(tokenizer, clips(3), tmp_path / "s", progress=False)
    manifest_path = tmp_path / "s" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    fingerprints = tokenizer_fingerprints(tokenizer)
    assert manifest["tokenizer_fingerprint"] == fingerprints[0] == tokenizer_fingerprint(tokenizer)
    assert len(fingerprints) == 4  # a waveform tokenizer: phase_levels, pitch_range and frontend all neutral
    encode_dataset(tokenizer, clips(2), tmp_path / "val", progress=False)
    for older in fingerprints[1:]:
        manifest_path.write_text(json.dumps({**manifest, "tokenizer_fingerprint": older}))
        CodeShardDataset(tmp_path / "s").check_tokenizer(tokenizer)
        # training shards of an older release beside validation shards written now
        CodeShardDataset(tmp_path / "s").check_matches(CodeShardDataset(tmp_path / "val"), tokenizer)
        with pytest.raises(MismatchError, match="another tokenizer"):
            CodeShardDataset(tmp_path / "s").check_matches(CodeShardDataset(tmp_path / "val"))
    with pytest.raises(MismatchError, match="re-encode them"):
        CodeShardDataset(tmp_path / "s").check_tokenizer(make_audio_tokenizer(seed=1))


@pytest.mark.parametrize(
    "pipeline, fixture, labels",
    [
        ("audio", "spoken-digits-format5-2026-12-02.vqz", [3]),
        ("instruments", "instruments-2026-12-04.vqz", {"family": [7], "pitch": [10]}),
    ],
)
def test_vqz_files_of_earlier_releases_decompress_with_the_same_shipped_pipeline(pipeline, fixture, labels):
    """Written by the releases named in the files (a 440 Hz decaying tone, compressed with the shipped pipeline
    of the day: format 5 before the audio tokenizer had a frontend, and the day before phase_levels); the
    tokens' CRC-32 in the header proves the codes come back exactly."""
    pipe = load_pipeline(pipeline)
    data = (FIXTURES / fixture).read_bytes()
    codes, got = decompress_codes(pipe, data)
    assert tuple(codes.shape) == (1, *pipe.prior.config.code_grid) and got == labels
    # new files store the current checksum; the older ones are only read
    assert next(iter_pipeline_checksums(pipe)) == pipeline_checksum(pipe) != data[5:13].hex()


# The config keys each model class had when the first shards and .vqz files (format 5, 2026-12-02) were written.
FIRST_KEYS = {
    "ImageTokenizer": {"base_channels", "channel_multipliers", "dropout", "in_channels", "latent_channels",
                       "num_res_blocks", "quantizer_config"},
    "AudioTokenizer": {"activation", "base_channels", "causal", "dilations", "in_channels", "latent_channels",
                       "max_channels", "norm", "quantizer_config", "sample_rate", "strides"},
    "CodePrior": {"class_dropout", "code_grid", "codebook_size", "dropout", "hidden_size", "intermediate_size",
                  "layout", "num_classes", "num_heads", "num_kv_heads", "num_layers", "rope_theta"},
}  # fmt: skip
FIRST_KEYS["VideoTokenizer"] = FIRST_KEYS["ImageTokenizer"] | {"temporal_factor"}


def test_every_config_key_added_since_the_first_files_is_listed_with_its_default():
    """A new tokenizer or prior config key must go into ``vqgen.fingerprints`` with the default that codes as
    before it, or every file written until then stops matching its model."""
    import inspect

    from vqgen.fingerprints import LATER_PRIOR_KEYS
    from vqgen.priors.prior import CodePrior
    from vqgen.tokenizers.audio import AudioTokenizer
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.tokenizers.video import VideoTokenizer

    for cls, later in (
        (ImageTokenizer, LATER_TOKENIZER_KEYS),
        (VideoTokenizer, LATER_TOKENIZER_KEYS),
        (AudioTokenizer, LATER_TOKENIZER_KEYS),
        (CodePrior, LATER_PRIOR_KEYS),
    ):
        parameters = inspect.signature(cls.__init__).parameters
        added = set(parameters) - {"self"} - FIRST_KEYS[cls.__name__]
        listed = dict(later)
        assert added <= set(listed), (
            f"{cls.__name__}: add {sorted(added - set(listed))} to vqgen.fingerprints"
        )
        for key in added:
            default = parameters[key].default
            assert json.dumps(default) == json.dumps(listed[key]), (
                f"{cls.__name__}.{key}: default {default!r}"
            )
