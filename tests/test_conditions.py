"""Named condition fields: the prior's prefix layout and vocabulary, independent nulls and dropout, guidance
with several fields, old configs, value names in pipelines, code shards with per-field labels, metadata.csv.

Tiny models only (hidden 32, grid 3x4, codebook 16), so the file runs in seconds on a CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_prior, make_tokenizer

from vqgen.data.conditions import ConditionedDataset, parse_condition_fields, value_names
from vqgen.data.images import TensorImageDataset
from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.errors import ConfigError, DataError, MismatchError, ShapeError
from vqgen.pipelines import ImagePipeline
from vqgen.pipelines.assembly import prior_for_shards
from vqgen.pipelines.conditions import condition_call_arguments
from vqgen.priors.prior import CodePrior

GRID = [3, 4]
K = 16
FIELDS = {"pitch": 5, "family": 3}
FAMILIES = ["bass", "brass", "organ"]
PITCHES = ["36", "48", "60", "72", "84"]


pytestmark = pytest.mark.usefixtures("one_thread")


def multi_prior(seed: int = 0, grid=GRID, **kwargs) -> CodePrior:
    torch.manual_seed(seed)
    args = dict(hidden_size=32, num_layers=2, num_heads=4, class_dropout=0.0, condition_fields=dict(FIELDS))
    args.update(kwargs)
    return CodePrior(K, list(grid), **args).eval()


def random_codes(batch: int, seed: int = 0, grid=GRID) -> torch.Tensor:
    return torch.randint(0, K, (batch, *grid), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ the prior


def test_fields_sorted_each_with_its_own_null_then_bos():
    prior = multi_prior()
    assert prior.condition_fields == {"family": 3, "pitch": 5}  # prefix order: names sorted
    assert prior.is_conditional and prior.num_classes == 0 and prior.null_class_id is None
    assert prior.num_prefix_tokens == 3
    # codes 0..15 | family 16,17,18 + null 19 | pitch 20..24 + null 25 | BOS 26
    assert prior.condition_tokens.offsets == [16, 20] and prior.condition_tokens.null_ids == [19, 25]
    assert prior.vocab_size == 27 and prior.bos_id == 26 and prior.model.config.vocab_size == 27
    assert prior.seq_len == 3 + 12


def test_prefix_is_bos_then_one_token_per_field_missing_fields_null():
    prior = multi_prior()
    prefix = prior.prefix(None, 3, conditions={"family": [0, 2, 1], "pitch": torch.tensor([4, 0, -1])})
    assert prefix.tolist() == [[26, 16, 24], [26, 18, 20], [26, 17, 25]]
    assert prior.prefix(None, 2, conditions={"pitch": 3}).tolist() == [[26, 19, 23]] * 2
    assert prior.prefix(None, 2).tolist() == [[26, 19, 25]] * 2
    assert prior.prefix(None, 2, conditions={"pitch": None}).tolist() == [[26, 19, 25]] * 2
    # indices [B, F] in prefix order pass through
    indices = torch.tensor([[2, -1], [0, 1]])
    assert prior.prefix(None, 2, conditions=indices).tolist() == [[26, 18, 25], [26, 16, 21]]
    assert torch.equal(prior.condition_indices(None, 2, {"family": [2, 0], "pitch": [-1, 1]}), indices)


def test_num_classes_is_the_single_field_class():
    old = make_prior(num_classes=3, grid=GRID)
    torch.manual_seed(0)
    new = CodePrior(K, GRID, condition_fields={"class": 3}, hidden_size=32, num_layers=2, num_heads=4).eval()
    assert old.condition_fields == new.condition_fields == {"class": 3}
    assert (old.vocab_size, old.bos_id, old.null_class_id) == (new.vocab_size, new.bos_id, new.null_class_id)
    assert old.num_prefix_tokens == 2 and old.num_classes == new.num_classes == 3
    assert torch.equal(
        old.prefix([0, 2], 2, guided=True), new.prefix(None, 2, conditions={"class": [0, 2]}, guided=True)
    )
    codes = random_codes(2)
    torch.testing.assert_close(
        old.log_likelihood(codes, [1, 2]), old.log_likelihood(codes, conditions={"class": [1, 2]})
    )


def test_each_field_drops_on_its_own_with_class_dropout():
    prior = multi_prior(class_dropout=0.5).train()
    torch.manual_seed(0)
    n = 4000
    prefix = prior.prefix(None, n, conditions={"family": 1, "pitch": 2}, class_dropout=True)
    family_null, pitch_null = prefix[:, 1] == 19, prefix[:, 2] == 25
    assert set(prefix[:, 1].tolist()) == {17, 19} and set(prefix[:, 2].tolist()) == {22, 25}
    assert 0.45 < family_null.float().mean() < 0.55 and 0.45 < pitch_null.float().mean() < 0.55
    assert 0.21 < (family_null & pitch_null).float().mean() < 0.29  # independent: about 0.5 * 0.5
    assert (
        prior.prefix(None, 4, conditions={"family": 1}).tolist() == [[26, 17, 25]] * 4
    )  # only training drops
    everything = multi_prior(class_dropout=1.0).train()
    assert (
        everything.prefix(None, 3, conditions={"family": 0, "pitch": 0}, class_dropout=True).tolist()
        == [[26, 19, 25]] * 3
    )


def test_guided_rows_null_every_field():
    prior = multi_prior()
    prefix = prior.prefix(None, 2, conditions={"family": [0, 1]}, guided=True)
    assert prefix.tolist() == [[26, 16, 25], [26, 17, 25], [26, 19, 25], [26, 19, 25]]


@pytest.mark.parametrize("layout, grid", [("raster", GRID), ("delay", [2, 5])])
def test_guided_greedy_sampling_follows_null_plus_scale_times_difference(layout, grid):
    """Every drawn token is the argmax of ``null + g (cond - null)``, the null branch nulling every field."""
    prior = multi_prior(layout=layout, grid=grid)
    conditions = {"family": [0, 2, 1], "pitch": [4, 0, -1]}
    scale = 3.0
    codes = prior.sample(
        3, conditions=conditions, guidance_scale=scale, top_k=1, generator=torch.Generator().manual_seed(0)
    )
    # -inf (ids outside a position's level range) made finite, so the difference is defined there too
    cond = prior(codes, conditions=conditions).logits.float().clamp(min=-1e9)
    null = prior(codes, conditions=None).logits.float().clamp(min=-1e9)
    guided = null + scale * (cond - null)
    tokens = prior.code_tokens(codes)
    fixed = prior.layout.fixed_tokens()
    free = torch.ones(tokens.shape[1], dtype=torch.bool) if fixed is None else fixed < 0
    assert torch.equal(guided.argmax(-1)[:, free], tokens[:, free])
    # the guidance matters: without it some token differs
    plain = prior.sample(3, conditions=conditions, top_k=1, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(plain, codes)


def test_fields_change_the_likelihood_and_train_through_forward():
    prior = multi_prior()
    codes = random_codes(2)
    a = prior.log_likelihood(codes, conditions={"family": 0})
    b = prior.log_likelihood(codes, conditions={"family": 1})
    c = prior.log_likelihood(codes, conditions={"family": 0, "pitch": 3})
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    prior.train()
    loss = prior(codes, conditions={"family": [0, 1], "pitch": [2, 3]}, return_logits=False).loss
    loss.backward()
    embed = prior.model.get_input_embeddings().weight.grad
    assert embed[[16, 17, 22, 23, 26]].abs().sum(1).gt(0).all()  # the values used and BOS
    assert embed[[18, 19, 20, 25]].abs().sum() == 0  # unused values and the nulls (no dropout)


def test_save_load_keeps_the_fields_and_old_configs_load_as_before(tmp_path):
    prior = multi_prior()
    codes = random_codes(2)
    expected = prior.log_likelihood(codes, conditions={"family": [1, 2], "pitch": 4})
    prior.save_pretrained(tmp_path / "multi")
    config = json.loads((tmp_path / "multi" / "config.json").read_text())
    assert config["condition_fields"] == {"family": 3, "pitch": 5} and config["num_classes"] == 0
    loaded = CodePrior.from_pretrained(tmp_path / "multi").eval()
    assert loaded.condition_fields == prior.condition_fields
    torch.testing.assert_close(
        loaded.log_likelihood(codes, conditions={"family": [1, 2], "pitch": 4}), expected
    )
    # A config written before condition fields existed has no such key: it loads as the class prior it was.
    old = make_prior(num_classes=3, grid=GRID)
    old.save_pretrained(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    config = json.loads(path.read_text())
    config.pop("condition_fields")
    path.write_text(json.dumps(config))
    reloaded = CodePrior.from_pretrained(tmp_path / "old").eval()
    assert reloaded.condition_fields == {"class": 3} and reloaded.num_prefix_tokens == 2
    torch.testing.assert_close(reloaded.log_likelihood(codes, [0, 2]), old.log_likelihood(codes, [0, 2]))


def test_shipped_prior_configs_load_unchanged():
    from vqgen.pipelines.loading import PRETRAINED_DIR

    for folder in sorted(PRETRAINED_DIR.iterdir()):
        config = json.loads((folder / "prior" / "config.json").read_text())
        prior = CodePrior.from_config(config)
        if config.get("condition_fields") is None:  # single-label priors, some saved before the key existed
            assert prior.condition_fields == (
                {"class": config["num_classes"]} if config["num_classes"] else {}
            )
        else:
            assert prior.condition_fields == dict(sorted(config["condition_fields"].items()))
        # each field's values, plus one null token per field
        expected = sum(count + 1 for count in prior.condition_fields.values())
        assert prior.vocab_size == prior.num_code_tokens + expected + 1, folder.name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 3, "condition_fields": {"a": 2}}, "give num_classes or condition_fields, not both"),
        ({"condition_fields": {"a": 0}}, "condition_fields['a'] must be an int >= 1, got 0"),
        ({"condition_fields": {"a=b": 2}}, "condition field names are letters, digits"),
        ({"condition_fields": {"": 2}}, "condition field names are letters, digits"),
        ({"condition_fields": [("a", 2)]}, "condition_fields must be a dict"),
        ({"condition_fields": {"a": 2.5}}, "condition_fields['a'] must be an int"),
    ],
)
def test_bad_condition_fields_config(kwargs, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("(", r"\(")) as error:
        CodePrior(K, GRID, hidden_size=32, num_layers=1, num_heads=4, **kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda p: p.prefix(None, 2, conditions={"velocity": 1}), ConfigError, "unknown condition field 'velocity': this prior's fields are family, pitch"),
        (lambda p: p.prefix(None, 2, conditions={"pitch": 5}), ConfigError, "condition 'pitch' must lie in [-1, 5)"),
        (lambda p: p.prefix(None, 2, conditions={"pitch": [0, 1, 2]}), ShapeError, "condition 'pitch' must have shape [2] or [1]"),
        (lambda p: p.prefix(None, 2, conditions={"pitch": 1.5}), ShapeError, "condition 'pitch' must be integers"),
        (lambda p: p.prefix(None, 2, conditions=torch.zeros(2, 3, dtype=torch.long)), ShapeError, "[2, 2] or [1, 2]"),
        (lambda p: p.prefix(None, 2, conditions=[1, 2]), ConfigError, "conditions must be a dict"),
        (lambda p: p.prefix([0, 1], 2), ConfigError, "class_labels need a prior with one condition field; this one has family, pitch"),
        (lambda p: p.sample(1, class_labels=0), ConfigError, "pass conditions={field: values} instead"),
        (lambda p: p.condition_indices(0, 1, {"pitch": 0}), ConfigError, "pass class_labels or conditions, not both"),
    ],
)  # fmt: skip
def test_bad_conditions_are_one_line(call, error, message):
    with pytest.raises(error) as raised:
        call(multi_prior())
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_conditions_to_an_unconditional_prior():
    with pytest.raises(ConfigError, match="unconditional prior"):
        make_prior(num_classes=0, grid=GRID).prefix(None, 1, conditions={"class": 0})


# ------------------------------------------------------------------ pipelines: value names


def named_pipeline(names=True) -> ImagePipeline:
    """Image pipeline (8x8, grid 4x4) whose prior has fields family (3) and pitch (5)."""
    prior = multi_prior(grid=[4, 4])
    condition_names = {"family": FAMILIES, "pitch": PITCHES} if names else None
    return ImagePipeline(make_tokenizer(), prior, condition_names=condition_names)


def test_names_resolve_to_indices_and_integer_names_by_value():
    pipe = named_pipeline()
    assert pipe.condition_names == {"family": FAMILIES, "pitch": PITCHES}
    expected = torch.tensor([[1, 2], [1, 2]])
    assert torch.equal(pipe.condition_indices(None, 2, {"family": "brass", "pitch": 60}), expected)
    assert torch.equal(pipe.condition_indices(None, 2, {"family": 1, "pitch": "60"}), expected)  # ints index
    got = pipe.condition_indices(None, 2, {"family": ["organ", "bass"], "pitch": torch.tensor([84, 36])})
    assert got.tolist() == [[2, 4], [0, 0]]
    assert pipe.condition_indices(None, 2, {"family": "bass"}).tolist() == [[0, -1], [0, -1]]
    seeded = [torch.Generator().manual_seed(0) for _ in range(2)]
    by_name = pipe(2, conditions={"family": "brass", "pitch": 60}, generator=seeded[0], output_type="pt")
    by_index = pipe(2, conditions=expected, generator=seeded[1], output_type="pt")
    assert torch.equal(by_name.images, by_index.images)


def test_class_labels_by_name_keep_ints_as_indices(tmp_path):
    prior = make_prior(num_classes=3)
    pipe = ImagePipeline(make_tokenizer(), prior, condition_names={"class": ["10", "20", "30"]})
    assert pipe.condition_indices(["30", 1], 2).tolist() == [[2], [1]]  # names, and ints as indices
    assert pipe.condition_indices(None, 1, {"class": 20}).tolist() == [[1]]  # conditions: ints are values
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["condition_names"] == {"class": ["10", "20", "30"]}
    loaded = ImagePipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.condition_names == {"class": ["10", "20", "30"]}


def test_pipelines_saved_without_names_take_numbers_and_keep_their_index(tmp_path):
    pipe = ImagePipeline(make_tokenizer(), make_prior(num_classes=3))
    pipe.save_pretrained(tmp_path / "pipe")
    assert "condition_names" not in json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    loaded = ImagePipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.condition_names == {}
    assert loaded.condition_indices([2, "1"], 2).tolist() == [[2], [1]]
    with pytest.raises(ConfigError, match="stores no value names for 'class'; pass an index in \\[0, 3\\)"):
        loaded.condition_indices("cat", 1)


@pytest.mark.parametrize(
    "names, error, message",
    [
        ({"colour": ["a"]}, MismatchError, "condition_names names field 'colour'; the prior's fields are family, pitch"),
        ({"family": ["a", "b"]}, MismatchError, "condition_names['family'] holds 2 names; the prior's field has 3"),
        ({"family": ["a", "a", "b"]}, ConfigError, "holds a name twice"),
        ({"family": [1, 2, 3]}, ConfigError, "must be a list of non-empty strings"),
    ],
)  # fmt: skip
def test_bad_condition_names(names, error, message):
    with pytest.raises(error) as raised:
        ImagePipeline(make_tokenizer(), multi_prior(grid=[4, 4]), condition_names=names)
    assert message in str(raised.value)


def test_generate_arguments_cycle_every_field_by_name():
    pipe = named_pipeline()
    out = condition_call_arguments(pipe, 4)
    assert out == {
        "conditions": {"family": ["bass", "brass", "organ", "bass"], "pitch": ["36", "48", "60", "72"]}
    }
    assert condition_call_arguments(pipe, 4, unconditional=True) == {}
    flags = condition_call_arguments(pipe, 2, condition_flags=["family=brass", "pitch=60"])
    assert flags == {"conditions": {"family": "brass", "pitch": "60"}}
    single = ImagePipeline(make_tokenizer(), make_prior(num_classes=3))
    assert condition_call_arguments(single, 4) == {"class_labels": [0, 1, 2, 0]}
    assert condition_call_arguments(single, 2, ["2"]) == {"class_labels": [2, 2]}


def test_compress_round_trips_under_several_fields():
    from vqgen.compression import decompress, read_header

    pipe = named_pipeline()
    images = pipe(
        2, conditions={"family": "organ"}, generator=torch.Generator().manual_seed(1), output_type="pt"
    )
    data = pipe.compress(images.images, conditions={"family": ["organ", "bass"], "pitch": 60})
    media, labels = decompress(pipe, data)
    assert labels == {"family": [2, 0], "pitch": [2, 2]}
    header, _ = read_header(data)
    assert header["class_labels"] is None and header["conditions"] == [[2, 0], [2, 2]]
    reconstruction = pipe.tokenizer.decode(pipe.tokenizer.encode(images.images)).float().clamp(-1, 1)
    assert torch.equal(media, reconstruction)
    assert torch.equal(pipe.decompress(data), media)
    # a missing field is coded as its null, and the file says so
    _, labels = decompress(pipe, pipe.compress(images.images, conditions={"pitch": 36}))
    assert labels == {"family": [-1, -1], "pitch": [0, 0]}


# ------------------------------------------------------------------ data: shards and metadata.csv


class _WithFields(TensorImageDataset):
    condition_names = {"family": tuple(FAMILIES), "pitch": tuple(PITCHES)}

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return {**item, "conditions": {"family": index % 3, "pitch": -1 if index == 5 else index % 5}}


def _images(n: int = 12, cls=TensorImageDataset):
    rng = np.random.default_rng(0)
    return cls(
        rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), labels=np.arange(n) % 2, label_names=["a", "b"]
    )


def test_shards_keep_per_field_labels_and_build_a_multi_field_prior(tmp_path):
    tokenizer = make_tokenizer()
    manifest = encode_dataset(
        tokenizer, _images(cls=_WithFields), tmp_path / "shards", shard_size=5, progress=False
    )
    assert manifest["condition_fields"] == {"family": FAMILIES, "pitch": PITCHES}
    shards = CodeShardDataset(tmp_path / "shards")
    assert shards.condition_fields == {"family": 3, "pitch": 5}
    assert shards[5]["conditions"] == {"family": 2, "pitch": -1} and shards[5]["label"] == 1
    assert shards.field_labels["pitch"].tolist() == [0, 1, 2, 3, 4, -1, 1, 2, 3, 4, 0, 1]
    from vqgen.media import medium_of

    prior = prior_for_shards(shards, medium_of(tokenizer), hidden_size=32, num_layers=1, num_heads=4)
    assert prior.condition_fields == {"family": 3, "pitch": 5} and prior.config.num_classes == 0
    unconditional = prior_for_shards(
        shards, medium_of(tokenizer), conditional=False, hidden_size=32, num_layers=1, num_heads=4
    )
    assert not unconditional.is_conditional
    with pytest.raises(MismatchError, match="the prior's condition fields are family \\(3\\), pitch \\(7\\)"):
        shards.check_prior(multi_prior(grid=[4, 4], condition_fields={"family": 3, "pitch": 7}))


def test_shards_of_folder_classes_stay_as_they_were(tmp_path):
    tokenizer = make_tokenizer()
    manifest = encode_dataset(tokenizer, _images(), tmp_path / "shards", progress=False)
    assert "condition_fields" not in manifest
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "shards" / "shard-00000.safetensors"))) == {"codes", "labels"}
    shards = CodeShardDataset(tmp_path / "shards")
    assert shards.condition_names == {"class": ["a", "b"]} and "conditions" not in shards[0]
    from vqgen.media import medium_of

    prior = prior_for_shards(shards, medium_of(tokenizer), hidden_size=32, num_layers=1, num_heads=4)
    assert prior.config.num_classes == 2 and prior.config.condition_fields is None


def _notes_folder(root, rows=None):
    """``root/{train,test}/NN-family/*.wav`` (silent) and ``root/metadata.csv``."""
    import soundfile

    rows = rows or [
        ("train/07-brass/056-060-100.wav", "brass", "60"),
        ("train/07-brass/056-072-100.wav", "brass", "72"),
        ("train/00-piano/000-048-100.wav", "piano", "48"),
        ("test/00-piano/001-084-100.wav", "piano", "84"),
    ]
    for file, _, _ in rows:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(root / file), np.zeros(800, dtype=np.float32), 8000)
    lines = ["file,family,pitch,velocity"] + [f"{f},{fam},{p},100" for f, fam, p in rows]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_metadata_columns_give_condition_fields_numbered_over_every_split(tmp_path):
    from vqgen.data.audio import load_audio_dataset

    root = _notes_folder(tmp_path / "notes")
    train = ConditionedDataset(load_audio_dataset(str(root), "train", 8000), ["family", "pitch"])
    assert train.condition_names == {"family": ("brass", "piano"), "pitch": ("48", "60", "72", "84")}
    assert [train[i]["conditions"] for i in range(3)] == [
        {"family": 1, "pitch": 0},
        {"family": 0, "pitch": 1},
        {"family": 0, "pitch": 2},
    ]
    assert train[0]["label"] == 0 and train.label_names == ("00-piano", "07-brass")  # folders as before
    assert value_names(["10", "9", "", "09"]) == ("9", "10") and value_names(["b", "a", "b"]) == ("a", "b")
    assert parse_condition_fields(" family, pitch ") == ["family", "pitch"]


@pytest.mark.parametrize(
    "fields, change, error, message",
    [
        (["timbre"], None, DataError, "has no column 'timbre' for --condition-fields; its columns: file, family, pitch, velocity"),
        (["family"], "drop-row", DataError, "has no row for 'train/07-brass/056-072-100.wav' (1 of 3 files have none)"),
        (["family"], "no-csv", DataError, "condition fields are read from a metadata.csv in the data folder or its parent"),
    ],
)  # fmt: skip
def test_bad_metadata_for_condition_fields(tmp_path, fields, change, error, message):
    from vqgen.data.audio import load_audio_dataset

    root = _notes_folder(tmp_path / "notes")
    csv = root / "metadata.csv"
    if change == "drop-row":
        csv.write_text("\n".join(line for line in csv.read_text().splitlines() if "056-072" not in line))
    if change == "no-csv":
        csv.unlink()
    with pytest.raises(error) as raised:
        ConditionedDataset(load_audio_dataset(str(root), "train", 8000), fields)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("text", ["family,,pitch", "family,family", "a=b"])
def test_bad_condition_fields_flag(text):
    with pytest.raises(ConfigError):
        parse_condition_fields(text)
