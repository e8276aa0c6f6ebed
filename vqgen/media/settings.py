"""A new tokenizer from settings: the architecture and quantizer choices of ``vqgen train-tokenizer``, with the
defaults each medium gives the settings left as None (audio: residual levels, quantizer dropout, 32 channels).

``build_tokenizer(get_medium("audio"), TokenizerSettings(), channels=1)`` is the tokenizer the command builds
from its defaults; a JSON config file or a saved tokenizer (``start``) replaces the architecture settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vqgen.errors import ConfigError
from vqgen.media.base import Medium, get_medium, medium_of

__all__ = [
    "TokenizerSettings",
    "build_tokenizer",
    "quantizer_config",
    "read_tokenizer_config",
    "start_tokenizer",
]


@dataclass
class TokenizerSettings:
    """What shapes a new tokenizer; ``None`` means the medium's default (see each medium's ``defaults``).

    ``num_quantizers`` is the residual depth of an ``rvq`` quantizer; ``fsq_levels`` the quantization levels
    per dimension of an ``fsq`` one. ``strides``, ``causal``, ``norm``, ``activation``, ``frontend``, ``max_channels``,
    ``phase_levels`` and ``sample_rate`` shape the audio codec, ``temporal_factor`` the video tokenizer, the rest every tokenizer.
    """

    base_channels: int | None = None
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    latent_channels: int = 64
    quantizer: str | None = None
    codebook_size: int | None = None
    codebook_dim: int | None = None
    beta: float = 0.25
    ema_codebook: bool = True
    kmeans_init: bool = True
    dead_code_threshold: int = 50
    l2_normalize: bool = False
    learned_code_norms: bool = False
    rotation_trick: bool = False
    simvq: bool = False
    input_space_weight: float | None = None
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    num_quantizers: int | None = None
    quantizer_dropout: float | None = None
    strides: list[int] = field(default_factory=lambda: [2, 4, 5, 8])
    causal: bool = False
    norm: str | None = None
    activation: str | None = None
    frontend: str | None = None
    max_channels: int | None = None
    phase_levels: int = 0
    temporal_factor: int = 4
    sample_rate: int = 16000


def quantizer_config(medium: Medium, settings: TokenizerSettings) -> dict:
    """The ``quantizer_config`` of a new tokenizer of ``medium`` (keys in the order saved configs have)."""
    defaults = medium.defaults
    kind = settings.quantizer or defaults["quantizer"]
    if settings.num_quantizers is not None and kind != "rvq":
        raise ConfigError(f"--num-levels / --num-quantizers need --quantizer rvq, got --quantizer {kind}")
    if kind == "fsq":
        return {"type": "fsq", "levels": settings.fsq_levels}
    quantizer = {
        "type": kind,
        "codebook_size": settings.codebook_size or defaults["codebook_size"],
        "codebook_dim": settings.codebook_dim,
        "beta": settings.beta,
        "ema": settings.ema_codebook,
        "kmeans_init": settings.kmeans_init,
        "dead_code_threshold": settings.dead_code_threshold,
        "l2_normalize": settings.l2_normalize,
    }
    if settings.learned_code_norms:  # only when asked: older configs stay byte-identical
        quantizer["learned_code_norms"] = True
    for option in ("rotation_trick", "simvq"):  # likewise only when asked
        if getattr(settings, option):
            quantizer[option] = True
    if settings.input_space_weight:
        quantizer["input_space_weight"] = settings.input_space_weight
    if kind == "rvq":
        dropout = settings.quantizer_dropout
        quantizer.update(
            num_quantizers=settings.num_quantizers or defaults["num_quantizers"],
            quantizer_dropout=defaults["quantizer_dropout"] if dropout is None else dropout,
        )
    return quantizer


def read_tokenizer_config(
    medium: Medium, path: str | Path, settings: TokenizerSettings, channels: int
) -> dict:
    """A tokenizer config from a JSON file (``--tokenizer-config``); ``in_channels`` and the medium's own
    defaults (audio: ``sample_rate``) come from ``channels`` and ``settings`` where the file leaves them out."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read --tokenizer-config '{path}': {error}") from None
    config.setdefault("in_channels", channels)
    config = medium.complete_config(config, settings)
    return {k: v for k, v in config.items() if not k.startswith("_")}


def start_tokenizer(medium: Medium, folder: str | Path, settings: TokenizerSettings):
    """The saved tokenizer in ``folder`` (``--init-from``) as a tokenizer of ``medium`` to train further: one of
    its own medium, or of a medium it starts from (video: an image tokenizer, its 2-D kernels inflated)."""
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(folder)
    if medium_of(tokenizer).name not in medium.init_from_media:
        allowed = ", ".join(get_medium(name).tokenizer_class.__name__ for name in medium.init_from_media)
        raise ConfigError(
            f"--init-from '{folder}': found {type(tokenizer).__name__}; --modality {medium.name} "
            f"starts from: {allowed}"
        )
    return medium.start_from(tokenizer, settings)


def build_tokenizer(
    medium: Medium, settings: TokenizerSettings, channels: int, config_file: str | Path | None = None
):
    """A new tokenizer of ``medium`` for data of ``channels`` channels, from ``config_file`` (JSON) when
    given, else from ``settings``. Seed the random number generators first: its weights are drawn here."""
    medium.check_settings(settings)
    if config_file:
        config = read_tokenizer_config(medium, config_file, settings, channels)
    else:
        config = medium.tokenizer_config(settings, channels)
    return medium.tokenizer_class(**config)
