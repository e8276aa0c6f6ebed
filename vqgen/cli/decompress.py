"""``vqgen decompress``: a ``.vqz`` file back to the image, video or audio file it codes."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.errors import ConfigError, DataError


def add_parser(sub) -> None:
    p = sub.add_parser("decompress", help="decode a .vqz file back to an image, video or audio file")
    p.add_argument("--pipeline", default="image", help="the pipeline that compressed it")
    p.add_argument("--input", required=True)
    p.add_argument(
        "--output",
        required=True,
        help="an image (.png, ...), a video (.gif keeps grey frames exactly, .mp4 is lossy H.264; at the "
        "pipeline's fps) or audio (.wav, .flac; at the pipeline's sample rate)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Write exactly the tokenizer's reconstruction the file codes (audio losslessly, as 16-bit PCM)."""
    from vqgen.media import medium_of
    from vqgen.pipelines.loading import load_pipeline

    path, output = Path(args.input), Path(args.output)
    if not path.is_file():
        raise DataError(f"compressed file '{path}' does not exist")
    pipe = load_pipeline(args.pipeline)
    medium = medium_of(pipe)
    suffixes = medium.decompress_suffixes
    if output.suffix.lower() not in suffixes:
        raise ConfigError(
            f"--output '{output}' must be {medium.article} {medium.name} file ({', '.join(suffixes)})"
        )
    media = pipe.decompress(path.read_bytes())
    if media.shape[0] != 1:
        raise ConfigError(
            f"'{path}' holds {media.shape[0]} items; decompress it from Python with pipe.decompress"
        )
    medium.write_item(media, output, medium.rate_of(pipe))
    print(f"wrote {output}")
