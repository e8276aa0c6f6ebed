"""Scoring a data set with a pipeline: one row per item, most anomalous first, optional histogram plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vqgen.io import atomic_path, to_uint8_images
from vqgen.training.common import collate

__all__ = ["plot_scores", "score_dataset", "write_scores"]


def score_dataset(
    pipe, dataset, batch_size: int = 64, conditional: bool = False, progress: bool = True
) -> list[dict]:
    """Score every item of ``dataset`` (items ``{"pixels", "label", "index"}``); rows sorted by bits per dim, highest first.

    ``conditional=True`` scores each item under its own label (items without one use the null class).
    """
    rows = []
    files = getattr(dataset, "files", None)
    for start in tqdm(range(0, len(dataset), batch_size), desc="score", unit="batch", disable=not progress):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        labels = batch["label"]
        use_labels = conditional and pipe.num_classes > 0 and bool((labels >= 0).all())
        out = pipe.score(batch["pixels"], class_labels=labels if use_labels else None, batch_size=batch_size)
        for i, index in enumerate(batch["index"].tolist()):
            rows.append(
                {
                    "item": str(files[index]) if files is not None else str(index),
                    "label": int(labels[i]),
                    "bits_per_dim": float(out.bits_per_dim[i]),
                    "bits_per_token": float(out.bits_per_token[i]),
                    "reconstruction_error": float(out.reconstruction_error[i]),
                    "index": index,
                }
            )
    rows.sort(key=lambda row: row["bits_per_dim"], reverse=True)
    return rows


def write_scores(rows: list[dict], path: str | Path) -> None:
    """One CSV row per item (columns of ``score_dataset``'s rows), written atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(
            handle,
            ["item", "label", "bits_per_dim", "bits_per_token", "reconstruction_error"],
            extrasaction="ignore",
        )
        writer.writeheader()
        writer.writerows(rows)


def plot_scores(rows: list[dict], dataset, path: str | Path, top_k: int = 8) -> None:
    """Histogram of bits per dim with the ``top_k`` most anomalous items shown as thumbnails, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = np.array([row["bits_per_dim"] for row in rows])
    top = rows[: min(top_k, len(rows))]
    fig = plt.figure(figsize=(max(8, 1.2 * len(top)), 5))
    grid = fig.add_gridspec(2, max(1, len(top)), height_ratios=[3, 1.3])
    axis = fig.add_subplot(grid[0, :])
    axis.hist(scores, bins=min(50, max(5, len(scores) // 5)), color="#4c72b0")
    axis.set_xlabel("bits per dim (higher = more anomalous)")
    axis.set_ylabel("items")
    axis.set_title(f"{len(rows)} items scored; the {len(top)} most anomalous below")
    for column, row in enumerate(top):
        image = to_uint8_images(torch.as_tensor(dataset[row["index"]]["pixels"])[None])[0]
        ax = fig.add_subplot(grid[1, column])
        ax.imshow(
            image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None
        )
        ax.set_title(f"{row['bits_per_dim']:.3f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)
