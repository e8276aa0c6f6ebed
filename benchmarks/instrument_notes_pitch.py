"""How often YIN's f0 (``vqgen.evaluation.pitch.estimate_f0``) agrees with the MIDI pitch of rendered notes,
per family: whether the pitch-kept metric means anything for that family.

Reads a build of ``vqgen data build instrument-notes`` (both splits), estimates the f0 of every note and
reports per family the share within 50 cents of the labelled pitch, the share an octave off (within 50 cents
of +-12 semitones), the share unvoiced (NaN), and the estimator's time. "kept by a mild codec" is
``pitch_kept(note, degraded note)`` over the voiced notes, the degradation a 4 kHz low-pass (resampled to
8 kHz and back) plus white noise 30 dB below the note's RMS (seeded): how stable the metric is where the
label and the estimate disagree (sub-octave organ stops) or agree. ``--per-program`` adds the programs
below 80% agreement.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/instrument_notes_pitch.py --root /tmp/notes16k
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from vqgen.data.instrument_notes import INSTRUMENT_FAMILIES, load_instrument_notes_metadata  # noqa: E402
from vqgen.evaluation.pitch import cents_between, estimate_f0, hz_to_midi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="an instrument-notes build")
    parser.add_argument("--tolerance-cents", type=float, default=50.0)
    parser.add_argument("--per-program", action="store_true", help="also list programs below 80%% agreement")
    args = parser.parse_args()

    rows = load_instrument_notes_metadata(args.root)
    rates = {soundfile.info(str(Path(args.root) / rows[0]["file"])).samplerate}
    audio = torch.stack(
        [torch.from_numpy(soundfile.read(str(Path(args.root) / r["file"]), dtype="float32")[0]) for r in rows]
    )
    rate = rates.pop()
    start = time.perf_counter()
    f0 = estimate_f0(audio, rate)
    seconds = time.perf_counter() - start
    error = (hz_to_midi(f0.double()) - torch.tensor([r["pitch"] for r in rows], dtype=torch.float64)) * 100
    error = error.numpy()
    import torchaudio

    generator = torch.Generator().manual_seed(0)
    degraded = torchaudio.functional.resample(
        torchaudio.functional.resample(audio, rate, rate // 2), rate // 2, rate
    )
    rms = audio.pow(2).mean(-1, keepdim=True).sqrt()
    degraded = degraded + rms * 10 ** (-30 / 20) * torch.randn(audio.shape, generator=generator)
    stable = (
        cents_between(f0.double(), estimate_f0(degraded, rate).double()).abs() <= args.tolerance_cents
    ).numpy()
    voiced = torch.isfinite(f0).numpy()
    tol = args.tolerance_cents
    kept = np.abs(error) <= tol
    octave = (np.abs(error - 1200) <= tol) | (np.abs(error + 1200) <= tol)
    unvoiced = np.isnan(error)

    table, payload = [], {}
    families = np.array([r["family"] for r in rows])
    for family in INSTRUMENT_FAMILIES:
        m = families == family
        share = {
            "notes": int(m.sum()),
            "within": float(kept[m].mean()),
            "octave_off": float(octave[m].mean()),
            "unvoiced": float(unvoiced[m].mean()),
            "median_abs_cents": float(np.nanmedian(np.abs(error[m & kept]))) if (m & kept).any() else None,
            "kept_by_codec": float(stable[m & voiced].mean()) if (m & voiced).any() else None,
        }
        payload[family] = share
        table.append(
            [
                family,
                share["notes"],
                f"{100 * share['within']:.1f}%",
                f"{100 * share['octave_off']:.1f}%",
                f"{100 * share['unvoiced']:.1f}%",
                f"{share['median_abs_cents']:.1f}" if share["median_abs_cents"] is not None else "-",
                f"{100 * share['kept_by_codec']:.1f}%" if share["kept_by_codec"] is not None else "-",
            ]
        )
    table.append(["all", len(rows), f"{100 * kept.mean():.1f}%", f"{100 * octave.mean():.1f}%",
                  f"{100 * unvoiced.mean():.1f}%", f"{np.nanmedian(np.abs(error[kept])):.1f}",
                  f"{100 * stable[voiced].mean():.1f}%"])  # fmt: skip
    print_table(
        f"f0 within {tol:g} cents of the MIDI pitch ({len(rows)} notes, {rate} Hz; estimate_f0 took {seconds:.1f} s)",
        [
            "family",
            "notes",
            "within",
            "octave off",
            "unvoiced",
            "median |cents| (kept)",
            "kept by a mild codec",
        ],
        table,
    )
    programs = {}
    for program in sorted({r["program"] for r in rows}):
        m = np.array([r["program"] == program for r in rows])
        name = next(r["program_name"] for r in rows if r["program"] == program)
        programs[program] = {
            "name": name,
            "within": float(kept[m].mean()),
            "octave_off": float(octave[m].mean()),
        }
    if args.per_program:
        weak = [
            [p, v["name"], f"{100 * v['within']:.0f}%", f"{100 * v['octave_off']:.0f}%"]
            for p, v in programs.items()
            if v["within"] < 0.8
        ]
        print_table("programs below 80% agreement", ["program", "name", "within", "octave off"], weak)
    write_json(
        "instrument_notes_pitch",
        {
            "root": args.root,
            "sample_rate": rate,
            "estimate_seconds": seconds,
            "families": payload,
            "programs": programs,
        },
    )


if __name__ == "__main__":
    main()
