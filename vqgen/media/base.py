"""What every medium shares: the registry, the uint8 <-> float conversion, command-line flag declarations and
the :class:`Medium` base class whose subclasses (``vqgen.media.image``, ``.video``, ``.audio``) hold everything
that differs between media.

Shared code never tests which medium it has: it asks the medium. A medium is found by name
(:func:`get_medium`), from a tokenizer or pipeline by their ``medium`` class attribute (:func:`medium_of`),
from a data set item by its media key (:func:`item_medium`), or from a ``--data`` spec, a ``demo:`` name or
the files of a folder (:func:`infer_medium`).
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqgen.errors import ConfigError, DataError

__all__ = [
    "Flag",
    "Medium",
    "get_medium",
    "infer_medium",
    "int_list",
    "number_list",
    "item_medium",
    "media",
    "medium_names",
    "medium_of",
    "positive_float",
    "positive_int",
    "register_medium",
    "to_uint8",
    "to_unit_range",
]

#: The media vqgen ships, in the order commands list them; each module registers its medium on import.
_BUILTIN = {"image": "vqgen.media.image", "video": "vqgen.media.video", "audio": "vqgen.media.audio"}
_REGISTRY: dict[str, Medium] = {}
#: Files :func:`infer_medium` looks at in a folder before it decides.
INFER_MAX_FILES = 2000


# ---------------------------------------------------------------------------------------------------------
# uint8 <-> float: the one conversion each way
# ---------------------------------------------------------------------------------------------------------


def to_unit_range(values: torch.Tensor) -> torch.Tensor:
    """Pixel values on the 0..255 scale (uint8, or float after resizing) -> float32 in [-1, 1]:
    ``v / 127.5 - 1``, element by element (any layout)."""
    return values.to(torch.float32) / 127.5 - 1.0


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Float values in [-1, 1] -> uint8 0..255 on the CPU, element by element (any layout): clamped, NaN as
    mid grey (128), rounded. The inverse of :func:`to_unit_range` up to rounding."""
    values = values.detach().to("cpu", torch.float32).nan_to_num(0.0)
    return ((values.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------


def register_medium(medium: Medium) -> Medium:
    """Make ``medium`` known by its name (a new medium's module calls this once on import)."""
    if not medium.name or not medium.item_key:
        raise ConfigError(f"a medium needs a name and an item_key, got {medium!r}")
    _REGISTRY[medium.name] = medium
    return medium


def media() -> list[Medium]:
    """Every medium, the shipped ones first (image, video, audio), then those registered later."""
    for module in _BUILTIN.values():
        importlib.import_module(module)
    order = list(_BUILTIN) + [name for name in _REGISTRY if name not in _BUILTIN]
    return [_REGISTRY[name] for name in order]


def medium_names() -> list[str]:
    """The names of :func:`media`: ``["image", "video", "audio"]`` plus any registered later."""
    return [medium.name for medium in media()]


def get_medium(name: str | Medium) -> Medium:
    """The medium called ``name`` (a :class:`Medium` is returned as it is)."""
    if isinstance(name, Medium):
        return name
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown medium {name!r}; available: {', '.join(medium_names())}")
    return _REGISTRY[name]


def medium_of(model) -> Medium:
    """The medium of a tokenizer or pipeline (an instance or a class), from its ``medium`` class attribute."""
    name = getattr(model, "medium", None)
    if not isinstance(name, str):
        what = model.__name__ if isinstance(model, type) else type(model).__name__
        raise ConfigError(f"{what} names no medium (it needs a 'medium' class attribute such as 'image')")
    return get_medium(name)


def item_medium(item: dict) -> Medium:
    """The medium of a data set item or collated batch: the one whose ``item_key`` it holds (``pixels``,
    ``video``, ``audio``)."""
    for medium in media():
        if medium.item_key in item:
            return medium
    keys = ", ".join(m.item_key for m in media())
    raise ConfigError(f"a batch must hold one of {keys}, got keys {sorted(item)}")


def infer_medium(spec: str | os.PathLike) -> Medium:
    """The medium a ``--data`` spec holds, for commands run without ``--modality``.

    A ``demo:`` name belongs to the medium listing it in :attr:`Medium.demo_datasets`. A folder is walked as
    the folder data sets walk it (recursively, hidden files and folders skipped), at most
    :data:`INFER_MAX_FILES` files, and each medium counts the files ending in its :attr:`Medium.folder_suffixes`
    (any case); the medium with the most wins, the first in :func:`media` order on a tie. A suffix several media
    read (``.gif``: images and video) counts for the first of them that has files of its own in the folder, or
    for the first of them if none has: a folder of GIFs is images, GIFs beside MP4s and no image-only files are
    video. Nothing is opened or decoded. An unknown ``demo:`` name, a missing path, a file or a folder without
    media files is a one-line :class:`DataError`.
    """
    everyone = media()
    spec = os.fspath(spec)
    demos = ", ".join(name for medium in everyone for name in medium.demo_datasets)
    if spec.startswith("demo:"):
        for medium in everyone:
            if spec in medium.demo_datasets:
                return medium
        raise DataError(f"unknown demo dataset '{spec}', available: {demos}")
    root = Path(spec)
    choose = "pass --modality " + "|".join(medium.name for medium in everyone)
    if not root.is_dir():
        why = "is not a directory" if root.exists() else f"does not exist (demo datasets: {demos})"
        raise DataError(f"cannot tell the medium of data folder '{root}': it {why}; {choose}")
    suffixes, seen = _folder_suffixes(root)
    owners = {suffix: [m for m in everyone if suffix in m.folder_suffixes] for suffix in suffixes}
    own = dict.fromkeys(everyone, 0)  # files only one medium reads
    for suffix, owned_by in owners.items():
        if len(owned_by) == 1:
            own[owned_by[0]] += suffixes[suffix]
    counts = dict(own)
    for suffix, owned_by in owners.items():
        if len(owned_by) > 1:
            counts[next((m for m in owned_by if own[m]), owned_by[0])] += suffixes[suffix]
    best = max(everyone, key=lambda medium: counts[medium])  # the first of equals
    if not counts[best]:
        kinds = [medium.name for medium in everyone]
        kinds = f"{', '.join(kinds[:-1])} or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
        among = f" among its first {seen} files" if seen >= INFER_MAX_FILES else ""
        raise DataError(
            f"cannot tell the medium of data folder '{root}': it holds no {kinds} files{among}; {choose}"
        )
    return best


def _folder_suffixes(root: Path) -> tuple[Counter, int]:
    """Lower-case suffixes of the files under ``root`` (hidden ones skipped) -> their count, from at most
    :data:`INFER_MAX_FILES` files; and how many files were looked at."""

    def unreadable(error: OSError) -> None:
        raise DataError(f"cannot read data folder '{error.filename or root}': {error.strerror or error}")

    suffixes: Counter = Counter()
    seen = 0
    for _folder, subfolders, names in os.walk(root, onerror=unreadable):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            suffixes[os.path.splitext(name)[1].lower()] += 1
            seen += 1
            if seen >= INFER_MAX_FILES:
                return suffixes, seen
    return suffixes, seen


# ---------------------------------------------------------------------------------------------------------
# Command-line flags a medium owns
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """A command-line flag only some media have, as one medium declares it for one command.

    ``name`` is the flag (``--num-frames``); ``help`` this medium's part of its help (several media declaring
    one flag share it and their parts are joined by ``"; "``); ``option`` the keyword the medium's library
    function takes the value as (default: the flag's destination); ``settings`` the rest of
    ``add_argument``'s keyword arguments (``type``, ``default``, ``choices``, ``action``, ...).
    """

    name: str
    help: str
    option: str | None = None
    settings: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")

    @property
    def keyword(self) -> str:
        return self.option or self.dest


def positive_int(text: str) -> int:
    """A flag value that must be a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """A flag value that must be a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def int_list(text: str) -> list[int]:
    """A flag value of comma-separated integers (``2,4,5,8``)."""
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def number_list(text: str) -> list[float]:
    """A flag value of comma-separated numbers (``0.75,1,1``)."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


# ---------------------------------------------------------------------------------------------------------
# Medium
# ---------------------------------------------------------------------------------------------------------


class Medium:
    """One medium: its files, data sets, tokenizer defaults, previews, metrics and command-line flags.

    Subclasses set the class attributes and implement the methods that raise ``NotImplementedError``; the
    shipped ones are ``vqgen.media.image.IMAGE``, ``vqgen.media.video.VIDEO`` and ``vqgen.media.audio.AUDIO``.
    """

    #: The medium's name, also the ``medium`` class attribute of its tokenizer and pipeline.
    name: str = ""
    #: The media entry of a data set item and of a collated batch.
    item_key: str = ""
    #: ``"module:Class"`` of the medium's tokenizer and pipeline.
    tokenizer_path: str = ""
    pipeline_path: str = ""
    #: Suffixes ``generate`` writes to one file, ``reconstruct`` writes and ``decompress`` writes.
    output_suffixes: tuple[str, ...] = ()
    reconstruct_suffixes: tuple[str, ...] = ()
    decompress_suffixes: tuple[str, ...] = ()
    #: Suffixes (lower case) of the files a folder data set of this medium reads, and the ``demo:`` names
    #: :meth:`load_dataset` takes; :func:`infer_medium` goes by both.
    folder_suffixes: tuple[str, ...] = ()
    demo_datasets: tuple[str, ...] = ()
    #: ``generate --format`` of the files written one per sample into a folder (the first is the default).
    directory_formats: tuple[str, ...] = ()
    #: The code order a prior trained on this medium's codes uses unless told otherwise.
    default_layout: str = "raster"
    #: Items the prior's training previews draw.
    preview_samples: int = 16
    #: Whether ``fit-background``'s generic views (rotated, warped 2-D images) apply to this medium.
    fits_background: bool = False
    #: What the ``TokenizerSettings`` left as None become: quantizer kind, residual depth and dropout of an
    #: ``rvq`` quantizer, width of the first level.
    defaults: dict = {
        "quantizer": "vq",
        "num_quantizers": 2,
        "quantizer_dropout": 0.0,
        "base_channels": 64,
        "codebook_size": 256,
    }
    #: ``TokenizerSettings`` fields only this medium's tokenizer takes, and what its tokenizer is called.
    exclusive_settings: tuple[str, ...] = ()
    tokenizer_noun: str = "tokenizer"
    #: Media whose saved tokenizers ``--init-from`` may start from (this medium's own and, say, images for video).
    init_from_media: tuple[str, ...] = ()
    #: Keyword arguments of :meth:`load_dataset` besides ``channels`` and ``strict``.
    dataset_options: tuple[str, ...] = ()
    #: Command (``"generate"``; ``"encode data"`` for the flags shaping the data set a command reads) -> the
    #: flags only this medium (or a few media) has there, in help order.
    flags: dict[str, tuple[Flag, ...]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def article(self) -> str:
        """``a`` or ``an``, as in 'an audio file'."""
        return "an" if self.name[:1] in "aeiou" else "a"

    @property
    def tokenizer_class(self) -> type:
        return _import(self.tokenizer_path)

    @property
    def pipeline_class(self) -> type:
        return _import(self.pipeline_path)

    def command_flags(self, command: str) -> tuple[Flag, ...]:
        """The flags this medium owns in ``command`` (``"generate"``, ``"reconstruct"``, ...)."""
        return self.flags.get(command, ())

    # -- data --------------------------------------------------------------------------------------------

    def load_dataset(
        self, spec: str, split: str = "train", *, channels=None, strict: bool = False, **options
    ):
        """The data set ``spec`` (a folder or a ``demo:`` name) of this medium: items
        ``{item_key: float media in [-1, 1], "label": int, "index": int}``."""
        raise NotImplementedError

    def dataset_options_for(self, tokenizer) -> dict:
        """The :meth:`load_dataset` options a tokenizer fixes (audio: its sample rate); none by default."""
        return {}

    def dataset_options_for_pipeline(self, pipe, **given) -> dict:
        """The :meth:`load_dataset` options that read data of ``pipe``'s sample shape; ``given`` holds the
        user's options (video: ``frames``, ``fps``), checked against the pipeline."""
        height, width = pipe.sample_shape[-2:]
        return {"resolution": height if height == width else (height, width)}

    def item_shape(self, dataset) -> tuple[int, ...]:
        """Shape of one item's media."""
        return tuple(dataset[0][self.item_key].shape)

    def augment(self, media: torch.Tensor, generator: torch.Generator, **options) -> torch.Tensor:
        """A random jittered view of a batch (``vqgen encode --augment-copies``; ``options``: the medium's
        jitter settings, e.g. audio's ``speed``); see :attr:`can_augment`."""
        raise ConfigError(f"{self.name} has no augmentation")

    @property
    def can_augment(self) -> bool:
        """Whether the medium implements :meth:`augment`."""
        return type(self).augment is not Medium.augment

    # -- files -------------------------------------------------------------------------------------------

    def check_output(self, output: Path) -> None:
        """Refuse a ``generate`` output (a file, or a folder: no suffix) this medium cannot write, before any
        sampling."""
        suffixes = self.output_suffixes
        if output.suffix and output.suffix.lower() not in suffixes:
            raise ConfigError(
                f"--output '{output}' must be {self.article} {self.name} file ({', '.join(suffixes)}) or a directory"
            )

    def write_samples(
        self, samples, output: Path, nrow: int | None = None, file_format: str | None = None
    ) -> str:
        """Write a pipeline output (``np`` arrays) to one file or one file per sample in a folder; returns
        the line ``generate`` prints."""
        raise NotImplementedError

    def write_item(self, media: torch.Tensor, path: Path, rate: float | None = None) -> None:
        """Write the first item of float media ``[N, *shape]`` in [-1, 1] as one file (``rate``: frames or
        samples per second where the medium has one)."""
        raise NotImplementedError

    def rate_of(self, pipe) -> float | None:
        """Frames or samples per second of ``pipe``'s outputs (None for a medium without time)."""
        return None

    def thumbnail(self, media: torch.Tensor) -> tuple:
        """One item's float media -> (an array for matplotlib's ``imshow``, its keyword arguments)."""
        raise NotImplementedError

    # -- tokenizers --------------------------------------------------------------------------------------

    def check_settings(self, settings) -> None:
        """Refuse tokenizer settings (``TokenizerSettings``) that only another medium's tokenizer takes."""
        for other in media():
            given = [name for name in other.exclusive_settings if getattr(settings, name, None)]
            if other is not self and given:
                flags = [f"--{n.replace('_', '-')}" for n in other.exclusive_settings]
                names = f"{', '.join(flags[:-1])} and {flags[-1]}" if len(flags) > 1 else flags[0]
                raise ConfigError(
                    f"{names} shape the {other.name} {other.tokenizer_noun}, not a {self.name} tokenizer"
                )

    def tokenizer_config(self, settings, channels: int) -> dict:
        """The tokenizer's constructor arguments from ``settings`` (a ``TokenizerSettings``)."""
        raise NotImplementedError

    def complete_config(self, config: dict, settings) -> dict:
        """Defaults a tokenizer config read from a file takes from ``settings`` (audio: the sample rate)."""
        return config

    def loss_defaults(self, tokenizer) -> dict:
        """``TokenizerLossOptions`` fields this medium sets for ``tokenizer`` when the user leaves them unset
        (audio: the spectral loss on, the sample-wise one off for codecs that do not keep the phase)."""
        return {}

    def start_from(self, tokenizer, settings):
        """A saved tokenizer to train further (``--init-from``) as this medium's tokenizer."""
        return tokenizer.float()

    def check_training_data(self, tokenizer, dataset) -> None:
        """Refuse a data set ``tokenizer`` cannot train on (its item shape; audio: its sample rate)."""
        tokenizer.code_grid(self.item_shape(dataset))

    def reconstruction_preview(self, dataset) -> Callable:
        """``save_preview(originals, reconstructions, path)`` for ``train_tokenizer``."""
        raise NotImplementedError

    def sample_preview(self, media: torch.Tensor, path: Path, tokenizer) -> None:
        """Write decoded prior samples float ``[N, *shape]`` as the prior's training preview at ``path``."""
        raise NotImplementedError

    # -- evaluation and round trips ------------------------------------------------------------------------

    def evaluate(self, tokenizer, dataset, batch_size: int = 100, progress: bool = True) -> dict:
        """Reconstruction metrics of ``tokenizer`` over ``dataset`` (a JSON-able dict)."""
        raise NotImplementedError

    def print_evaluation(self, results: dict) -> None:
        """Print :meth:`evaluate`'s results as a table."""
        raise NotImplementedError

    def read_file(self, path: Path, tokenizer, **options) -> tuple[torch.Tensor, float | None]:
        """A file -> (float media ``[1, *shape]`` in [-1, 1] as ``tokenizer`` takes it, the rate to write its
        reconstruction at or None); ``options`` as in :meth:`reconstruct_file`."""
        raise NotImplementedError

    def encode_options(self, tokenizer, **options) -> dict:
        """Keyword arguments of ``tokenizer.encode`` for a round trip (audio: ``num_levels``)."""
        return {}

    def round_trip_text(self, reconstruction, x, tokenizer, codes) -> str:
        """How good a round trip is, for ``reconstruct``'s line: PSNR by default."""
        from vqgen.evaluation.metrics import psnr

        return f"PSNR {float(psnr(reconstruction, x)):.2f} dB"

    @torch.no_grad()
    def reconstruct_file(self, tokenizer, source: Path, output: Path, **options) -> str:
        """``decode(encode(x))`` of one file written to ``output``; returns ``"{grid} codes, {quality}"``.

        ``options`` are the medium's (video: ``frames``, the first frames to use; audio: ``num_levels``, the
        residual levels to keep); :meth:`encode_options` and :meth:`read_file` both receive them.
        """
        encode = self.encode_options(tokenizer, **options)
        x, rate = self.read_file(Path(source), tokenizer, **options)
        # A frame size or count the tokenizer cannot take fails here, in one line.
        tokenizer.code_grid(tuple(x.shape[1:]))
        codes = tokenizer.encode(x.to(tokenizer.device, tokenizer.dtype), **encode)
        reconstruction = tokenizer.decode(codes).float().clamp(-1, 1).cpu()[..., : x.shape[-1]]
        self.write_item(reconstruction, Path(output), rate)
        grid = "x".join(str(g) for g in codes.shape[1:])
        return f"{grid} codes, {self.round_trip_text(reconstruction, x, tokenizer, codes)}"

    # -- generation --------------------------------------------------------------------------------------

    def default_num_samples(self, output: Path) -> int:
        """How many items ``generate`` draws unless told (for an output file or a folder)."""
        return 4

    def call_options(self, pipe, **options) -> dict:
        """The pipeline call's medium keyword arguments from the values of its ``generate`` flags, checked
        against ``pipe`` before any sampling."""
        return {}


def _import(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
