"""Layouts (raster, flatten, delay): codes grid <-> token sequence, code ranges, prompts, shorter clips and the
errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.layout import (
    LAYOUTS,
    CodeLayout,
    DelayLayout,
    FlattenLayout,
    RasterLayout,
    build_layout,
    register_layout,
)


@pytest.mark.parametrize("grid", [[12], [3, 4], [2, 3, 4]])
def test_flatten_unflatten_round_trip(grid):
    layout = RasterLayout(grid, 16)
    codes = torch.randint(0, 16, (5, *grid), generator=torch.Generator().manual_seed(0))
    tokens = layout.flatten(codes)
    assert tokens.shape == (5, layout.length)
    assert tokens.dtype == torch.long
    assert torch.equal(layout.unflatten(tokens), codes)


def test_flatten_is_row_major():
    layout = RasterLayout([3, 4], 16)
    codes = torch.arange(12).reshape(1, 3, 4)
    assert layout.flatten(codes).tolist() == [list(range(12))]
    # residual grid (L, h, w): level 0 completely, then level 1
    layout3 = RasterLayout([2, 2, 2], 16)
    codes3 = torch.arange(8).reshape(1, 2, 2, 2)
    assert layout3.flatten(codes3)[0].tolist() == list(range(8))
    assert layout3.unflatten(torch.arange(8).reshape(1, 8))[0, 1, 0, 1].item() == 5


def test_flatten_accepts_other_integer_dtypes_and_returns_long():
    layout = RasterLayout([3, 4], 16)
    codes = torch.randint(0, 16, (2, 3, 4)).to(torch.int32)
    tokens = layout.flatten(codes)
    assert tokens.dtype == torch.long
    assert torch.equal(tokens, codes.long().reshape(2, 12))


def test_sizes_and_code_range():
    layout = build_layout("raster", [3, 4], 16)
    assert isinstance(layout, RasterLayout)
    assert layout.grid == (3, 4)
    assert layout.length == 12
    assert layout.num_code_tokens == 16
    for position in range(12):
        assert layout.code_range(position) == (0, 16)
    assert layout.uniform_range() == (0, 16)
    ranges = layout.code_ranges()
    assert ranges.shape == (12, 2)
    assert ranges.dtype == torch.long
    assert (ranges[:, 0] == 0).all() and (ranges[:, 1] == 16).all()
    assert "RasterLayout" in repr(layout) and "16" in repr(layout)


@pytest.mark.parametrize("position", [-1, 12, 100])
def test_code_range_out_of_bounds(position):
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ConfigError, match=str(position)):
        layout.code_range(position)


def test_prompt_tokens_sequence_form():
    layout = RasterLayout([3, 4], 16)
    prompt = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], dtype=torch.int32)
    tokens = layout.prompt_tokens(prompt)
    assert tokens.dtype == torch.long
    assert tokens.tolist() == prompt.tolist()
    # empty and full prompts are fine
    assert layout.prompt_tokens(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0)
    full = torch.arange(12).reshape(1, 12)
    assert torch.equal(layout.prompt_tokens(full), full)


def test_prompt_tokens_top_rows_block():
    layout = RasterLayout([3, 4], 16)
    block = torch.arange(8).reshape(1, 2, 4)  # the top 2 rows of a 3x4 grid
    tokens = layout.prompt_tokens(block)
    assert tokens.shape == (1, 8)
    assert tokens[0].tolist() == list(range(8))
    # the top rows of a full grid agree with the flattened grid
    codes = torch.randint(0, 16, (2, 3, 4))
    assert torch.equal(layout.prompt_tokens(codes[:, :1]), layout.flatten(codes)[:, :4])
    assert torch.equal(layout.prompt_tokens(codes), layout.flatten(codes))


@pytest.mark.parametrize(
    "shape",
    [(1, 13), (1, 4, 4), (1, 2, 3), (1, 2, 4, 1), (12,)],
)
def test_prompt_tokens_bad_shapes(shape):
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=str(list(shape)).replace("[", r"\[").replace("]", r"\]")):
        layout.prompt_tokens(torch.zeros(shape, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_prompt_tokens_bad_dtype(dtype):
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=str(dtype)):
        layout.prompt_tokens(torch.zeros(1, 2, dtype=dtype))
    with pytest.raises(ShapeError, match="list"):
        layout.prompt_tokens([[1, 2]])


def test_flatten_bad_shapes_and_dtypes():
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=r"\[2, 4, 3\]"):
        layout.flatten(torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"\[3, 4\]"):
        layout.flatten(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ShapeError, match="float32"):
        layout.flatten(torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match="bool"):
        layout.flatten(torch.zeros(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ShapeError, match="ndarray"):
        layout.flatten(np.zeros((2, 3, 4), dtype=np.int64))


def test_unflatten_bad_shapes():
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=r"\[2, 11\]"):
        layout.unflatten(torch.zeros(2, 11, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"\[2, 3, 4\]"):
        layout.unflatten(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ShapeError, match="list"):
        layout.unflatten([[0] * 12])


@pytest.mark.parametrize("grid", [[], [3, 0], [3, -1], [3.0, 4], "34", (True, 4), 12])
def test_bad_grid(grid):
    with pytest.raises(ConfigError, match="code grid"):
        RasterLayout(grid, 16)


@pytest.mark.parametrize("codebook_size", [0, -3, 2.5, True, "16"])
def test_bad_codebook_size(codebook_size):
    with pytest.raises(ConfigError, match=repr(codebook_size).replace(".", r"\.")):
        RasterLayout([3, 4], codebook_size)


def test_build_layout_unknown_name_and_registration():
    with pytest.raises(ConfigError, match="'zigzag'"):
        build_layout("zigzag", [3, 4], 16)
    with pytest.raises(ConfigError, match="subclass CodeLayout"):
        register_layout("bad", dict)

    class Reversed(RasterLayout):
        name = "reversed_test"

    try:
        register_layout("reversed_test", Reversed)
        assert isinstance(build_layout("reversed_test", [2, 2], 4), Reversed)
    finally:
        LAYOUTS.pop("reversed_test", None)


def test_uniform_range_none_when_ranges_differ():
    class TwoLevel(RasterLayout):
        """Level 0 uses ids [0, K), level 1 ids [K, 2K)."""

        def __init__(self, grid, codebook_size):
            super().__init__(grid, codebook_size)
            self.num_code_tokens = 2 * codebook_size

        def code_range(self, position):
            half = self.length // 2
            return (
                (0, self.codebook_size) if position < half else (self.codebook_size, 2 * self.codebook_size)
            )

    layout = TwoLevel([2, 2], 4)
    assert isinstance(layout, CodeLayout)
    assert layout.uniform_range() is None
    assert layout.code_ranges().tolist() == [[0, 4], [0, 4], [4, 8], [4, 8]]


# ------------------------------------------------------------------ flatten


def test_flatten_layout_order_sizes_and_ranges():
    layout = build_layout("flatten", [3, 4], 10)
    assert isinstance(layout, FlattenLayout)
    assert (layout.length, layout.num_code_tokens, layout.streams, layout.steps) == (12, 30, 1, 12)
    assert (layout.time_axis, layout.time_steps, layout.codes_per_item) == (1, 4, 12)
    codes = torch.tensor([[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]])  # level k, frame t
    # frame 0 levels 0..2, frame 1 levels 0..2, ...; level k offset by k * 10
    expected = [0, 14, 28, 1, 15, 29, 2, 16, 20, 3, 17, 21]
    assert layout.flatten(codes).tolist() == [expected]
    assert torch.equal(layout.unflatten(layout.flatten(codes)), codes)
    assert [layout.code_range(p) for p in range(4)] == [(0, 10), (10, 20), (20, 30), (0, 10)]
    assert layout.uniform_range() is None
    assert layout.fixed_tokens() is None
    assert layout.code_ranges().tolist() == [list(layout.code_range(p)) for p in range(12)]
    with pytest.raises(ConfigError, match="12"):
        layout.code_range(12)


@pytest.mark.parametrize("grid", [[1, 5], [3, 5], [2, 3, 4]])
def test_flatten_layout_round_trip(grid):
    layout = FlattenLayout(grid, 8)
    codes = torch.randint(0, 8, (4, *grid), generator=torch.Generator().manual_seed(0))
    tokens = layout.flatten(codes)
    assert tokens.shape == (4, layout.length) and tokens.dtype == torch.long
    ranges = layout.code_ranges()
    assert ((tokens >= ranges[:, 0]) & (tokens < ranges[:, 1])).all()
    assert torch.equal(layout.unflatten(tokens), codes)


def test_flatten_layout_prompt_forms():
    layout = FlattenLayout([3, 4], 10)
    codes = torch.randint(0, 10, (2, 3, 4), generator=torch.Generator().manual_seed(1))
    full = layout.flatten(codes)
    assert torch.equal(layout.prompt_tokens(codes[:, :, :2]), full[:, :6])  # first 2 frames
    assert torch.equal(layout.prompt_tokens(full[:, :5]), full[:, :5])  # tokens as they are
    tokens, known = layout.known_tokens(codes[:, :, :1])
    assert known.tolist() == [True] * 3 + [False] * 9
    assert torch.equal(tokens[:, :3], full[:, :3]) and (tokens[:, 3:] == -1).all()
    with pytest.raises(ShapeError, match=r"n<=4.*\[1, 3, 5\]"):
        layout.prompt_tokens(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"\[1, 2, 2\]"):
        layout.prompt_tokens(torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"\[0, 10\).*\[10, 10\]"):
        layout.prompt_tokens(torch.full((1, 3, 1), 10))


# ------------------------------------------------------------------ delay


def test_delay_layout_matches_hand_written_pattern():
    """K = 3 levels, T = 4 frames: 6 steps of 3 streams, stream k delayed by k steps."""
    layout = build_layout("delay", [3, 4], 10)
    assert isinstance(layout, DelayLayout)
    assert (layout.streams, layout.steps, layout.length) == (3, 6, 18)
    assert (layout.pad_id, layout.num_code_tokens, layout.codes_per_item, layout.time_axis) == (30, 31, 12, 1)
    codes = torch.tensor([[[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 1, 2]]])
    P = 30
    by_step = [  # step s: [level 0, level 1, level 2] = frames s, s-1, s-2 (+ 10 k), pads outside [0, 4)
        [1, P, P],
        [2, 15, P],
        [3, 16, 29],
        [4, 17, 20],
        [P, 18, 21],
        [P, P, 22],
    ]
    tokens = layout.flatten(codes)
    assert tokens.view(6, 3).tolist() == by_step
    assert torch.equal(layout.unflatten(tokens), codes)
    pad = (tokens[0] == P).tolist()
    assert layout.fixed_tokens().tolist() == [P if p else -1 for p in pad]
    assert [layout.frame_of(p) for p in (0, 1, 3, 4, 8, 12, 17)] == [
        (0, 0),
        (1, None),
        (0, 1),
        (1, 0),
        (2, 0),
        (0, None),
        (2, 3),
    ]
    for position in range(18):
        level = position % 3
        expected = (P, P + 1) if pad[position] else (10 * level, 10 * level + 10)
        assert layout.code_range(position) == expected
    assert layout.code_ranges().tolist() == [list(layout.code_range(p)) for p in range(18)]
    assert layout.uniform_range() is None
    with pytest.raises(ConfigError, match="18"):
        layout.code_range(18)


@pytest.mark.parametrize("grid", [[1, 5], [2, 1], [4, 7]])
def test_delay_layout_round_trip(grid):
    layout = DelayLayout(grid, 8)
    codes = torch.randint(0, 8, (3, *grid), generator=torch.Generator().manual_seed(2))
    tokens = layout.flatten(codes)
    assert tokens.shape == (3, (grid[1] + grid[0] - 1) * grid[0])
    ranges = layout.code_ranges()
    assert ((tokens >= ranges[:, 0]) & (tokens < ranges[:, 1])).all()
    assert torch.equal(layout.unflatten(tokens), codes)
    assert int((tokens[0] != layout.pad_id).sum()) == codes[0].numel()


def test_delay_layout_prompt_of_leading_frames():
    layout = DelayLayout([3, 4], 10)
    codes = torch.tensor([[[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 1, 2]]])
    tokens, known = layout.known_tokens(codes[:, :, :2])  # frames 0 and 1 of every level
    P = 30
    assert tokens.view(6, 3).tolist() == [
        [1, P, P],
        [2, 15, P],
        [-1, 16, 29],
        [-1, -1, 20],
        [-1] * 3,
        [-1] * 3,
    ]
    assert torch.equal(known, tokens[0] != -1)
    # the leading block of completely known steps
    assert layout.prompt_tokens(codes[:, :, :2]).tolist() == [[1, P, P, 2, 15, P]]
    # tokens in sequence order are taken as they are
    full = layout.flatten(codes)
    assert torch.equal(layout.prompt_tokens(full[:, :7]), full[:, :7])
    assert layout.known_tokens(full[:, :7])[1].tolist() == [True] * 7 + [False] * 11
    with pytest.raises(ShapeError, match=r"n<=4.*\[1, 3, 5\]"):
        layout.known_tokens(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"P<=18.*\[1, 19\]"):
        layout.known_tokens(torch.zeros(1, 19, dtype=torch.long))
    with pytest.raises(ConfigError, match="-1"):
        layout.known_tokens(torch.full((1, 3, 1), -1))


def test_level_layouts_refuse_bad_grids():
    with pytest.raises(ConfigError, match=r"flatten.*\[5\]"):
        FlattenLayout([5], 8)
    with pytest.raises(ConfigError, match=r"delay.*\(levels, frames\).*\[2, 3, 4\]"):
        DelayLayout([2, 3, 4], 8)
    with pytest.raises(ConfigError, match="codebook_size"):
        DelayLayout([2, 3], 0)


@pytest.mark.parametrize("name", ["flatten", "delay"])
def test_level_layouts_refuse_bad_codes_and_tokens(name):
    layout = build_layout(name, [3, 4], 10)
    with pytest.raises(ShapeError, match=r"\[B, 3, 4\].*\[2, 4, 3\]"):
        layout.flatten(torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match="float32"):
        layout.flatten(torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match=rf"\[B, {layout.length}\]"):
        layout.unflatten(torch.zeros(2, layout.length + 1, dtype=torch.long))


# ------------------------------------------------------------------ shorter clips


@pytest.mark.parametrize(
    ("name", "grid", "axis"),
    [
        ("raster", [5, 2, 3], 0),
        ("raster", [5, 4], 0),
        ("flatten", [3, 5], 1),
        ("flatten", [2, 5, 2], 1),
        ("delay", [3, 5], 1),
    ],
)
def test_with_time_steps_reads_the_start_of_the_full_sequence(name, grid, axis):
    layout = build_layout(name, grid, 8)
    assert layout.time_axis == axis and layout.time_steps == grid[axis]
    codes = torch.randint(0, 8, (2, *grid), generator=torch.Generator().manual_seed(3))
    full = layout.flatten(codes)
    for n in range(1, grid[axis] + 1):
        short = layout.with_time_steps(n)
        assert type(short) is type(layout) and short.time_steps == n
        assert short.grid == tuple(n if i == axis else g for i, g in enumerate(grid))
        cut = codes.narrow(axis + 1, 0, n)
        assert torch.equal(short.unflatten(full[:, : short.length]), cut)
        if name == "delay":
            assert short.steps == n + grid[0] - 1
        else:  # a true prefix of the sequence
            assert torch.equal(short.flatten(cut), full[:, : short.length])
    assert layout.with_time_steps(grid[axis]) is layout


@pytest.mark.parametrize("n", [0, 6, -1, 2.0, True])
def test_with_time_steps_out_of_range(n):
    layout = DelayLayout([3, 5], 8)
    with pytest.raises(ConfigError, match=rf"\[1, 5\].*got {n!r}"):
        layout.with_time_steps(n)
