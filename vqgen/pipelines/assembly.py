"""Making pipelines: the prior a code-shard folder asks for, the samples it previews while it trains, the
pipeline folder written at the end, and a background prior fitted onto a saved pipeline.

What ``vqgen train-prior`` and ``vqgen fit-background`` do, callable from Python::

    shards = CodeShardDataset("runs/shards")
    set_seed(0)
    prior = prior_for_shards(shards, medium_of(tokenizer), hidden_size=192)
    prior = train_prior(prior, shards, options, save_samples=sample_preview(tokenizer))
    save_pipeline(tokenizer, prior, "runs/prior/pipeline", condition_names=shards.condition_names)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from vqgen.media.base import Medium, medium_of

__all__ = [
    "check_background_shape",
    "fit_pipeline_background",
    "prior_for_shards",
    "sample_preview",
    "save_pipeline",
    "save_pipeline_copy",
    "start_prior",
]


def prior_for_shards(
    shards,
    medium: Medium,
    *,
    layout: str | None = None,
    conditional: bool = True,
    hidden_size: int = 256,
    num_layers: int = 6,
    num_heads: int = 8,
    num_kv_heads: int | None = None,
    class_dropout: float = 0.1,
    dropout: float = 0.0,
):
    """A new ``CodePrior`` over the code grid and codebook of ``shards`` (a ``CodeShardDataset``), conditioned on
    the shards' labels unless ``conditional`` is False: one class per label name (``num_classes``, as folder
    classes always were), or the shards' named condition fields (``condition_fields``, e.g. from ``vqgen
    encode --condition-fields family,pitch``); in ``layout`` (default: the medium's, ``raster`` for images and
    video, ``delay`` for audio). Seed the random number generators first: its weights are drawn here."""
    from vqgen.priors.conditions import CLASS_FIELD
    from vqgen.priors.prior import CodePrior

    fields = shards.condition_fields if conditional else {}
    classes = fields[CLASS_FIELD] if list(fields) == [CLASS_FIELD] else 0
    prior = CodePrior(
        codebook_size=shards.codebook_size,
        code_grid=list(shards.code_grid),
        num_classes=classes,
        condition_fields=fields if fields and not classes else None,
        layout=layout or medium.default_layout,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        class_dropout=class_dropout,
        dropout=dropout,
    )
    shards.check_prior(prior)
    return prior


#: The settings of ``prior_for_shards`` that shape a prior's weights (the rest, dropout, only steer training).
ARCHITECTURE = ("layout", "hidden_size", "num_layers", "num_heads", "num_kv_heads")


def start_prior(
    folder: str | Path,
    shards,
    medium: Medium,
    *,
    conditional: bool = True,
    class_dropout: float = 0.1,
    dropout: float = 0.0,
    layout: str | None = None,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    num_heads: int | None = None,
    num_kv_heads: int | None = None,
):
    """The saved prior in ``folder`` (a prior or a pipeline folder; ``vqgen train-prior --init-from``) as a
    new prior to train further on ``shards``: its weights and architecture, with this run's ``class_dropout``
    and ``dropout``. Warm-starting keeps what a long run learned when a user adds data or steps (the optimizer
    and learning-rate schedule start afresh; ``--resume`` is the route that continues a run exactly).

    The architecture settings (``ARCHITECTURE``; None: the saved prior's) may repeat the saved prior's values;
    a different value, a code grid or codebook other than the shards', or conditioning on other fields or
    value names, raises ``MismatchError`` (one line naming the setting). Shards with every field of a
    conditional saved prior and more (``vqgen encode --condition-fields family,pitch,program`` after a prior
    on family and pitch) add those fields: ``CodePrior.load_with_new_fields``."""
    from vqgen.errors import MismatchError
    from vqgen.loading import load_prior

    saved = load_prior(folder)
    asked = dict(zip(ARCHITECTURE, (layout, hidden_size, num_layers, num_heads, num_kv_heads)))
    for name, value in asked.items():
        if value is not None and value != saved.config[name]:
            raise MismatchError(
                f"--init-from '{folder}' has {name} {saved.config[name]}; this run asks for {value}"
            )
    prior = prior_for_shards(
        shards,
        medium,
        conditional=conditional,
        class_dropout=class_dropout,
        dropout=dropout,
        **{name: saved.config[name] for name in ARCHITECTURE},
    )
    wanted = prior.condition_fields
    added = [name for name in wanted if name not in saved.condition_fields]
    kept_fields = {name: wanted.get(name) for name in saved.condition_fields}
    if kept_fields != saved.condition_fields or (added and not saved.condition_fields):
        theirs = ", ".join(f"{k} ({v})" for k, v in saved.condition_fields.items()) or "none"
        ours = ", ".join(f"{k} ({v})" for k, v in wanted.items()) or "none"
        raise MismatchError(
            f"--init-from '{folder}' is conditioned on {theirs}; the shards in '{shards.folder}' give {ours}"
        )
    named = saved_condition_names(folder) if wanted else {}
    given = shards.condition_names or {}
    for field, values in named.items():
        for i, (theirs, ours) in enumerate(zip(values, given.get(field, []))):
            if theirs != ours:
                raise MismatchError(
                    f"--init-from '{folder}' calls {field} value {i} '{theirs}'; the shards in "
                    f"'{shards.folder}' call it '{ours}' (the same number of values, another meaning)"
                )
    if added:
        prior.load_with_new_fields(saved)
    else:
        prior.load_state_dict(saved.state_dict())
    return prior


def saved_condition_names(folder: str | Path) -> dict[str, list[str]]:
    """The condition value names a pipeline folder stores in its ``model_index.json`` (empty for a bare prior
    folder, which has none; a bad index is a one-line ``CheckpointError``)."""
    from vqgen.loading import read_config

    if not (Path(folder) / "model_index.json").is_file():
        return {}
    names = read_config(folder, "model_index.json").get("condition_names")
    return {str(k): list(v) for k, v in names.items()} if isinstance(names, dict) else {}


def sample_preview(tokenizer, num_classes: int | None = None) -> Callable:
    """``save_samples(prior, path)`` for ``train_prior``: draws the medium's preview count (every class in turn
    at guidance 3 when there are classes; with several condition fields sample ``i`` takes value ``i % n`` of
    each; seeded 0), decodes them with ``tokenizer`` and writes the medium's preview (an image grid, rows of
    video frames, one WAV of all clips). ``num_classes``: the classes to cycle (default: the prior's own)."""
    medium = medium_of(tokenizer)

    def save_samples(model, path: Path) -> None:
        count = medium.preview_samples
        fields = model.condition_fields
        if len(fields) > 1:
            conditions = {name: [i % n for i in range(count)] for name, n in fields.items()}
        else:
            classes = model.num_classes if num_classes is None else num_classes
            conditions = {name: [i % classes for i in range(count)] for name in fields} if classes else None
        codes = model.sample(
            count,
            conditions=conditions,
            guidance_scale=3.0 if conditions else 1.0,
            generator=torch.Generator().manual_seed(0),
        )
        media = tokenizer.decode(codes.to(tokenizer.device)).float().clamp(-1, 1)
        medium.sample_preview(media, path, tokenizer)

    return save_samples


def save_pipeline(tokenizer, prior, folder: str | Path, provenance: dict | None = None, **pipeline_options):
    """The pipeline of ``tokenizer``'s medium chaining ``tokenizer`` and ``prior`` (``pipeline_options``: video
    ``fps``, ``condition_names`` ``{field: [value names]}``), saved to ``folder`` with ``provenance`` in its
    manifest; returns it."""
    pipeline = medium_of(tokenizer).pipeline_class(tokenizer, prior.eval(), **pipeline_options)
    pipeline.save_pretrained(str(folder), provenance=provenance)
    return pipeline


def check_background_shape(pipe, hidden_size: int, num_heads: int) -> None:
    """Refuse a background model shape a ``CodePrior`` over ``pipe``'s codes cannot take, before any encoding."""
    from vqgen.priors.prior import CodePrior

    CodePrior(
        pipe.tokenizer.codebook_size,
        list(pipe.prior.config.code_grid),
        hidden_size=hidden_size,
        num_layers=1,
        num_heads=num_heads,
    )


def fit_pipeline_background(
    pipe,
    dataset,
    *,
    max_items: int = 20000,
    copies: int = 8,
    seed: int = 0,
    progress: bool = True,
    **fit_options,
) -> int:
    """Fit a background prior on ``copies`` generic views of each of the first ``max_items`` items of
    ``dataset`` and attach it to ``pipe`` (``pipe.set_background``); returns the items used. ``fit_options``
    go to ``fit_background`` (``steps``, ``batch_size``, ``learning_rate``, ``hidden_size``, ``num_layers``,
    ``num_heads``)."""
    from vqgen.data.batching import collate
    from vqgen.evaluation.background import generic_view_codes
    from vqgen.pipelines.base import prior_levels
    from vqgen.training.background import fit_background

    count = min(len(dataset), max_items)
    media = collate([dataset[i] for i in range(count)])[medium_of(pipe).item_key]
    codes = generic_view_codes(pipe.tokenizer, media, copies=copies, seed=seed, progress=progress)
    levels = prior_levels(pipe.tokenizer, pipe.prior)
    codes = codes if levels is None else codes[:, :levels]  # the levels the prior models
    background = fit_background(
        codes, pipe.tokenizer.codebook_size, seed=seed, progress=progress, **fit_options
    )
    pipe.set_background(background)
    return count


def save_pipeline_copy(pipe, output: str | Path, source: str | Path, provenance: dict) -> None:
    """Save ``pipe`` to ``output`` atomically with ``provenance``, and the model card of the ``source`` folder."""
    from vqgen.io import atomic_path

    source = Path(source)
    with atomic_path(output) as temporary:
        pipe.save_pretrained(str(temporary), provenance=provenance)
        if (source / "README.md").is_file():  # the model card comes along
            shutil.copy(source / "README.md", Path(temporary) / "README.md")
