"""A small CNN that sorts emoji into their nine groups: the feature network of ``emoji_sample_quality.py``.

Not a benchmark itself. Trained on the train split of an emoji build (``vqgen data build emoji``), judged on
its test split (other base emoji: a variant's skin tones never straddle the split). Inputs are float
``[B, 3, H, W]`` in [-1, 1] on white; any size from 16x16 (global average pooling before the feature layer).
Augmentation: random shifts of up to ``max_shift`` of the size (the border filled with white), scaling by up
to ``scale_range``, horizontal flips.

The weights are cached in ``benchmarks/out/emoji_classifier.safetensors`` (safetensors only) with a key that
hashes the settings AND the build (its manifest and metadata): another build or other settings retrain.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: Bump when the architecture or the training loop changes, so cached weights are not reused.
ARCHITECTURE_VERSION = 1


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines the trained weights (hashed into the cache key with the build)."""

    seed: int = 0
    epochs: int = 16
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    max_shift: float = 0.08
    scale_range: float = 0.1
    flip: bool = True
    label_smoothing: float = 0.05
    width: int = 32
    version: int = ARCHITECTURE_VERSION

    def key(self, data_fingerprint: str) -> str:
        """A short hash of the settings and the data."""
        text = json.dumps({**asdict(self), "data": data_fingerprint}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class EmojiClassifier(nn.Module):
    """Four conv blocks (w, 2w, 4w, 4w channels, each halving the size), global average pooling, a 128-wide
    feature layer and ``num_classes`` logits. ``features(x)``: the penultimate activations ``[B, 128]``."""

    feature_dim = 128

    def __init__(self, num_classes: int = 9, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        widths = (width, 2 * width, 4 * width, 4 * width)
        self.body = nn.Sequential(
            block(3, widths[0]),
            block(widths[0], widths[1]),
            block(widths[1], widths[2]),
            block(widths[2], widths[3]),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(widths[3], self.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] -> ``[B, 128]``."""
        return F.relu(self.fc(self.body(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def augment(x: torch.Tensor, settings: ClassifierSettings, generator: torch.Generator) -> torch.Tensor:
    """Random shift, scale and horizontal flip of ``[B, 3, H, W]`` in [-1, 1]; uncovered pixels are white."""
    b = x.shape[0]
    scale = 1 + (torch.rand(b, generator=generator) * 2 - 1) * settings.scale_range
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * settings.max_shift * 2
    sign = torch.ones(b)
    if settings.flip:
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    zeros = torch.zeros(b)
    theta = torch.stack(
        [
            torch.stack([sign / scale, zeros, shift[:, 0]], dim=1),
            torch.stack([zeros, 1 / scale, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with zeros: move white to 0 first.
    return F.grid_sample(x - 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 1


@torch.no_grad()
def features_and_logits(
    model: EmojiClassifier, images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``[N, 128]`` and group logits ``[N, G]`` (both float64) of ``images [N, 3, H, W]``."""
    model.eval()
    feats, logits = [], []
    for start in range(0, images.shape[0], batch_size):
        f = model.features(images[start : start + batch_size].float())
        feats.append(f.double())
        logits.append(model.head(f).double())
    return torch.cat(feats), torch.cat(logits)


def features_and_predictions(
    model: EmojiClassifier, images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``[N, 128]`` (float64) and predicted groups ``[N]`` of ``images [N, 3, H, W]``."""
    features, logits = features_and_logits(model, images, batch_size)
    return features, logits.argmax(dim=1)


def label_shift(train_counts: torch.Tensor, target_counts: torch.Tensor | None = None) -> torch.Tensor:
    """``log p_target(g) - log p_train(g)`` ``[G]``: added to the judge's logits, it turns its argmax into the
    Bayes decision for items whose groups come in the target mix (uniform when ``target_counts`` is None)
    instead of the train split's (logit adjustment, Menon et al. 2021). The judge learned the train mix
    (people-body 58%), so on a draw that asks every group alike it hands ambiguous items to the common groups.
    A group absent from the target gets ``-inf``: never predicted."""
    train = train_counts.double().clamp_min(1)
    target = torch.ones_like(train) if target_counts is None else target_counts.double()
    return (target / target.sum()).log() - (train / train.sum()).log()


def train_classifier(
    settings: ClassifierSettings, images: torch.Tensor, labels: torch.Tensor, num_classes: int, log=print
) -> EmojiClassifier:
    """AdamW + one-cycle learning rate on augmented batches; returns the model in eval mode."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = EmojiClassifier(num_classes, settings.width)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    n = images.shape[0]
    steps_per_epoch = math.ceil(n / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * steps_per_epoch
    )
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total, started = 0.0, time.perf_counter()
        for start in range(0, n, settings.batch_size):
            idx = order[start : start + settings.batch_size]
            if idx.numel() < 2:  # BatchNorm needs two items
                continue
            x = augment(images[idx], settings, generator)
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * idx.numel()
        log(
            f"  classifier epoch {epoch + 1}/{settings.epochs}: loss {total / n:.4f} ({time.perf_counter() - started:.1f} s)"
        )
    return model.eval()


def load_or_train(
    path: Path,
    settings: ClassifierSettings,
    data_fingerprint: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    log=print,
) -> tuple[EmojiClassifier, dict]:
    """Cached weights from ``path`` when their key matches, else train and save them there.

    Returns the model (eval mode) and ``{"key", "cached", "train_seconds"}``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    key = settings.key(data_fingerprint)
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            cached = (f.metadata() or {}).get("settings_key")
        if cached == key:
            model = EmojiClassifier(num_classes, settings.width)
            model.load_state_dict(load_file(str(path)))
            log(f"loaded cached emoji classifier {path} (key {key})")
            return model.eval(), {"key": key, "cached": True, "train_seconds": None}
        log(f"cached classifier {path} has key {cached}, need {key}: retraining")
    log(f"training the emoji classifier (key {key}) on {images.shape[0]} images ...")
    started = time.perf_counter()
    model = train_classifier(settings, images, labels, num_classes, log=log)
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"settings_key": key, "settings": json.dumps(asdict(settings))})
    log(f"saved the emoji classifier to {path} ({seconds:.0f} s of training)")
    return model, {"key": key, "cached": False, "train_seconds": round(seconds, 1)}
