"""Tokenizer evaluation over a whole split: PSNR, SSIM, codebook usage and perplexity, bits per pixel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vqgen.data.batching import collate
from vqgen.evaluation.metrics import CodeCounter, psnr, ssim
from vqgen.io import atomic_path, atomic_write_bytes


@torch.no_grad()
def evaluate_tokenizer(tokenizer, dataset, batch_size: int = 100, progress: bool = True) -> dict:
    """Mean PSNR and SSIM of reconstructions (``encode`` then ``decode``), code statistics and bits per pixel.

    ``dataset`` items hold ``pixels [C, H, W]`` in [-1, 1]. Returns a JSON-able dict; ``code_counts`` is the
    histogram over the whole split (per level for residual tokenizers, summed).
    """
    tokenizer.eval()
    device = tokenizer.device
    counter = CodeCounter(tokenizer.codebook_size)
    psnrs, ssims = [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="evaluate", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = collate(items)["pixels"].to(device)
        codes = tokenizer.encode(images)
        reconstruction = tokenizer.decode(codes).float().clamp(-1, 1)
        counter.update(codes.cpu())
        psnrs.append(psnr(reconstruction, images).cpu())
        ssims.append(ssim(reconstruction, images).cpu())
    sample_shape = tuple(dataset[0]["pixels"].shape)
    grid = tokenizer.code_grid(sample_shape)
    pixels = sample_shape[1] * sample_shape[2]
    stats = counter.statistics()
    return {
        "items": len(dataset),
        "psnr": float(torch.cat(psnrs).mean()),
        "ssim": float(torch.cat(ssims).mean()),
        "usage": float(stats["usage"]),
        "perplexity": float(stats["perplexity"]),
        "codebook_size": int(tokenizer.codebook_size),
        "code_grid": list(grid),
        "bits_per_pixel": math.prod(grid) * math.log2(tokenizer.codebook_size) / pixels,
        "code_counts": counter.counts.long().tolist(),
    }


def print_table(results: dict) -> None:
    rows = [
        ("items", f"{results['items']}"),
        ("PSNR (dB)", f"{results['psnr']:.2f}"),
        ("SSIM", f"{results['ssim']:.4f}"),
        ("codebook usage", f"{100 * results['usage']:.1f}% of {results['codebook_size']}"),
        ("perplexity", f"{results['perplexity']:.1f}"),
        ("code grid", "x".join(str(g) for g in results["code_grid"])),
        ("bits per pixel", f"{results['bits_per_pixel']:.4f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def write_results(results: dict, path: Path) -> None:
    atomic_write_bytes(path, json.dumps(results, indent=2).encode())


def plot_code_usage(counts: list[int], path: Path) -> None:
    """Bar chart of how often each code is used, most used first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = np.sort(np.asarray(counts))[::-1]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(np.arange(len(ordered)), ordered, width=1.0)
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("count")
    ax.set_title(f"codebook usage: {(ordered > 0).sum()} of {len(ordered)} codes used")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)
