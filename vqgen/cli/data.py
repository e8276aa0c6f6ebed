"""``vqgen data build NAME``: build a demo data set from Debian packages (nothing is downloaded).

spoken-digits (espeak-ng), emoji (fonts-noto-color-emoji + unicode-data), instrument-notes (fluidsynth +
fluid-soundfont-gm). Each builder refuses in one line, naming the ``apt-get`` command, when its packages are
missing, and writes its folder atomically.
"""

from __future__ import annotations

import argparse

from vqgen.cli.common import positive_float, positive_int

#: Each data set's name, what its build is called in messages, and what one item is.
DATA_SETS = {
    "spoken-digits": ("spoken digits", "clips"),
    "emoji": ("emoji", "images"),
    "instrument-notes": ("instrument notes", "notes"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="build a demo data set")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser(
        "build",
        help="build a demo data set (spoken-digits: espeak-ng; emoji: Noto Color Emoji; "
        "instrument-notes: FluidR3 GM sound font)",
    )
    p.add_argument("name", choices=list(DATA_SETS))
    p.add_argument("--output", default=None, help="where to build it (default: where demo:NAME looks)")
    p.add_argument("--sample-rate", type=positive_int, default=16000, help="audio data sets")
    p.add_argument("--seconds", type=positive_float, default=1.0, help="instrument-notes: clip length")
    p.add_argument("--resolution", type=positive_int, default=64, help="emoji: image size in pixels")
    p.add_argument("--workers", type=positive_int, default=1, help="renderer processes at a time (audio)")
    p.add_argument("--force", action="store_true", help="rebuild even if a build exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _build(args: argparse.Namespace) -> dict:
    progress = not args.no_progress
    if args.name == "emoji":
        from vqgen.data.emoji import build_emoji

        return build_emoji(args.output, resolution=args.resolution, progress=progress, force=args.force)
    if args.name == "instrument-notes":
        from vqgen.data.instrument_notes import build_instrument_notes

        return build_instrument_notes(
            args.output,
            sample_rate=args.sample_rate,
            seconds=args.seconds,
            progress=progress,
            workers=args.workers,
            force=args.force,
        )
    from vqgen.data.spoken_digits import build_spoken_digits

    return build_spoken_digits(
        args.output, sample_rate=args.sample_rate, progress=progress, workers=args.workers, force=args.force
    )


def _count(entry) -> int:
    """An item count from a manifest's per-split entry (a number, or a dict with a total or per-class counts)."""
    if isinstance(entry, int):
        return entry
    if isinstance(entry, dict):
        for key in ("clips", "images", "notes", "total"):
            if isinstance(entry.get(key), int):
                return entry[key]
        return sum(_count(value) for value in entry.values())
    return 0


def run(args: argparse.Namespace) -> None:
    """Build the named data set and print where it is and how many items each split holds."""
    manifest = _build(args)
    counts = manifest.get("counts", {})
    sizes = ", ".join(f"{_count(counts[split])} {split}" for split in ("train", "test") if split in counts)
    where = args.output or f"the default location (demo:{args.name})"
    title, unit = DATA_SETS[args.name]
    print(f"{title} ready in {where}: {sizes} {unit}")
