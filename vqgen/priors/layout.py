"""How a tokenizer's code grid becomes a 1-D token sequence for the prior, and back.

A layout owns three facts the prior and the sampler rely on:

* ``length``: how many code tokens one item becomes;
* ``num_code_tokens``: the size of the code part of the prior's vocabulary (token ids ``[0, num_code_tokens)``);
* ``code_range(position)``: which token ids are legal at each sequence position.

Only ``RasterLayout`` exists today. Frame-major video, residual levels flattened with one vocabulary range per
level, MusicGen-style "delay" interleaving and coarse-to-fine multi-scale grids are further subclasses of
``CodeLayout`` registered with ``register_layout``; the prior and the sampler need no change for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vqgen.errors import ConfigError, ShapeError

__all__ = ["CodeLayout", "RasterLayout", "LAYOUTS", "build_layout", "register_layout"]


def _check_grid(grid: Sequence[int]) -> tuple[int, ...]:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) == 0:
        raise ConfigError(f"code grid must be a non-empty sequence of positive ints, got {grid!r}")
    out = []
    for size in grid:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"code grid must be a non-empty sequence of positive ints, got {list(grid)!r}")
        out.append(int(size))
    return tuple(out)


class CodeLayout:
    """Base class: maps codes ``[B, *grid]`` to tokens ``[B, length]`` and back.

    Subclasses set ``grid``, ``codebook_size``, ``length`` and ``num_code_tokens`` and implement
    ``flatten``, ``unflatten`` and ``code_range``.
    """

    name: str = ""
    grid: tuple[int, ...]
    codebook_size: int
    length: int
    num_code_tokens: int

    @property
    def vocab_size_codes(self) -> int:
        """Alias of ``num_code_tokens``: how many token ids the code part of the vocabulary spans."""
        return self.num_code_tokens

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, *grid]`` -> token ids ``[B, length]`` in ``[0, num_code_tokens)``."""
        raise NotImplementedError

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B, length]`` -> codes ``[B, *grid]``."""
        raise NotImplementedError

    def code_range(self, position: int) -> tuple[int, int]:
        """Half-open range ``(lo, hi)`` of token ids allowed at sequence position ``position``."""
        raise NotImplementedError

    def prefix_tokens(self, prefix: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> token ids ``[B, P]`` for the first ``P`` sequence positions."""
        raise NotImplementedError

    def code_ranges(self) -> torch.Tensor:
        """All ranges at once: LongTensor ``[length, 2]`` of ``(lo, hi)`` per position."""
        return torch.tensor([self.code_range(p) for p in range(self.length)], dtype=torch.long)

    def uniform_range(self) -> tuple[int, int] | None:
        """The range shared by every position, or None when positions differ (the caller must mask)."""
        first = self.code_range(0)
        if all(self.code_range(p) == first for p in range(1, self.length)):
            return first
        return None

    def check_codes(self, codes: torch.Tensor, name: str = "codes") -> None:
        """Raise ShapeError unless ``codes`` is an integer tensor ``[B, *grid]``."""
        if not isinstance(codes, torch.Tensor):
            raise ShapeError(
                f"{name} must be a torch.LongTensor [B, {', '.join(map(str, self.grid))}], got {type(codes).__name__}"
            )
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ShapeError(f"{name} must have an integer dtype, got {codes.dtype}")
        if codes.dim() != len(self.grid) + 1 or tuple(codes.shape[1:]) != self.grid:
            raise ShapeError(
                f"{name} must have shape [B, {', '.join(map(str, self.grid))}], got {list(codes.shape)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grid={self.grid}, codebook_size={self.codebook_size})"


class RasterLayout(CodeLayout):
    """Row-major order over the whole grid, one shared code vocabulary ``[0, codebook_size)``.

    For an image grid ``(h, w)`` the sequence reads row by row; for a residual grid ``(L, h, w)`` it reads
    level 0 completely, then level 1, ... (with one shared vocabulary, so the prior must infer the level from
    the position).
    """

    name = "raster"

    def __init__(self, grid: Sequence[int], codebook_size: int) -> None:
        self.grid = _check_grid(grid)
        if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or codebook_size < 1:
            raise ConfigError(f"codebook_size must be a positive int, got {codebook_size!r}")
        self.codebook_size = int(codebook_size)
        self.length = math.prod(self.grid)
        self.num_code_tokens = self.codebook_size

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, *grid]`` -> tokens ``[B, length]`` (row-major; token id == code)."""
        self.check_codes(codes)
        return codes.reshape(codes.shape[0], self.length).long()

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, length]`` -> codes ``[B, *grid]``."""
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != self.length:
            shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ShapeError(f"tokens must have shape [B, {self.length}], got {shape}")
        return tokens.reshape(tokens.shape[0], *self.grid)

    def code_range(self, position: int) -> tuple[int, int]:
        """``(0, codebook_size)`` at every position ``0 <= position < length``."""
        if not 0 <= position < self.length:
            raise ConfigError(f"position must be in [0, {self.length}), got {position}")
        return (0, self.codebook_size)

    def prefix_tokens(self, prefix: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> tokens ``[B, P]``.

        ``prefix`` is either ``[B, P]`` codes in sequence order, or a leading block of the grid
        ``[B, n0, *grid[1:]]`` with ``n0 <= grid[0]`` (e.g. the top rows of an image).
        """
        if not isinstance(prefix, torch.Tensor):
            raise ShapeError(f"prefix must be a LongTensor, got {type(prefix).__name__}")
        if prefix.dtype.is_floating_point or prefix.dtype.is_complex or prefix.dtype == torch.bool:
            raise ShapeError(f"prefix must have an integer dtype, got {prefix.dtype}")
        grid_block = prefix.dim() == len(self.grid) + 1 and tuple(prefix.shape[2:]) == self.grid[1:]
        if prefix.dim() == 2 and prefix.shape[1] <= self.length:
            tokens = prefix
        elif grid_block and prefix.shape[1] <= self.grid[0]:
            tokens = prefix.reshape(prefix.shape[0], -1)
        else:
            tail = ", ".join(map(str, self.grid[1:]))
            raise ShapeError(
                f"prefix must have shape [B, P<={self.length}] or [B, n<={self.grid[0]}{', ' + tail if tail else ''}], "
                f"got {list(prefix.shape)}"
            )
        return tokens.long()


LAYOUTS: dict[str, type[CodeLayout]] = {"raster": RasterLayout}


def register_layout(name: str, cls: type[CodeLayout]) -> None:
    """Make ``cls`` available to ``build_layout(name, ...)`` and hence to ``CodePrior(layout=name)``."""
    if not issubclass(cls, CodeLayout):
        raise ConfigError(f"layout class must subclass CodeLayout, got {cls!r}")
    LAYOUTS[name] = cls


def build_layout(name: str, grid: Sequence[int], codebook_size: int) -> CodeLayout:
    """Instantiate the layout registered as ``name`` for this grid and codebook size."""
    if name not in LAYOUTS:
        raise ConfigError(f"unknown layout {name!r}; choose one of {sorted(LAYOUTS)}")
    return LAYOUTS[name](grid, codebook_size)
