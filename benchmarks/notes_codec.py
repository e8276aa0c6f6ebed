"""An audio tokenizer's reconstructions of instrument notes beside Opus at the same bitrates: spectral distances,
SI-SDR, pitch kept and family accuracy, on the held-out-program test split.

Command (a trained tokenizer; the whole test split, 952 one-second notes of 32 unseen GM programs)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/notes_codec.py --tokenizer runs/notes/tok

The codec that meets the targets is the parametric one with phase levels (``vqgen train-tokenizer --frontend
parametric-harmonic --num-levels 7 --phase-levels 4``, ``benchmarks/RESULTS.md``, "Instrument codec with phase
levels").

Smoke run: ``--max-clips 48`` (notes spread evenly over the split) and ``--output-name notes_codec_smoke``.

1. Data: the test split of an instrument-notes build (``--data``: ``demo:instrument-notes``, the default, or a
   build folder), mono, at the tokenizer's sample rate (``benchmarks/notes_common.py``).
2. Codecs, for each target bitrate (``--targets``, default 1.5 3 6 kbps), as in ``audio_codec.py`` (whose
   code this reuses): the tokenizer at the level count whose nominal bitrate is nearest on a log scale,
   ``decode(encode(x, num_levels=L))`` cropped and clamped; Opus (libopus through PyAV, else opus-tools) in
   CBR, VoIP mode, 20 ms frames at 16 kHz at the tokenizer's bitrate of that row (at least 500 b/s), its
   measured payload reported. Opus is documented from 6 kb/s up.
3. Figures per note, then mean ± standard error over notes (``vqgen.evaluation.audio``): log-mel L1
   distance, multi-resolution STFT distance, SI-SDR in dB (see ``audio_codec.py`` for their settings), and:
   - pitch kept: ``vqgen.evaluation.pitch.estimate_f0`` (YIN) of the INPUT note and of its reconstruction;
     the share of pitched notes (every family but percussive and sound effects) whose reconstruction's f0
     lies within ``--tolerance-cents`` (50) of the input's. Notes whose input f0 is undetectable (NaN) are
     excluded and counted; an unvoiced reconstruction counts as not kept
     (``notes_common.count_pitch_kept``);
   - family accuracy: the share of notes the family classifier (``notes_classifier.py``: MFCC + 1-D CNN,
     16 families, trained here on the build's TRAIN split; weights cached in
     ``benchmarks/out/notes_classifier.safetensors`` keyed by the settings and the build's manifest and
     metadata) assigns to their true family. Its accuracy on the real test notes, and on them low-passed at
     4 kHz (about Opus's band at these rates), is reported beside: the ceiling of what a reconstruction can
     score.
4. Targets (reported, never asserted), at 6 kbps: the tokenizer's mel distance below Opus's, its SI-SDR above
   Opus's, and pitch kept >= 95%.

Output: tables on stdout and ``benchmarks/out/<--output-name>.json`` (default ``notes_codec``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import SAMPLE_RATE, band_limit, load_audio_tokenizer  # noqa: E402
from audio_codec import (  # noqa: E402
    OPUS_FRAME_MS,
    OPUS_MIN_BITRATE,
    OPUS_RATE,
    choose_levels,
    choose_opus_backend,
    mean_sem,
    metrics,
    opus_roundtrip,
    summary,
    tokenizer_roundtrip,
)
from common import print_table, write_json  # noqa: E402
from notes_classifier import NoteClassifierSettings, features_and_predictions, load_or_train  # noqa: E402
from notes_common import (  # noqa: E402
    DEFAULT_DATA,
    TOLERANCE_CENTS,
    count_pitch_kept,
    data_fingerprint,
    load_notes,
    notes_root,
    per_family,
    percent,
    public,
)

from vqgen.evaluation.pitch import estimate_f0  # noqa: E402

NAME = "notes_codec"
TARGET_KBPS = 6.0
TARGET_PITCH_KEPT = 0.95


def judge_notes(model, audio: torch.Tensor, rate: int, families: torch.Tensor) -> dict:
    """Family predictions of ``audio [N, 1, S]`` at ``rate``: accuracy, per-family accuracy, the hits."""
    _, predictions = features_and_predictions(model, audio, rate)
    hits = predictions == families
    return {
        "accuracy": float(hits.double().mean()),
        "per_family": per_family(hits, families),
        "predictions": predictions.tolist(),
    }


def evaluate(reconstruction: torch.Tensor, notes, input_f0: torch.Tensor, model, tolerance: float) -> dict:
    """Every figure of one codec setting: metric summaries, pitch kept (with its counts) and family accuracy."""
    scores = {k: summary(v) for k, v in metrics(reconstruction, notes.audio, notes.sample_rate).items()}
    pitch = count_pitch_kept(
        input_f0, estimate_f0(reconstruction, notes.sample_rate), notes.pitched, tolerance
    )
    pitch["per_family"] = per_family(pitch["kept_mask"], notes.families, pitch["counted_mask"])
    return {
        **scores,
        "pitch_kept": public(pitch),
        "family": judge_notes(model, reconstruction, notes.sample_rate, notes.families),
    }


def targets(results: list[dict]) -> list[list]:
    """``[[target, value, met]]`` at :data:`TARGET_KBPS` (met None when that row was not run)."""
    row = next((r for r in results if r["target_kbps"] == TARGET_KBPS), None)
    if row is None:
        return [[f"{TARGET_KBPS:g} kbps row", "not run", None]]
    tok, opus = row["tokenizer"], row["opus"]
    kept = tok["pitch_kept"]["share"]
    return [
        [f"mel distance < Opus at {TARGET_KBPS:g} kbps", f"{tok['mel']['mean']:.3f} vs {opus['mel']['mean']:.3f}",
         tok["mel"]["mean"] < opus["mel"]["mean"]],
        [f"SI-SDR > Opus at {TARGET_KBPS:g} kbps", f"{tok['si_sdr']['mean']:.2f} vs {opus['si_sdr']['mean']:.2f} dB",
         tok["si_sdr"]["mean"] > opus["si_sdr"]["mean"]],
        [f"pitch kept >= {TARGET_PITCH_KEPT:.0%} at {TARGET_KBPS:g} kbps", percent(kept),
         None if kept != kept else kept >= TARGET_PITCH_KEPT],
    ]  # fmt: skip


def _row(target: float, name: str, setting: str, kbps: float, figures: dict) -> list:
    pitch = figures["pitch_kept"]
    return [
        f"{target:g}",
        name,
        setting,
        f"{kbps:.3f}",
        mean_sem(figures["mel"]),
        mean_sem(figures["stft"]),
        mean_sem(figures["si_sdr"], 2),
        f"{percent(pitch['share'])} ({pitch['kept']}/{pitch['counted']})",
        percent(figures["family"]["accuracy"]),
    ]


def print_report(report: dict) -> list[str]:
    real = report["real_test"]
    pitch_counts = report["input_pitch"]
    rows = [
        ["-", "real test notes", "-", "-", "-", "-", "-", "-", percent(real["accuracy"])],
        ["-", "real, low-passed 4 kHz", "-", "-", "-", "-", "-", "-", percent(real["lowpass_4khz_accuracy"])],
    ]
    for r in report["results"]:
        tok, opus = r["tokenizer"], r["opus"]
        rows.append(_row(r["target_kbps"], "tokenizer", f"{tok['levels']} levels", tok["kbps"], tok))
        rows.append(
            _row(
                r["target_kbps"],
                "Opus",
                f"CBR {opus['requested_bps'] / 1000:g} kb/s",
                opus["payload_kbps"],
                opus,
            )
        )
    title = (
        f"Codecs on instrument-notes test ({report['clips']} notes of unseen programs, {report['sample_rate']} Hz; "
        f"mean ± s.e.; pitch kept over {pitch_counts['counted']} pitched notes with a detectable input f0, "
        f"{pitch_counts['excluded_unvoiced_reference']} pitched notes excluded)"
    )
    columns = ["target kbps", "codec", "setting", "kbps", "mel dist ↓", "STFT dist ↓", "SI-SDR dB ↑",
               f"pitch kept (±{report['tolerance_cents']:g} c) ↑", "family acc ↑"]  # fmt: skip
    tables = [print_table(title, columns, rows)]
    top = report["results"][-1]
    per = []
    for family, figures in real["per_family"].items():  # every test family, in GM order
        cells = [family, figures["notes"], percent(figures["share"])]
        for codec in ("tokenizer", "opus"):
            kept = top[codec]["pitch_kept"]["per_family"].get(family)
            cells += [
                percent(kept["share"]) if kept else "-",
                percent(top[codec]["family"]["per_family"][family]["share"]),
            ]
        per.append(cells)
    tables.append(
        print_table(
            f"Per family at {top['target_kbps']:g} kbps",
            [
                "family",
                "notes",
                "real family acc",
                "tokenizer pitch kept",
                "tokenizer family acc",
                "Opus pitch kept",
                "Opus family acc",
            ],  # fmt: skip
            per,
        )
    )
    verdict = [
        [t, v, "n/a" if met is None else ("met" if met else "missed")] for t, v, met in report["targets"]
    ]
    tables.append(print_table("Targets (reported, not asserted)", ["target", "value", "result"], verdict))
    return tables


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", required=True, help="an AudioTokenizer folder (or a pipeline folder)")
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help="an instrument-notes build (default demo:instrument-notes)"
    )
    parser.add_argument(
        "--targets", type=float, nargs="+", default=[1.5, 3.0, 6.0], help="kbps (default 1.5 3 6)"
    )
    parser.add_argument("--max-clips", type=int, default=None, help="use this many test notes, spread evenly")
    parser.add_argument("--tolerance-cents", type=float, default=TOLERANCE_CENTS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--opus-backend", choices=["auto", "pyav", "opus-tools"], default="auto")
    parser.add_argument("--classifier-seed", type=int, default=0)
    parser.add_argument("--classifier-epochs", type=int, default=NoteClassifierSettings.epochs)
    parser.add_argument("--classifier-cache", help="default benchmarks/out/notes_classifier.safetensors")
    parser.add_argument("--output-name", default=NAME, help="JSON name under benchmarks/out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from vqgen.tokenizers.audio import AudioTokenizer

    tokenizer = load_audio_tokenizer(args.tokenizer)
    if not isinstance(tokenizer, AudioTokenizer):
        raise SystemExit(f"'{args.tokenizer}' holds a {type(tokenizer).__name__}, expected an AudioTokenizer")
    if int(tokenizer.config.in_channels) != 1:
        raise SystemExit(
            f"the notes are mono; '{args.tokenizer}' codes {tokenizer.config.in_channels} channels"
        )
    tokenizer = tokenizer.to(args.device).eval()
    rate = int(tokenizer.config.sample_rate)
    root = notes_root(args.data)
    notes = load_notes(root, "test", rate, args.max_clips)
    seconds_of_audio = notes.audio.shape[0] * notes.audio.shape[-1] / rate
    backend = choose_opus_backend(args.opus_backend)
    print(
        f"{len(notes)} test notes from {root} at {rate} Hz; tokenizer {args.tokenizer} ({tokenizer.num_levels} "
        f"levels, codebook {tokenizer.codebook_size}, {tokenizer.frame_rate:g} frames/s); Opus via {backend}; "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )
    settings = NoteClassifierSettings(seed=args.classifier_seed, epochs=args.classifier_epochs)
    model, classifier = load_or_train(root, settings, args.classifier_cache)
    real = judge_notes(model, notes.audio, rate, notes.families)
    import torchaudio

    at_16k = (
        torchaudio.functional.resample(notes.audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else notes.audio
    )
    real["lowpass_4khz_accuracy"] = judge_notes(
        model, band_limit(at_16k, 0.0, 4000.0), SAMPLE_RATE, notes.families
    )["accuracy"]
    print(f"family classifier on the real test notes: {real['accuracy']:.1%}", flush=True)
    started = time.perf_counter()
    input_f0 = estimate_f0(notes.audio, rate)
    input_pitch = public(count_pitch_kept(input_f0, input_f0, notes.pitched, args.tolerance_cents))
    print(f"input f0 of {len(notes)} notes in {time.perf_counter() - started:.1f} s", flush=True)

    results = []
    for target, levels in choose_levels(tokenizer, args.targets):
        start = time.perf_counter()
        reconstruction = tokenizer_roundtrip(tokenizer, notes.audio, levels, args.batch_size, args.device)
        tok_seconds = time.perf_counter() - start
        tok = evaluate(reconstruction, notes, input_f0, model, args.tolerance_cents)
        opus_bitrate = max(OPUS_MIN_BITRATE, round(tokenizer.bitrate(levels)))
        start = time.perf_counter()
        decoded, payload = opus_roundtrip(notes.audio, rate, opus_bitrate, backend)
        opus_seconds = time.perf_counter() - start
        opus = evaluate(decoded, notes, input_f0, model, args.tolerance_cents)
        results.append(
            {
                "target_kbps": target,
                "tokenizer": {"levels": levels, "kbps": tokenizer.bitrate(levels) / 1000, "seconds": tok_seconds, **tok},
                "opus": {"requested_bps": opus_bitrate, "payload_kbps": payload * 8 / seconds_of_audio / 1000,
                         "seconds": opus_seconds, **opus},
            }
        )  # fmt: skip
        print(
            f"  target {target:g} kbps done ({tok_seconds:.1f} s tokenizer, {opus_seconds:.1f} s Opus)",
            flush=True,
        )

    report = {
        "tokenizer": str(args.tokenizer),
        "tokenizer_config": {k: v for k, v in dict(tokenizer.config).items() if not k.startswith("_")},
        "data": str(root),
        "data_fingerprint": data_fingerprint(root),
        "clips": len(notes),
        "clip_indices": notes.indices if args.max_clips is not None else "all",
        "sample_rate": rate,
        "tolerance_cents": args.tolerance_cents,
        "input_pitch": {k: input_pitch[k] for k in ("pitched", "excluded_unvoiced_reference", "counted")},
        "classifier": classifier,
        "real_test": real,
        "opus": {"backend": backend, "settings": {"mode": "CBR", "application": "voip", "frame_ms": OPUS_FRAME_MS, "rate": OPUS_RATE}},
        "results": results,
    }  # fmt: skip
    report["targets"] = targets(results)
    report["tables"] = print_report(report)
    write_json(args.output_name, report)
    return report


if __name__ == "__main__":
    main()
