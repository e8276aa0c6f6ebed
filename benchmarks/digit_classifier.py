"""A small CNN digit classifier that judges generated digits (used by ``benchmarks/sample_quality.py``).

Not a benchmark itself. Trained on the real train split of the bundled demo digits
(``vqgen.data.demo.mnist_split("train")``, 4,500 images) with light random affine augmentation, judged on the
real test split (500 images). Inputs are float ``[B, 1, 28, 28]`` in [-1, 1], white digit on black.

The trained weights are cached in ``benchmarks/out/digit_classifier.safetensors`` (safetensors only) with the
hash of the training settings in the file's metadata; a run whose settings hash differs retrains and overwrites.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ClassifierSettings",
    "DigitClassifier",
    "accuracy",
    "features_and_predictions",
    "load_or_train",
    "to_model_input",
    "train_classifier",
]

#: Bump when the architecture or the training loop changes, so cached weights are not reused.
ARCHITECTURE_VERSION = 1


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines the trained weights (hashed into the cache key)."""

    seed: int = 0
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    max_rotation_degrees: float = 12.0
    max_shift_pixels: float = 2.5
    scale_range: float = 0.1
    label_smoothing: float = 0.05
    version: int = ARCHITECTURE_VERSION

    def key(self) -> str:
        """A short hash of the settings."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class DigitClassifier(nn.Module):
    """Three conv blocks (32, 64, 128 channels; 28 -> 14 -> 7 -> 3) then a 128-wide feature layer and 10 logits.

    ``features(x)`` gives the penultimate activations ``[B, 128]`` (after ReLU), used for the Fréchet distance.
    """

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(1, 32), block(32, 64), block(64, 128), nn.Flatten())
        self.fc = nn.Linear(128 * 3 * 3, self.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 28, 28]`` in [-1, 1] -> ``[B, 128]``."""
        return F.relu(self.fc(self.body(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 28, 28]`` in [-1, 1] -> logits ``[B, 10]``."""
        return self.head(self.dropout(self.features(x)))


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` in [-1, 1] (``x / 127.5 - 1``)."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1.0).unsqueeze(1)


def augment(x: torch.Tensor, settings: ClassifierSettings, generator: torch.Generator) -> torch.Tensor:
    """Random rotation, scale and shift of a batch ``[B, 1, H, W]`` in [-1, 1] (background stays -1)."""
    b, _, h, w = x.shape
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(settings.max_rotation_degrees)
    scale = 1 + (torch.rand(b, generator=generator) * 2 - 1) * settings.scale_range
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * settings.max_shift_pixels
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[:, 0] * 2 / w], dim=1),
            torch.stack([sin, cos, shift[:, 1] * 2 / h], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with zeros: shift the background to 0 first.
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def features_and_predictions(
    model: DigitClassifier, images: torch.Tensor, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``[N, 128]`` (float64) and predicted classes ``[N]`` for images ``[N, 1, 28, 28]``."""
    model.eval()
    feats, preds = [], []
    for start in range(0, images.shape[0], batch_size):
        f = model.features(images[start : start + batch_size].float())
        feats.append(f.double())
        preds.append(model.head(f).argmax(dim=1))
    return torch.cat(feats), torch.cat(preds)


def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` whose predicted class equals ``labels``."""
    _, preds = features_and_predictions(model, images)
    return float((preds == labels).float().mean())


def train_classifier(
    settings: ClassifierSettings,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    log=print,
) -> DigitClassifier:
    """Train with AdamW + one-cycle LR on augmented batches; returns the model in eval mode."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = DigitClassifier()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    n = train_images.shape[0]
    steps_per_epoch = math.ceil(n / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * steps_per_epoch
    )
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total, start_time = 0.0, time.perf_counter()
        for start in range(0, n, settings.batch_size):
            idx = order[start : start + settings.batch_size]
            x = augment(train_images[idx], settings, generator)
            loss = F.cross_entropy(model(x), train_labels[idx], label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * idx.numel()
        log(
            f"  classifier epoch {epoch + 1}/{settings.epochs}: loss {total / n:.4f} ({time.perf_counter() - start_time:.1f} s)"
        )
    return model.eval()


def load_or_train(
    path: Path,
    settings: ClassifierSettings,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    log=print,
) -> tuple[DigitClassifier, dict]:
    """Load cached weights from ``path`` if their settings hash matches, else train and save them there.

    Returns the model (eval mode) and ``{"key", "cached", "train_seconds"}``.
    """
    from safetensors.torch import load_file, save_file

    key = settings.key()
    model = DigitClassifier()
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            cached_key = (f.metadata() or {}).get("settings_key")
        if cached_key == key:
            model.load_state_dict(load_file(str(path)))
            log(f"loaded cached digit classifier {path} (settings {key})")
            return model.eval(), {"key": key, "cached": True, "train_seconds": None}
        log(f"cached classifier {path} has settings {cached_key}, need {key}: retraining")
    log(f"training digit classifier (settings {key}) ...")
    start = time.perf_counter()
    model = train_classifier(settings, train_images, train_labels, log=log)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {"settings_key": key, "settings": json.dumps(asdict(settings), sort_keys=True)}
    save_file(state, str(path), metadata=metadata)
    log(f"saved digit classifier to {path} ({seconds:.0f} s of training)")
    return model, {"key": key, "cached": False, "train_seconds": seconds}
