"""``vqgen evaluate-tokenizer``: reconstruction metrics, codebook usage and rate of a tokenizer on a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.cli.common import add_medium_flags, load_data


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate-tokenizer", help="PSNR, SSIM, codebook usage and bits per pixel on a split")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--output", default=None, help="JSON path (default: TOKENIZER/evaluation-SPLIT.json)")
    p.add_argument("--plot", action="store_true", help="also write a codebook-usage histogram PNG")
    p.add_argument("--no-progress", action="store_true")
    add_medium_flags(p, "evaluate-tokenizer data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqgen.evaluation.tokenizer import plot_code_usage, write_results
    from vqgen.loading import load_tokenizer
    from vqgen.media import medium_of

    tokenizer = load_tokenizer(args.tokenizer)
    medium = medium_of(tokenizer)
    dataset = load_data(args, medium, args.split, tokenizer.config.in_channels, tokenizer=tokenizer)
    tokenizer.code_grid(medium.item_shape(dataset))
    results = medium.evaluate(tokenizer, dataset, batch_size=args.batch_size, progress=not args.no_progress)
    medium.print_evaluation(results)
    output = Path(args.output) if args.output else Path(args.tokenizer) / f"evaluation-{args.split}.json"
    write_results(
        {**results, "tokenizer": str(args.tokenizer), "data": args.data, "split": args.split}, output
    )
    print(f"wrote {output}")
    if args.plot:
        plot_path = output.with_suffix(".png")
        plot_code_usage(results["code_counts"], plot_path)
        print(f"wrote {plot_path}")
