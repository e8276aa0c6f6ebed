"""Fit a tokenizer's codebooks by k-means over a whole data set: training for tokenizers without gradient weights.

A tokenizer whose encoder and decoder have no weights (``AudioTokenizer(frontend="parametric-harmonic")``: a
measured analysis and its synthesis) learns only its codebooks, and the best codebooks for fixed latents are
k-means centroids. Fitting them on every frame of the data at once (Lloyd, k-means++ seeds, residual levels one
after another) is the classic residual VQ design; the EMA updates of the gradient loop would approximate it a
batch at a time, far slower and worse. ``vqgen train-tokenizer`` takes this route for such tokenizers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vqgen.data.batching import collate
from vqgen.errors import ConfigError
from vqgen.io import atomic_path
from vqgen.media import item_medium


def dataset_latents(tokenizer, dataset, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Every item of ``dataset`` through ``tokenizer.latents``: ``[N * T, latent_channels]`` (one row a frame)."""
    key = item_medium(dataset[0]).item_key
    rows = []
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="analyse", disable=not progress, unit="batch"):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])[key]
        latents = tokenizer.latents(batch)  # [B, D, T]
        rows.append(latents.movedim(1, -1).reshape(-1, latents.shape[1]))
    return torch.cat(rows)


def fit_codebooks(
    tokenizer,
    dataset,
    output: str | Path | None = None,
    *,
    iterations: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """Fit ``tokenizer``'s residual codebooks to the latents of every item of ``dataset`` and, with ``output``,
    save it there (``save_pretrained`` and ``fit.json``, written atomically: a failed fit leaves no folder).

    ``iterations`` Lloyd steps per level from k-means++ seeds drawn with ``seed``. The tokenizer needs a
    residual quantizer and ``trains_by_gradient`` False. Returns ``{"frames", "residual_rms", "seconds"}``:
    the frames fitted and the RMS of what each level leaves (it falls level by level).
    """
    if tokenizer.trains_by_gradient:
        raise ConfigError(
            "fit_codebooks is for tokenizers without gradient weights; train this one by gradient"
        )
    if not hasattr(tokenizer.quantizer, "fit_kmeans") or not hasattr(tokenizer.quantizer, "levels"):
        raise ConfigError("fit_codebooks needs a residual quantizer (quantizer type 'rvq')")
    if len(dataset) == 0:
        raise ConfigError("fit_codebooks needs at least one training item")
    started = time.perf_counter()
    tokenizer.eval()
    flat = dataset_latents(tokenizer, dataset, batch_size, progress)
    # an analysis that centres its output (feature_mean) is centred on the data: k-means gives the same codes
    centre = getattr(tokenizer.encoder, "feature_mean", None)
    if centre is not None:
        mean = flat.mean(0)
        centre.add_(mean.to(centre))
        flat -= mean
    generator = torch.Generator(device=flat.device).manual_seed(int(seed))
    levels = len(tokenizer.quantizer.levels)
    with tqdm(total=levels, desc=f"k-means ({len(flat)} frames)", disable=not progress, unit="level") as bar:

        def level_done(index: int, rms: float) -> None:
            bar.set_postfix(rms=f"{rms:.3f}")
            bar.update(1)

        rms = tokenizer.quantizer.fit_kmeans(flat, iterations, generator, on_level=level_done)
    report = {
        "frames": len(flat),
        "iterations": int(iterations),
        "seed": int(seed),
        "residual_rms": rms,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if output is not None:
        with atomic_path(output) as folder:
            tokenizer.save_pretrained(str(folder))
            (folder / "fit.json").write_text(json.dumps(report, indent=2))
    return report
