"""Video tokenizer evaluation over a whole split: PSNR and SSIM per frame, codebook usage, bits per pixel."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from vqgen.data.batching import collate
from vqgen.evaluation.metrics import CodeCounter, psnr, ssim

__all__ = ["evaluate_video_tokenizer", "frame_psnr", "print_video_table"]


def frame_psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (data range 2) of every frame of videos ``[B, C, T, H, W]`` in [-1, 1] -> float ``[B, T]``."""
    b, c, t, h, w = target.shape
    flat = lambda v: v.transpose(1, 2).reshape(b * t, c, h, w)  # noqa: E731
    return psnr(flat(reconstruction), flat(target)).reshape(b, t)


@torch.no_grad()
def evaluate_video_tokenizer(tokenizer, dataset, batch_size: int = 16, progress: bool = True) -> dict:
    """``decode(encode(x))`` of every clip: PSNR per frame position and overall, SSIM, code statistics.

    ``dataset`` items hold ``video [C, T, H, W]`` in [-1, 1]. PSNR is computed per frame, then averaged over
    clips (``psnr_per_frame``, one value per frame position) and over all frames (``psnr``). Bits per pixel
    count every code of the clip against its ``T x H x W`` pixels. The keys match
    ``vqgen.evaluation.tokenizer.evaluate_tokenizer``'s, plus ``psnr_per_frame`` and ``frames``.
    """
    tokenizer.eval()
    device = tokenizer.device
    counter = CodeCounter(tokenizer.codebook_size)
    psnrs, ssims = [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="evaluate", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        videos = collate(items)["video"].to(device)
        codes = tokenizer.encode(videos)
        reconstruction = tokenizer.decode(codes).float().clamp(-1, 1)
        counter.update(codes.cpu())
        psnrs.append(frame_psnr(reconstruction, videos).cpu())
        b, c, t, h, w = videos.shape
        frames = ssim(
            reconstruction.transpose(1, 2).reshape(b * t, c, h, w),
            videos.transpose(1, 2).reshape(b * t, c, h, w),
        )
        ssims.append(frames.cpu())
    per_frame = torch.cat(psnrs)
    sample_shape = tuple(dataset[0]["video"].shape)
    grid = tokenizer.code_grid(sample_shape)
    stats = counter.statistics()
    return {
        "items": len(dataset),
        "frames": int(sample_shape[1]),
        "psnr": float(per_frame.mean()),
        "psnr_per_frame": [float(v) for v in per_frame.mean(0)],
        "ssim": float(torch.cat(ssims).mean()),
        "usage": float(stats["usage"]),
        "perplexity": float(stats["perplexity"]),
        "codebook_size": int(tokenizer.codebook_size),
        "code_grid": list(grid),
        "bits_per_pixel": math.prod(grid) * math.log2(tokenizer.codebook_size) / math.prod(sample_shape[1:]),
        "code_counts": counter.counts.long().tolist(),
    }


def print_video_table(results: dict) -> None:
    """The image table (``print_table``) plus one row of PSNR per frame position."""
    from vqgen.evaluation.tokenizer import print_table

    print_table(results)
    frames = " ".join(f"{v:.2f}" for v in results["psnr_per_frame"])
    print(f"{'PSNR per frame':<14}  {frames}")
