"""Quality of a family- and pitch-conditioned audio pipeline's notes: pitch accuracy, family accuracy, Fréchet
distance, precision and recall, and sampling time beside real time.

Command (a saved AudioPipeline whose prior is conditioned on the fields ``family`` and ``pitch``, and on any field
the pipeline draws itself, such as ``program``: ``vqgen.pipelines.condition_draws``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/notes_sample_quality.py --pipeline runs/notes/prior/pipeline

Smoke run: ``--num-samples 32 --output-name notes_sample_quality_smoke``.

1. Conditions: the distinct (family, pitch) pairs of the build's TEST split (``--data``, default
   ``demo:instrument-notes``) that the pipeline has value names for, in GM-family then pitch order; sample
   ``i`` asks for pair ``i mod P`` (``--num-samples`` >= P: every pair about equally often), or for ``N`` pairs
   spread evenly over the list when ``N < P`` (``condition_pairs``). Drawn with
   ``pipe(N, conditions={"family": [...], "pitch": [...]}, generator=torch.Generator().manual_seed(--seed),
   output_type="pt", sampling=...)`` with the pipeline's default sampling and guidance
   (``pipe.default_sampling``, ``pipe.default_guidance_scale``); ``--temperature``, ``--top-k``, ``--top-p`` and
   ``--guidance-scale`` replace single fields of it (``common.labelled_sampling``).
2. Figures:
   - pitch accuracy: among samples asked for a PITCHED family (not percussive or sound effects), the share
     whose f0 (``vqgen.evaluation.pitch.estimate_f0``) lies within ``--tolerance-cents`` (50) of the requested
     MIDI pitch (``midi_to_hz``); an unvoiced sample (NaN f0) counts as a miss and is counted apart. Beside it,
     the same figure for the real test notes against their labelled pitch (YIN agrees with the label on about
     89% of pitched notes, organ stops an octave off being the main exception: the ceiling);
   - family accuracy: the family classifier (``notes_classifier.py``, trained on the TRAIN split and cached
     in ``benchmarks/out/notes_classifier.safetensors`` keyed by settings and build) predicts the requested
     family; beside it its accuracy on the real test notes;
   - Fréchet distance in the classifier's 128-d feature space between the samples and the test split,
     beside the floor: train notes of the samples' families, one each (seeded; ``emoji_sample_quality.
     floor_indices``), against the test split, what a generator drawing real notes of other programs would
     reach at this sample size (``emoji_sample_quality.fd_figures``), and their ratio;
   - improved precision and recall (k = 3, ``vqgen.evaluation.neighbours``) of the samples against the train
     features, beside the real test split's;
   - sampling time: wall seconds of the pipeline call per second of generated audio, on ``--device`` (CPU by
     default) with the torch thread count, beside real time (1 s per s). Never asserted.
   Targets (reported as met / missed, never asserted): pitch accuracy >= 80%, family accuracy >= 70%.

Output: tables on stdout and ``benchmarks/out/<--output-name>.json`` (default ``notes_sample_quality``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import SAMPLE_RATE  # noqa: E402
from common import labelled_sampling, print_table, write_json  # noqa: E402
from emoji_common import load_pipeline_quietly  # noqa: E402
from emoji_sample_quality import fd_figures, floor_indices  # noqa: E402
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

from vqgen.cli.common import add_sampling_flags  # noqa: E402
from vqgen.data.instrument_notes import INSTRUMENT_FAMILIES, UNPITCHED_FAMILIES  # noqa: E402
from vqgen.evaluation.neighbours import precision_recall  # noqa: E402
from vqgen.evaluation.pitch import estimate_f0, midi_to_hz  # noqa: E402
from vqgen.priors.sampling_config import SamplingConfig  # noqa: E402

NAME = "notes_sample_quality"
TARGET_PITCH = 0.80
TARGET_FAMILY = 0.70
K = 3


def condition_pairs(test_rows: list[dict], names: dict[str, list[str]]) -> tuple[list[tuple[str, int]], list]:
    """The distinct (family, pitch) pairs of ``test_rows`` in GM-family then pitch order, split into those
    ``names`` (the pipeline's ``condition_names``) holds and those it lacks."""
    pairs = sorted(
        {(r["family"], int(r["pitch"])) for r in test_rows},
        key=lambda p: (INSTRUMENT_FAMILIES.index(p[0]), p[1]),
    )
    known = [p for p in pairs if p[0] in names.get("family", []) and str(p[1]) in names.get("pitch", [])]
    return known, [p for p in pairs if p not in known]


def requested(pairs: list[tuple[str, int]], num_samples: int) -> list[tuple[str, int]]:
    """The pair of every sample: ``pairs[i % P]`` when ``num_samples >= P``, else ``num_samples`` pairs spread
    evenly over the list (so a small run still covers every family)."""
    if not pairs:
        raise SystemExit("no (family, pitch) pair of the test split is among the pipeline's condition values")
    if num_samples >= len(pairs):
        return [pairs[i % len(pairs)] for i in range(num_samples)]
    return [pairs[i] for i in np.linspace(0, len(pairs) - 1, num_samples).round().astype(int)]


def load_pipe(path: str, device: str):
    from vqgen.pipelines import AudioPipeline

    pipe = load_pipeline_quietly(path, device=device)
    if not isinstance(pipe, AudioPipeline):
        raise SystemExit(f"{path} holds a {type(pipe).__name__}, expected an AudioPipeline")
    fields = pipe.prior.condition_fields
    if not {"family", "pitch"} <= set(fields):
        raise SystemExit(
            f"{path}: the prior's condition fields are {sorted(fields)}, expected family and pitch (and others "
            "the pipeline draws itself, e.g. program)"
        )
    names = pipe.condition_names
    if not names.get("family") or not names.get("pitch"):
        raise SystemExit(
            f"{path} stores no value names for family and pitch (model_index.json condition_names)"
        )
    return pipe


def generate(
    pipe, asked: list[tuple[str, int]], sampling: SamplingConfig, args
) -> tuple[torch.Tensor, float]:
    """The samples ``[N, 1, S]`` (channels averaged) and the wall seconds of the pipeline call."""
    started = time.perf_counter()
    out = pipe(
        len(asked),
        conditions={"family": [f for f, _ in asked], "pitch": [p for _, p in asked]},
        sampling=sampling,
        generator=torch.Generator().manual_seed(args.seed),
        output_type="pt",
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - started
    return out.audios.float().mean(dim=1, keepdim=True), seconds


def judge(args, root: Path, log=print) -> tuple:
    """The classifier, its info (with the real test figures), (the train features, their families), the test
    features and the test notes."""
    settings = NoteClassifierSettings(seed=args.classifier_seed, epochs=args.classifier_epochs)
    model, info = load_or_train(root, settings, args.classifier_cache, log=log)
    train, test = load_notes(root, "train", SAMPLE_RATE), load_notes(root, "test", SAMPLE_RATE)
    train_features, _ = features_and_predictions(model, train.audio)
    test_features, test_predictions = features_and_predictions(model, test.audio)
    info["test_accuracy"] = float((test_predictions == test.families).double().mean())
    info["test_notes"] = len(test)
    return model, info, (train_features, train.families), test_features, test


def figures_of(samples, rate, asked, model, train, test_features, seed, tolerance) -> dict:
    """Pitch and family accuracy, FD against its floor, precision and recall of the samples; ``train``: the
    train notes' features ``[N, 128]`` and families ``[N]``."""
    train_features, train_families = train
    families = torch.tensor([INSTRUMENT_FAMILIES.index(f) for f, _ in asked])
    pitched = torch.tensor([f not in UNPITCHED_FAMILIES for f, _ in asked])
    f0 = estimate_f0(samples, rate)
    pitch = count_pitch_kept(midi_to_hz(torch.tensor([p for _, p in asked])), f0, pitched, tolerance)
    pitch["per_family"] = per_family(pitch["kept_mask"], families, pitch["counted_mask"])
    features, predictions = features_and_predictions(model, samples, rate)
    hits = predictions == families
    return {
        "pitch": public(pitch),
        "family_accuracy": float(hits.double().mean()),
        "family_per_family": per_family(hits, families),
        "fd": fd_figures(
            features, train_features[floor_indices(train_families, families, seed)], test_features
        ),
        "precision_recall": precision_recall(train_features, features, k=K),
        "sample_f0_hz": [None if not torch.isfinite(x) else round(float(x), 2) for x in f0],
        "predicted_families": [INSTRUMENT_FAMILIES[i] for i in predictions.tolist()],
    }


def print_report(r: dict) -> list[str]:
    pitch, real_pitch, fd, pr = (
        r["figures"]["pitch"],
        r["real_pitch"],
        r["figures"]["fd"],
        r["figures"]["precision_recall"],
    )
    rows = [
        [f"pitch within ±{r['tolerance_cents']:g} cents of the request", f"{percent(pitch['share'])} ({pitch['kept']}/{pitch['counted']})",
         f"real test notes vs label {percent(real_pitch['share'])}; {pitch['unvoiced_output']} samples unvoiced; target >= {TARGET_PITCH:.0%}"],
        ["family accuracy", percent(r["figures"]["family_accuracy"]),
         f"classifier on real test notes {percent(r['classifier']['test_accuracy'])}; target >= {TARGET_FAMILY:.0%}"],
        ["Fréchet distance samples vs test", f"{fd['fd']:.3f}", f"floor (train {fd['floor_train_images']} of the same families vs test) {fd['floor']:.3f}; ratio {fd['ratio']:.2f}"],
        [f"precision / recall (k={K}, vs train)", f"{pr['precision']:.3f} / {pr['recall']:.3f}",
         f"real test notes {r['test_precision_recall']['precision']:.3f} / {r['test_precision_recall']['recall']:.3f}"],
        ["sampling time per second of audio", f"{r['seconds_per_audio_second']:.3f} s",
         f"real time 1 s; {r['generation_seconds']:.1f} s for {r['num_samples']} x {r['clip_seconds']:.3g} s on {r['device']}, {r['torch_threads']} threads"],
    ]  # fmt: skip
    title = (
        f"Notes from {r['pipeline']}: {r['num_samples']} samples over {r['pairs_used']} (family, pitch) pairs of the "
        f"test split, {SamplingConfig(**r['sampling']).describe()}, seed {r['seed']}"
    )
    tables = [print_table(title, ["figure", "value", "beside"], rows)]
    per = []
    for family, hit in r["figures"]["family_per_family"].items():
        kept = pitch["per_family"].get(family)
        per.append([family, hit["notes"], percent(hit["share"]), percent(kept["share"]) if kept else "-"])
    tables.append(
        print_table("Per requested family", ["family", "samples", "family acc", "pitch within"], per)
    )
    verdict = [[t, v, "n/a" if met is None else ("met" if met else "missed")] for t, v, met in r["targets"]]
    tables.append(print_table("Targets (reported, not asserted)", ["target", "value", "result"], verdict))
    return tables


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline", required=True, help="a saved AudioPipeline with fields family and pitch"
    )
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help="an instrument-notes build (default demo:instrument-notes)"
    )
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    add_sampling_flags(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tolerance-cents", type=float, default=TOLERANCE_CENTS)
    parser.add_argument("--device", default="cpu", help="where the pipeline samples (cpu, cuda)")
    parser.add_argument("--classifier-seed", type=int, default=0)
    parser.add_argument("--classifier-epochs", type=int, default=NoteClassifierSettings.epochs)
    parser.add_argument("--classifier-cache", help="default benchmarks/out/notes_classifier.safetensors")
    parser.add_argument("--output-name", default=NAME, help="JSON name under benchmarks/out")
    args = parser.parse_args(argv)
    if args.num_samples < K + 1:
        raise SystemExit(f"--num-samples must be at least {K + 1}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    root = notes_root(args.data)
    pipe = load_pipe(args.pipeline, args.device)
    model, classifier, train, test_features, test = judge(args, root)
    train_features = train[0]
    print(f"family classifier on the real test notes: {classifier['test_accuracy']:.1%}", flush=True)
    pairs, missing = condition_pairs(test.rows, pipe.condition_names)
    asked = requested(pairs, args.num_samples)
    print(
        f"{len(pairs)} test (family, pitch) pairs known to the pipeline ({len(missing)} not); drawing {len(asked)} ...",
        flush=True,
    )
    sampling = labelled_sampling(pipe, args)
    samples, seconds = generate(pipe, asked, sampling, args)
    rate = pipe.sample_rate
    clip_seconds = samples.shape[-1] / rate
    real_pitch = count_pitch_kept(
        midi_to_hz(test.pitches), estimate_f0(test.audio, SAMPLE_RATE), test.pitched, args.tolerance_cents
    )
    figures = figures_of(samples, rate, asked, model, train, test_features, args.seed, args.tolerance_cents)
    report = {
        "pipeline": str(args.pipeline),
        "data": str(root),
        "data_fingerprint": data_fingerprint(root),
        "num_samples": len(asked),
        "seed": args.seed,
        "guidance_scale": sampling.guidance,
        "sampling": dataclasses.asdict(sampling),
        "tolerance_cents": args.tolerance_cents,
        "pairs_used": len(set(asked)),
        "pairs_known": len(pairs),
        "pairs_missing_from_pipeline": [list(p) for p in missing],
        "requested": [list(p) for p in asked],
        "sample_rate": rate,
        "clip_seconds": clip_seconds,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "generation_seconds": seconds,
        "seconds_per_audio_second": seconds / (len(asked) * clip_seconds),
        "classifier": classifier,
        "real_pitch": public(real_pitch),
        "test_precision_recall": precision_recall(train_features, test_features, k=K),
        "figures": figures,
    }  # fmt: skip
    share = figures["pitch"]["share"]
    report["targets"] = [
        [f"pitch within ±{args.tolerance_cents:g} c >= {TARGET_PITCH:.0%}", percent(share),
         None if share != share else bool(share >= TARGET_PITCH)],  # NaN: no pitched family asked for
        [f"family accuracy >= {TARGET_FAMILY:.0%}", percent(figures["family_accuracy"]),
         bool(figures["family_accuracy"] >= TARGET_FAMILY)],
    ]  # fmt: skip
    report["tables"] = print_report(report)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.output_name, report)
    return report


if __name__ == "__main__":
    main()
