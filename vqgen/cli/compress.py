"""``vqgen compress``: one image, video or audio file range-coded under a pipeline's prior into ``.vqz``."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.errors import ConfigError, DataError

COMPRESSED_SUFFIX = ".vqz"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compress", help="entropy-code an image, video or audio clip with a pipeline's prior (.vqz)"
    )
    p.add_argument(
        "--pipeline", default="image", help="a pipeline folder, or image / video / audio (shipped)"
    )
    p.add_argument(
        "--input",
        required=True,
        help="a file of the pipeline's shape: an image, a video (.mp4, .gif, ...) of its frame count and size, "
        "or audio (.wav, .flac, .ogg; any rate, mono or stereo) of its clip length",
    )
    p.add_argument("--output", required=True, help="the .vqz file to write")
    p.add_argument(
        "--class-label", default=None, help="code under this class, an index or a name (default: null class)"
    )
    p.add_argument(
        "--condition",
        action="append",
        default=None,
        metavar="FIELD=VALUE",
        help="code under this value of a condition field (repeat per field; default: the field's null)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Range-code one file (any form ``pipe.preprocess`` reads) into a ``.vqz`` file."""
    from vqgen.io import atomic_write_bytes
    from vqgen.pipelines.conditions import class_label_word, parse_condition_flags
    from vqgen.pipelines.loading import load_pipeline

    source, output = Path(args.input), Path(args.output)
    if output.suffix.lower() != COMPRESSED_SUFFIX:
        raise ConfigError(f"--output '{output}' must be a compressed file ({COMPRESSED_SUFFIX})")
    if not source.is_file():
        raise DataError(f"input file '{source}' does not exist")
    pipe = load_pipeline(args.pipeline)
    if args.class_label is not None and args.condition:
        raise ConfigError("pass --class-label or --condition, not both")
    label = None if args.class_label is None else class_label_word(args.class_label)
    conditions = parse_condition_flags(pipe, args.condition) if args.condition else None
    data = pipe.compress(source, class_labels=label, conditions=conditions)
    atomic_write_bytes(args.output, data)
    print(f"wrote {args.output}: {len(data)} bytes ({source.stat().st_size} bytes in)")
