"""The ``vqgen`` command line. Every command is a thin layer over a vqgen function.

Errors vqgen raises on purpose (``VqgenError``) print as one line and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_video_data_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that shape video clips (used with video tokenizers and --modality video)."""
    from vqgen.data.video import DEFAULT_VIDEO_FRAMES

    parser.add_argument(
        "--frames",
        type=_positive_int,
        default=None,
        help=f"video: frames per clip, 1 + n * temporal factor (default {DEFAULT_VIDEO_FRAMES})",
    )
    parser.add_argument(
        "--fps", type=_positive_float, default=None, help="video: resample clips to this frame rate"
    )


def _add_audio_data_flags(parser: argparse.ArgumentParser, sample_rate: bool = False) -> None:
    """Flags that shape audio clips (used with audio tokenizers and --modality audio)."""
    if sample_rate:
        parser.add_argument(
            "--sample-rate",
            type=_positive_int,
            default=16000,
            help="audio: resample every file to this rate (Hz)",
        )
    parser.add_argument(
        "--segment-seconds",
        type=_positive_float,
        default=1.0,
        help="audio: seconds per clip (longer files are cropped, shorter ones zero-padded; default 1)",
    )


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


# ---------------------------------------------------------------- data sets per modality


def _load_dataset(
    args: argparse.Namespace,
    modality: str,
    split: str,
    channels: int | None,
    strict: bool = False,
    sample_rate: int | None = None,
):
    """The data set of ``--data`` for ``modality``, with the flags that apply to it (audio: at ``sample_rate``,
    by default ``--sample-rate``)."""
    from vqgen.data.images import load_image_dataset

    if modality == "image":
        return load_image_dataset(
            args.data, split, resolution=args.resolution, channels=channels, strict=strict
        )
    if modality == "video":
        from vqgen.data.video import load_video_dataset

        return load_video_dataset(
            args.data, split, args.resolution, channels, args.frames, args.fps, strict=strict
        )
    if modality == "audio":
        from vqgen.data.audio import load_audio_dataset

        rate = sample_rate or getattr(args, "sample_rate", None)
        return load_audio_dataset(args.data, split, rate, channels, args.segment_seconds, strict=strict)
    raise ConfigError(f"--modality {modality} is not available; use --modality image, video or audio")


def _tokenizer_modality(tokenizer) -> str:
    """``image`` / ``video`` / ``audio`` from a tokenizer's class."""
    return type(tokenizer).__name__.removesuffix("Tokenizer").lower()


def _media_shape(dataset) -> tuple[int, ...]:
    """Shape of one item's media (``pixels``, ``video`` or ``audio``)."""
    from vqgen.training.tokenizer import media_key

    item = dataset[0]
    return tuple(item[media_key(item)].shape)


# ---------------------------------------------------------------- train-tokenizer


def _tokenizer_config(args: argparse.Namespace, channels: int) -> dict:
    if args.tokenizer_config:
        path = Path(args.tokenizer_config)
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read --tokenizer-config '{path}': {error}") from None
        config.setdefault("in_channels", channels)
        if args.modality == "audio":
            config.setdefault("sample_rate", args.sample_rate)
        return {k: v for k, v in config.items() if not k.startswith("_")}
    audio = args.modality == "audio"
    kind = args.quantizer or ("rvq" if audio else "vq")  # audio: residual levels, one model at many bitrates
    if args.num_quantizers is not None and kind != "rvq":
        raise ConfigError(f"--num-levels / --num-quantizers need --quantizer rvq, got --quantizer {kind}")
    if kind == "fsq":
        quantizer = {"type": "fsq", "levels": args.fsq_levels}
    else:
        quantizer = {
            "type": kind,
            "codebook_size": args.codebook_size,
            "codebook_dim": args.codebook_dim,
            "beta": args.beta,
            "ema": args.ema_codebook,
            "kmeans_init": args.kmeans_init,
            "dead_code_threshold": args.dead_code_threshold,
            "l2_normalize": args.l2_normalize,
        }
        if args.learned_code_norms:  # only when asked: older configs stay byte-identical
            quantizer["learned_code_norms"] = True
        if args.input_space_weight:
            quantizer["input_space_weight"] = args.input_space_weight
        if kind == "rvq":
            dropout = args.quantizer_dropout
            quantizer.update(
                num_quantizers=args.num_quantizers or (4 if audio else 2),
                quantizer_dropout=(0.5 if audio else 0.0) if dropout is None else dropout,
            )
    if audio:
        config = {
            "in_channels": channels,
            "sample_rate": args.sample_rate,
            "strides": args.strides,
            "base_channels": args.base_channels or 32,
            "latent_channels": args.latent_channels,
            "causal": args.causal,
            "quantizer_config": quantizer,
        }
        # only when given: the tokenizer's own defaults apply otherwise
        config.update({k: v for k, v in (("norm", args.norm), ("activation", args.activation)) if v})
        return config
    config = {
        "in_channels": channels,
        "base_channels": args.base_channels or 64,
        "channel_multipliers": args.channel_multipliers,
        "num_res_blocks": args.num_res_blocks,
        "latent_channels": args.latent_channels,
        "quantizer_config": quantizer,
    }
    if args.modality == "video":
        config["temporal_factor"] = args.temporal_factor
    return config


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from accelerate.utils import set_seed

    from vqgen.tokenizers.audio import AudioTokenizer
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.tokenizers.video import VideoTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer

    classes = {"image": ImageTokenizer, "video": VideoTokenizer, "audio": AudioTokenizer}
    if args.modality not in classes:
        raise ConfigError(
            f"--modality {args.modality} is not available; use --modality image, video or audio"
        )
    if args.modality != "audio" and (args.norm or args.activation):
        raise ConfigError(f"--norm and --activation shape the audio codec, not a {args.modality} tokenizer")
    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    loss_options = dataclass_from_args(TokenizerLossOptions, args)
    start = None if args.init_from is None else _initial_tokenizer(args, classes[args.modality])
    train = _load_dataset(args, args.modality, "train", args.channels, strict=args.strict)
    held_out = None
    if args.data.startswith("demo:"):
        held_out = _load_dataset(args, args.modality, "test", args.channels)
    channels = args.channels or train.channels
    set_seed(options.seed)  # the initial weights follow --seed too
    if start is not None:
        if start.config.in_channels != channels:
            raise ConfigError(
                f"--init-from '{args.init_from}' takes {start.config.in_channels} channels, the data has {channels}"
            )
        tokenizer = start
    else:
        tokenizer = classes[args.modality](**_tokenizer_config(args, channels))
    tokenizer.code_grid(_media_shape(train))
    preview = _save_preview
    if args.modality == "audio":
        if tokenizer.config.sample_rate != train.sample_rate:
            raise ConfigError(
                f"the tokenizer (--tokenizer-config / --init-from) has sample_rate {tokenizer.config.sample_rate}, "
                f"the data is read at --sample-rate {train.sample_rate}: make them agree"
            )
        preview = functools.partial(_save_audio_preview, sample_rate=train.sample_rate)
    train_tokenizer(tokenizer, train, options, loss_options, eval_dataset=held_out, save_preview=preview)
    print(f"saved tokenizer to {options.output}")


def _initial_tokenizer(args: argparse.Namespace, cls):
    """``--init-from``: a saved tokenizer of the modality's class, trained further from its weights and
    config; for video also an ImageTokenizer, inflated into a VideoTokenizer."""
    from vqgen.loading import load_tokenizer
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.tokenizers.video import VideoTokenizer

    start = load_tokenizer(args.init_from)
    allowed = (cls, ImageTokenizer) if cls is VideoTokenizer else (cls,)
    if not isinstance(start, allowed):
        raise ConfigError(
            f"--init-from '{args.init_from}': found {type(start).__name__}; --modality {args.modality} "
            f"starts from: {', '.join(c.__name__ for c in allowed)}"
        )
    if isinstance(start, ImageTokenizer) and cls is VideoTokenizer:
        return VideoTokenizer.from_image_tokenizer(start, temporal_factor=args.temporal_factor)
    return start.float()


def _save_preview(originals, reconstructions, path: Path) -> None:
    """Originals on the left half of each row pair, reconstructions beside them, as one PNG grid.

    Video clips ``[B, C, T, H, W]``: one row of frames per clip, the original's row above its reconstruction.
    """
    import torch

    from vqgen.io import make_grid, save_image, to_uint8_images

    pairs = torch.stack([originals.float().cpu(), reconstructions.float().cpu()], dim=1).flatten(0, 1)
    if pairs.dim() == 5:
        save_image(_frame_grid(pairs[:16]), path)
        return
    save_image(make_grid(to_uint8_images(pairs), nrow=8), path)


def _save_audio_preview(originals, reconstructions, path: Path, sample_rate: int) -> None:
    """A WAV beside ``path``: each of the first 4 clips, then its reconstruction, with short silences between."""
    _save_audio_sequence(
        [clip for pair in zip(originals[:4], reconstructions[:4]) for clip in pair], path, sample_rate
    )


def _save_audio_sequence(clips, path: Path, sample_rate: int) -> None:
    """Float clips ``[C, S]`` -> one WAV (``path`` with suffix ``.wav``), 0.25 s of silence after each."""
    import torch

    from vqgen.io import save_audio

    gap = torch.zeros(clips[0].shape[0], sample_rate // 4)
    pieces = [piece for clip in clips for piece in (clip.float().cpu(), gap)]
    save_audio(torch.cat(pieces, dim=-1), Path(path).with_suffix(".wav"), sample_rate)


def _frame_grid(videos):
    """Float videos ``[N, C, T, H, W]`` -> one uint8 image, one row of ``T`` frames per video."""
    from vqgen.io import make_grid
    from vqgen.pipelines.video import to_uint8_videos

    frames = to_uint8_videos(videos.float().cpu())
    return make_grid(frames.reshape(-1, *frames.shape[2:]), nrow=frames.shape[1])


# ---------------------------------------------------------------- evaluate-tokenizer


def cmd_evaluate_tokenizer(args: argparse.Namespace) -> None:
    from vqgen.evaluation.audio_tokenizer import evaluate_audio_tokenizer, print_audio_table
    from vqgen.evaluation.tokenizer import evaluate_tokenizer, plot_code_usage, print_table, write_results
    from vqgen.evaluation.video import evaluate_video_tokenizer, print_video_table
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    modality = _tokenizer_modality(tokenizer)
    evaluators = {
        "image": (evaluate_tokenizer, print_table),
        "video": (evaluate_video_tokenizer, print_video_table),
        "audio": (evaluate_audio_tokenizer, print_audio_table),
    }
    if modality not in evaluators:
        raise ConfigError(f"evaluate-tokenizer does not take a {type(tokenizer).__name__} yet")
    evaluate, show = evaluators[modality]
    rate = getattr(tokenizer.config, "sample_rate", None)
    dataset = _load_dataset(args, modality, args.split, tokenizer.config.in_channels, sample_rate=rate)
    tokenizer.code_grid(_media_shape(dataset))
    results = evaluate(tokenizer, dataset, batch_size=args.batch_size, progress=not args.no_progress)
    show(results)
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
    from vqgen.data.shards import encode_dataset
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    channels = tokenizer.config.in_channels
    rate = getattr(tokenizer.config, "sample_rate", None)
    modality = _tokenizer_modality(tokenizer)
    dataset = _load_dataset(args, modality, args.split, channels, strict=args.strict, sample_rate=rate)
    tokenizer.code_grid(_media_shape(dataset))
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
    from vqgen.pipelines.base import process_state
    from vqgen.pipelines.loading import pipeline_class_for
    from vqgen.priors.prior import CodePrior
    from vqgen.training.common import TrainingOptions
    from vqgen.training.prior import train_prior

    options = dataclass_from_args(TrainingOptions, args)
    options.validate()
    tokenizer = load_tokenizer(args.tokenizer)
    pipeline_class = pipeline_class_for(tokenizer)
    video = _tokenizer_modality(tokenizer) == "video"
    pipeline_kwargs = {"fps": args.fps} if video else {}
    # Residual audio codes read best level-interleaved (MusicGen's delay pattern); images and video row-major.
    layout = args.layout or ("delay" if _tokenizer_modality(tokenizer) == "audio" else "raster")
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
        layout=layout,
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

        count = 8 if video else 16  # video clips show as rows of frames, images as a grid
        labels = [i % num_classes for i in range(count)] if num_classes else None
        codes = model.sample(
            count,
            class_labels=labels,
            guidance_scale=3.0 if num_classes else 1.0,
            generator=torch.Generator().manual_seed(0),
        )
        media = tokenizer.decode(codes.to(tokenizer.device)).float().clamp(-1, 1)
        if media.dim() == 5:
            save_image(_frame_grid(media), path)
        elif media.dim() == 3:  # audio: one WAV of all the clips
            _save_audio_sequence(list(media), path, tokenizer.config.sample_rate)
        else:
            save_image(make_grid(to_uint8_images(media), nrow=8), path)

    prior = train_prior(prior, train, options, val_dataset=val, save_samples=save_samples)
    pipeline_dir = Path(options.output) / "pipeline"
    provenance = {
        "command": "vqgen train-prior",
        "shards": str(args.shards),
        "tokenizer": str(args.tokenizer),
        "options": {k: v for k, v in vars(options).items() if isinstance(v, (int, float, str, bool))},
    }
    if process_state().is_main_process:  # under accelerate launch one process writes the folder
        pipeline_class(tokenizer, prior.eval(), **pipeline_kwargs).save_pretrained(
            str(pipeline_dir), provenance=provenance
        )
        print(f"saved prior to {options.output} and the pipeline (tokenizer + prior) to {pipeline_dir}")


# ---------------------------------------------------------------- generate


IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_OUTPUTS = (".wav", ".flac", ".ogg")
#: ``--format`` of the files ``generate`` writes into a directory, per modality (the first is the default).
DIRECTORY_FORMATS = {"video": ("mp4", "gif"), "audio": ("wav", "flac", "ogg")}


def _check_generate_output(modality: str, output: Path) -> None:
    """Refuse an ``--output`` suffix the modality cannot write, before any sampling."""
    from vqgen.io import VIDEO_WRITE_FORMATS

    suffixes = {"image": IMAGE_OUTPUTS, "video": VIDEO_WRITE_FORMATS, "audio": AUDIO_OUTPUTS}[modality]
    if output.suffix and output.suffix.lower() not in suffixes:
        article = "an" if modality[0] in "aeiou" else "a"
        raise ConfigError(
            f"--output '{output}' must be {article} {modality} file ({', '.join(suffixes)}) or a directory"
        )


def _write_images(args: argparse.Namespace, out, output: Path) -> None:
    from vqgen.io import make_grid, save_image, save_images

    images = out.images
    if output.suffix:
        save_image(make_grid(images, nrow=args.nrow), output)
        print(f"wrote a grid of {len(images)} images to {output}")
    else:
        paths = save_images(images, output)
        print(f"wrote {len(paths)} images to {output}/")


def _write_videos(args: argparse.Namespace, out, output: Path) -> None:
    """One video file (several samples tile a grid in every frame), or one file per sample in a folder."""
    import numpy as np

    from vqgen.io import make_grid, save_video

    videos, fps = out.videos, out.fps
    if output.suffix:
        if len(videos) > 1:
            videos = np.stack([make_grid(videos[:, t], nrow=args.nrow) for t in range(videos.shape[1])])[None]
        save_video(videos[0], output, fps=fps)
        what = "a video" if len(out.videos) == 1 else f"a grid of {len(out.videos)} videos"
        print(f"wrote {what} ({out.videos.shape[1]} frames at {fps:g} fps) to {output}")
    else:
        width = max(5, len(str(len(videos) - 1)))
        for index, clip in enumerate(videos):
            save_video(clip, output / f"sample_{index:0{width}d}.{args.format}", fps=fps)
        print(f"wrote {len(videos)} videos ({videos.shape[1]} frames at {fps:g} fps) to {output}/")


def _write_audios(args: argparse.Namespace, out, output: Path) -> None:
    """One file per sample: into a directory (``sample_00000.wav``, ...), or for several samples and a file path,
    beside it with an index suffix (``out.wav`` -> ``out_0.wav``, ``out_1.wav``, ...)."""
    from vqgen.io import save_audio

    audios, rate = out.audios, out.sample_rate
    width = max(5, len(str(len(audios) - 1))) if not output.suffix else len(str(len(audios) - 1))
    if output.suffix and len(audios) == 1:
        paths = [output]
    elif output.suffix:
        paths = [output.with_name(f"{output.stem}_{i:0{width}d}{output.suffix}") for i in range(len(audios))]
    else:
        paths = [output / f"sample_{i:0{width}d}.{args.format}" for i in range(len(audios))]
    for clip, path in zip(audios, paths):
        save_audio(clip, path, rate)
    seconds = audios.shape[-1] / rate
    where = (
        paths[0] if len(paths) == 1 else (f"{output}/" if not output.suffix else f"{paths[0]} .. {paths[-1]}")
    )
    print(
        f"wrote {len(paths)} audio clip{'s' if len(paths) > 1 else ''} ({seconds:.3g} s at {rate} Hz) to {where}"
    )


def cmd_generate(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from vqgen.pipelines.base import process_state
    from vqgen.pipelines.loading import load_pipeline

    output = Path(args.output)
    _check_generate_output(args.modality, output)
    extra = {}
    formats = DIRECTORY_FORMATS.get(args.modality, ())
    if args.format is not None and args.format not in formats:
        raise ConfigError(f"--format {args.format} does not work with 'generate {args.modality}'")
    args.format = args.format or (formats[0] if formats else None)
    from vqgen.priors.sampling_config import SamplingConfig

    sampling = SamplingConfig(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, guidance_scale=args.guidance_scale
    )
    if args.modality == "video":
        extra = {"num_frames": args.num_frames, "prompt_frames": args.prompt}
    elif args.modality == "audio":
        extra = {"audio_length_in_s": args.seconds, "prompt_audio": args.prompt}
    elif args.num_frames is not None or args.prompt is not None:
        raise ConfigError(
            "--num-frames and --prompt work with 'generate video' (and --prompt with audio) only"
        )
    if args.seconds is not None and args.modality != "audio":
        raise ConfigError("--seconds works with 'generate audio' only")
    if args.num_frames is not None and args.modality != "video":
        raise ConfigError("--num-frames works with 'generate video' only")
    device = _target_device(args.device)
    pipe = load_pipeline(args.pipeline or args.modality)
    if _pipeline_modality(pipe) != args.modality:
        raise ConfigError(
            f"the pipeline in '{args.pipeline}' ({type(pipe).__name__}) cannot generate {args.modality}"
        )
    pipe = _place_pipeline(pipe, device, args.dtype)
    if args.modality == "video":
        pipe.check_num_frames(args.num_frames)  # a bad count fails before any file is read
    if args.modality == "audio":
        pipe.check_length(args.seconds)
    # audio to one file path: one clip (more are written one file each, with an index suffix)
    default_samples = 1 if args.modality == "audio" and output.suffix else 4
    num_samples = args.num_samples or (16 if args.modality == "image" else default_samples)
    labels = args.class_label
    if labels and len(labels) not in (1, num_samples):
        raise ConfigError(
            f"--class-label takes one label or one per sample ({num_samples}), got {len(labels)}"
        )
    if labels and len(labels) == 1:
        labels = labels * num_samples
    if labels is None and pipe.num_classes and not args.unconditional:
        labels = [i % pipe.num_classes for i in range(num_samples)]  # a grid that shows every class
    # The generator lives on the pipeline's device: the sampler then never waits for noise from the host.
    generator = torch.Generator(pipe.device).manual_seed(args.seed)
    chunks, out = [], None
    batch = args.batch_size
    for start in tqdm(
        range(0, num_samples, batch),
        desc="generate",
        unit="batch",
        disable=num_samples <= batch or args.no_progress,
    ):
        count = min(batch, num_samples - start)
        out = pipe(
            num_samples=count,
            class_labels=labels[start : start + count] if labels else None,
            sampling=sampling,
            generator=generator,
            output_type="np",
            batch_size=batch,
            **extra,
        )
        key = next(iter(out.keys()))  # images / videos / audios
        chunks.append(out[key])
    state = process_state()
    if state.is_main_process:  # under accelerate launch every process holds all samples; one writes them
        out[key] = np.concatenate(chunks)  # BaseOutput sets the attribute too
        writers = {"image": _write_images, "video": _write_videos, "audio": _write_audios}
        writers[args.modality](args, out, output)
    if state.num_processes > 1:
        # Leave together: a process exiting while another still uses the group can abort it.
        state.wait_for_everyone()
        state.destroy_process_group()


def _target_device(device: str):
    """``--device`` as a ``torch.device`` (``auto``: this process's accelerator under Accelerate, or the GPU
    when one is present, else the CPU); one clear line for a device this machine does not have."""
    import torch

    from vqgen.pipelines.base import process_state

    if device == "auto":
        return process_state().device
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'") from None
    if target.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'")
    if target.type == "cuda" and (
        not torch.cuda.is_available() or (target.index or 0) >= torch.cuda.device_count()
    ):
        raise ConfigError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); use cpu or auto"
        )
    return target


def _place_pipeline(pipe, target, dtype: str):
    """``pipe`` on ``target`` in ``dtype`` (as loaded, with no cast, for the CPU in float32)."""
    import torch
    from diffusers.utils import logging as diffusers_logging

    torch_dtype = getattr(torch, dtype)
    if target.type == "cpu" and torch_dtype == torch.float32:
        return pipe
    # diffusers 0.42 warns about "modules to keep in float32" on every cast, even when there are none.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return pipe.to(target, torch_dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)


def _pipeline_modality(pipe) -> str:
    """``image`` / ``video`` / ``audio`` from a pipeline's class."""
    return type(pipe).__name__.removesuffix("Pipeline").lower()


# ---------------------------------------------------------------- reconstruct


def _read_image(args: argparse.Namespace, tokenizer, source: Path):
    """An image file -> (float ``[1, C, H, W]`` in [-1, 1], writer of the reconstruction)."""
    import torch

    from vqgen.io import load_image, save_image, to_uint8_images

    array = load_image(source, channels=tokenizer.config.in_channels)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    return x, lambda media, path: save_image(to_uint8_images(media)[0], path)


def _read_video(args: argparse.Namespace, tokenizer, source: Path):
    """A video file (its first ``--frames`` frames) -> (float ``[1, C, T, H, W]``, writer at the file's fps)."""
    import torch

    from vqgen.errors import ShapeError
    from vqgen.io import load_video, save_video
    from vqgen.pipelines.video import to_uint8_videos

    frames, fps = load_video(source, max_frames=args.frames, channels=tokenizer.config.in_channels)
    if args.frames and len(frames) < args.frames:
        raise ShapeError(f"'{source}' holds {len(frames)} frames, fewer than --frames {args.frames}")
    factor = tokenizer.temporal_factor
    if (len(frames) - 1) % factor:
        fit = 1 + (len(frames) - 1) // factor * factor
        raise ShapeError(
            f"'{source}' holds {len(frames)} frames; the tokenizer needs 1 + n * {factor} frames "
            f"(temporal factor {factor}): pass --frames {fit} to use the first {fit}"
        )
    x = torch.from_numpy(frames.copy()).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    return x, lambda media, path: save_video(to_uint8_videos(media)[0], path, fps=fps)


def _read_audio(args: argparse.Namespace, tokenizer, source: Path):
    """An audio file at any rate and channel count -> (float ``[1, C, S]`` resampled and mixed to the tokenizer,
    writer at the tokenizer's rate)."""
    import torch

    from vqgen.errors import ShapeError
    from vqgen.io import load_audio, save_audio

    rate, hop = int(tokenizer.config.sample_rate), tokenizer.downsample_factor
    array, _ = load_audio(source, sample_rate=rate, channels=tokenizer.config.in_channels)
    if array.shape[-1] == 0:
        raise ShapeError(f"'{source}' holds no audio samples")
    if array.shape[-1] < hop:
        raise ShapeError(
            f"'{source}' lasts {array.shape[-1]} samples at {rate} Hz, shorter than one code frame ({hop} samples)"
        )
    return torch.from_numpy(array)[None], lambda media, path: save_audio(media[0], path, rate)


#: Tokenizer modality -> (reader of an input file, output suffixes it writes).
RECONSTRUCT_READERS = {
    "image": (_read_image, IMAGE_OUTPUTS),
    "video": (_read_video, (".mp4", ".gif")),
    "audio": (_read_audio, AUDIO_OUTPUTS),
}


def _audio_round_trip_text(reconstruction, x, tokenizer, codes) -> str:
    from vqgen.evaluation.audio import mel_distance, si_sdr

    rate = int(tokenizer.config.sample_rate)
    return (
        f"{codes.shape[1]} of {tokenizer.num_levels} levels, {tokenizer.bitrate(codes.shape[1]) / 1000:.3g} kbit/s, "
        f"SI-SDR {float(si_sdr(reconstruction, x)[0]):.2f} dB, "
        f"mel distance {float(mel_distance(reconstruction, x, rate)[0]):.3f}"
    )


def cmd_reconstruct(args: argparse.Namespace) -> None:
    """``decode(encode(x))`` of one file, written beside the PSNR of the round trip."""
    import torch

    from vqgen.evaluation.metrics import psnr
    from vqgen.loading import load_tokenizer

    source, output = Path(args.input), Path(args.output)
    tokenizer = load_tokenizer(args.tokenizer)
    modality = _tokenizer_modality(tokenizer)
    if modality not in RECONSTRUCT_READERS:
        raise ConfigError(f"reconstruct does not take a {type(tokenizer).__name__} yet")
    read, suffixes = RECONSTRUCT_READERS[modality]
    if output.suffix.lower() not in suffixes:
        article = "an" if modality[0] in "aeiou" else "a"
        raise ConfigError(f"--output '{output}' must be {article} {modality} file ({', '.join(suffixes)})")
    if args.frames is not None and modality != "video":
        raise ConfigError("--frames works with video tokenizers only")
    levels = {}
    if args.levels is not None:
        if modality != "audio":
            raise ConfigError("--levels works with audio tokenizers only")
        if args.levels > tokenizer.num_levels:
            raise ConfigError(f"--levels {args.levels}: the tokenizer has {tokenizer.num_levels} levels")
        levels = {"num_levels": args.levels}
    x, write = read(args, tokenizer, source)
    tokenizer.code_grid(tuple(x.shape[1:]))  # a frame size or count it cannot take fails here, in one line
    with torch.no_grad():
        codes = tokenizer.encode(x.to(tokenizer.device, tokenizer.dtype), **levels)
        reconstruction = tokenizer.decode(codes).float().clamp(-1, 1).cpu()[..., : x.shape[-1]]
    write(reconstruction, output)
    grid = "x".join(str(g) for g in codes.shape[1:])
    if modality == "audio":
        print(f"wrote {output}: {grid} codes, {_audio_round_trip_text(reconstruction, x, tokenizer, codes)}")
        return
    print(f"wrote {output}: {grid} codes, PSNR {float(psnr(reconstruction, x)):.2f} dB")


# ---------------------------------------------------------------- score


def _score_dataset(args: argparse.Namespace, pipe):
    """The ``--data`` set shaped as ``pipe`` takes it: its channels and frame size; video clips of its frame
    count from the first frame (``--fps`` resamples them first); audio at its rate, the centre of each file cut
    (or zero-padded) to its clip length."""
    modality = _pipeline_modality(pipe)
    shape = pipe.sample_shape  # (C, H, W), (C, T, H, W) or (C, S)
    if modality == "video" and args.frames not in (None, pipe.max_frames):
        raise ConfigError(f"--frames {args.frames}: this pipeline scores clips of {pipe.max_frames} frames")
    if modality != "video" and (args.frames is not None or args.fps is not None):
        raise ConfigError("--frames and --fps work with video pipelines only")
    height, width = shape[-2:]
    options = argparse.Namespace(
        data=args.data,
        resolution=height if height == width else (height, width),
        frames=pipe.max_frames if modality == "video" else None,
        fps=args.fps,
        segment_seconds=pipe.max_samples / pipe.sample_rate if modality == "audio" else None,
    )
    rate = pipe.sample_rate if modality == "audio" else None
    return _load_dataset(options, modality, args.split, shape[0], sample_rate=rate)


def cmd_score(args: argparse.Namespace) -> None:
    """Bits per dim (and the likelihood ratio, with a background) of every item of ``--data`` under the
    pipeline, as CSV rows most anomalous first."""
    from vqgen.evaluation.likelihood import SCORE_NAMES, plot_scores, ranking_key, score_dataset, write_scores
    from vqgen.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    dataset = _score_dataset(args, pipe)
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


def cmd_fit_background(args: argparse.Namespace) -> None:
    """Fit a general-domain background prior on generic views of ``--data`` and save the pipeline with it."""
    import shutil

    from vqgen.evaluation.background import fit_background, generic_view_codes
    from vqgen.integrity import read_manifest
    from vqgen.io import atomic_path
    from vqgen.pipelines.loading import load_pipeline, pipeline_folder
    from vqgen.priors.prior import CodePrior
    from vqgen.training.common import collate

    pipe = load_pipeline(args.pipeline)
    if _pipeline_modality(pipe) != "image":
        raise ConfigError(
            f"fit-background works with image pipelines (its views rotate and warp 2-D images); "
            f"'{args.pipeline}' is a {type(pipe).__name__}"
        )
    # A bad model shape is refused before minutes of encoding (CodePrior checks it when built).
    CodePrior(
        pipe.tokenizer.codebook_size,
        list(pipe.prior.config.code_grid),
        hidden_size=args.hidden_size,
        num_layers=1,
        num_heads=args.num_heads,
    )
    channels, height, width = pipe.sample_shape
    options = argparse.Namespace(data=args.data, resolution=height if height == width else (height, width))
    dataset = _load_dataset(options, "image", args.split, channels)
    count = min(len(dataset), args.max_images)
    images = collate([dataset[i] for i in range(count)])["pixels"]
    codes = generic_view_codes(
        pipe.tokenizer, images, copies=args.copies, seed=args.seed, progress=not args.no_progress
    )
    background = fit_background(
        codes,
        pipe.tokenizer.codebook_size,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        seed=args.seed,
        progress=not args.no_progress,
    )
    pipe.set_background(background)
    source = pipeline_folder(args.pipeline)
    provenance = (read_manifest(source) or {}).get("provenance", {})
    provenance["background"] = {
        "command": "vqgen fit-background",
        "data": str(args.data),
        "images": count,
        **{k: getattr(args, k) for k in ("split", "copies", "steps", "batch_size", "learning_rate", "seed")},
        **{k: getattr(args, k) for k in ("hidden_size", "num_layers", "num_heads")},
    }
    with atomic_path(args.output) as temporary:
        pipe.save_pretrained(str(temporary), provenance=provenance)
        if (source / "README.md").is_file():  # the model card comes along
            shutil.copy(source / "README.md", Path(temporary) / "README.md")
    print(
        f"saved the pipeline with a background prior ({count} images x {args.copies} views) to {args.output}"
    )


# ---------------------------------------------------------------- compress / decompress

COMPRESSED_SUFFIX = ".vqz"
#: Audio files ``decompress`` writes: lossless, so the file holds the decoded clip (as 16-bit PCM).
LOSSLESS_AUDIO_OUTPUTS = (".wav", ".flac")


def _check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse a ``path`` whose suffix is not one of ``suffixes`` (checked before any work)."""
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"--output '{path}' must be {what} ({', '.join(suffixes)})")


def cmd_compress(args: argparse.Namespace) -> None:
    """Range-code one image, video or audio file (any form ``pipe.preprocess`` reads) into a ``.vqz`` file."""
    from vqgen.errors import DataError
    from vqgen.io import atomic_write_bytes
    from vqgen.pipelines.loading import load_pipeline

    source = Path(args.input)
    _check_suffix(Path(args.output), (COMPRESSED_SUFFIX,), "a compressed file")
    if not source.is_file():
        raise DataError(f"input file '{source}' does not exist")
    pipe = load_pipeline(args.pipeline)
    data = pipe.compress(source, class_labels=args.class_label)
    atomic_write_bytes(args.output, data)
    print(f"wrote {args.output}: {len(data)} bytes ({source.stat().st_size} bytes in)")


def _media_writer(pipe):
    """``(write(media, path), suffixes)`` for float media ``[1, *sample_shape]`` of ``pipe``'s medium: images as
    they are, videos at the pipeline's fps, audio at its sample rate."""
    from vqgen.io import VIDEO_WRITE_FORMATS, save_audio, save_image, save_video, to_uint8_images
    from vqgen.pipelines.video import to_uint8_videos

    modality = _pipeline_modality(pipe)
    suffixes = {"image": IMAGE_OUTPUTS, "video": VIDEO_WRITE_FORMATS, "audio": LOSSLESS_AUDIO_OUTPUTS}
    writers = {
        "image": lambda media, path: save_image(to_uint8_images(media)[0], path),
        "video": lambda media, path: save_video(to_uint8_videos(media)[0], path, fps=pipe.fps),
        "audio": lambda media, path: save_audio(media[0], path, pipe.sample_rate),
    }
    return writers[modality], suffixes[modality]


def cmd_decompress(args: argparse.Namespace) -> None:
    """A ``.vqz`` file -> the image, video or audio file it codes (exactly the tokenizer's reconstruction)."""
    from vqgen.errors import DataError
    from vqgen.pipelines.loading import load_pipeline

    path, output = Path(args.input), Path(args.output)
    if not path.is_file():
        raise DataError(f"compressed file '{path}' does not exist")
    pipe = load_pipeline(args.pipeline)
    write, suffixes = _media_writer(pipe)
    modality = _pipeline_modality(pipe)
    _check_suffix(output, suffixes, f"{'an' if modality[0] in 'aeiou' else 'a'} {modality} file")
    media = pipe.decompress(path.read_bytes())
    if media.shape[0] != 1:
        raise ConfigError(
            f"'{path}' holds {media.shape[0]} items; decompress it from Python with pipe.decompress"
        )
    write(media, output)
    print(f"wrote {output}")


# ---------------------------------------------------------------- info


def cmd_info(args: argparse.Namespace) -> None:
    import torch

    import vqgen

    print(
        f"vqgen {vqgen.__version__}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
    )
    if not args.path:
        return
    from pathlib import Path

    if (Path(args.path) / "model_index.json").is_file():
        from vqgen.integrity import describe_pipeline

        report = describe_pipeline(args.path)  # verifies the checksums: a tampered folder is an error
        print(f"{report['pipeline']} in {args.path}: checksums {report['checksums']}")
        for name, part in report["components"].items():
            print(f"  {name}: {part['class']}, {part['weight_bytes'] / 1e6:.2f} MB of weights")
        print(
            f"  code grid {report['code_grid']}, codebook {report['codebook_size']}, layout {report['layout']}, "
            f"{report['num_classes']} classes"
        )
        print(json.dumps({"provenance": report["provenance"], "components": report["components"]}, indent=2))
    else:
        from vqgen.loading import read_config

        print(json.dumps(read_config(args.path), indent=2))


# ---------------------------------------------------------------- data


def cmd_data_build(args: argparse.Namespace) -> None:
    """``vqgen data build spoken-digits``: synthesise the demo data set with espeak-ng (see ``vqgen.data``)."""
    from vqgen.data.spoken_digits import build_spoken_digits

    manifest = build_spoken_digits(
        args.output,
        sample_rate=args.sample_rate,
        progress=not args.no_progress,
        workers=args.workers,
        force=args.force,
    )
    counts = manifest.get("counts", {})
    clips = ", ".join(f"{counts[split]['clips']} {split}" for split in ("train", "test") if split in counts)
    where = args.output or "the default location (demo:spoken-digits)"
    print(f"spoken digits ready in {where}: {clips} clips")


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions

    parser = argparse.ArgumentParser(prog="vqgen", description="Generative media with discrete tokens.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-tokenizer", help="train a tokenizer (stage one) with Accelerate")
    p.add_argument("--modality", choices=["image", "video", "audio"], default="image")
    p.add_argument(
        "--data",
        required=True,
        help="a folder of media files, demo:mnist, demo:moving-mnist or demo:spoken-digits",
    )
    p.add_argument("--resolution", type=int, default=None, help="image size (required for folders)")
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
    p.add_argument("--channel-multipliers", type=_int_list, default=[1, 2, 2])
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--latent-channels", type=int, default=64)
    p.add_argument(
        "--quantizer",
        choices=["vq", "fsq", "rvq"],
        default=None,
        help="default vq (image, video), rvq (audio)",
    )
    p.add_argument("--codebook-size", type=int, default=256)
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
        "--input-space-weight",
        type=float,
        default=None,
        help="with --codebook-dim: weight of a VQ loss in the encoder's space, so residual levels refine (try 1)",
    )
    p.add_argument("--fsq-levels", type=_int_list, default=[8, 5, 5, 5])
    p.add_argument(
        "--num-levels",
        "--num-quantizers",
        dest="num_quantizers",
        type=_positive_int,
        default=None,
        help="rvq: residual levels (default 2; audio 4)",
    )
    p.add_argument(
        "--quantizer-dropout",
        type=float,
        default=None,
        help="rvq: probability of training with fewer levels (default 0; audio 0.5: one model, many bitrates)",
    )
    p.add_argument(
        "--strides",
        type=_int_list,
        default=[2, 4, 5, 8],
        help="audio: encoder downsampling per level; their product is the samples per code frame",
    )
    p.add_argument("--causal", action="store_true", help="audio: causal convolutions (streaming)")
    p.add_argument(
        "--norm",
        choices=["channel", "weight", "none"],
        default=None,
        help="audio: LayerNorm over channels (default), weight norm on the convolutions (SEANet, DAC) or none",
    )
    p.add_argument(
        "--activation", choices=["elu", "snake"], default=None, help="audio: ELU (default) or Snake (DAC)"
    )
    p.add_argument(
        "--temporal-factor",
        type=int,
        default=4,
        help="video: frames per latent frame after the first (1, 2, 4)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="TOKENIZER",
        help="start from a saved tokenizer of this modality (fine-tuning), or for video from an image "
        "tokenizer (2-D kernels inflated into 3-D); its config replaces the architecture flags",
    )
    _add_video_data_flags(p)
    _add_audio_data_flags(p, sample_rate=True)
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
    _add_video_data_flags(p)
    _add_audio_data_flags(p)
    p.set_defaults(func=cmd_evaluate_tokenizer)

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
    p.add_argument("--no-progress", action="store_true")
    _add_video_data_flags(p)
    _add_audio_data_flags(p)
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
    p.add_argument(
        "--layout",
        choices=["raster", "flatten", "delay"],
        default=None,
        help="code order: default raster (images, video), delay (audio: MusicGen's level delay pattern)",
    )
    p.add_argument(
        "--fps", type=_positive_float, default=8.0, help="video: frames per second stored in the pipeline"
    )
    add_dataclass_flags(
        p, TrainingOptions, defaults={"output": None, "learning_rate": 3e-4, "max_steps": 3000}
    )
    p.set_defaults(func=cmd_train_prior, required_output=True)

    p = sub.add_parser("generate", help="generate media from a pipeline (default: the shipped one)")
    p.add_argument("modality", choices=["image", "video", "audio"], help="what to generate")
    p.add_argument("--pipeline", default=None, help="a pipeline folder (default: the shipped default)")
    p.add_argument(
        "--num-samples",
        type=_positive_int,
        default=None,
        help="default: 16 images, 4 videos, 1 audio clip to a file and 4 to a directory",
    )
    p.add_argument("--class-label", type=int, nargs="+", default=None, help="one label, or one per sample")
    p.add_argument("--unconditional", action="store_true", help="sample from the null class, no labels")
    p.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="classifier-free guidance (default: the pipeline's default_guidance_scale with class labels, 1 without)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument(
        "--device",
        default="auto",
        help="auto (this process's GPU under accelerate launch or when one is present, else the CPU), cpu, "
        "cuda or cuda:N; the same seed gives the same samples on the same device",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="weights and activations (bfloat16 / float16 for GPUs)",
    )
    p.add_argument("--nrow", type=_positive_int, default=None, help="images per row of a grid output")
    p.add_argument(
        "--num-frames", type=_positive_int, default=None, help="video: 1 + n * temporal factor frames"
    )
    p.add_argument(
        "--prompt",
        default=None,
        help="video: a clip whose first frames the videos continue; audio: a file the clips continue",
    )
    p.add_argument(
        "--seconds",
        type=_positive_float,
        default=None,
        help="audio: seconds per clip (default and maximum: the prior's trained length)",
    )
    p.add_argument(
        "--format",
        choices=["mp4", "gif", "wav", "flac", "ogg"],
        default=None,
        help="files written into a directory: mp4 (default) or gif for video, wav (default), flac or ogg for audio",
    )
    p.add_argument(
        "--output",
        required=True,
        help="a .png grid / .mp4 or .gif video (several samples tile a grid), a .wav / .flac / .ogg file (several "
        "samples: one file each, with an index suffix), or a directory: one file per sample",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("reconstruct", help="encode and decode one file with a tokenizer (its round trip)")
    p.add_argument("--tokenizer", required=True, help="a tokenizer folder (save_pretrained)")
    p.add_argument("--input", required=True, help="an image, video or audio file (any rate, mono or stereo)")
    p.add_argument(
        "--output",
        required=True,
        help="the reconstruction (.png / .mp4, .gif / .wav, .flac at the tokenizer's rate)",
    )
    p.add_argument("--frames", type=_positive_int, default=None, help="video: use the first N frames")
    p.add_argument(
        "--levels", type=_positive_int, default=None, help="audio: residual levels to keep (lower bitrate)"
    )
    p.set_defaults(func=cmd_reconstruct)

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
        type=_positive_int,
        default=1,
        help="average the likelihood ratio over the image and views-1 jittered views of it (image pipelines "
        "with a background; 4 is what benchmarks/anomaly.py reports)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the jittered views")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument(
        "--plot",
        action="store_true",
        help="also write a histogram PNG (beside the CSV) with the top anomalies as thumbnails "
        "(video: first, middle and last frames; audio: spectrograms)",
    )
    p.add_argument("--top-k", type=_positive_int, default=8, help="anomalies shown in the plot")
    _add_video_data_flags(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_score)

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
    p.add_argument("--copies", type=_positive_int, default=8, help="random generic views of each image")
    p.add_argument("--max-images", type=_positive_int, default=20000, help="use at most this many images")
    p.add_argument("--steps", type=_positive_int, default=1500)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    p.add_argument("--hidden-size", type=_positive_int, default=128)
    p.add_argument("--num-layers", type=_positive_int, default=4)
    p.add_argument("--num-heads", type=_positive_int, default=4)
    p.add_argument("--seed", type=int, default=0, help="seeds the views, the initial weights and the batches")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_fit_background)

    p = sub.add_parser(
        "compress", help="entropy-code an image, video or audio clip with a pipeline's prior (.vqz)"
    )
    p.add_argument(
        "--pipeline", default="image", help="a pipeline folder, or image / video / audio (shipped)"
    )
    p.add_argument(
        "--input",
        required=True,
        help="a file of the pipeline's shape: an image, a video (.mp4, .gif, ...) of its frame count and size, "
        "or audio (.wav, .flac, .ogg; any rate, mono or stereo) of its clip length",
    )
    p.add_argument("--output", required=True, help="the .vqz file to write")
    p.add_argument(
        "--class-label", type=int, default=None, help="code under this class (default: null class)"
    )
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode a .vqz file back to an image, video or audio file")
    p.add_argument("--pipeline", default="image", help="the pipeline that compressed it")
    p.add_argument("--input", required=True)
    p.add_argument(
        "--output",
        required=True,
        help="an image (.png, ...), a video (.gif keeps grey frames exactly, .mp4 is lossy H.264; at the "
        "pipeline's fps) or audio (.wav, .flac; at the pipeline's sample rate)",
    )
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("data", help="build a demo data set")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser("build", help="build a demo data set (spoken-digits: synthesised with espeak-ng)")
    p.add_argument("name", choices=["spoken-digits"])
    p.add_argument(
        "--output", default=None, help="where to build it (default: where demo:spoken-digits looks)"
    )
    p.add_argument("--sample-rate", type=_positive_int, default=16000)
    p.add_argument("--workers", type=_positive_int, default=1, help="espeak-ng processes at a time")
    p.add_argument("--force", action="store_true", help="rebuild even if an identical build exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_data_build)

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
