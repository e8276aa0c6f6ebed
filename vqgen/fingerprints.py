"""Fingerprints of how a model codes: what code shards and ``.vqz`` headers store to refuse another model's codes.

A fingerprint hashes a model's config (without ``_``-keys such as ``_name_or_path``, which say where it was
loaded from) and its weights. A config key added in a later release would change every fingerprint written
before it, and old shards and ``.vqz`` files would be refused by the very model that made them (ground rule 8).
So each key added later is listed with the value under which models code exactly as they did before the key
existed, in the order the keys came; a model holding those values also answers to the fingerprints earlier
releases wrote for it (:func:`config_eras`). New files store the current fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence

import torch

__all__ = [
    "LATER_PRIOR_KEYS",
    "LATER_TOKENIZER_KEYS",
    "config_eras",
    "iter_tokenizer_fingerprints",
    "model_digest",
    "tokenizer_fingerprint",
    "tokenizer_fingerprints",
]

#: Tokenizer config keys added after the first shards and ``.vqz`` files, oldest first, each with its value
#: that codes as before it: ``frontend`` (2026-12-02, audio), ``pitch_range`` (2026-12-02, audio; read only by
#: the harmonic frontends), ``phase_levels`` (2026-12-04, the parametric frontend's phase codes).
LATER_TOKENIZER_KEYS: tuple[tuple[str, object], ...] = (
    ("frontend", "waveform"),
    ("pitch_range", [30.0, 2000.0]),
    ("phase_levels", 0),
)
#: The same for a prior's config (``.vqz`` format 5 was first written without ``condition_fields``).
LATER_PRIOR_KEYS: tuple[tuple[str, object], ...] = (("condition_fields", None),)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def config_eras(config: Mapping, later_keys: Sequence[tuple[str, object]]) -> list[dict]:
    """``config`` as each release wrote it, newest first: the public keys, then with the last-added key left
    out, then the last two, ... while every key left out holds its neutral value (a key with another value
    cannot have been written before it existed). Duplicates (keys a model never had) are dropped."""
    public = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    eras: list[dict] = []
    for cut in range(len(later_keys), -1, -1):
        dropped = later_keys[cut:]
        if any(key in public and _canonical(public[key]) != _canonical(value) for key, value in dropped):
            break
        era = {k: v for k, v in public.items() if k not in dict(dropped)}
        if era not in eras:
            eras.append(era)
    return eras


def model_digest(config: Mapping, module: torch.nn.Module, prefix: bytes = b"") -> str:
    """A short sha256 of ``prefix``, the (already filtered) ``config`` as sorted JSON and every tensor of
    ``module``'s state dict by name, as float32 bytes."""
    digest = hashlib.sha256(prefix)
    digest.update(_canonical(dict(config)).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def iter_tokenizer_fingerprints(tokenizer: torch.nn.Module) -> Iterator[str]:
    """Every fingerprint ``tokenizer`` answers to, computed as they are asked for: the current one first, then
    those earlier releases wrote for it (``LATER_TOKENIZER_KEYS``)."""
    for era in config_eras(tokenizer.config, LATER_TOKENIZER_KEYS):
        yield model_digest(era, tokenizer)


def tokenizer_fingerprints(tokenizer: torch.nn.Module) -> list[str]:
    """All of :func:`iter_tokenizer_fingerprints`."""
    return list(iter_tokenizer_fingerprints(tokenizer))


def tokenizer_fingerprint(tokenizer: torch.nn.Module) -> str:
    """A short hash of the tokenizer's config and weights: equal fingerprints decode codes identically."""
    return next(iter_tokenizer_fingerprints(tokenizer))
