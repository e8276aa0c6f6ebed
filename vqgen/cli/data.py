"""``vqgen data build``: build a demo data set (spoken digits, synthesised with espeak-ng)."""

from __future__ import annotations

import argparse

from vqgen.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="build a demo data set")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser("build", help="build a demo data set (spoken-digits: synthesised with espeak-ng)")
    p.add_argument("name", choices=["spoken-digits"])
    p.add_argument(
        "--output", default=None, help="where to build it (default: where demo:spoken-digits looks)"
    )
    p.add_argument("--sample-rate", type=positive_int, default=16000)
    p.add_argument("--workers", type=positive_int, default=1, help="espeak-ng processes at a time")
    p.add_argument("--force", action="store_true", help="rebuild even if an identical build exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """``vqgen data build spoken-digits``: synthesise the demo data set with espeak-ng (see ``vqgen.data``)."""
    from vqgen.data.spoken_digits import build_spoken_digits

    manifest = build_spoken_digits(
        args.output,
        sample_rate=args.sample_rate,
        progress=not args.no_progress,
        workers=args.workers,
        force=args.force,
    )
    counts = manifest.get("counts", {})
    clips = ", ".join(f"{counts[split]['clips']} {split}" for split in ("train", "test") if split in counts)
    where = args.output or "the default location (demo:spoken-digits)"
    print(f"spoken digits ready in {where}: {clips} clips")
