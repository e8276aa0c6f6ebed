"""``vqgen reconstruct``: ``decode(encode(x))`` of one file, written beside the quality of the round trip."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.cli.common import add_medium_flags, medium_options, refuse_foreign_flags
from vqgen.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("reconstruct", help="encode and decode one file with a tokenizer (its round trip)")
    p.add_argument("--tokenizer", required=True, help="a tokenizer folder (save_pretrained)")
    p.add_argument("--input", required=True, help="an image, video or audio file (any rate, mono or stereo)")
    p.add_argument(
        "--output",
        required=True,
        help="the reconstruction (.png / .mp4, .gif / .wav, .flac at the tokenizer's rate)",
    )
    add_medium_flags(p, "reconstruct")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqgen.loading import load_tokenizer
    from vqgen.media import medium_of

    source, output = Path(args.input), Path(args.output)
    tokenizer = load_tokenizer(args.tokenizer)
    medium = medium_of(tokenizer)
    suffixes = medium.reconstruct_suffixes
    if output.suffix.lower() not in suffixes:
        raise ConfigError(
            f"--output '{output}' must be {medium.article} {medium.name} file ({', '.join(suffixes)})"
        )
    refuse_foreign_flags(args, medium, "reconstruct", "{} tokenizers")
    summary = medium.reconstruct_file(
        tokenizer, source, output, **medium_options(args, medium, "reconstruct")
    )
    print(f"wrote {output}: {summary}")
