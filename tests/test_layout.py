"""RasterLayout: codes grid <-> token sequence, code ranges, prefixes and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.layout import LAYOUTS, CodeLayout, RasterLayout, build_layout, register_layout


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
    assert layout.vocab_size_codes == 16
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


def test_prefix_tokens_sequence_form():
    layout = RasterLayout([3, 4], 16)
    prefix = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], dtype=torch.int32)
    tokens = layout.prefix_tokens(prefix)
    assert tokens.dtype == torch.long
    assert tokens.tolist() == prefix.tolist()
    # empty and full prefixes are fine
    assert layout.prefix_tokens(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0)
    full = torch.arange(12).reshape(1, 12)
    assert torch.equal(layout.prefix_tokens(full), full)


def test_prefix_tokens_top_rows_block():
    layout = RasterLayout([3, 4], 16)
    block = torch.arange(8).reshape(1, 2, 4)  # the top 2 rows of a 3x4 grid
    tokens = layout.prefix_tokens(block)
    assert tokens.shape == (1, 8)
    assert tokens[0].tolist() == list(range(8))
    # the top rows of a full grid agree with the flattened grid
    codes = torch.randint(0, 16, (2, 3, 4))
    assert torch.equal(layout.prefix_tokens(codes[:, :1]), layout.flatten(codes)[:, :4])
    assert torch.equal(layout.prefix_tokens(codes), layout.flatten(codes))


@pytest.mark.parametrize(
    "shape",
    [(1, 13), (1, 4, 4), (1, 2, 3), (1, 2, 4, 1), (12,)],
)
def test_prefix_tokens_bad_shapes(shape):
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=str(list(shape)).replace("[", r"\[").replace("]", r"\]")):
        layout.prefix_tokens(torch.zeros(shape, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_prefix_tokens_bad_dtype(dtype):
    layout = RasterLayout([3, 4], 16)
    with pytest.raises(ShapeError, match=str(dtype)):
        layout.prefix_tokens(torch.zeros(1, 2, dtype=dtype))
    with pytest.raises(ShapeError, match="list"):
        layout.prefix_tokens([[1, 2]])


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
