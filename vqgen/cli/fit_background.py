"""``vqgen fit-background``: a background prior fitted on generic views of the training images, saved with
the pipeline (likelihood-ratio anomaly scores in ``vqgen score``)."""

from __future__ import annotations

import argparse

from vqgen.cli.common import positive_float, positive_int
from vqgen.errors import ConfigError

_MODEL = ("hidden_size", "num_layers", "num_heads")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit-background",
        help="fit a background prior on generic views of the training images (likelihood-ratio anomaly "
        "scores in score), and save the pipeline with it",
    )
    p.add_argument("--pipeline", default="image", help="an image pipeline folder (default: the shipped one)")
    p.add_argument(
        "--data", required=True, help="the images the prior was trained on: a folder or demo:mnist"
    )
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument(
        "--output", required=True, help="the pipeline folder to write (tokenizer, prior, background)"
    )
    p.add_argument("--copies", type=positive_int, default=8, help="random generic views of each image")
    p.add_argument("--max-images", type=positive_int, default=20000, help="use at most this many images")
    p.add_argument("--steps", type=positive_int, default=1500)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--learning-rate", type=positive_float, default=1e-3)
    p.add_argument("--hidden-size", type=positive_int, default=128)
    p.add_argument("--num-layers", type=positive_int, default=4)
    p.add_argument("--num-heads", type=positive_int, default=4)
    p.add_argument("--seed", type=int, default=0, help="seeds the views, the initial weights and the batches")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqgen.integrity import read_manifest
    from vqgen.media import media, medium_of
    from vqgen.pipelines.assembly import check_background_shape, fit_pipeline_background, save_pipeline_copy
    from vqgen.pipelines.loading import load_pipeline, pipeline_folder

    pipe = load_pipeline(args.pipeline)
    medium = medium_of(pipe)
    if not medium.fits_background:
        names = " and ".join(m.name for m in media() if m.fits_background)
        raise ConfigError(
            f"fit-background works with {names} pipelines (its views rotate and warp 2-D images); "
            f"'{args.pipeline}' is a {type(pipe).__name__}"
        )
    check_background_shape(pipe, args.hidden_size, args.num_heads)  # before minutes of encoding
    options = medium.dataset_options_for_pipeline(pipe)
    dataset = medium.load_dataset(args.data, args.split, channels=pipe.sample_shape[0], **options)
    fit = {k: getattr(args, k) for k in ("steps", "batch_size", "learning_rate", *_MODEL)}
    count = fit_pipeline_background(
        pipe,
        dataset,
        max_items=args.max_images,
        copies=args.copies,
        seed=args.seed,
        progress=not args.no_progress,
        **fit,
    )
    source = pipeline_folder(args.pipeline)
    provenance = (read_manifest(source) or {}).get("provenance", {})
    provenance["background"] = {
        "command": "vqgen fit-background",
        "data": str(args.data),
        "images": count,
        **{k: getattr(args, k) for k in ("split", "copies", "steps", "batch_size", "learning_rate", "seed")},
        **{k: getattr(args, k) for k in _MODEL},
    }
    save_pipeline_copy(pipe, args.output, source, provenance)
    print(
        f"saved the pipeline with a background prior ({count} images x {args.copies} views) to {args.output}"
    )
