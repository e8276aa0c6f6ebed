"""The ``vqgen`` command line. Every command is a thin layer over a vqgen function.

Errors vqgen raises on purpose (``VqgenError``) print as one line and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from vqgen.errors import ConfigError, VqgenError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_flags(
    parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = (), defaults=None
) -> None:
    """One flag per dataclass field, typed from its default; booleans become on/off switches."""
    defaults = defaults or {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        default = defaults.get(field.name, field.default)
        if isinstance(field.default, bool):
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, default=default)
        else:
            kind = type(field.default) if field.default is not None else float
            parser.add_argument(_flag(field.name), type=kind, default=default)


def dataclass_from_args(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


# ---------------------------------------------------------------- train-tokenizer


def _tokenizer_config(args: argparse.Namespace, channels: int) -> dict:
    if args.tokenizer_config:
        path = Path(args.tokenizer_config)
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read --tokenizer-config '{path}': {error}") from None
        config.setdefault("in_channels", channels)
        return {k: v for k, v in config.items() if not k.startswith("_")}
    if args.quantizer == "fsq":
        quantizer = {"type": "fsq", "levels": args.fsq_levels}
    else:
        quantizer = {
            "type": args.quantizer,
            "codebook_size": args.codebook_size,
            "codebook_dim": args.codebook_dim,
            "beta": args.beta,
            "ema": args.ema_codebook,
            "kmeans_init": args.kmeans_init,
            "dead_code_threshold": args.dead_code_threshold,
            "l2_normalize": args.l2_normalize,
        }
        if args.quantizer == "rvq":
            quantizer.update(num_quantizers=args.num_quantizers, quantizer_dropout=args.quantizer_dropout)
    return {
        "in_channels": channels,
        "base_channels": args.base_channels,
        "channel_multipliers": args.channel_multipliers,
        "num_res_blocks": args.num_res_blocks,
        "latent_channels": args.latent_channels,
        "quantizer_config": quantizer,
    }


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from vqgen.data.images import load_image_dataset
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer

    if args.modality != "image":
        raise ConfigError(f"--modality {args.modality} is not available yet; use --modality image")
    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    loss_options = dataclass_from_args(TokenizerLossOptions, args)
    resolution = args.resolution
    train = load_image_dataset(
        args.data, "train", resolution=resolution, channels=args.channels, strict=args.strict
    )
    held_out = None
    if args.data.startswith("demo:"):
        held_out = load_image_dataset(args.data, "test", resolution=resolution, channels=args.channels)
    channels = args.channels or train.channels
    tokenizer = ImageTokenizer(**_tokenizer_config(args, channels))
    tokenizer.code_grid((channels, *train.resolution))
    train_tokenizer(
        tokenizer, train, options, loss_options, eval_dataset=held_out, save_preview=_save_preview
    )
    print(f"saved tokenizer to {options.output}")


def _save_preview(originals, reconstructions, path: Path) -> None:
    """Originals on the left half of each row pair, reconstructions beside them, as one PNG grid."""
    import torch

    from vqgen.io import make_grid, save_image, to_uint8_images

    pairs = torch.stack([originals.float().cpu(), reconstructions.float().cpu()], dim=1).flatten(0, 1)
    save_image(make_grid(to_uint8_images(pairs), nrow=8), path)


# ---------------------------------------------------------------- evaluate-tokenizer


def cmd_evaluate_tokenizer(args: argparse.Namespace) -> None:
    from vqgen.data.images import load_image_dataset
    from vqgen.evaluation.tokenizer import evaluate_tokenizer, plot_code_usage, print_table, write_results
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    channels = tokenizer.config.in_channels
    dataset = load_image_dataset(args.data, args.split, resolution=args.resolution, channels=channels)
    results = evaluate_tokenizer(
        tokenizer, dataset, batch_size=args.batch_size, progress=not args.no_progress
    )
    print_table(results)
    output = Path(args.output) if args.output else Path(args.tokenizer) / f"evaluation-{args.split}.json"
    write_results(
        {**results, "tokenizer": str(args.tokenizer), "data": args.data, "split": args.split}, output
    )
    print(f"wrote {output}")
    if args.plot:
        plot_path = output.with_suffix(".png")
        plot_code_usage(results["code_counts"], plot_path)
        print(f"wrote {plot_path}")


# ---------------------------------------------------------------- info


def cmd_info(args: argparse.Namespace) -> None:
    import torch

    import vqgen

    print(
        f"vqgen {vqgen.__version__}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
    )
    if args.path:
        from vqgen.loading import read_config

        print(json.dumps(read_config(args.path), indent=2))


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions

    parser = argparse.ArgumentParser(prog="vqgen", description="Generative media with discrete tokens.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-tokenizer", help="train a tokenizer (stage one) with Accelerate")
    p.add_argument("--modality", choices=["image", "video", "audio"], default="image")
    p.add_argument("--data", required=True, help="a folder of media files, or demo:mnist")
    p.add_argument("--resolution", type=int, default=None, help="image size (required for folders)")
    p.add_argument("--channels", type=int, default=None, help="1 (grey) or 3 (RGB); default: the data's")
    p.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable file instead of skipping it"
    )
    p.add_argument("--tokenizer-config", default=None, help="JSON file with ImageTokenizer arguments")
    p.add_argument("--base-channels", type=int, default=64)
    p.add_argument("--channel-multipliers", type=_int_list, default=[1, 2, 2])
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--latent-channels", type=int, default=64)
    p.add_argument("--quantizer", choices=["vq", "fsq", "rvq"], default="vq")
    p.add_argument("--codebook-size", type=int, default=256)
    p.add_argument("--codebook-dim", type=int, default=None)
    p.add_argument("--beta", type=float, default=0.25)
    p.add_argument("--ema-codebook", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--kmeans-init", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--dead-code-threshold", type=int, default=50)
    p.add_argument("--l2-normalize", action="store_true")
    p.add_argument("--fsq-levels", type=_int_list, default=[8, 5, 5, 5])
    p.add_argument("--num-quantizers", type=int, default=2)
    p.add_argument("--quantizer-dropout", type=float, default=0.0)
    add_dataclass_flags(
        p, TrainingOptions, defaults={"output": None, "learning_rate": 1e-3, "max_steps": 2000}
    )
    add_dataclass_flags(p, TokenizerLossOptions)
    p.set_defaults(func=cmd_train_tokenizer, required_output=True)

    p = sub.add_parser("evaluate-tokenizer", help="PSNR, SSIM, codebook usage and bits per pixel on a split")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--output", default=None, help="JSON path (default: TOKENIZER/evaluation-SPLIT.json)")
    p.add_argument("--plot", action="store_true", help="also write a codebook-usage histogram PNG")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate_tokenizer)

    p = sub.add_parser("info", help="versions, and the config of a saved model folder")
    p.add_argument("path", nargs="?")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "required_output", False) and not args.output:
        parser.error("--output is required")
    try:
        args.func(args)
    except VqgenError as error:
        if args.debug:
            raise
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
