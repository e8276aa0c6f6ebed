"""How a tokenizer's code grid becomes a 1-D token sequence for the prior, and back.

A layout owns the facts the prior and the sampler rely on:

* ``length``: how many token positions one item becomes;
* ``num_code_tokens``: the size of the code part of the prior's vocabulary (token ids ``[0, num_code_tokens)``);
* ``code_range(position)``: which token ids are legal at each sequence position;
* ``streams``: how many consecutive positions form one transformer step. Their token embeddings are summed
  into one input vector and all of them are predicted from the same hidden state (1 for ``raster`` and
  ``flatten``; ``K`` for MusicGen's ``delay`` pattern). ``steps = length // streams``;
* ``fixed_tokens()``: positions that hold a filler token instead of a code (the delay pattern's pads); they
  are never sampled and never count in the loss;
* ``time_axis`` and ``with_time_steps(n)``: the grid axis that is time, and the layout of a clip cut to its
  first ``n`` time steps. Its sequence agrees with this layout's first ``short.length`` positions at every
  code position of the short layout, so sampling those positions of the full layout and reading them with
  the short layout gives the first ``n`` time steps of a full-length sample.

Layouts (``LAYOUTS``):

* ``raster``: row-major over the whole grid, one shared vocabulary ``[0, codebook_size)``;
* ``flatten``: grid ``(K, T, ...)`` of residual levels; frame-major, level-minor, level ``k`` with its own
  vocabulary range ``[k * codebook_size, (k + 1) * codebook_size)``;
* ``delay``: grid ``(K, T)``; MusicGen's delay pattern: ``T + K - 1`` steps of ``K`` streams, stream ``k``
  delayed by ``k`` steps, pads where a stream is outside the clip.

Further layouts (coarse-to-fine multi-scale grids, ...) are subclasses of ``CodeLayout`` registered with
``register_layout``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vqgen.errors import ConfigError, ShapeError

__all__ = [
    "CodeLayout",
    "RasterLayout",
    "FlattenLayout",
    "DelayLayout",
    "LAYOUTS",
    "build_layout",
    "register_layout",
]


def _check_grid(grid: Sequence[int]) -> tuple[int, ...]:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) == 0:
        raise ConfigError(f"code grid must be a non-empty sequence of positive ints, got {grid!r}")
    out = []
    for size in grid:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"code grid must be a non-empty sequence of positive ints, got {list(grid)!r}")
        out.append(int(size))
    return tuple(out)


def _check_codebook_size(codebook_size: int) -> int:
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or codebook_size < 1:
        raise ConfigError(f"codebook_size must be a positive int, got {codebook_size!r}")
    return int(codebook_size)


def _check_integer_tensor(value: object, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise ShapeError(f"{name} must be a LongTensor, got {type(value).__name__}")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise ShapeError(f"{name} must have an integer dtype, got {value.dtype}")


def _check_tokens(tokens: object, length: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != length:
        shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ShapeError(f"tokens must have shape [B, {length}], got {shape}")


class CodeLayout:
    """Base class: maps codes ``[B, *grid]`` to tokens ``[B, length]`` and back.

    Subclasses set ``grid``, ``codebook_size``, ``length`` and ``num_code_tokens`` (and ``streams``,
    ``time_axis`` where they differ from 1 and 0), take ``(grid, codebook_size)`` in their constructor, and
    implement ``flatten``, ``unflatten``, ``code_range`` and ``prompt_tokens``.
    """

    name: str = ""
    grid: tuple[int, ...]
    codebook_size: int
    length: int
    num_code_tokens: int
    #: Positions per transformer step (their embeddings are summed; one hidden state predicts all of them).
    streams: int = 1
    #: The grid axis that is time (``with_time_steps`` cuts it).
    time_axis: int = 0

    @property
    def steps(self) -> int:
        """Transformer steps one item takes: ``length // streams``."""
        return self.length // self.streams

    @property
    def codes_per_item(self) -> int:
        """Codes per item, ``prod(grid)`` (``length`` minus the filler positions)."""
        return math.prod(self.grid)

    @property
    def time_steps(self) -> int:
        """Size of the time axis, ``grid[time_axis]``."""
        return self.grid[self.time_axis]

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, *grid]`` -> token ids ``[B, length]`` in ``[0, num_code_tokens)``."""
        raise NotImplementedError

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B, length]`` -> codes ``[B, *grid]`` (filler positions are not read)."""
        raise NotImplementedError

    def code_range(self, position: int) -> tuple[int, int]:
        """Half-open range ``(lo, hi)`` of token ids allowed at sequence position ``position``."""
        raise NotImplementedError

    def prompt_tokens(self, prompt: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> token ids ``[B, P]`` for the first ``P`` sequence positions."""
        raise NotImplementedError

    def known_tokens(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Known leading codes -> ``(tokens [B, length], known [length] bool)``.

        ``tokens`` holds the known token ids where ``known`` is True and -1 elsewhere. The default is the
        contiguous block of ``prompt_tokens``; layouts whose known positions are not one leading block (the
        delay pattern) override it.
        """
        head = self.prompt_tokens(prompt)
        tokens = torch.full((head.shape[0], self.length), -1, dtype=torch.long, device=head.device)
        tokens[:, : head.shape[1]] = head
        known = torch.arange(self.length, device=head.device) < head.shape[1]
        return tokens, known

    def fixed_tokens(self) -> torch.Tensor | None:
        """LongTensor ``[length]``: the filler token id at positions that hold no code, -1 at code positions.

        None when every position is a code (the default).
        """
        return None

    def code_ranges(self) -> torch.Tensor:
        """All ranges at once: LongTensor ``[length, 2]`` of ``(lo, hi)`` per position."""
        return torch.tensor([self.code_range(p) for p in range(self.length)], dtype=torch.long)

    def token_levels(self) -> torch.Tensor | None:
        """LongTensor ``[num_code_tokens]``: the residual code level of each token id, or None when the ids do
        not tell the levels apart (one shared vocabulary, or no levels)."""
        return None

    def uniform_range(self) -> tuple[int, int] | None:
        """The range shared by every position, or None when positions differ (the caller must mask)."""
        first = self.code_range(0)
        if all(self.code_range(p) == first for p in range(1, self.length)):
            return first
        return None

    def with_time_steps(self, time_steps: int) -> CodeLayout:
        """The same layout for the grid with its time axis cut to ``time_steps`` (``1 <= time_steps <= T``)."""
        full = self.time_steps
        if isinstance(time_steps, bool) or not isinstance(time_steps, int) or not 1 <= time_steps <= full:
            raise ConfigError(
                f"time_steps must be an int in [1, {full}] (grid axis {self.time_axis} of {list(self.grid)}), "
                f"got {time_steps!r}"
            )
        if time_steps == full:
            return self
        grid = list(self.grid)
        grid[self.time_axis] = time_steps
        return type(self)(grid, self.codebook_size)

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

    def check_code_values(self, codes: torch.Tensor, name: str = "codes") -> None:
        """Raise ConfigError unless every value of ``codes`` lies in ``[0, codebook_size)``."""
        if codes.numel():
            lo, hi = int(codes.min()), int(codes.max())
            if lo < 0 or hi >= self.codebook_size:
                raise ConfigError(f"{name} must lie in [0, {self.codebook_size}), got values in [{lo}, {hi}]")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grid={self.grid}, codebook_size={self.codebook_size})"


class RasterLayout(CodeLayout):
    """Row-major order over the whole grid, one shared code vocabulary ``[0, codebook_size)``.

    For an image grid ``(h, w)`` the sequence reads row by row; for a video grid ``(t, h, w)`` frame by frame
    (time axis 0, so a shorter clip is a prefix of the sequence); for a residual grid ``(L, h, w)`` it reads
    level 0 completely, then level 1, ... (with one shared vocabulary, so the prior must infer the level from
    the position).
    """

    name = "raster"

    def __init__(self, grid: Sequence[int], codebook_size: int) -> None:
        self.grid = _check_grid(grid)
        self.codebook_size = _check_codebook_size(codebook_size)
        self.length = math.prod(self.grid)
        self.num_code_tokens = self.codebook_size

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, *grid]`` -> tokens ``[B, length]`` (row-major; token id == code)."""
        self.check_codes(codes)
        return codes.reshape(codes.shape[0], self.length).long()

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, length]`` -> codes ``[B, *grid]``."""
        _check_tokens(tokens, self.length)
        return tokens.reshape(tokens.shape[0], *self.grid)

    def code_range(self, position: int) -> tuple[int, int]:
        """``(0, codebook_size)`` at every position ``0 <= position < length``."""
        if not 0 <= position < self.length:
            raise ConfigError(f"position must be in [0, {self.length}), got {position}")
        return (0, self.codebook_size)

    def prompt_tokens(self, prompt: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> tokens ``[B, P]``.

        ``prompt`` is either ``[B, P]`` codes in sequence order, or a leading block of the grid
        ``[B, n0, *grid[1:]]`` with ``n0 <= grid[0]`` (e.g. the top rows of an image).
        """
        _check_integer_tensor(prompt, "prompt")
        grid_block = prompt.dim() == len(self.grid) + 1 and tuple(prompt.shape[2:]) == self.grid[1:]
        if prompt.dim() == 2 and prompt.shape[1] <= self.length:
            tokens = prompt
        elif grid_block and prompt.shape[1] <= self.grid[0]:
            tokens = prompt.reshape(prompt.shape[0], -1)
        else:
            tail = ", ".join(map(str, self.grid[1:]))
            raise ShapeError(
                f"prompt must have shape [B, P<={self.length}] or [B, n<={self.grid[0]}{', ' + tail if tail else ''}], "
                f"got {list(prompt.shape)}"
            )
        return tokens.long()


class _LevelLayout(CodeLayout):
    """Shared parts of the layouts over a residual grid ``(K, T, ...)`` with one vocabulary range per level."""

    time_axis = 1
    min_dims = 2
    max_dims: int | None = None

    def __init__(self, grid: Sequence[int], codebook_size: int) -> None:
        self.grid = _check_grid(grid)
        self.codebook_size = _check_codebook_size(codebook_size)
        if len(self.grid) < self.min_dims or (self.max_dims is not None and len(self.grid) > self.max_dims):
            shape = "(levels, frames)" if self.max_dims == 2 else "(levels, frames, ...)"
            raise ConfigError(f"the {self.name} layout needs a code grid {shape}, got {list(self.grid)}")
        self.levels = self.grid[0]
        self.frames = math.prod(self.grid[1:])

    def token_levels(self) -> torch.Tensor:
        """Level ``k`` owns the ids ``[k * codebook_size, (k + 1) * codebook_size)``; an id past the last level
        (a filler such as the delay pad, never drawn) reads as the last level."""
        ids = torch.arange(self.num_code_tokens)
        return ids.div(self.codebook_size, rounding_mode="floor").clamp(max=self.levels - 1)

    def _frame_block(self, prompt: torch.Tensor) -> bool:
        """True when ``prompt`` is a block of leading frames ``[B, K, n, *grid[2:]]`` (checked for size)."""
        _check_integer_tensor(prompt, "prompt")
        block = (
            prompt.dim() == len(self.grid) + 1
            and prompt.shape[1] == self.levels
            and tuple(prompt.shape[3:]) == self.grid[2:]
        )
        if block and prompt.shape[2] <= self.grid[1]:
            self.check_code_values(prompt, "prompt codes")
            return True
        if prompt.dim() == 2 and prompt.shape[1] <= self.length:
            return False
        tail = "".join(f", {size}" for size in self.grid[2:])
        raise ShapeError(
            f"prompt must have shape [B, {self.levels}, n<={self.grid[1]}{tail}] (leading frames) or "
            f"[B, P<={self.length}] (tokens), got {list(prompt.shape)}"
        )


class FlattenLayout(_LevelLayout):
    """Residual levels flattened frame by frame: grid ``(K, T, ...)``, one vocabulary range per level.

    The sequence reads frame 0 levels ``0..K-1``, frame 1 levels ``0..K-1``, ... (frames row-major over
    ``grid[1:]``); level ``k`` uses token ids ``[k * codebook_size, (k + 1) * codebook_size)``, so
    ``num_code_tokens = K * codebook_size`` and position ``p`` holds level ``p % K``. Time is axis 1; a shorter
    clip is a prefix of the sequence.
    """

    name = "flatten"

    def __init__(self, grid: Sequence[int], codebook_size: int) -> None:
        super().__init__(grid, codebook_size)
        self.length = self.levels * self.frames
        self.num_code_tokens = self.levels * self.codebook_size

    def _offsets(self, device: torch.device) -> torch.Tensor:
        return torch.arange(self.levels, device=device) * self.codebook_size

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, T, ...]`` -> tokens ``[B, K * T * ...]``: ``token[t * K + k] = k * codebook_size + code[k, t]``."""
        self.check_codes(codes)
        frames = codes.reshape(codes.shape[0], self.levels, self.frames).long().transpose(1, 2)
        return (frames + self._offsets(codes.device)).reshape(codes.shape[0], self.length)

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, length]`` -> codes ``[B, K, T, ...]``."""
        _check_tokens(tokens, self.length)
        frames = tokens.reshape(tokens.shape[0], self.frames, self.levels) - self._offsets(tokens.device)
        return frames.transpose(1, 2).reshape(tokens.shape[0], *self.grid)

    def code_range(self, position: int) -> tuple[int, int]:
        """Level ``k = position % K``: ``(k * codebook_size, (k + 1) * codebook_size)``."""
        if not 0 <= position < self.length:
            raise ConfigError(f"position must be in [0, {self.length}), got {position}")
        level = position % self.levels
        return (level * self.codebook_size, (level + 1) * self.codebook_size)

    def code_ranges(self) -> torch.Tensor:
        lo = (torch.arange(self.length) % self.levels) * self.codebook_size
        return torch.stack([lo, lo + self.codebook_size], dim=1)

    def uniform_range(self) -> tuple[int, int] | None:
        return (0, self.codebook_size) if self.levels == 1 else None

    def prompt_tokens(self, prompt: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> tokens ``[B, P]``.

        ``prompt`` is either the codes of the first ``n`` frames ``[B, K, n, *grid[2:]]`` (``P = n * K``), or
        ``[B, P]`` token ids in sequence order (level offsets included).
        """
        if not self._frame_block(prompt):
            return prompt.long()
        batch = prompt.shape[0]
        frames = prompt.reshape(batch, self.levels, -1).long().transpose(1, 2)
        return (frames + self._offsets(prompt.device)).reshape(batch, -1)


class DelayLayout(_LevelLayout):
    """MusicGen's delay pattern over a residual grid ``(K, T)``: ``K`` streams, stream ``k`` delayed by ``k``.

    There are ``T + K - 1`` steps of ``K`` positions each (``streams = K``, ``length = (T + K - 1) * K``).
    Position ``s * K + k`` (step ``s``, level ``k``) holds frame ``t = s - k`` of level ``k`` as token id
    ``k * codebook_size + code[k, t]`` when ``0 <= t < T``, else the pad id ``K * codebook_size``
    (``num_code_tokens = K * codebook_size + 1``). The prior sums the ``K`` embeddings of a step into one
    input and predicts the ``K`` tokens of the next step from one hidden state, one head (range) per level.
    For example ``K = 3, T = 4`` (``P`` = pad, ``ab`` = level ``a`` frame ``b``)::

        step     0   1   2   3   4   5
        level 0  00  01  02  03  P   P
        level 1  P   10  11  12  13  P
        level 2  P   P   20  21  22  23
    """

    name = "delay"
    max_dims = 2

    def __init__(self, grid: Sequence[int], codebook_size: int) -> None:
        super().__init__(grid, codebook_size)
        self.streams = self.levels
        self.length = (self.frames + self.levels - 1) * self.levels
        self.pad_id = self.levels * self.codebook_size
        self.num_code_tokens = self.pad_id + 1
        position = torch.arange(self.length)
        self._level = position % self.levels
        self._frame = position // self.levels - self._level
        self._is_code = (self._frame >= 0) & (self._frame < self.frames)
        # Where each code (k, t) sits in the sequence: position (t + k) * K + k, in the order of codes.flatten.
        levels = torch.arange(self.levels).unsqueeze(1)
        self._code_position = ((torch.arange(self.frames) + levels) * self.levels + levels).reshape(-1)

    def frame_of(self, position: int) -> tuple[int, int | None]:
        """``(level, frame)`` held at ``position``; frame None at a pad."""
        if not 0 <= position < self.length:
            raise ConfigError(f"position must be in [0, {self.length}), got {position}")
        level = position % self.levels
        frame = position // self.levels - level
        return level, frame if 0 <= frame < self.frames else None

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, T]`` -> tokens ``[B, (T + K - 1) * K]`` in the delay pattern (pads included)."""
        self.check_codes(codes)
        batch = codes.shape[0]
        tokens = torch.full((batch, self.length), self.pad_id, dtype=torch.long, device=codes.device)
        offsets = (torch.arange(self.levels, device=codes.device) * self.codebook_size).unsqueeze(1)
        values = (codes.long() + offsets).reshape(batch, -1)
        tokens[:, self._code_position.to(codes.device)] = values
        return tokens

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, (T + K - 1) * K]`` -> codes ``[B, K, T]`` (pad positions are not read)."""
        _check_tokens(tokens, self.length)
        batch = tokens.shape[0]
        values = tokens[:, self._code_position.to(tokens.device)].reshape(batch, self.levels, self.frames)
        offsets = (torch.arange(self.levels, device=tokens.device) * self.codebook_size).unsqueeze(1)
        return values - offsets

    def code_range(self, position: int) -> tuple[int, int]:
        """Level ``k``'s range at a code position, ``(pad_id, pad_id + 1)`` at a pad."""
        level, frame = self.frame_of(position)
        if frame is None:
            return (self.pad_id, self.pad_id + 1)
        return (level * self.codebook_size, (level + 1) * self.codebook_size)

    def code_ranges(self) -> torch.Tensor:
        lo = torch.where(self._is_code, self._level * self.codebook_size, self.pad_id)
        hi = torch.where(self._is_code, lo + self.codebook_size, self.pad_id + 1)
        return torch.stack([lo, hi], dim=1)

    def uniform_range(self) -> tuple[int, int] | None:
        return None

    def fixed_tokens(self) -> torch.Tensor:
        """The pad id at pad positions, -1 at code positions."""
        return torch.where(self._is_code, -1, self.pad_id)

    def prompt_tokens(self, prompt: torch.Tensor) -> torch.Tensor:
        """Known leading codes -> tokens ``[B, P]`` of the leading steps that are completely known.

        ``prompt`` is either the codes of the first ``n`` frames ``[B, K, n]`` (``P = n * K``: steps
        ``0 .. n-1``; the later levels of those frames, in steps ``n .. n+K-2``, come from ``known_tokens``),
        or ``[B, P]`` token ids in sequence order (level offsets and pads included).
        """
        tokens, known = self.known_tokens(prompt)
        unknown = (~known).nonzero()
        return tokens[:, : int(unknown[0]) if len(unknown) else self.length]

    def known_tokens(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens [B, length], known [length])`` for leading frames ``[B, K, n]`` or tokens ``[B, P]``.

        For frames, every position of frames ``< n`` is known and so is every leading pad (steps before a
        level starts); the pads after the clip are not (they are ``fixed_tokens``).
        """
        if not self._frame_block(prompt):
            return self._token_prompt(prompt.long())
        batch, n = prompt.shape[0], prompt.shape[2]
        device = prompt.device
        tokens = torch.full((batch, self.length), -1, dtype=torch.long, device=device)
        known = (self._frame < n).to(device)  # leading pads have frame < 0
        offsets = (torch.arange(self.levels, device=device) * self.codebook_size).unsqueeze(1)
        positions = self._code_position.view(self.levels, self.frames)[:, :n].reshape(-1).to(device)
        tokens[:, positions] = (prompt.long() + offsets).reshape(batch, -1)
        tokens[:, known & ~self._is_code.to(device)] = self.pad_id
        return tokens, known

    def _token_prompt(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.full((prompt.shape[0], self.length), -1, dtype=torch.long, device=prompt.device)
        tokens[:, : prompt.shape[1]] = prompt
        return tokens, torch.arange(self.length, device=prompt.device) < prompt.shape[1]


LAYOUTS: dict[str, type[CodeLayout]] = {
    "raster": RasterLayout,
    "flatten": FlattenLayout,
    "delay": DelayLayout,
}


def register_layout(name: str, cls: type[CodeLayout]) -> None:
    """Make ``cls`` available to ``build_layout(name, ...)`` and hence to ``CodePrior(layout=name)``."""
    if not isinstance(cls, type) or not issubclass(cls, CodeLayout):
        raise ConfigError(f"layout class must subclass CodeLayout, got {cls!r}")
    LAYOUTS[name] = cls


def build_layout(name: str, grid: Sequence[int], codebook_size: int) -> CodeLayout:
    """Instantiate the layout registered as ``name`` for this grid and codebook size."""
    if name not in LAYOUTS:
        raise ConfigError(f"unknown layout {name!r}; choose one of {sorted(LAYOUTS)}")
    return LAYOUTS[name](grid, codebook_size)
