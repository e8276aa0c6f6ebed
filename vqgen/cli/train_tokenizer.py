"""``vqgen train-tokenizer``: train a tokenizer (stage one) of any medium with Accelerate."""

from __future__ import annotations

import argparse

from vqgen.cli.common import (
    add_dataclass_flags,
    add_medium_flags,
    dataclass_from_args,
    int_list,
    load_data,
    positive_int,
)
from vqgen.errors import ConfigError
from vqgen.media.base import media, medium_names


def add_parser(sub) -> None:
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions

    p = sub.add_parser("train-tokenizer", help="train a tokenizer (stage one) with Accelerate")
    p.add_argument(
        "--modality",
        choices=medium_names(),
        default=None,
        help="the medium to train on; default: inferred from --data (the demo set's, or the medium most of the "
        "folder's files are)",
    )
    demos = ", ".join(name for medium in media() for name in medium.demo_datasets)
    p.add_argument("--data", required=True, help=f"a folder of media files, or one of {demos}")
    p.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="image size in pixels, every image resized to it (centre crop); default: an image folder's own "
        "size (its images must then share one). Video folders need it",
    )
    p.add_argument(
        "--channels",
        type=int,
        default=None,
        help="1 (grey) or 3 (RGB); default: the data's. Audio: 1 (mono, the default) or 2 (stereo)",
    )
    p.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable file instead of skipping it"
    )
    p.add_argument("--tokenizer-config", default=None, help="JSON file with ImageTokenizer arguments")
    p.add_argument("--base-channels", type=int, default=None, help="default 64 (image, video), 32 (audio)")
    p.add_argument("--channel-multipliers", type=int_list, default=[1, 2, 2])
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--latent-channels", type=int, default=64)
    _add_quantizer_flags(p)
    add_medium_flags(p, "train-tokenizer")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="TOKENIZER",
        help="start from a saved tokenizer of this modality (fine-tuning), or for video from an image "
        "tokenizer (2-D kernels inflated into 3-D); its config replaces the architecture flags",
    )
    p.add_argument(
        "--decoder-only",
        action="store_true",
        help="with --init-from: train the decoder alone; the encoder and codebook stay as they are, so every "
        "input keeps its codes and priors made on them stay valid (e.g. an adversarial fine-tune)",
    )
    add_medium_flags(p, "train-tokenizer data")
    add_dataclass_flags(
        p, TrainingOptions, defaults={"output": None, "learning_rate": 1e-3, "max_steps": 2000}
    )
    # unset: the medium's default for the tokenizer (audio: spectral 1; sample-wise 0 for phase-free codecs)
    add_dataclass_flags(
        p, TokenizerLossOptions, defaults={"reconstruction_weight": None, "spectral_weight": None}
    )
    p.set_defaults(func=run, required_output=True)


def _add_quantizer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quantizer",
        choices=["vq", "fsq", "rvq"],
        default=None,
        help="default vq (image, video), rvq (audio)",
    )
    p.add_argument(
        "--codebook-size",
        type=int,
        default=None,
        help="codes per codebook (level); default 256 (image, video), 1024 (audio)",
    )
    p.add_argument("--codebook-dim", type=int, default=None)
    p.add_argument("--beta", type=float, default=0.25)
    p.add_argument("--ema-codebook", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--kmeans-init", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--dead-code-threshold", type=int, default=50)
    p.add_argument("--l2-normalize", action="store_true", help="choose codes by cosine similarity")
    p.add_argument(
        "--learned-code-norms",
        action="store_true",
        help="with --l2-normalize: each code keeps its own length, as in DAC (unit codes add fixed-length vectors)",
    )
    p.add_argument(
        "--rotation-trick",
        action="store_true",
        help="gradients through the quantizer by the rotation trick (Fifty et al. 2024), not straight-through",
    )
    p.add_argument(
        "--simvq",
        action="store_true",
        help="SimVQ (Zhu et al. 2024): codes are a learned linear map of a frozen basis (needs --no-ema-codebook)",
    )
    p.add_argument(
        "--input-space-weight",
        type=float,
        default=None,
        help="with --codebook-dim: weight of a VQ loss in the encoder's space, so residual levels refine (try 1)",
    )
    p.add_argument("--fsq-levels", type=int_list, default=[8, 5, 5, 5])
    p.add_argument(
        "--num-levels",
        "--num-quantizers",
        dest="num_quantizers",
        type=positive_int,
        default=None,
        help="rvq: residual levels (default 2; audio 4)",
    )
    p.add_argument(
        "--quantizer-dropout",
        type=float,
        default=None,
        help="rvq: probability of training with fewer levels (default 0; audio 0.5: one model, many bitrates)",
    )


def run(args: argparse.Namespace) -> None:
    from accelerate.utils import set_seed

    from vqgen.media import TokenizerSettings, build_tokenizer, get_medium, infer_medium, start_tokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions, loss_options_for, train_tokenizer

    medium = get_medium(args.modality) if args.modality else infer_medium(args.data)
    if not args.modality:
        print(f"modality: {medium.name} (inferred from --data; pass --modality to choose)")
    settings = dataclass_from_args(TokenizerSettings, args)
    medium.check_settings(settings)
    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    given_losses = vars(dataclass_from_args(TokenizerLossOptions, args))
    if args.decoder_only and args.init_from is None:
        raise ConfigError("--decoder-only fine-tunes a trained tokenizer's decoder: give it with --init-from")
    start = None if args.init_from is None else start_tokenizer(medium, args.init_from, settings)
    train = load_data(args, medium, "train", args.channels, strict=args.strict)
    held_out = load_data(args, medium, "test", args.channels) if args.data.startswith("demo:") else None
    channels = args.channels or train.channels
    set_seed(options.seed)  # the initial weights follow --seed too
    if start is not None and start.config.in_channels != channels:
        raise ConfigError(
            f"--init-from '{args.init_from}' takes {start.config.in_channels} channels, the data has {channels}"
        )
    tokenizer = (
        start if start is not None else build_tokenizer(medium, settings, channels, args.tokenizer_config)
    )
    medium.check_training_data(tokenizer, train)
    if not tokenizer.trains_by_gradient:
        fit_without_gradient(tokenizer, train, options, args)
        return
    loss_options = loss_options_for(tokenizer, **given_losses)
    preview = medium.reconstruction_preview(train)
    train_tokenizer(
        tokenizer,
        train,
        options,
        loss_options,
        eval_dataset=held_out,
        save_preview=preview,
        decoder_only=args.decoder_only,
    )
    print(f"saved tokenizer to {options.output}")


def fit_without_gradient(tokenizer, train, options, args: argparse.Namespace) -> None:
    """A tokenizer without gradient weights (``--frontend parametric-harmonic``): its codebooks are fitted by
    k-means on every training item (``vqgen.training.codebooks.fit_codebooks``); the step, rate and loss
    flags do not apply."""
    from vqgen.training.codebooks import fit_codebooks

    if args.decoder_only:
        raise ConfigError("--decoder-only needs a decoder with weights; this tokenizer's synthesis has none")
    report = fit_codebooks(tokenizer, train, options.output, seed=options.seed, progress=options.progress)
    rms = ", ".join(f"{r:.3f}" for r in report["residual_rms"])
    print(
        f"fitted {len(report['residual_rms'])} codebooks by k-means on {report['frames']} frames in "
        f"{report['seconds']:.0f} s (residual RMS by level: {rms})"
    )
    print(f"saved tokenizer to {options.output}")
