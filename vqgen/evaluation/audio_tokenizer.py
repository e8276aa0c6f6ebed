"""Audio tokenizer evaluation over a whole split: mel distance, STFT distance and SI-SDR at every level count,
bitrate, and codebook usage per level."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from vqgen.data.batching import collate
from vqgen.evaluation.audio import mel_distance, si_sdr, stft_distance
from vqgen.evaluation.metrics import CodeCounter

__all__ = ["evaluate_audio_tokenizer", "print_audio_table"]


@torch.no_grad()
def evaluate_audio_tokenizer(tokenizer, dataset, batch_size: int = 32, progress: bool = True) -> dict:
    """``decode(codes[:, :L])`` of every clip at each level count ``L = 1 .. K`` against the clip.

    ``dataset`` items hold ``audio [C, S]`` in [-1, 1]. Each clip is encoded once at all ``K`` levels; the
    reconstruction at ``L`` levels decodes the first ``L`` (a residual quantizer's first ``L`` levels are its
    ``L``-level encoding), cropped to ``S`` and clamped to [-1, 1]. Metrics (``vqgen.evaluation.audio``,
    defaults) are averaged over clips. ``levels`` lists one row per ``L``: ``bitrate`` (bits per second,
    ``tokenizer.bitrate(L)``), ``mel_distance``, ``stft_distance``, ``si_sdr`` (dB). ``usage`` and
    ``perplexity`` are per level; ``code_counts`` sums every level (for the usage plot).
    """
    tokenizer.eval()
    device = tokenizer.device
    rate = int(tokenizer.config.sample_rate)
    num_levels = int(tokenizer.num_levels)
    counters = [CodeCounter(tokenizer.codebook_size) for _ in range(num_levels)]
    sums = {
        name: torch.zeros(num_levels, dtype=torch.float64)
        for name in ("mel_distance", "stft_distance", "si_sdr")
    }
    for start in tqdm(range(0, len(dataset), batch_size), desc="evaluate", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        audio = collate(items)["audio"].to(device)
        codes = tokenizer.encode(audio)
        for level in range(num_levels):
            counters[level].update(codes[:, level].cpu())
            reconstruction = (
                tokenizer.decode(codes[:, : level + 1])[..., : audio.shape[-1]].float().clamp(-1, 1)
            )
            target = audio.float()
            sums["mel_distance"][level] += mel_distance(reconstruction, target, rate).sum().double().cpu()
            sums["stft_distance"][level] += stft_distance(reconstruction, target).sum().double().cpu()
            sums["si_sdr"][level] += si_sdr(reconstruction, target).sum().double().cpu()
    count = len(dataset)
    sample_shape = tuple(dataset[0]["audio"].shape)
    stats = [counter.statistics() for counter in counters]
    rows = [
        {
            "levels": level + 1,
            "bitrate": float(tokenizer.bitrate(level + 1)),
            **{name: float(values[level] / count) for name, values in sums.items()},
        }
        for level in range(num_levels)
    ]
    return {
        "items": count,
        "sample_rate": rate,
        "seconds": sample_shape[-1] / rate,
        "frame_rate": float(tokenizer.frame_rate),
        "codebook_size": int(tokenizer.codebook_size),
        "code_grid": list(tokenizer.code_grid(sample_shape)),
        "levels": rows,
        "usage": [float(s["usage"]) for s in stats],
        "perplexity": [float(s["perplexity"]) for s in stats],
        "code_counts": sum(counter.counts for counter in counters).long().tolist(),
    }


def print_audio_table(results: dict) -> None:
    """One row per level count: bitrate, mel distance, STFT distance, SI-SDR, that level's codebook usage."""
    print(
        f"{results['items']} clips of {results['seconds']:.3g} s at {results['sample_rate']} Hz, "
        f"{results['frame_rate']:.4g} frames/s, {results['codebook_size']} codes per level"
    )
    header = (
        f"{'levels':>6}  {'kbit/s':>7}  {'mel dist':>8}  {'STFT dist':>9}  {'SI-SDR dB':>9}  {'usage':>6}"
    )
    print(header)
    for row, usage in zip(results["levels"], results["usage"]):
        print(
            f"{row['levels']:>6}  {row['bitrate'] / 1000:>7.3f}  {row['mel_distance']:>8.4f}  "
            f"{row['stft_distance']:>9.4f}  {row['si_sdr']:>9.2f}  {100 * usage:>5.1f}%"
        )
