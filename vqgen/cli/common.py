"""What the command modules share: dataclass flags, the flags media own, and reading ``--data`` of a medium."""

from __future__ import annotations

import argparse
import dataclasses

from vqgen.errors import ConfigError
from vqgen.media.base import Medium, int_list, media, number_list, positive_float, positive_int
from vqgen.priors.sampling_config import GUIDANCE_SCHEDULES

__all__ = [
    "add_dataclass_flags",
    "add_medium_flags",
    "add_sampling_flags",
    "dataclass_from_args",
    "int_list",
    "load_data",
    "medium_options",
    "number_list",
    "positive_float",
    "positive_int",
    "refuse_foreign_flags",
    "sampling_flag_values",
]


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


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that replace single fields of a pipeline's default sampling (``SamplingConfig``), all None
    when not given: ``vqgen generate`` and the sample-quality benchmarks read them alike."""
    parser.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="classifier-free guidance (default: the pipeline's default_guidance_scale with class labels, 1 without)",
    )
    parser.add_argument(
        "--guidance-schedule",
        choices=GUIDANCE_SCHEDULES,
        default=None,
        help="how guidance moves over the drawn tokens: constant, rising (1 up to the scale) or falling "
        "(default: the pipeline's, constant unless it stores one)",
    )
    parser.add_argument(
        "--guidance-level-weights",
        type=number_list,
        default=None,
        metavar="W0,W1,...",
        help="a residual prior's share of the guidance per code level, level 0 first, e.g. 0.75,1,1 "
        "(default: the pipeline's, every level alike unless it stores some)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="default: the pipeline's (1 unless it stores one)"
    )
    parser.add_argument(
        "--top-k", type=int, default=None, help="default: the pipeline's (none unless it stores one)"
    )
    parser.add_argument(
        "--top-p", type=float, default=None, help="default: the pipeline's (none unless it stores one)"
    )


def sampling_flag_values(args: argparse.Namespace) -> dict:
    """The values of :func:`add_sampling_flags`, as keywords of ``SamplingConfig.from_arguments`` (None: not given)."""
    return {
        name: getattr(args, name)
        for name in (
            "guidance_scale",
            "guidance_schedule",
            "guidance_level_weights",
            "temperature",
            "top_k",
            "top_p",
        )
    }


def dataclass_from_args(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def add_medium_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags media own in ``command``, in medium order; a flag several media own is added once, its help
    the media's parts joined by ``"; "``."""
    declared: dict[str, tuple] = {}
    for medium in media():
        for flag in medium.command_flags(command):
            first, helps = declared.get(flag.name, (flag, []))
            declared[flag.name] = (first, [*helps, flag.help])
    for flag, helps in declared.values():
        parser.add_argument(flag.name, help="; ".join(helps), **flag.settings)


def medium_options(args: argparse.Namespace, medium: Medium, command: str) -> dict:
    """The values of ``medium``'s flags in ``command``, by the keyword its library function takes them as."""
    return {flag.keyword: getattr(args, flag.dest) for flag in medium.command_flags(command)}


def refuse_foreign_flags(args: argparse.Namespace, medium: Medium, command: str, where: str) -> None:
    """Refuse a flag of ``command`` given (not None) that only other media take: ``--X works with {where} only``,
    ``where`` formatted with each owning medium's name."""
    mine = {flag.name for flag in medium.command_flags(command)}
    for other in media():
        for flag in other.command_flags(command):
            if flag.name in mine or getattr(args, flag.dest, None) is None:
                continue
            owners = [m.name for m in media() if flag.name in {f.name for f in m.command_flags(command)}]
            raise ConfigError(f"{flag.name} works with {' or '.join(where.format(o) for o in owners)} only")


def load_data(
    args: argparse.Namespace,
    medium: Medium,
    split: str,
    channels: int | None,
    strict: bool = False,
    tokenizer=None,
):
    """The data set of ``--data`` as ``medium`` reads it, with the flags that shape it (``--resolution``, video
    ``--frames`` / ``--fps``, audio ``--sample-rate`` / ``--segment-seconds``); a ``tokenizer`` fixes what it
    was trained on (audio: the sample rate)."""
    options = {name: getattr(args, name) for name in medium.dataset_options if hasattr(args, name)}
    if tokenizer is not None:
        options.update(medium.dataset_options_for(tokenizer))
    return medium.load_dataset(args.data, split, channels=channels, strict=strict, **options)
