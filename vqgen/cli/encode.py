"""``vqgen encode``: a data set encoded by a tokenizer into code shards, the input of prior training."""

from __future__ import annotations

import argparse

from vqgen.cli.common import add_medium_flags, load_data, medium_options, refuse_foreign_flags


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="encode a data set into code shards for prior training")
    p.add_argument("--tokenizer", required=True, help="a tokenizer folder (save_pretrained)")
    p.add_argument("--data", required=True, help="a folder of images, or demo:mnist")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--strict", action="store_true")
    p.add_argument("--output", required=True, help="the shard folder to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--augment-copies",
        type=int,
        default=0,
        help="jittered copies of each item to add (images: rotation, shift, scale; audio: speed, shift, gain)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--condition-fields",
        default=None,
        help="condition fields for the prior, read from these columns of the metadata.csv in the data folder "
        "or its parent (e.g. family,pitch for demo:instrument-notes; default: the class sub-folders only)",
    )
    p.add_argument(
        "--levels",
        type=int,
        default=None,
        help="residual tokenizers: the leading code levels to keep (a prior over them; default all)",
    )
    p.add_argument("--no-progress", action="store_true")
    add_medium_flags(p, "encode data")
    add_medium_flags(p, "encode")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqgen.data.conditions import ConditionedDataset, parse_condition_fields
    from vqgen.data.shards import encode_dataset
    from vqgen.loading import load_tokenizer
    from vqgen.media import medium_of

    fields = None if args.condition_fields is None else parse_condition_fields(args.condition_fields)
    tokenizer = load_tokenizer(args.tokenizer)
    medium = medium_of(tokenizer)
    refuse_foreign_flags(args, medium, "encode", "{} tokenizers")
    jitter = {k: v for k, v in medium_options(args, medium, "encode").items() if v is not None}
    channels = tokenizer.config.in_channels
    dataset = load_data(args, medium, args.split, channels, strict=args.strict, tokenizer=tokenizer)
    if fields:
        dataset = ConditionedDataset(dataset, fields)
    tokenizer.code_grid(medium.item_shape(dataset))
    manifest = encode_dataset(
        tokenizer,
        dataset,
        args.output,
        batch_size=args.batch_size,
        augment_copies=args.augment_copies,
        seed=args.seed,
        source=f"{args.data} ({args.split})",
        progress=not args.no_progress,
        num_levels=args.levels,
        augment_options=jitter,
    )
    grid = "x".join(str(g) for g in manifest["code_grid"])
    conditions = manifest.get("condition_fields")
    described = "; ".join(f"{name}: {len(values)} values" for name, values in (conditions or {}).items())
    print(
        f"wrote {manifest['num_items']} code grids of {grid} ({manifest['codebook_size']} codes) to {args.output}"
        + (f" with condition fields ({described})" if described else "")
    )
