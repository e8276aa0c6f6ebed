"""What renders instrument notes: the :class:`NoteRenderer` protocol and :class:`SineRenderer`, a stand-in
for tests and dry runs (the real renderer is :class:`~vqgen.data.fluidsynth.FluidSynthRenderer`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

__all__ = ["NoteRenderer", "SineRenderer"]

_HELD_FRACTION = 0.75  # note-off after this share of the clip; the rest is the release


class NoteRenderer(Protocol):
    """Renders notes of one program: ``renderer(program, [(pitch, velocity), ...], sample_rate, seconds)``
    returns float32 ``[N, round(seconds * sample_rate)]`` (raw level, mono, held for ``held_seconds``);
    ``describe()`` returns a JSON-able dict for the manifest (what rendered the notes)."""

    def __call__(
        self, program: int, notes: Sequence[tuple[int, int]], sample_rate: int, seconds: float
    ) -> np.ndarray: ...

    def describe(self) -> dict: ...


class SineRenderer:
    """A stand-in for tests and dry runs: a sine at the note's equal-tempered frequency, amplitude
    ``0.5 velocity / 127``, 5 ms attack, decaying with time constant ``decay_seconds``, silent from the
    note-off plus 50 ms. ``silent``: ``(program, pitch)`` pairs rendered as zeros (to exercise dropping)."""

    def __init__(self, decay_seconds: float = 0.5, silent: Sequence[tuple[int, int]] = ()) -> None:
        self.decay_seconds = float(decay_seconds)
        self.silent = {(int(p), int(k)) for p, k in silent}

    def describe(self) -> dict:
        return {
            "renderer": "sine",
            "decay_seconds": self.decay_seconds,
            "silent": [list(p) for p in sorted(self.silent)],
        }

    def __call__(
        self, program: int, notes: Sequence[tuple[int, int]], sample_rate: int, seconds: float
    ) -> np.ndarray:
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        envelope = np.minimum(1.0, t / 0.005) * np.exp(-t / self.decay_seconds)
        envelope *= np.clip((_HELD_FRACTION * seconds + 0.05 - t) / 0.05, 0.0, 1.0)
        out = np.zeros((len(notes), t.size), dtype=np.float32)
        for i, (pitch, velocity) in enumerate(notes):
            if (int(program), int(pitch)) not in self.silent:
                frequency = 440.0 * 2.0 ** ((pitch - 69) / 12)
                out[i] = 0.5 * velocity / 127 * envelope * np.sin(2 * np.pi * frequency * t)
        return out
