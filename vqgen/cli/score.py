"""``vqgen score``: the likelihood of every item of a data set under a pipeline (anomaly scores), as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.cli.common import add_medium_flags, medium_options, positive_int, refuse_foreign_flags


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="likelihood of every item under a pipeline (anomaly scores), as CSV")
    p.add_argument("--pipeline", default="image", help="a pipeline folder (default: the shipped one)")
    p.add_argument(
        "--data",
        required=True,
        help="a folder of the pipeline's medium (images, video clips or audio files; read at the pipeline's "
        "size, frame count, sample rate and clip length), or a demo data set (demo:mnist, demo:moving-mnist, "
        "demo:spoken-digits)",
    )
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--output", required=True, help="the CSV to write, one row per item, most anomalous first")
    p.add_argument("--conditional", action="store_true", help="score each item under its own class label")
    p.add_argument(
        "--views",
        type=positive_int,
        default=1,
        help="average the likelihood ratio over the image and views-1 jittered views of it (image pipelines "
        "with a background; 4 is what benchmarks/anomaly.py reports)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the jittered views")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--plot",
        action="store_true",
        help="also write a histogram PNG (beside the CSV) with the top anomalies as thumbnails "
        "(video: first, middle and last frames; audio: spectrograms)",
    )
    p.add_argument("--top-k", type=positive_int, default=8, help="anomalies shown in the plot")
    add_medium_flags(p, "score data")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Bits per dim (and the likelihood ratio, with a background) of every item of ``--data`` under the
    pipeline, as CSV rows most anomalous first."""
    from vqgen.evaluation.likelihood import SCORE_NAMES, plot_scores, ranking_key, score_dataset, write_scores
    from vqgen.media import medium_of
    from vqgen.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    medium = medium_of(pipe)
    refuse_foreign_flags(args, medium, "score data", "{} pipelines")
    # The data as the pipeline takes it: its channels and size, video clips of its frame count, audio at its
    # rate with the centre of each file cut (or zero-padded) to its clip length.
    options = medium.dataset_options_for_pipeline(pipe, **medium_options(args, medium, "score data"))
    dataset = medium.load_dataset(args.data, args.split, channels=pipe.sample_shape[0], **options)
    rows = score_dataset(
        pipe,
        dataset,
        batch_size=args.batch_size,
        conditional=args.conditional,
        progress=not args.no_progress,
        views=args.views,
        seed=args.seed,
    )
    write_scores(rows, args.output)
    key = ranking_key(rows)
    print(
        f"wrote {len(rows)} scores to {args.output} (most anomalous first: {rows[0]['item']}, "
        f"{rows[0][key]:.4f} {SCORE_NAMES[key]})"
    )
    if args.plot:
        plot_path = Path(args.output).with_suffix(".png")
        plot_scores(rows, dataset, plot_path, top_k=args.top_k)
        print(f"wrote {plot_path}")
