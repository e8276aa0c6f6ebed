"""``vqgen train-prior``: train a code prior (stage two) on code shards and save the pipeline it makes."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.cli.common import add_dataclass_flags, add_medium_flags, dataclass_from_args, medium_options


def add_parser(sub) -> None:
    from vqgen.training.common import TrainingOptions

    p = sub.add_parser("train-prior", help="train a code prior (stage two) on code shards with Accelerate")
    p.add_argument("--shards", required=True, help="training shards from vqgen encode")
    p.add_argument(
        "--val-shards", default=None, help="held-out shards for the validation loss (bits per token)"
    )
    p.add_argument("--tokenizer", required=True, help="the tokenizer that made the shards")
    p.add_argument(
        "--unconditional",
        action="store_true",
        help="ignore labels, train an unconditional prior (default: conditioned on the shards' class folders, "
        "or on their condition fields from vqgen encode --condition-fields)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="warm start: a saved prior or pipeline folder whose weights and size this run trains further "
        "(fresh optimizer and schedule; --resume continues a run exactly instead)",
    )
    p.add_argument("--hidden-size", type=int, default=None, help="default 256 (with --init-from: its own)")
    p.add_argument("--num-layers", type=int, default=None, help="default 6 (with --init-from: its own)")
    p.add_argument("--num-heads", type=int, default=None, help="default 8 (with --init-from: its own)")
    p.add_argument("--num-kv-heads", type=int, default=None)
    p.add_argument("--class-dropout", type=float, default=0.1)
    p.add_argument(
        "--balance-labels",
        type=float,
        default=0.0,
        help="draw the shards' classes in proportion to count ** (1 - B): 0 as they are (default), 1 every "
        "class equally often, 0.5 by the square root of its size",
    )
    p.add_argument(
        "--draw-fields",
        default=None,
        help="condition fields the saved pipeline draws when a call leaves them out, from the shards' value "
        "table (e.g. program: a note asked by family and pitch gets one of the family's training instruments)",
    )
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument(
        "--layout",
        choices=["raster", "flatten", "delay"],
        default=None,
        help="code order: default raster (images, video), delay (audio: MusicGen's level delay pattern)",
    )
    add_medium_flags(p, "train-prior")
    add_dataclass_flags(
        p, TrainingOptions, defaults={"output": None, "learning_rate": 3e-4, "max_steps": 3000}
    )
    p.set_defaults(func=run, required_output=True)


def run(args: argparse.Namespace) -> None:
    from accelerate.utils import set_seed

    from vqgen.data.conditions import parse_condition_fields
    from vqgen.data.shards import CodeShardDataset
    from vqgen.loading import load_tokenizer
    from vqgen.media import medium_of
    from vqgen.pipelines.assembly import prior_for_shards, sample_preview, save_pipeline, start_prior
    from vqgen.pipelines.base import process_state
    from vqgen.pipelines.condition_draws import check_condition_draws, condition_table
    from vqgen.training.common import TrainingOptions
    from vqgen.training.prior import train_prior

    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    tokenizer = load_tokenizer(args.tokenizer)
    medium = medium_of(tokenizer)
    train = CodeShardDataset(args.shards)
    train.check_tokenizer(tokenizer)
    val = None
    if args.val_shards:
        val = CodeShardDataset(args.val_shards)
        train.check_matches(val, tokenizer)
    set_seed(options.seed)  # the initial weights follow --seed too
    model = {
        k: getattr(args, k) for k in ("layout", "hidden_size", "num_layers", "num_heads", "num_kv_heads")
    }
    regularisation = {"class_dropout": args.class_dropout, "dropout": args.dropout}
    if args.init_from:
        prior = start_prior(
            args.init_from, train, medium, conditional=not args.unconditional, **regularisation, **model
        )
    else:  # flags left out take prior_for_shards' defaults
        given = {k: v for k, v in model.items() if v is not None}
        prior = prior_for_shards(train, medium, conditional=not args.unconditional, **regularisation, **given)
    draws = None
    if args.draw_fields:  # checked before training, not after it
        fields = parse_condition_fields(args.draw_fields)
        draws = {"fields": fields, "table": condition_table(train.field_labels, list(prior.condition_fields))}
        check_condition_draws(prior, draws)
    save_samples = sample_preview(tokenizer)
    prior = train_prior(
        prior, train, options, val_dataset=val, save_samples=save_samples, balance_labels=args.balance_labels
    )
    pipeline_dir = Path(options.output) / "pipeline"
    provenance = {
        "command": "vqgen train-prior",
        "shards": str(args.shards),
        "tokenizer": str(args.tokenizer),
        **({"init_from": str(args.init_from)} if args.init_from else {}),
        "options": {k: v for k, v in vars(options).items() if isinstance(v, (int, float, str, bool))},
        **({"balance_labels": args.balance_labels} if args.balance_labels else {}),
    }
    if process_state().is_main_process:  # under accelerate launch one process writes the folder
        names = train.condition_names if prior.is_conditional else None
        extra = medium_options(args, medium, "train-prior")
        if draws is not None:
            extra["condition_draws"] = draws
        save_pipeline(tokenizer, prior, pipeline_dir, provenance, condition_names=names, **extra)
        print(f"saved prior to {options.output} and the pipeline (tokenizer + prior) to {pipeline_dir}")
