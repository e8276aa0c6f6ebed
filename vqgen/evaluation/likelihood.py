"""Scoring a data set with a pipeline: one row per item, most anomalous first, optional histogram plot.

Works for every medium: data set items hold ``pixels`` ``[C, H, W]``, ``video`` ``[C, T, H, W]`` or ``audio``
``[C, S]`` (the pipeline's medium's ``item_key``), with ``label`` and ``index``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vqgen.data.batching import collate
from vqgen.errors import ConfigError
from vqgen.io import atomic_path
from vqgen.media.audio import spectrogram
from vqgen.media.base import item_medium, medium_of

__all__ = ["plot_scores", "ranking_key", "score_dataset", "spectrogram", "thumbnail", "write_scores"]

SCORE_COLUMNS = ["item", "label", "bits_per_dim", "bits_per_token", "reconstruction_error"]
#: What the axis of :func:`plot_scores` says for each ranking score.
SCORE_NAMES = {
    "bits_per_dim": "bits per dim",
    "likelihood_ratio": "bits per dim above the background (likelihood ratio)",
}


def ranking_key(rows: list[dict]) -> str:
    """The score rows are ranked by: ``likelihood_ratio`` where the pipeline has a background, else
    ``bits_per_dim``."""
    return "likelihood_ratio" if rows and "likelihood_ratio" in rows[0] else "bits_per_dim"


def score_dataset(
    pipe,
    dataset,
    batch_size: int = 64,
    conditional: bool = False,
    progress: bool = True,
    views: int = 1,
    seed: int = 0,
) -> list[dict]:
    """Score every item of ``dataset`` (items ``{"pixels" | "video" | "audio", "label", "index"}``, the media
    of the pipeline's shape); rows sorted by :func:`ranking_key`, highest (most anomalous) first. A pipeline with
    a background prior adds each item's ``likelihood_ratio``.

    ``conditional=True`` scores each item under its own label (items without one use the null class).
    ``views`` > 1 averages the likelihood ratio over jittered views drawn from ``seed`` (``pipe.score``).
    """
    fields = pipe.prior.condition_fields
    if conditional and len(fields) > 1:
        raise ConfigError(
            f"conditional scores use each item's class label; this pipeline has condition fields {', '.join(fields)}"
        )
    rows = []
    entry = medium_of(pipe).item_key  # pixels, video or audio
    generator = torch.Generator().manual_seed(seed)
    files = getattr(dataset, "files", None)
    for start in tqdm(range(0, len(dataset), batch_size), desc="score", unit="batch", disable=not progress):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        labels = batch["label"]
        use_labels = conditional and pipe.num_classes > 0 and bool((labels >= 0).all())
        out = pipe.score(
            batch[entry],
            class_labels=labels if use_labels else None,
            batch_size=batch_size,
            views=views,
            generator=generator,
        )
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
            if out.likelihood_ratio is not None:
                rows[-1]["likelihood_ratio"] = float(out.likelihood_ratio[i])
    key = ranking_key(rows)
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows


def write_scores(rows: list[dict], path: str | Path) -> None:
    """One CSV row per item (columns of ``score_dataset``'s rows), written atomically."""
    columns = SCORE_COLUMNS + (["likelihood_ratio"] if ranking_key(rows) == "likelihood_ratio" else [])
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot_scores(rows: list[dict], dataset, path: str | Path, top_k: int = 8) -> None:
    """Histogram of the ranking score (:func:`ranking_key`) with the ``top_k`` most anomalous items shown as
    thumbnails, as one PNG (see :func:`thumbnail`: images as they are, videos as a strip of frames, audio as
    a spectrogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = ranking_key(rows)
    scores = np.array([row[key] for row in rows])
    top = rows[: min(top_k, len(rows))]
    fig = plt.figure(figsize=(max(8, 1.2 * len(top)), 5))
    grid = fig.add_gridspec(2, max(1, len(top)), height_ratios=[3, 1.3])
    axis = fig.add_subplot(grid[0, :])
    axis.hist(scores, bins=min(50, max(5, len(scores) // 5)), color="#4c72b0")
    axis.set_xlabel(f"{SCORE_NAMES[key]} (higher = more anomalous)")
    axis.set_ylabel("items")
    axis.set_title(f"{len(rows)} items scored; the {len(top)} most anomalous below")
    for column, row in enumerate(top):
        item = dataset[row["index"]]
        medium = item_medium(item)
        array, style = thumbnail(torch.as_tensor(item[medium.item_key]), medium)
        ax = fig.add_subplot(grid[1, column])
        ax.imshow(array, **style)
        ax.set_title(f"{row[key]:.3f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)


def thumbnail(media: torch.Tensor, medium) -> tuple[np.ndarray, dict]:
    """One item's float media in [-1, 1] of ``medium`` (a ``vqgen.media`` medium or its name) -> (an array for
    ``imshow``, its ``imshow`` keyword arguments).

    Image ``[C, H, W]``: uint8 ``[H, W, C]`` (grey shown as ``[H, W]``). Video ``[C, T, H, W]``: its first,
    middle and last frames side by side, uint8 ``[H', W', C]``. Audio ``[C, S]``: :func:`spectrogram` of the
    channel mean.
    """
    from vqgen.media.base import get_medium

    return get_medium(medium).thumbnail(media)
