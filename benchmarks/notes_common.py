"""Shared by the instrument-notes benchmarks (``notes_codec.py``, ``notes_sample_quality.py``): a split of an
instrument-notes build as tensors with its labels, a fingerprint of the build, and the pitch-kept count.

Not a benchmark itself. A build is what ``vqgen data build instrument-notes`` writes
(``vqgen.data.instrument_notes``): ``{train,test}/NN-family/*.wav``, ``metadata.csv`` (file, family, family_id,
program, pitch, velocity, ...) and ``manifest.json``; ``demo:instrument-notes`` names the default build. The
test split holds whole GM programs out (unseen instruments). :data:`UNPITCHED_FAMILIES` (percussive, sound
effects) have no musical pitch: they are left out of every pitch figure.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqgen.data.instrument_notes import (
    INSTRUMENT_FAMILIES,
    INSTRUMENT_NOTES_DEMO,
    UNPITCHED_FAMILIES,
    instrument_notes_root,
    load_instrument_notes_metadata,
)
from vqgen.evaluation.pitch import cents_between

DEFAULT_DATA = INSTRUMENT_NOTES_DEMO
TOLERANCE_CENTS = 50.0


def notes_root(spec: str | Path) -> Path:
    """``demo:instrument-notes`` (the default build) or a build folder -> the folder; a folder without
    ``metadata.csv`` stops the script with a one-line message."""
    root = instrument_notes_root() if str(spec) == INSTRUMENT_NOTES_DEMO else Path(spec)
    if not (root / "metadata.csv").is_file():
        raise SystemExit(
            f"'{root}' is not an instrument-notes build (no metadata.csv): vqgen data build instrument-notes"
        )
    return root


def data_fingerprint(root: str | Path) -> str:
    """A short hash of the build's ``manifest.json`` and ``metadata.csv`` (which notes, which split, how rendered)."""
    digest = hashlib.sha256()
    for name in ("manifest.json", "metadata.csv"):
        path = Path(root) / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def spread(total: int, count: int | None) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all when ``count`` is None or not smaller): the
    metadata is ordered by program, so every family keeps its share."""
    if count is None or count >= total:
        return list(range(total))
    if count < 1:
        raise SystemExit(f"need at least one note, got {count}")
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


@dataclass
class NotesSplit:
    """Notes of one split: ``audio`` float ``[N, 1, S]`` in [-1, 1] at ``sample_rate``, ``families`` ``[N]``
    (indices into ``INSTRUMENT_FAMILIES``, = the ``family_id`` column), ``pitches`` ``[N]`` (MIDI), ``pitched``
    ``[N]`` (bool: not an unpitched family), the metadata ``rows`` and their ``indices`` in the split."""

    audio: torch.Tensor
    families: torch.Tensor
    pitches: torch.Tensor
    pitched: torch.Tensor
    rows: list[dict]
    indices: list[int]
    sample_rate: int

    def __len__(self) -> int:
        return self.audio.shape[0]


def load_notes(root: str | Path, split: str, sample_rate: int, max_notes: int | None = None) -> NotesSplit:
    """The ``split`` of the build at ``root`` (``max_notes`` of it, spread evenly), mono, resampled to
    ``sample_rate``; every note is cut or zero-padded to the first note's length (a build's notes share one)."""
    from vqgen.media.audio import load_audio

    root = Path(root)
    rows = load_instrument_notes_metadata(root, split)
    if not rows:
        raise SystemExit(f"'{root}' has no {split} notes in metadata.csv")
    indices = spread(len(rows), max_notes)
    rows = [rows[i] for i in indices]
    waves = [torch.from_numpy(load_audio(root / r["file"], sample_rate, channels=1)[0]) for r in rows]
    length = waves[0].shape[-1]
    audio = torch.stack(
        [torch.nn.functional.pad(w[..., :length], (0, max(0, length - w.shape[-1]))) for w in waves]
    )
    families = torch.tensor([INSTRUMENT_FAMILIES.index(r["family"]) for r in rows], dtype=torch.long)
    pitches = torch.tensor([r["pitch"] for r in rows], dtype=torch.long)
    pitched = torch.tensor([r["family"] not in UNPITCHED_FAMILIES for r in rows], dtype=torch.bool)
    return NotesSplit(audio, families, pitches, pitched, rows, indices, int(sample_rate))


def count_pitch_kept(
    reference_f0: torch.Tensor,
    output_f0: torch.Tensor,
    pitched: torch.Tensor,
    tolerance_cents: float = TOLERANCE_CENTS,
) -> dict:
    """How many pitched notes' output f0 lies within ``tolerance_cents`` of the reference f0 (Hz, ``[N]`` each).

    Only ``pitched`` notes count. Of those, a note whose REFERENCE f0 is NaN (undetectable: the estimator
    heard no pitch in the input) is excluded and counted apart; an output f0 that is NaN (unvoiced output)
    counts as not kept. Returns ``{"pitched", "excluded_unvoiced_reference", "counted", "kept",
    "unvoiced_output", "share"}`` (``share = kept / counted``, NaN when nothing is counted) and ``"kept_mask"``
    (bool ``[N]``, False outside the counted notes) and ``"counted_mask"``.
    """
    reference = torch.as_tensor(reference_f0, dtype=torch.float64).cpu()
    output = torch.as_tensor(output_f0, dtype=torch.float64).cpu()
    pitched = torch.as_tensor(pitched, dtype=torch.bool).cpu()
    if not (reference.shape == output.shape == pitched.shape) or reference.dim() != 1:
        raise ValueError(
            f"reference_f0, output_f0 and pitched must be [N] alike, got {tuple(reference.shape)}, "
            f"{tuple(output.shape)}, {tuple(pitched.shape)}"
        )
    voiced_reference = torch.isfinite(reference) & (reference > 0)
    counted = pitched & voiced_reference
    kept = counted & (cents_between(reference, output).abs() <= float(tolerance_cents))
    n_counted = int(counted.sum())
    return {
        "pitched": int(pitched.sum()),
        "excluded_unvoiced_reference": int((pitched & ~voiced_reference).sum()),
        "counted": n_counted,
        "kept": int(kept.sum()),
        "unvoiced_output": int((counted & ~(torch.isfinite(output) & (output > 0))).sum()),
        "share": int(kept.sum()) / n_counted if n_counted else math.nan,
        "kept_mask": kept,
        "counted_mask": counted,
    }


def public(figures: dict) -> dict:
    """``figures`` without its tensor entries (the masks), for JSON."""
    return {k: v for k, v in figures.items() if not isinstance(v, torch.Tensor)}


def per_family(hits: torch.Tensor, families: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
    """``{family: {"notes", "share"}}`` of the bool ``hits [N]`` within ``mask`` (default all), for every
    family with at least one note there."""
    mask = torch.ones_like(hits, dtype=torch.bool) if mask is None else mask
    out = {}
    for index, family in enumerate(INSTRUMENT_FAMILIES):
        chosen = mask & (families == index)
        if chosen.any():
            out[family] = {"notes": int(chosen.sum()), "share": float(hits[chosen].double().mean())}
    return out


def percent(value: float | None) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"
    )
