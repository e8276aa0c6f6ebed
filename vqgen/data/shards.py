"""Code shards: a data set encoded once by a tokenizer, the only input prior training reads.

A shard folder holds ``manifest.json`` and ``shard-00000.safetensors``, ... Each shard stores ``codes``
(int32 ``[n, *grid]``) and ``labels`` (int64 ``[n]``, -1 when unlabelled). The manifest names what made the
codes (tokenizer class and fingerprint), the code grid, the codebook size, the media shape and the label
names, so codes from another tokenizer are refused instead of silently training a useless prior.

Condition fields (a data set with ``condition_names``, e.g. ``vqgen encode --condition-fields family,pitch``):
each shard also stores ``labels.<field>`` (int64 ``[n]``, -1 where an item has no value) per field, and the
manifest ``condition_fields`` ``{field: [value names]}``. Folders without them (all older ones) read as the single
field ``"class"`` of ``labels`` and ``label_names``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vqgen.checks import whole_number
from vqgen.errors import ConfigError, DataError, MismatchError
from vqgen.fingerprints import tokenizer_fingerprint, tokenizer_fingerprints
from vqgen.io import _one_line, atomic_path
from vqgen.media.audio import jitter_audio  # noqa: F401 - importable from here as before
from vqgen.media.base import item_medium, media
from vqgen.media.image import jitter_images  # noqa: F401 - importable from here as before
from vqgen.priors.conditions import CLASS_FIELD

__all__ = [
    "CodeShardDataset",
    "MANIFEST_NAME",
    "encode_dataset",
    "jitter_audio",
    "jitter_images",
    "tokenizer_fingerprint",
]

MANIFEST_NAME = "manifest.json"
SHARD_FORMAT = "vqgen-code-shards"
SHARD_VERSION = 1


def kept_grid(tokenizer, grid: tuple[int, ...], num_levels: int | None) -> tuple[int, ...]:
    """The code ``grid`` of ``tokenizer`` with its level axis cut to the first ``num_levels`` (None: all); a
    one-line ``ConfigError`` for a tokenizer without levels or a count it does not have."""
    if num_levels is None:
        return grid
    if tokenizer.num_levels < 2:
        raise ConfigError("num_levels needs a residual tokenizer with several levels; this one has one")
    whole_number("num_levels", num_levels, 1)
    if num_levels > tokenizer.num_levels:
        raise ConfigError(
            f"num_levels must be in [1, {tokenizer.num_levels}] (the tokenizer's levels), got {num_levels}"
        )
    return (int(num_levels), *grid[1:])


@torch.no_grad()
def encode_dataset(
    tokenizer: torch.nn.Module,
    dataset,
    output: str | Path,
    batch_size: int = 256,
    shard_size: int = 10_000,
    augment_copies: int = 0,
    seed: int = 0,
    source: str = "",
    progress: bool = True,
    num_levels: int | None = None,
    augment_options: dict | None = None,
) -> dict:
    """Encode every item of a ``dataset`` (items ``{"pixels" | "video" | "audio", "label"}``) into shards under
    ``output``. A data set with ``condition_names`` ``{field: value names}`` (items with ``"conditions":
    {field: index}``, -1 for none) adds its per-field labels.

    ``augment_copies`` > 0 adds that many randomly jittered copies of each item (seeded by ``seed``; the
    medium's ``augment``: ``vqgen.media.image.jitter_images``, ``vqgen.media.audio.jitter_audio``, with
    ``augment_options`` as its keywords, e.g. ``{"speed": 0.0}`` for pitch-labelled notes), which
    gives a prior trained on a small data set more variety than the originals alone. The folder is written
    atomically: an interrupted encode leaves no half-written shard folder. Returns the manifest.

    ``num_levels`` keeps the first ``K`` levels of a residual tokenizer's codes (grid ``[K, ...]``): a prior
    over them draws codes the tokenizer decodes at the matching bitrate, with fewer tokens to learn and to
    sample (where the later levels add little, as in the instrument codec: ``benchmarks/RESULTS.md``).
    """
    from vqgen.data.batching import collate

    whole_number("augment_copies", augment_copies, 0)
    if len(dataset) == 0:
        raise DataError("cannot encode an empty data set")
    medium = item_medium(dataset[0])
    key = medium.item_key
    if augment_copies and not medium.can_augment:
        names = " and ".join(m.name for m in media() if m.can_augment)
        raise DataError(f"augment_copies works on {names}; this data set holds {key}")
    tokenizer.eval()
    device = tokenizer.device
    generator = torch.Generator().manual_seed(seed)
    sample_shape = tuple(dataset[0][key].shape)
    grid = kept_grid(tokenizer, tuple(tokenizer.code_grid(sample_shape)), num_levels)
    codes, labels = [], []
    condition_names = getattr(dataset, "condition_names", None) or {}
    fields: dict[str, list[torch.Tensor]] = {name: [] for name in condition_names}
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="encode", unit="batch", disable=not progress):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        items = batch[key]
        for copy in range(1 + augment_copies):
            views = items if copy == 0 else medium.augment(items, generator, **(augment_options or {}))
            view_codes = tokenizer.encode(views.to(device)).to("cpu", torch.int32)
            codes.append(view_codes if num_levels is None else view_codes[:, :num_levels])
            labels.append(batch["label"].long())
            for name, parts in fields.items():
                parts.append(batch["conditions"][name].long())
    codes, labels = torch.cat(codes), torch.cat(labels)
    field_labels = {f"labels.{name}": torch.cat(parts) for name, parts in fields.items()}

    label_names = getattr(dataset, "label_names", None)
    manifest = {
        "format": SHARD_FORMAT,
        "version": SHARD_VERSION,
        "tokenizer_class": type(tokenizer).__name__,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "code_grid": list(grid),
        "codebook_size": int(tokenizer.codebook_size),
        "sample_shape": list(sample_shape),
        "label_names": list(label_names) if label_names else None,
        "num_items": int(codes.shape[0]),
        "augment_copies": int(augment_copies),
        "augment_options": dict(augment_options or {}),
        "source": source,
        "shards": [],
    }
    if condition_names:
        manifest["condition_fields"] = {name: list(values) for name, values in condition_names.items()}
    _write_shards(Path(output), manifest, shard_size, {"codes": codes, "labels": labels} | field_labels)
    return manifest


def _write_shards(output: Path, manifest: dict, shard_size: int, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` (``codes``, ``labels``, ``labels.<field>``: ``[n, ...]``) in shards of ``shard_size``
    items and the manifest (its ``shards`` list filled in) to ``output``, atomically."""
    with atomic_path(output) as temporary:
        temporary.mkdir()
        for index, start in enumerate(range(0, tensors["codes"].shape[0], shard_size)):
            file = f"shard-{index:05d}.safetensors"
            part = {key: value[start : start + shard_size].contiguous() for key, value in tensors.items()}
            save_file(part, str(temporary / file))
            manifest["shards"].append({"file": file, "items": int(part["codes"].shape[0])})
        (temporary / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _read_manifest(folder: Path) -> dict:
    """``folder/manifest.json`` checked field by field: one-line ``DataError`` for anything malformed."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise DataError(
            f"'{folder}' has no {MANIFEST_NAME}: not a code shard folder (make one with vqgen encode)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"'{path}' is not valid JSON ({_one_line(error)})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SHARD_FORMAT:
        raise DataError(f"'{path}' is not a vqgen code-shard manifest")
    if manifest.get("version") != SHARD_VERSION:
        raise DataError(
            f"'{path}' has shard format version {manifest.get('version')!r}, expected {SHARD_VERSION}"
        )

    def bad(field: str, expected: str) -> DataError:
        return DataError(f"'{path}' has {field}={manifest.get(field)!r}, expected {expected}"[:400])

    grid = manifest.get("code_grid")
    if not (isinstance(grid, list) and grid and all(_is_int(g, 1) for g in grid)):
        raise bad("code_grid", "a non-empty list of positive ints")
    if not _is_int(manifest.get("codebook_size"), 1):
        raise bad("codebook_size", "a positive int")
    if not isinstance(manifest.get("tokenizer_fingerprint"), str):
        raise bad("tokenizer_fingerprint", "a string")
    names = manifest.get("label_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise bad("label_names", "null or a list of strings")
    fields = manifest.get("condition_fields")
    if fields is not None and not (
        isinstance(fields, dict)
        and fields
        and all(isinstance(v, list) and v and all(isinstance(n, str) for n in v) for v in fields.values())
    ):
        raise bad("condition_fields", "null or {field: [value names]}")
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise bad("shards", 'a list of {"file": NAME, "items": COUNT}')
    for shard in shards:
        # A plain file name inside the folder: a manifest must not point at files elsewhere.
        file = shard.get("file") if isinstance(shard, dict) else None
        plain = isinstance(file, str) and file not in ("", ".", "..") and "/" not in file and "\\" not in file
        if not (plain and _is_int(shard.get("items"), 0)):
            expected = '{"file": a file name in the folder, "items": a count}'
            raise DataError(f"'{path}' lists shard {shard!r}, expected {expected}"[:400])
    return manifest


def _integer_labels(tensor: torch.Tensor | None, items: int) -> bool:
    return (
        tensor is not None
        and not (tensor.dtype.is_floating_point or tensor.dtype.is_complex)
        and tuple(tensor.shape) == (items,)
    )


def _read_shard(file: Path, items: int, grid: tuple[int, ...], fields) -> dict[str, torch.Tensor]:
    """One shard's ``codes`` ``[items, *grid]``, ``labels`` ``[items]`` and ``labels.<field>`` of each of
    ``fields``, as long tensors; a one-line ``DataError`` for anything missing or malformed."""
    try:
        tensors = load_file(str(file))
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise DataError(f"cannot read code shard '{file}': {_one_line(error)}") from None
    part = tensors.get("codes")
    if (
        part is None
        or part.dtype.is_floating_point
        or part.dtype.is_complex
        or part.dtype == torch.bool
        or tuple(part.shape[1:]) != grid
        or part.shape[0] != items
    ):
        found = "no codes" if part is None else f"codes {part.dtype} {list(part.shape)}"
        raise DataError(
            f"code shard '{file}' holds {found}, expected {items} integer code grids {list(grid)}"
        )
    out = {"codes": part.long()}
    for key in ["labels", *(f"labels.{name}" for name in fields)]:
        value = tensors.get(key)
        if not _integer_labels(value, items):
            found = "none" if value is None else f"{value.dtype} {list(value.shape)}"
            raise DataError(f"code shard '{file}' holds {key} {found}, expected {items} integer labels")
        out[key] = value.long()
    return out


class CodeShardDataset(Dataset):
    """All codes of a shard folder in memory; items are ``{"codes": long [*grid], "label": int, "index": int}``,
    plus ``"conditions": {field: int}`` (-1: none) for shards with condition fields."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = manifest = _read_manifest(self.folder)
        grid = tuple(manifest["code_grid"])
        fields = manifest.get("condition_fields") or {}
        parts = [
            _read_shard(self.folder / shard["file"], shard["items"], grid, fields)
            for shard in manifest["shards"]
        ]
        if sum(len(part["codes"]) for part in parts) == 0:
            raise DataError(f"code shard folder '{self.folder}' holds no items")
        self.codes = torch.cat([part["codes"] for part in parts])
        self.labels = torch.cat([part["labels"] for part in parts])
        #: Per-field labels ``{field: long [n]}`` (-1: none); empty for shards without condition fields.
        self.field_labels = {name: torch.cat([part[f"labels.{name}"] for part in parts]) for name in fields}
        lo, hi = int(self.codes.min()), int(self.codes.max())
        if lo < 0 or hi >= manifest["codebook_size"]:
            raise DataError(
                f"'{self.folder}' holds codes in [{lo}, {hi}], outside its codebook [0, {manifest['codebook_size']})"
            )
        classes = len(manifest.get("label_names") or ())
        for key, values, count in [("labels", self.labels, classes)] + [
            (f"labels.{name}", self.field_labels[name], len(fields[name])) for name in fields
        ]:
            lo, hi = int(values.min()), int(values.max())
            if lo < -1 or (count and hi >= count):
                expected = f"[-1, {count})" if count else ">= -1"
                what = "labels" if key == "labels" else f"{key} labels"
                raise DataError(f"'{self.folder}' holds {what} in [{lo}, {hi}], expected {expected}")

    @property
    def code_grid(self) -> tuple[int, ...]:
        return tuple(self.manifest["code_grid"])

    @property
    def codebook_size(self) -> int:
        return int(self.manifest["codebook_size"])

    @property
    def label_names(self) -> list[str] | None:
        return self.manifest.get("label_names")

    @property
    def num_classes(self) -> int:
        return len(self.label_names) if self.label_names else 0

    @property
    def condition_names(self) -> dict[str, list[str]] | None:
        """Value names of each condition field: the manifest's ``condition_fields``, else ``{"class":
        label_names}`` for folder classes, else None (unlabelled)."""
        fields = self.manifest.get("condition_fields")
        if fields:
            return {name: list(values) for name, values in fields.items()}
        return {CLASS_FIELD: list(self.label_names)} if self.label_names else None

    @property
    def condition_fields(self) -> dict[str, int]:
        """``{field: number of values}`` of :attr:`condition_names` (empty when unlabelled)."""
        return {name: len(values) for name, values in (self.condition_names or {}).items()}

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __getitem__(self, index: int) -> dict:
        item = {"codes": self.codes[index], "label": int(self.labels[index]), "index": int(index)}
        if self.field_labels:
            item["conditions"] = {name: int(values[index]) for name, values in self.field_labels.items()}
        return item

    def check_tokenizer(self, tokenizer: torch.nn.Module) -> None:
        """Refuse shards that ``tokenizer`` did not make (different config or weights)."""
        fingerprints = tokenizer_fingerprints(tokenizer)
        if self.manifest["tokenizer_fingerprint"] not in fingerprints:
            raise MismatchError(
                f"shards in '{self.folder}' were made by tokenizer {self.manifest['tokenizer_fingerprint']}, "
                f"not by the given tokenizer {fingerprints[0]}: re-encode them with vqgen encode"
            )

    def check_prior(self, prior: torch.nn.Module) -> None:
        """Refuse shards whose grid or codebook differ from what ``prior`` models, or that lack one of the
        condition fields of a prior with several (or their value counts differ)."""
        if (
            list(prior.config.code_grid) != list(self.code_grid)
            or prior.config.codebook_size != self.codebook_size
        ):
            raise MismatchError(
                f"shards in '{self.folder}' hold grid {list(self.code_grid)} with {self.codebook_size} codes; the prior "
                f"models grid {list(prior.config.code_grid)} with {prior.config.codebook_size} codes"
            )
        wanted = dict(getattr(prior, "condition_fields", {}))
        have = {name: len(values) for name, values in (self.manifest.get("condition_fields") or {}).items()}
        if len(wanted) > 1 and any(have.get(name) != count for name, count in wanted.items()):
            theirs = ", ".join(f"{name} ({count})" for name, count in have.items()) or "none"
            ours = ", ".join(f"{name} ({count})" for name, count in wanted.items())
            raise MismatchError(
                f"the prior's condition fields are {ours} values; shards in '{self.folder}' hold {theirs}"
            )

    def check_matches(self, other: CodeShardDataset, tokenizer: torch.nn.Module | None = None) -> None:
        """Refuse a validation shard folder made by another tokenizer than this one, or whose condition fields
        number their values otherwise. With ``tokenizer``, two folders it wrote under different releases'
        fingerprints (``vqgen.fingerprints``) match."""
        written = {self.manifest["tokenizer_fingerprint"], other.manifest["tokenizer_fingerprint"]}
        if len(written) > 1 and (tokenizer is None or not written <= set(tokenizer_fingerprints(tokenizer))):
            raise MismatchError(
                f"validation shards '{other.folder}' come from another tokenizer than training shards '{self.folder}'"
            )
        ours, theirs = self.manifest.get("condition_fields"), other.manifest.get("condition_fields")
        if (ours or theirs) and ours != theirs:
            raise MismatchError(
                f"validation shards '{other.folder}' have other condition fields or value names than training "
                f"shards '{self.folder}': encode both with the same --condition-fields and metadata.csv"
            )
