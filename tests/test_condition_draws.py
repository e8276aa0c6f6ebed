"""A warm start that adds a condition field, and the fields a pipeline draws itself from its training table."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tokenizer
from test_conditions import FAMILIES, PITCHES, multi_prior

from vqgen.errors import ConfigError, MismatchError
from vqgen.pipelines import ImagePipeline, load_pipeline
from vqgen.pipelines.condition_draws import condition_table, draw_conditions

pytestmark = pytest.mark.usefixtures("one_thread")

# family (3) | instrument (4) | pitch (5): "instrument" sorts between the old fields and shifts pitch's ids
GROWN = {"family": 3, "instrument": 4, "pitch": 5}


def test_warm_start_with_a_new_field_moves_every_saved_row():
    saved = multi_prior(seed=0)
    grown = multi_prior(seed=1, condition_fields=dict(GROWN))
    fresh = grown.model.get_input_embeddings().weight.detach().clone()
    grown.load_with_new_fields(saved)
    old, new = saved.model.get_input_embeddings().weight, grown.model.get_input_embeddings().weight
    old_head, new_head = (
        saved.model.get_output_embeddings().weight,
        grown.model.get_output_embeddings().weight,
    )
    # codes 0..15 | family 16..18, null 19 | (old) pitch 20..24, null 25 | BOS 26
    # codes 0..15 | family 16..18, null 19 | instrument 20..23, null 24 | pitch 25..29, null 30 | BOS 31
    pairs = [*zip(range(20), range(20)), *zip(range(20, 26), range(25, 31)), (26, 31)]
    for a, b in pairs:
        assert torch.equal(old[a], new[b]) and torch.equal(old_head[a], new_head[b]), (a, b)
    assert torch.equal(new[20:25], fresh[20:25])  # the new field's values and null: as initialised
    for name, tensor in saved.state_dict().items():
        if "embed_tokens" not in name and "lm_head" not in name:
            assert torch.equal(tensor, grown.state_dict()[name]), name


def test_warm_start_with_a_new_field_refuses_other_fields_or_nothing_new():
    saved = multi_prior(seed=0)
    with pytest.raises(MismatchError, match="needs the saved prior's codes and fields: saved family"):
        multi_prior(condition_fields={"family": 4, "pitch": 5, "program": 2}).load_with_new_fields(saved)
    with pytest.raises(MismatchError, match="needs the saved prior's codes and fields"):
        multi_prior(seed=1).load_with_new_fields(saved)


TABLE_LABELS = {
    "family": torch.tensor([0, 0, 0, 1, 1, 2, -1]),
    "instrument": torch.tensor([0, 0, 1, 2, 2, 3, 0]),
    "pitch": torch.tensor([0, 0, 1, 2, 3, 4, 0]),
}


def test_condition_table_counts_the_combinations_of_labelled_items():
    table = condition_table(TABLE_LABELS, list(GROWN))
    assert table == [[0, 0, 0, 2], [0, 1, 1, 1], [1, 2, 2, 1], [1, 2, 3, 1], [2, 3, 4, 1]]
    with pytest.raises(ConfigError, match="no labels for condition field 'program'"):
        condition_table(TABLE_LABELS, ["family", "program"])


def draws() -> dict:
    return {"fields": ["instrument"], "table": condition_table(TABLE_LABELS, list(GROWN))}


def generators(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def test_draws_fill_a_missing_field_from_rows_that_agree():
    asked = torch.tensor(
        [
            [0, -1, 1],  # family 0, pitch 1: only instrument 1 agrees
            [1, -1, 0],  # family 1, pitch 0: no row agrees -> family 1's instrument 2
            [2, 0, 4],  # instrument given: kept
            [-1, -1, -1],  # nothing given: stays unconditional
            [-1, -1, 0],  # pitch 0 alone: instrument 0
        ]
    )
    filled = draw_conditions(draws(), list(GROWN), asked, generators(5))
    assert filled.tolist() == [[0, 1, 1], [1, 2, 0], [2, 0, 4], [-1, -1, -1], [-1, 0, 0]]
    assert draw_conditions(None, list(GROWN), asked, None) is asked
    assert draw_conditions(draws(), list(GROWN), None, None) is None


def test_draws_follow_the_counts_and_the_generators():
    table = {"fields": ["instrument"], "table": [[0, 0, 0, 3], [0, 1, 0, 1]]}
    asked = torch.tensor([[0, -1, 0]]).expand(400, -1)
    filled = draw_conditions(table, list(GROWN), asked, generators(400))
    share = float((filled[:, 1] == 0).double().mean())
    assert 0.68 < share < 0.82  # 3 of 4 by count
    again = draw_conditions(table, list(GROWN), asked, generators(400))
    assert torch.equal(filled, again)
    assert not torch.equal(filled, draw_conditions(table, list(GROWN), asked, generators(400, seed=1000)))


def grown_pipeline() -> ImagePipeline:
    prior = multi_prior(grid=[4, 4], condition_fields=dict(GROWN))
    names = {"family": FAMILIES, "instrument": ["a", "b", "c", "d"], "pitch": PITCHES}
    return ImagePipeline(make_tokenizer(), prior, condition_names=names, condition_draws=draws())


def test_a_pipeline_draws_saves_and_loads_its_table(tmp_path):
    pipe = grown_pipeline()
    assert pipe.condition_draws == draws()
    seeded = [torch.Generator().manual_seed(0) for _ in range(3)]
    drawn = pipe(2, conditions={"family": "bass", "pitch": 48}, generator=seeded[0], output_type="pt").images
    named = {"family": "bass", "pitch": 48, "instrument": "b"}  # the one row that agrees
    given = pipe(2, conditions=named, generator=seeded[1], output_type="pt").images
    assert not torch.equal(drawn, given)  # the draw spends one number of each item's generator first
    pipe.save_pretrained(str(tmp_path / "p"))
    loaded = load_pipeline(tmp_path / "p")
    assert loaded.condition_draws == draws()
    again = loaded(
        2, conditions={"family": "bass", "pitch": 48}, generator=seeded[2], output_type="pt"
    ).images
    assert torch.equal(drawn, again)


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            {"fields": ["program"], "table": [[0, 0, 0, 1]]},
            "draws ['program']; the prior's fields are family",
        ),
        (
            {"fields": ["instrument"], "table": [[0, 4, 0, 1]]},
            "rows must be 3 value indices within the fields",
        ),
        ({"fields": ["instrument"], "table": [[0, 0, 0, 0]]}, "and a positive count, got [0, 0, 0, 0]"),
        ({"fields": ["instrument"], "table": []}, "condition_draws has an empty table"),
        ({"table": []}, "condition_draws must be a dict"),
    ],
)
def test_bad_draw_tables_are_one_line(bad, message):
    pipe = grown_pipeline()
    with pytest.raises((ConfigError, MismatchError)) as error:
        pipe.set_condition_draws(bad)
    assert message in str(error.value) and "\n" not in str(error.value)
