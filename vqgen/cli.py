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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
    from accelerate.utils import set_seed

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
    set_seed(options.seed)  # the initial weights follow --seed too
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


# ---------------------------------------------------------------- encode


def cmd_encode(args: argparse.Namespace) -> None:
    from vqgen.data.images import load_image_dataset
    from vqgen.data.shards import encode_dataset
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    channels = tokenizer.config.in_channels
    dataset = load_image_dataset(
        args.data, args.split, resolution=args.resolution, channels=channels, strict=args.strict
    )
    manifest = encode_dataset(
        tokenizer,
        dataset,
        args.output,
        batch_size=args.batch_size,
        augment_copies=args.augment_copies,
        seed=args.seed,
        source=f"{args.data} ({args.split})",
        progress=not args.no_progress,
    )
    grid = "x".join(str(g) for g in manifest["code_grid"])
    print(
        f"wrote {manifest['num_items']} code grids of {grid} ({manifest['codebook_size']} codes) to {args.output}"
    )


# ---------------------------------------------------------------- train-prior


def cmd_train_prior(args: argparse.Namespace) -> None:
    from accelerate.utils import set_seed

    from vqgen.data.shards import CodeShardDataset
    from vqgen.loading import load_tokenizer
    from vqgen.pipelines.image import ImagePipeline
    from vqgen.priors.prior import CodePrior
    from vqgen.training.common import TrainingOptions
    from vqgen.training.prior import train_prior

    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    tokenizer = load_tokenizer(args.tokenizer)
    train = CodeShardDataset(args.shards)
    train.check_tokenizer(tokenizer)
    val = None
    if args.val_shards:
        val = CodeShardDataset(args.val_shards)
        train.check_matches(val)
    num_classes = 0 if args.unconditional else train.num_classes
    set_seed(options.seed)  # the initial weights follow --seed too
    prior = CodePrior(
        codebook_size=train.codebook_size,
        code_grid=list(train.code_grid),
        num_classes=num_classes,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        num_kv_heads=args.num_kv_heads,
        class_dropout=args.class_dropout,
        dropout=args.dropout,
    )
    train.check_prior(prior)

    def save_samples(model, path: Path) -> None:
        import torch

        from vqgen.io import make_grid, save_image, to_uint8_images

        labels = [i % num_classes for i in range(16)] if num_classes else None
        codes = model.sample(
            16,
            class_labels=labels,
            guidance_scale=3.0 if num_classes else 1.0,
            generator=torch.Generator().manual_seed(0),
        )
        images = tokenizer.decode(codes.to(tokenizer.device)).float().clamp(-1, 1)
        save_image(make_grid(to_uint8_images(images), nrow=8), path)

    prior = train_prior(prior, train, options, val_dataset=val, save_samples=save_samples)
    pipeline_dir = Path(options.output) / "pipeline"
    ImagePipeline(tokenizer, prior.eval()).save_pretrained(str(pipeline_dir))
    print(f"saved prior to {options.output} and the pipeline (tokenizer + prior) to {pipeline_dir}")


# ---------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> None:
    import torch
    from tqdm.auto import tqdm

    from vqgen.io import make_grid, save_image, save_images
    from vqgen.pipelines.loading import load_pipeline

    output = Path(args.output)
    is_file = output.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    if output.suffix and not is_file:
        raise ConfigError(f"--output '{output}' must be an image file (.png, .jpg, .webp) or a directory")
    pipe = load_pipeline(args.pipeline or args.modality)
    labels = args.class_label
    if labels and len(labels) not in (1, args.num_samples):
        raise ConfigError(
            f"--class-label takes one label or one per sample ({args.num_samples}), got {len(labels)}"
        )
    if labels and len(labels) == 1:
        labels = labels * args.num_samples
    if labels is None and pipe.num_classes and not args.unconditional:
        labels = [i % pipe.num_classes for i in range(args.num_samples)]  # a grid that shows every class
    guidance = args.guidance_scale
    generator = torch.Generator().manual_seed(args.seed)
    chunks = []
    batch = args.batch_size
    for start in tqdm(
        range(0, args.num_samples, batch),
        desc="generate",
        unit="batch",
        disable=args.num_samples <= batch or args.no_progress,
    ):
        count = min(batch, args.num_samples - start)
        out = pipe(
            num_samples=count,
            class_labels=labels[start : start + count] if labels else None,
            guidance_scale=guidance,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=generator,
            output_type="np",
            batch_size=batch,
        )
        chunks.append(out.images)
    import numpy as np

    images = np.concatenate(chunks)
    from vqgen.pipelines.base import process_state

    if not process_state().is_main_process:  # under accelerate launch every process holds all samples
        return
    if is_file:
        save_image(make_grid(images, nrow=args.nrow), output)
        print(f"wrote a grid of {len(images)} images to {output}")
    else:
        paths = save_images(images, output)
        print(f"wrote {len(paths)} images to {output}/")


# ---------------------------------------------------------------- score


def cmd_score(args: argparse.Namespace) -> None:
    from vqgen.data.images import load_image_dataset
    from vqgen.evaluation.likelihood import plot_scores, score_dataset, write_scores
    from vqgen.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    channels, height, width = pipe.sample_shape
    dataset = load_image_dataset(args.data, args.split, resolution=(height, width), channels=channels)
    rows = score_dataset(
        pipe, dataset, batch_size=args.batch_size, conditional=args.conditional, progress=not args.no_progress
    )
    write_scores(rows, args.output)
    print(
        f"wrote {len(rows)} scores to {args.output} (most anomalous first: {rows[0]['item']}, "
        f"{rows[0]['bits_per_dim']:.4f} bits per dim)"
    )
    if args.plot:
        plot_path = Path(args.output).with_suffix(".png")
        plot_scores(rows, dataset, plot_path, top_k=args.top_k)
        print(f"wrote {plot_path}")


# ---------------------------------------------------------------- compress / decompress


def cmd_compress(args: argparse.Namespace) -> None:
    from vqgen.io import atomic_write_bytes
    from vqgen.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    data = pipe.compress(args.input, class_labels=args.class_label)
    atomic_write_bytes(args.output, data)
    size = Path(args.input).stat().st_size
    print(f"wrote {args.output}: {len(data)} bytes ({size} bytes in)")


def cmd_decompress(args: argparse.Namespace) -> None:
    from vqgen.errors import DataError
    from vqgen.io import save_image, to_uint8_images
    from vqgen.pipelines.loading import load_pipeline

    path = Path(args.input)
    if not path.is_file():
        raise DataError(f"compressed file '{path}' does not exist")
    pipe = load_pipeline(args.pipeline)
    media = pipe.decompress(path.read_bytes())
    if media.shape[0] != 1:
        raise ConfigError(
            f"'{path}' holds {media.shape[0]} images; decompress it from Python with pipe.decompress"
        )
    save_image(to_uint8_images(media)[0], args.output)
    print(f"wrote {args.output}")


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

    p = sub.add_parser("encode", help="encode a data set into code shards for prior training")
    p.add_argument("--tokenizer", required=True, help="a tokenizer folder (save_pretrained)")
    p.add_argument("--data", required=True, help="a folder of images, or demo:mnist")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--strict", action="store_true")
    p.add_argument("--output", required=True, help="the shard folder to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--augment-copies", type=int, default=0, help="jittered copies of each item to add")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("train-prior", help="train a code prior (stage two) on code shards with Accelerate")
    p.add_argument("--shards", required=True, help="training shards from vqgen encode")
    p.add_argument(
        "--val-shards", default=None, help="held-out shards for the validation loss (bits per token)"
    )
    p.add_argument("--tokenizer", required=True, help="the tokenizer that made the shards")
    p.add_argument("--unconditional", action="store_true", help="ignore labels, train an unconditional prior")
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--num-layers", type=int, default=6)
    p.add_argument("--num-heads", type=int, default=8)
    p.add_argument("--num-kv-heads", type=int, default=None)
    p.add_argument("--class-dropout", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.0)
    add_dataclass_flags(
        p, TrainingOptions, defaults={"output": None, "learning_rate": 3e-4, "max_steps": 3000}
    )
    p.set_defaults(func=cmd_train_prior, required_output=True)

    p = sub.add_parser("generate", help="generate media from a pipeline (default: the shipped one)")
    p.add_argument("modality", choices=["image"], help="what to generate")
    p.add_argument("--pipeline", default=None, help="a pipeline folder (default: the shipped default)")
    p.add_argument("--num-samples", type=_positive_int, default=16)
    p.add_argument("--class-label", type=int, nargs="+", default=None, help="one label, or one per sample")
    p.add_argument("--unconditional", action="store_true", help="sample from the null class, no labels")
    p.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="classifier-free guidance (default: 3 with class labels, 1 without)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--nrow", type=_positive_int, default=None, help="images per row of a grid output")
    p.add_argument("--output", required=True, help="a .png grid, or a directory for one PNG per sample")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="likelihood of every item under a pipeline (anomaly scores), as CSV")
    p.add_argument("--pipeline", default="image", help="a pipeline folder (default: the shipped one)")
    p.add_argument("--data", required=True, help="a folder of images, or demo:mnist")
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--output", required=True, help="the CSV to write, one row per item, most anomalous first")
    p.add_argument("--conditional", action="store_true", help="score each item under its own class label")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--plot", action="store_true", help="also write a histogram PNG with the top anomalies")
    p.add_argument("--top-k", type=_positive_int, default=8, help="anomalies shown in the plot")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("compress", help="entropy-code an image with a pipeline's prior (.vqz)")
    p.add_argument("--pipeline", default="image", help="a pipeline folder (default: the shipped one)")
    p.add_argument("--input", required=True, help="an image file of the pipeline's size")
    p.add_argument("--output", required=True, help="the .vqz file to write")
    p.add_argument(
        "--class-label", type=int, default=None, help="code under this class (default: null class)"
    )
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode a .vqz file back to an image")
    p.add_argument("--pipeline", default="image", help="the pipeline that compressed it")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help="an image file (.png)")
    p.set_defaults(func=cmd_decompress)

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
