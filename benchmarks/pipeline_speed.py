"""Sampling speed of a shipped or saved pipeline on a device and dtype: items per second and, for audio, the
seconds of compute per second of sound beside real time.

Commands (the figures in RESULTS.md; ``benchmarks/gpu_checks.sh`` runs the GPU ones)::

    .venv/bin/python benchmarks/pipeline_speed.py --pipeline instruments
    python benchmarks/pipeline_speed.py --pipeline instruments --device cuda --dtypes float32 bfloat16

Smoke run: ``--quick`` (8 samples, one round; its numbers mean nothing).

What is timed: ``pipe(N, conditions=..., generator=..., output_type="pt",
batch_size=B)`` with the pipeline's own defaults (its stored guidance scale and sampling settings), code
sampling and decoding included, file writing not; CUDA synchronised. Conditions: a seeded random value of
each condition field per sample (a class-conditional pipeline: a random class), so every call asks for the
same mix. One untimed call of ``B`` samples first (the CUDA graph capture, allocator and kernel warm-up), then
``--repeats`` timed calls of ``--num-samples``; the median. Audio: seconds per second of audio =
median seconds / (samples x clip seconds), beside real time (1); images and videos: items per second.
Never asserted; the machine may be loaded.

Output: a table on stdout and ``benchmarks/out/<--output-name>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_label, print_table, synchronize, write_json  # noqa: E402
from emoji_common import load_pipeline_quietly  # noqa: E402

from vqgen.pipelines.loading import place_pipeline  # noqa: E402

NAME = "pipeline_speed"


def condition_arguments(pipe, count: int, seed: int) -> dict:
    """``conditions=`` with a seeded random value of each condition field per sample (a class-conditional
    prior has the one field ``class``), by name where the pipeline stores names: a field of numbers (MIDI
    pitch) reads an int as a value, not an index. Empty for an unconditional pipeline."""
    generator = torch.Generator().manual_seed(seed)
    names = pipe.condition_names
    conditions = {}
    for field, size in (pipe.prior.condition_fields or {}).items():
        drawn = torch.randint(size, (count,), generator=generator).tolist()
        conditions[field] = [names[field][i] for i in drawn] if names.get(field) else drawn
    return {"conditions": conditions} if conditions else {}


def timed_call(
    pipe, count: int, args: argparse.Namespace, device: torch.device
) -> tuple[float, torch.Tensor]:
    """Wall seconds of one pipeline call of ``count`` samples, and its output tensor."""
    kwargs = condition_arguments(pipe, count, args.seed)
    synchronize(device)
    started = time.perf_counter()
    out = pipe(
        count,
        generator=torch.Generator(device).manual_seed(args.seed),
        output_type="pt",
        batch_size=args.batch_size,
        **kwargs,
    )
    synchronize(device)
    media = next(getattr(out, key) for key in ("audios", "images", "videos") if hasattr(out, key))
    return time.perf_counter() - started, media


def measure(path: str, dtype: str, device: torch.device, args: argparse.Namespace) -> dict:
    pipe = place_pipeline(load_pipeline_quietly(path), device, dtype)
    timed_call(pipe, args.batch_size, args, device)
    rounds = []
    for _ in range(args.repeats):
        seconds, media = timed_call(pipe, args.num_samples, args, device)
        rounds.append(seconds)
    seconds = statistics.median(rounds)
    reading = {
        "dtype": dtype,
        "rounds": rounds,
        "seconds": seconds,
        "items_per_s": args.num_samples / seconds,
    }
    if hasattr(pipe, "sample_rate"):
        clip = media.shape[-1] / pipe.sample_rate
        reading.update(clip_seconds=clip, seconds_per_audio_second=seconds / (args.num_samples * clip))
    return reading


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="instruments", help="a shipped name or a saved pipeline folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtypes", nargs="+", default=["float32"], help="torch dtype names, e.g. bfloat16")
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-name", default=NAME, help="JSON name under benchmarks/out")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 samples, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.num_samples, args.batch_size, args.repeats = 8, 8, 1
        args.output_name = NAME + "_quick" if args.output_name == NAME else args.output_name
    for dtype in args.dtypes:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise SystemExit(f"--dtypes: {dtype!r} is not a torch dtype name (float32, bfloat16, float16)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    readings = [measure(args.pipeline, dtype, device, args) for dtype in args.dtypes]
    name = device_label(device)
    audio = "seconds_per_audio_second" in readings[0]
    columns = ["dtype", "items/s"] + (["s per s of audio", "x real time"] if audio else [])
    rows = [
        [r["dtype"], f"{r['items_per_s']:.1f}"]
        + (
            [f"{r['seconds_per_audio_second']:.4f}", f"{1 / r['seconds_per_audio_second']:.0f}x"]
            if audio
            else []
        )
        for r in readings
    ]
    table = print_table(
        f"{args.pipeline} on {name}: {args.num_samples} samples, batch {args.batch_size}, median of {args.repeats}",
        columns,
        rows,
    )
    report = {"pipeline": args.pipeline, "device": str(device), "device_name": name, "readings": readings}
    report.update(num_samples=args.num_samples, batch_size=args.batch_size, seed=args.seed, table=table)
    write_json(args.output_name, report)
    return report


if __name__ == "__main__":
    main()
