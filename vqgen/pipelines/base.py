"""TokenPipeline: a diffusers ``DiffusionPipeline`` that chains a prior (codes) and a tokenizer (media).

The medium-specific subclasses only turn decoded tensors into their output type. Everything else lives
here: component checks, offline safetensors-only loading, seeded sampling, and splitting many samples across
processes with Accelerate's ``PartialState``.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from vqgen.checks import positive_number, whole_number
from vqgen.errors import CheckpointError, ConfigError, MismatchError, ShapeError, VqgenError
from vqgen.evaluation.background import check_background
from vqgen.integrity import verify_manifest, write_manifest
from vqgen.pipelines.condition_draws import check_condition_draws, draw_conditions
from vqgen.pipelines.conditions import check_condition_names, resolve_class_labels, resolve_conditions
from vqgen.priors.sampling_config import SamplingConfig

__all__ = [
    "ScoreOutput",
    "TokenPipeline",
    "check_background",
    "check_components",
    "generate_samples",
    "prior_levels",
    "process_state",
]

COMPONENTS = ("tokenizer", "prior")
#: Components a pipeline may hold or not: ``background``, the general-domain prior of likelihood-ratio scores.
OPTIONAL_COMPONENTS = ("background",)
#: Classifier-free guidance used when class labels are given and no ``guidance_scale``, unless the pipeline
#: stores its own (``default_guidance_scale``).
DEFAULT_GUIDANCE_SCALE = 3.0
#: The ``SamplingConfig`` fields a pipeline stores as ``default_sampling`` (the guidance scale has its own
#: default, ``default_guidance_scale``).
SAMPLING_DEFAULT_FIELDS = ("temperature", "top_k", "top_p", "guidance_schedule", "guidance_level_weights")


def stored_guidance(index) -> float:
    """The guidance a pipeline whose ``model_index.json`` (or config) is ``index`` draws labelled samples with:
    its ``default_guidance_scale``, else ``DEFAULT_GUIDANCE_SCALE``."""
    value = index.get("default_guidance_scale")
    return DEFAULT_GUIDANCE_SCALE if value is None else float(value)


def sampling_from_dict(values: dict) -> SamplingConfig:
    """A stored ``default_sampling`` (``{"temperature": 0.8, "top_k": 100}``) -> ``SamplingConfig``, refused in
    one line when it holds another key or a bad value."""
    if not isinstance(values, dict) or set(values) - set(SAMPLING_DEFAULT_FIELDS):
        raise ConfigError(
            f"default_sampling must be a dict of {', '.join(SAMPLING_DEFAULT_FIELDS)}, got {values!r}"
        )
    return SamplingConfig(**values)


def process_state():
    """Accelerate's ``PartialState``, on the CPU when ``accelerate launch`` was asked for CPU processes
    (``ACCELERATE_USE_CPU``; without it a CPU-only launch would not join the process group)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def _sample_shape_from(tokenizer, prior) -> tuple[int, ...]:
    """The media shape of one item derived from the prior's grid by the tokenizer's ``media_shape``:
    ``(C, H, W)`` for images, ``(C, T, H, W)`` for video, ``(C, S)`` for audio."""
    grid = tuple(prior.config.code_grid)
    try:
        return tuple(int(v) for v in tokenizer.media_shape(grid))
    except ShapeError:
        raise MismatchError(
            f"the prior models code grid {list(grid)}, which a {type(tokenizer).__name__} cannot make"
        ) from None


def prior_levels(tokenizer, prior) -> int | None:
    """How many leading code levels of a residual ``tokenizer`` the ``prior`` models (its grid's first axis),
    or None for a tokenizer with one level (no level axis to cut)."""
    return int(prior.config.code_grid[0]) if tokenizer.num_levels > 1 else None


def check_components(tokenizer, prior) -> tuple[int, ...]:
    """Refuse a prior that does not model this tokenizer's codes; returns the media shape of one item.

    A prior over the first ``K`` levels of a residual tokenizer (shards from ``vqgen encode --levels K``)
    is accepted: residual decoding takes any leading levels, so the pipeline draws ``K`` and decodes them.
    """
    if prior.config.codebook_size != tokenizer.codebook_size:
        raise MismatchError(
            f"the prior models {prior.config.codebook_size} codes but the tokenizer has {tokenizer.codebook_size}"
        )
    shape = _sample_shape_from(tokenizer, prior)
    grid = list(tokenizer.code_grid(shape))
    modelled = list(prior.config.code_grid)
    levels = prior_levels(tokenizer, prior)
    if levels is not None and 1 <= levels <= grid[0] and grid[1:] == modelled[1:]:
        grid[0] = levels
    if grid != modelled:
        raise MismatchError(f"the prior models code grid {modelled}, the tokenizer makes {grid}")
    return shape


def check_same_codes(current, replacement) -> None:
    """Refuse a ``replacement`` tokenizer that could code some input differently from ``current``: another
    class or config, or any encoder or quantizer tensor (weights, codebook, statistics) that differs. A
    ``--decoder-only`` fine-tune of ``current`` passes: only its decoder moved."""
    if type(replacement) is not type(current):
        raise MismatchError(
            f"the new tokenizer is a {type(replacement).__name__}, the pipeline's a {type(current).__name__}"
        )
    ignored = {"_name_or_path", "_diffusers_version", "_class_name", "_use_default_values"}
    mine, theirs = (
        {k: v for k, v in dict(t.config).items() if k not in ignored} for t in (current, replacement)
    )
    if mine != theirs:
        changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        raise MismatchError(f"the new tokenizer's config differs from the pipeline's in {', '.join(changed)}")
    for part in ("encoder", "quantizer"):
        new = getattr(replacement, part).state_dict()
        for name, value in getattr(current, part).state_dict().items():
            other = new[name].to(device=value.device, dtype=value.dtype)
            if not torch.equal(value, other):
                raise MismatchError(
                    f"the new tokenizer's {part}.{name} differs from the pipeline's: it would change the codes "
                    "the prior was trained on (fine-tune with --decoder-only to keep them)"
                )


@dataclass
class ScoreOutput(BaseOutput):
    """How likely each item is under the pipeline (higher bits = more surprising, e.g. an anomaly).

    Attributes:
        bits_per_dim: float ``[N]``, ``-log2 p(codes)`` divided by the item's media values (C x H x W).
        bits_per_token: float ``[N]``, ``-log2 p(codes)`` divided by the number of codes.
        reconstruction_error: float ``[N]``, mean squared error of ``decode(encode(x))`` against ``x`` in [-1, 1].
        likelihood_ratio: float ``[N]``, or None for a pipeline without a background prior: bits per dim under
            the prior (its class marginal ``-log2 (1/C) sum_y p(codes | y)`` without labels, else under the
            given labels) minus bits per dim under the background. The anomaly score to rank by: it discounts
            what any image of the kind costs (see ``vqgen.evaluation.background``).
    """

    bits_per_dim: torch.Tensor
    bits_per_token: torch.Tensor
    reconstruction_error: torch.Tensor
    likelihood_ratio: torch.Tensor | None = None


def item_generators(generator, num_items: int) -> list[torch.Generator] | None:
    """One generator per item: a list is checked and kept; one generator seeds ``num_items`` new ones."""
    if generator is None:
        return None
    if isinstance(generator, list):
        if len(generator) != num_items or not all(isinstance(g, torch.Generator) for g in generator):
            raise ConfigError(
                f"generator must be one torch.Generator or a list of {num_items} (one per sample), "
                f"got a list of {len(generator)}"
            )
        return generator
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    seeds = torch.randint(0, 2**62, (num_items,), generator=generator, device=generator.device).tolist()
    return [torch.Generator(generator.device).manual_seed(seed) for seed in seeds]


class TokenPipeline(DiffusionPipeline):
    """Prior sampling then tokenizer decoding. Each medium subclasses it with ``__call__`` (output type and
    post-processing) and :meth:`preprocess` (the media forms ``score`` and ``compress`` accept)."""

    #: The medium (``vqgen.media``) of the pipeline's outputs; each subclass names its own.
    medium: str | None = None
    #: Output types ``__call__`` accepts.
    output_types: tuple[str, ...] = ("pil", "np", "pt")
    #: Position of the time axis counted from the end of a code grid, for media with one (video: 3, as in
    #: ``(t, h, w)``); None for media without a time axis. Lets ``generate_media`` cut ``time_steps``.
    time_axis_from_end: int | None = None
    _optional_components = list(OPTIONAL_COMPONENTS)

    def __init__(
        self,
        tokenizer,
        prior,
        background=None,
        default_guidance_scale: float | None = None,
        condition_names: dict[str, list[str]] | None = None,
        default_sampling: dict | None = None,
        condition_draws: dict | None = None,
    ):
        super().__init__()
        check_components(tokenizer, prior)
        if background is not None:
            check_background(prior, background)
        self.register_modules(tokenizer=tokenizer, prior=prior, background=background)
        if default_guidance_scale is not None:
            self.set_default_guidance_scale(default_guidance_scale)
        if default_sampling is not None:  # pipelines saved before it have none and draw as they did
            self.set_default_sampling(sampling_from_dict(default_sampling))
        names = check_condition_names(prior, condition_names)
        if names is not None:  # older pipelines have none; their model_index.json stays as it was
            self.register_to_config(condition_names=names)
        if condition_draws is not None:
            self.set_condition_draws(condition_draws)

    def encode_codes(self, media: torch.Tensor) -> torch.Tensor:
        """Media batch (the tokenizer's input form, on its device) -> the codes the prior models: the
        tokenizer's codes, cut to the prior's leading levels where it models fewer than a residual tokenizer
        makes (:func:`prior_levels`)."""
        codes = self.tokenizer.encode(media)
        levels = prior_levels(self.tokenizer, self.prior)
        return codes if levels is None else codes[:, :levels]

    @property
    def condition_names(self) -> dict[str, list[str]]:
        """The value names of the prior's condition fields, ``{field: [names]}`` (saved in ``model_index.json``;
        ``{"class": ["activities", ...]}`` for folder classes), empty for a pipeline saved without them, whose
        fields then take indices only. See ``vqgen.pipelines.conditions`` for how names and numbers are read."""
        return dict(self.config.get("condition_names") or {})

    def condition_indices(self, class_labels, num_items: int, conditions=None) -> torch.Tensor | None:
        """``class_labels`` or ``conditions`` (names or numbers) -> the prior's value indices LongTensor
        ``[num_items, F]`` (-1: a field's null), or None when neither is given."""
        return self.prior.condition_indices(
            resolve_class_labels(self, class_labels), num_items, resolve_conditions(self, conditions)
        )

    @property
    def condition_draws(self) -> dict | None:
        """The fields this pipeline draws when a call leaves them out, and the training data's value table
        they are drawn from (``vqgen.pipelines.condition_draws``); None: missing fields stay null."""
        return self.config.get("condition_draws")

    def set_condition_draws(self, draws: dict | None) -> None:
        """Store ``{"fields": [...], "table": [[values..., count], ...]}`` (checked against the prior; see
        ``vqgen.pipelines.condition_draws.condition_table``); ``save_pretrained`` keeps it."""
        self.register_to_config(condition_draws=check_condition_draws(self.prior, draws))

    @property
    def default_guidance_scale(self) -> float:
        """The guidance drawn with when class labels come without ``guidance_scale``: the pipeline's own
        (saved in ``model_index.json``), else ``DEFAULT_GUIDANCE_SCALE``."""
        return stored_guidance(self.config)

    def set_default_guidance_scale(self, value: float) -> None:
        """Store this pipeline's default guidance (e.g. the best on a held-out draw); ``save_pretrained`` keeps it."""
        self.register_to_config(default_guidance_scale=positive_number("default_guidance_scale", value))

    @property
    def default_sampling(self) -> SamplingConfig:
        """The temperature, top-k, top-p, guidance schedule and level weights drawn with when a call gives no
        ``sampling``: the pipeline's own (``default_sampling`` in ``model_index.json``, set by
        :meth:`set_default_sampling`), else ``SamplingConfig()``'s (temperature 1, no filter). Its guidance is None:
        guidance follows the labels (:attr:`default_guidance_scale`). As a ``transformers`` model carries its ``GenerationConfig``, the
        weights travel with the sampling they were tuned for: the instrument prior, trained on 2,826 notes, draws
        recognisable families far more often at temperature 0.8 with top-k 100 than at 1 (``benchmarks/RESULTS.md``).
        """
        return sampling_from_dict(self.config.get("default_sampling") or {})

    def set_default_sampling(self, sampling: SamplingConfig) -> None:
        """Store ``sampling``'s temperature, top-k, top-p, guidance schedule and level weights as this pipeline's
        defaults (e.g. the best on a held-out draw), and its guidance, where it has one, as
        :attr:`default_guidance_scale`; ``save_pretrained`` keeps them."""
        if not isinstance(sampling, SamplingConfig):
            raise ConfigError(f"sampling must be a SamplingConfig, got {type(sampling).__name__}")
        stored = {name: getattr(sampling, name) for name in SAMPLING_DEFAULT_FIELDS}
        self.register_to_config(default_sampling={k: v for k, v in stored.items() if v is not None})
        if sampling.guidance_scale is not None:
            self.set_default_guidance_scale(sampling.guidance_scale)

    def sampling_config(self, sampling: SamplingConfig | None = None, **shortcuts) -> SamplingConfig:
        """How a call draws: ``sampling`` (default :attr:`default_sampling`) with every shortcut that is not None
        (``temperature=0.9`` ...) put in. A ``SamplingConfig`` given replaces the pipeline's defaults whole."""
        return SamplingConfig.from_arguments(
            self.default_sampling if sampling is None else sampling, **shortcuts
        )

    def drawn_sampling(self, sampling: SamplingConfig, labelled: bool) -> SamplingConfig:
        """``sampling`` with its guidance filled in as a draw applies it: a guidance of None becomes
        :attr:`default_guidance_scale` when the draw has class labels or conditions, else 1."""
        if sampling.guidance_scale is not None:
            return sampling
        default = self.default_guidance_scale if labelled else 1.0
        return SamplingConfig.from_arguments(sampling, guidance_scale=default)

    def set_tokenizer(self, tokenizer) -> None:
        """Swap in a tokenizer that codes every input as the current one does, e.g. a ``--decoder-only``
        fine-tune of it (:func:`check_same_codes`): the prior and background still fit, only decoding changes;
        ``save_pretrained`` stores it."""
        check_same_codes(self.tokenizer, tokenizer)
        # ModelMixin's device and dtype: of the first parameter, or buffer (a parametric codec has no parameter)
        tokenizer = tokenizer.to(self.tokenizer.device)
        if tokenizer.dtype != self.tokenizer.dtype:
            tokenizer = tokenizer.to(dtype=self.tokenizer.dtype)
        self.register_modules(tokenizer=tokenizer)

    def set_background(self, background) -> None:
        """Attach a background prior for :attr:`ScoreOutput.likelihood_ratio` (None removes it); it is saved
        with the pipeline as its ``background`` component."""
        if background is not None:
            check_background(self.prior, background)
            background.eval()
        self.register_modules(background=background)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one generated item, e.g. ``(C, H, W)``."""
        return _sample_shape_from(self.tokenizer, self.prior)

    @property
    def num_classes(self) -> int:
        """Values of the prior's one condition field (0: unconditional, or several fields)."""
        return self.prior.num_classes

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a local folder written by ``save_pretrained``: offline, weights from safetensors only."""
        folder = Path(pretrained_model_name_or_path)
        index = folder / "model_index.json"
        if not folder.is_dir():
            raise CheckpointError(
                f"pipeline folder '{folder}' does not exist (pipelines load from local folders only)"
            )
        if not index.is_file():
            raise CheckpointError(f"'{folder}' has no model_index.json: not a saved vqgen pipeline")
        try:
            entries = json.loads(index.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"'{index}' is not valid JSON ({error})") from None
        if not isinstance(entries, dict):
            raise CheckpointError(f"'{index}' must hold a JSON object")
        for name in COMPONENTS + OPTIONAL_COMPONENTS:
            entry = entries.get(name)
            if name in OPTIONAL_COMPONENTS and entry in (None, [None, None]):
                continue
            # Only vqgen's own classes may be named: diffusers imports whatever module the index names.
            if not (isinstance(entry, list) and len(entry) == 2 and str(entry[0]).split(".")[0] == "vqgen"):
                raise CheckpointError(f"'{index}' must name a vqgen '{name}' component, got {entry!r}")
            # diffusers loads custom components only from modules already imported.
            try:
                importlib.import_module(entry[0])
            except (ImportError, ValueError):
                raise CheckpointError(f"'{index}' names {entry[0]!r}, which is not a vqgen module") from None
            if not (folder / name / "config.json").is_file():
                raise CheckpointError(f"pipeline '{folder}' is missing its {name} folder ({folder / name})")
            if not any((folder / name).glob("*.safetensors")):
                raise CheckpointError(f"pipeline '{folder}' has no safetensors weights in {folder / name}")
        verify_manifest(folder)
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("local_files_only", True)
        try:
            pipe = super().from_pretrained(str(folder), **kwargs)
        except VqgenError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure in the library means an unusable folder
            text = " ".join(str(error).split()) or type(error).__name__
            raise CheckpointError(f"cannot load pipeline from '{folder}': {text[:300]}") from None
        pipe.tokenizer.eval()
        pipe.prior.eval()
        if pipe.background is not None:
            check_background(pipe.prior, pipe.background)
            pipe.background.eval()
        return pipe

    def save_pretrained(self, save_directory, provenance: dict | None = None, **kwargs) -> None:
        """diffusers' ``save_pretrained`` (safetensors), then ``vqgen_manifest.json``: the SHA-256 of every
        weight and config file and ``provenance`` (what trained the weights), checked by ``from_pretrained``
        and ``vqgen info``."""
        kwargs.setdefault("safe_serialization", True)
        super().save_pretrained(save_directory, **kwargs)
        write_manifest(save_directory, provenance)

    def preprocess(self, media) -> torch.Tensor:
        """Media in the user's form -> float ``[N, *sample_shape]`` in [-1, 1]; each medium implements it."""
        raise NotImplementedError

    def augment(self, media: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random view of media float ``[N, *sample_shape]`` for ``score(views=...)``; images implement it."""
        raise ConfigError(f"score views > 1 work with image pipelines, not a {type(self).__name__}")

    @torch.no_grad()
    def score(
        self,
        media,
        class_labels=None,
        batch_size: int = 64,
        views: int = 1,
        generator: torch.Generator | None = None,
        conditions=None,
    ) -> ScoreOutput:
        """Likelihood of ``media`` under the prior, per item.

        ``class_labels=None`` scores with the null class, the prior's class-marginal (unconditional) model;
        labels score ``log p(codes | class)``, ``conditions`` (``{field: values}``, as ``__call__`` takes them)
        ``log p(codes | conditions)``. Media forms are those :meth:`preprocess` accepts. A pipeline
        with a ``background`` also returns ``likelihood_ratio``, the better anomaly score; ``views`` > 1
        averages it over the item and ``views - 1`` jittered views of it (:meth:`augment`, drawn from
        ``generator``, default seeded 0), a steadier estimate. ``bits_per_dim`` and ``bits_per_token`` are
        always those of the item itself.
        """
        from vqgen.evaluation.background import code_bits, likelihood_ratio_bits

        whole_number("views", views, 1)
        if views > 1 and self.background is None:
            raise ConfigError(
                "views > 1 average the likelihood ratio, which needs a pipeline with a background"
            )
        media = self.preprocess(media)
        labels = self.condition_indices(class_labels, media.shape[0], conditions)
        dims = math.prod(media.shape[1:])
        jittered = []
        if views > 1:
            generator = generator if generator is not None else torch.Generator().manual_seed(0)
            jittered = [self.augment(media, generator) for _ in range(views - 1)]
        bits, errors, ratios = [], [], []
        for start in range(0, media.shape[0], batch_size):
            x = media[start : start + batch_size].to(self.tokenizer.device)
            codes = self.encode_codes(x)
            chunk = None if labels is None else labels[start : start + batch_size]
            bits.append(code_bits(self.prior, codes.to(self.prior.device), None, batch_size, chunk))
            if self.background is not None:
                view_codes = [codes] + [
                    self.encode_codes(view[start : start + batch_size].to(self.tokenizer.device))
                    for view in jittered
                ]
                per_view = [
                    likelihood_ratio_bits(
                        self.prior, self.background, c.to(self.prior.device), conditions=chunk
                    )
                    for c in view_codes
                ]
                ratios.append(torch.stack(per_view).mean(0))
            reconstruction = self.tokenizer.decode(codes).float().clamp(-1, 1)
            errors.append((reconstruction - x.float()).pow(2).flatten(1).mean(1).cpu())
        total = torch.cat(bits) if bits else torch.zeros(0)
        ratio = None if self.background is None else torch.cat(ratios or [torch.zeros(0)]) / dims
        return ScoreOutput(
            bits_per_dim=total / dims,
            bits_per_token=total / self.prior.layout.codes_per_item,
            reconstruction_error=torch.cat(errors) if errors else torch.zeros(0),
            likelihood_ratio=ratio,
        )

    def compress(self, media, class_labels=None, conditions=None) -> bytes:
        """Range-code ``media`` under the prior (see ``vqgen.compression``), under ``class_labels`` or
        ``conditions`` (names or numbers, as ``__call__`` takes them); ``decompress`` inverts it."""
        from vqgen.compression import compress

        return compress(
            self, media, resolve_class_labels(self, class_labels), resolve_conditions(self, conditions)
        )

    def decompress(self, data: bytes) -> torch.Tensor:
        """Bytes from :meth:`compress` -> media ``[N, *sample_shape]``, equal to the tokenizer's reconstruction."""
        from vqgen.compression import decompress

        return decompress(self, data)[0]

    def _check_call(self, num_samples: int, class_labels, output_type: str) -> None:
        whole_number("num_samples", num_samples, 1)
        if output_type not in self.output_types:
            names = ", ".join(repr(t) for t in self.output_types[:-1]) + f" or {self.output_types[-1]!r}"
            raise ConfigError(f"output_type must be {names}, got {output_type!r}")

    @staticmethod
    def check_prompt_count(prompt: torch.Tensor, num_samples: int, name: str) -> None:
        """A prompt's codes ``[N, ...]`` serve every sample (``N == 1``) or one each (``N == num_samples``)."""
        if prompt.shape[0] not in (1, num_samples):
            raise ConfigError(
                f"{name} holds {prompt.shape[0]} clips; give one clip or one per sample ({num_samples})"
            )

    @torch.no_grad()
    def generate_media(
        self,
        num_samples: int = 1,
        *,
        sampling: SamplingConfig | None = None,
        class_labels=None,
        prompt: torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        batch_size: int = 64,
        progress: bool = False,
        time_steps: int | None = None,
        conditions=None,
    ) -> torch.Tensor:
        """Sample codes and decode them: float media ``[num_samples, *sample_shape]`` in [-1, 1] on the CPU.

        ``class_labels`` / ``conditions``: see :meth:`condition_indices`. ``sampling``: how codes are drawn; a
        guidance scale of None becomes :attr:`default_guidance_scale` when class labels or conditions are
        given, else 1. ``prompt``: known leading codes ``[1 or num_samples, ...]``.
        ``time_steps``: keep only the first steps of the grid's time axis (fewer video frames); the media
        then has that many steps' worth of length instead of ``sample_shape``'s.

        A ``generator`` seeds one generator per item (or pass a list, one per item, as in diffusers), so an
        item's sample does not depend on the batch it is drawn in. Under ``accelerate launch`` each process
        draws its share (``PartialState.split_between_processes``) and the shares are gathered in order on every
        process: the same samples as one process with the same seed.
        """
        from accelerate.utils import gather_object

        generators = item_generators(generator, num_samples)
        labels = self.condition_indices(class_labels, num_samples, conditions)
        labels = draw_conditions(self.condition_draws, list(self.prior.condition_fields), labels, generators)
        sampling = self.drawn_sampling(SamplingConfig() if sampling is None else sampling, labels is not None)
        state = process_state()
        indices = list(range(num_samples))
        if state.num_processes > 1:
            with state.split_between_processes(indices) as mine:
                indices = list(mine)
        pieces = []
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            chunk_labels = None if labels is None else labels[chunk]
            chunk_prompt = prompt if prompt is None or prompt.shape[0] == 1 else prompt[chunk]
            codes = self.prior.sample(
                batch_size=len(chunk),
                sampling=sampling,
                conditions=chunk_labels,
                prompt=chunk_prompt,
                generator=None if generators is None else [generators[i] for i in chunk],
                progress=progress,
                time_steps=time_steps,
            )
            pieces.append(self.tokenizer.decode(codes.to(self.tokenizer.device)).float().clamp(-1, 1).cpu())
        if not pieces:
            grid = list(self.prior.config.code_grid)
            if time_steps is not None:
                axis = len(grid) - self.time_axis_from_end
                grid[axis] = min(time_steps, grid[axis])
            pieces = [torch.empty(0, *self.tokenizer.media_shape(tuple(grid)))]
        media = torch.cat(pieces)
        if state.num_processes > 1:
            media = torch.cat(gather_object([media]))
        return media


def generate_samples(
    pipe,
    num_samples: int,
    *,
    class_labels: list[int | str] | None = None,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
    conditions: dict | None = None,
    **call_options,
) -> BaseOutput:
    """``pipe``'s output (``output_type="np"``) of ``num_samples`` items drawn ``batch_size`` at a time, as
    ``vqgen generate`` draws them: one generator seeded ``seed`` on the pipeline's device (the sampler never
    waits for noise from the host) serves every batch. ``class_labels``: one per sample; ``conditions``:
    ``{field: one value, or a list of one per sample}``. ``call_options`` are the medium's keyword arguments of
    the pipeline call (video: ``num_frames``, ``prompt_frames``; audio: ``audio_length_in_s``, ``prompt_audio``).
    """
    import numpy as np
    from tqdm.auto import tqdm

    generator = torch.Generator(pipe.device).manual_seed(seed)
    chunks, out, key = [], None, None
    starts = range(0, num_samples, batch_size)
    for start in tqdm(
        starts, desc="generate", unit="batch", disable=num_samples <= batch_size or not progress
    ):
        count = min(batch_size, num_samples - start)
        chunk = slice(start, start + count)
        out = pipe(
            num_samples=count,
            class_labels=class_labels[chunk] if class_labels else None,
            conditions=None
            if conditions is None
            else {k: v[chunk] if isinstance(v, list) else v for k, v in conditions.items()},
            sampling=sampling,
            generator=generator,
            output_type="np",
            batch_size=batch_size,
            **call_options,
        )
        key = next(iter(out.keys()))  # images / videos / audios
        chunks.append(out[key])
    out[key] = np.concatenate(chunks)  # BaseOutput sets the attribute too
    return out
