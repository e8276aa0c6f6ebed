"""A family classifier for instrument notes: the judge (and feature network) of ``notes_codec.py`` and
``notes_sample_quality.py``.

Not a benchmark itself. The model is the spoken-digit judge of ``audio_classifier.py`` with 16 outputs (the GM
families of ``vqgen.data.instrument_notes.INSTRUMENT_FAMILIES``): 40 MFCCs (64 mel bands, 25 ms windows, 10 ms
hop, each clip floored 50 dB below its own loudest bin) normalised with the train split's statistics, three
1-D conv blocks over time, mean- and max-pooling, a 128-wide feature layer (the Fréchet-distance features) and
16 logits. Audio goes in as ``[N, C, S]`` at any rate (mixed to mono, resampled to 16 kHz).

Trained on the TRAIN split of an instrument-notes build (the test split's programs are unseen instruments of
the same families) with AdamW + one-cycle, label smoothing and the waveform augmentation of
``audio_classifier.augment``: gain ±6 dB, circular shifts up to ±0.05 s, an ideal low-pass at 3-8 kHz on half
the clips and a high-pass up to 150 Hz on 20% (so band-limiting by a codec, Opus's 4 kHz narrowband above
all, is not read as another family), and white noise at 10-60 dB SNR on half. The weights are cached as
safetensors in ``benchmarks/out/notes_classifier.safetensors`` under a key of the settings and the build's
``manifest.json`` + ``metadata.csv``: another build or other settings retrain.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from audio_classifier import (
    SAMPLE_RATE,
    SpokenDigitClassifier,
    features_and_predictions,
    fit_classifier,
)  # noqa: E402
from notes_common import data_fingerprint, load_notes  # noqa: E402

from vqgen.data.instrument_notes import INSTRUMENT_FAMILIES  # noqa: E402

__all__ = ["NoteClassifierSettings", "NoteFamilyClassifier", "features_and_predictions", "load_or_train"]

#: Bump when the architecture, the features or the training loop change, so cached weights are not reused.
ARCHITECTURE_VERSION = 1
NUM_FAMILIES = len(INSTRUMENT_FAMILIES)
CACHE_NAME = "notes_classifier.safetensors"


@dataclass(frozen=True)
class NoteClassifierSettings:
    """Everything that determines the trained weights (hashed into the cache key with the build). The
    augmentation fields are those ``audio_classifier.augment`` reads."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    max_shift_seconds: float = 0.05
    max_gain_db: float = 6.0
    noise_probability: float = 0.5
    noise_snr_db: tuple[float, float] = (10.0, 60.0)
    lowpass_probability: float = 0.5
    lowpass_hz: tuple[float, float] = (3000.0, 8000.0)
    highpass_probability: float = 0.2
    highpass_max_hz: float = 150.0
    version: int = ARCHITECTURE_VERSION

    def key(self, fingerprint: str) -> str:
        import hashlib

        text = json.dumps({**asdict(self), "data": fingerprint}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class NoteFamilyClassifier(SpokenDigitClassifier):
    """``SpokenDigitClassifier`` with one logit per GM family: audio ``[B, 1, S]`` at 16 kHz -> ``[B, 16]``;
    ``features(audio)`` -> ``[B, 128]``."""

    def __init__(self, num_classes: int = NUM_FAMILIES) -> None:
        super().__init__()
        self.head = nn.Linear(self.feature_dim, num_classes)


def train_classifier(
    settings: NoteClassifierSettings, audio: torch.Tensor, labels: torch.Tensor, log=print
) -> NoteFamilyClassifier:
    """Train on notes ``[N, 1, S]`` at 16 kHz with family indices ``[N]``; returns the model in eval mode."""
    return fit_classifier(NoteFamilyClassifier, settings, audio, labels, log=log, chunk=256, min_batch=2)


def load_or_train(
    root: str | Path,
    settings: NoteClassifierSettings | None = None,
    path: str | Path | None = None,
    log=print,
) -> tuple[NoteFamilyClassifier, dict]:
    """The family classifier of the build at ``root``: cached weights from ``path`` (default
    ``benchmarks/out/notes_classifier.safetensors``) when their key matches the settings and the build, else
    trained on its train split and saved there. Returns the model (eval mode) and ``{"key", "cached",
    "train_seconds", "path", "settings"}``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    settings = settings or NoteClassifierSettings()
    path = Path(path) if path is not None else common.OUT_DIR / CACHE_NAME
    key = settings.key(data_fingerprint(root))
    info = {
        "key": key,
        "cached": False,
        "train_seconds": None,
        "path": str(path),
        "settings": asdict(settings),
    }
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            cached = (f.metadata() or {}).get("settings_key")
        if cached == key:
            model = NoteFamilyClassifier()
            model.load_state_dict(load_file(str(path)))
            log(f"loaded cached note-family classifier {path} (key {key})")
            return model.eval(), {**info, "cached": True}
        log(f"cached classifier {path} has key {cached}, need {key}: retraining")
    train = load_notes(root, "train", SAMPLE_RATE)
    log(f"training the note-family classifier on {len(train)} train notes (key {key}) ...")
    started = time.perf_counter()
    model = train_classifier(settings, train.audio, train.families, log=log)
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "settings_key": key,
        "settings": json.dumps(asdict(settings), sort_keys=True),
        "data": str(root),
    }
    save_file(state, str(path), metadata=metadata)
    log(f"saved the note-family classifier to {path} ({seconds:.0f} s of training)")
    return model, {**info, "train_seconds": round(seconds, 1)}
