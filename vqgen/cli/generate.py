"""``vqgen generate``: samples of a pipeline (default: the shipped one of the medium) written to files."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqgen.cli.common import (
    add_medium_flags,
    add_sampling_flags,
    medium_options,
    positive_int,
    refuse_foreign_flags,
    sampling_flag_values,
)
from vqgen.errors import ConfigError
from vqgen.media.base import media, medium_names


def _formats_help() -> str:
    """``... mp4 (default) or gif for video, wav (default), flac or ogg for audio``."""
    parts = []
    for medium in media():
        if medium.directory_formats:
            first, *rest = medium.directory_formats
            names = [f"{first} (default)", *rest]
            listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
            parts.append(f"{listed} for {medium.name}")
    return "files written into a directory: " + ", ".join(parts)


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate media from a pipeline (default: the shipped one)")
    p.add_argument("modality", choices=medium_names(), help="what to generate")
    p.add_argument("--pipeline", default=None, help="a pipeline folder (default: the shipped default)")
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=None,
        help="default: 16 images, 4 videos, 1 audio clip to a file and 4 to a directory",
    )
    p.add_argument(
        "--class-label",
        nargs="+",
        default=None,
        help="one label, or one per sample: a class index or a class name (e.g. smileys-emotion)",
    )
    p.add_argument(
        "--condition",
        action="append",
        default=None,
        metavar="FIELD=VALUE",
        help="a condition field's value by name or number, e.g. --condition family=brass --condition pitch=60 "
        "(repeat per field; a field left out is unconditional)",
    )
    p.add_argument("--unconditional", action="store_true", help="sample from the null class, no labels")
    add_sampling_flags(p)
    p.add_argument(
        "--no-default-sampling",
        action="store_true",
        help="ignore the pipeline's stored temperature / top-k / top-p (draw at temperature 1, no filter)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=64)
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
    p.add_argument("--nrow", type=positive_int, default=None, help="images per row of a grid output")
    add_medium_flags(p, "generate")
    formats = [name for medium in media() for name in medium.directory_formats]
    p.add_argument("--format", choices=formats, default=None, help=_formats_help())
    p.add_argument(
        "--output",
        required=True,
        help="a .png grid / .mp4 or .gif video (several samples tile a grid), a .wav / .flac / .ogg file (several "
        "samples: one file each, with an index suffix), or a directory: one file per sample",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from vqgen.media import get_medium, medium_of
    from vqgen.pipelines.base import generate_samples, process_state
    from vqgen.pipelines.conditions import condition_call_arguments
    from vqgen.pipelines.loading import load_pipeline, place_pipeline, resolve_device
    from vqgen.priors.sampling_config import SamplingConfig

    medium = get_medium(args.modality)
    output = Path(args.output)
    medium.check_output(output)  # before any sampling
    formats = medium.directory_formats
    if args.format is not None and args.format not in formats:
        raise ConfigError(f"--format {args.format} does not work with 'generate {medium.name}'")
    file_format = args.format or (formats[0] if formats else None)
    shortcuts = sampling_flag_values(args)
    SamplingConfig.from_arguments(None, **shortcuts)  # a bad value is refused before the pipeline loads
    refuse_foreign_flags(args, medium, "generate", "'generate {}'")
    device = resolve_device(args.device)
    pipe = load_pipeline(args.pipeline or medium.name)
    if medium_of(pipe) is not medium:
        raise ConfigError(
            f"the pipeline in '{args.pipeline}' ({type(pipe).__name__}) cannot generate {medium.name}"
        )
    pipe = place_pipeline(pipe, device, args.dtype)
    sampling = pipe.sampling_config(SamplingConfig() if args.no_default_sampling else None, **shortcuts)
    call_options = medium.call_options(pipe, **medium_options(args, medium, "generate"))
    num_samples = args.num_samples or medium.default_num_samples(output)
    conditions = condition_call_arguments(
        pipe, num_samples, args.class_label, args.condition, args.unconditional
    )
    out = generate_samples(
        pipe,
        num_samples,
        **conditions,
        sampling=sampling,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        **call_options,
    )
    state = process_state()
    if state.is_main_process:  # under accelerate launch every process holds all samples; one writes them
        print(medium.write_samples(out, output, nrow=args.nrow, file_format=file_format))
    if state.num_processes > 1:
        # Leave together: a process exiting while another still uses the group can abort it.
        state.wait_for_everyone()
        state.destroy_process_group()
