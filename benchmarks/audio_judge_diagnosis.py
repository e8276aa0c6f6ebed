"""Why the spoken-digit judge rejects codec reconstructions: recognition of altered clips and energy per band.

The judge (``benchmarks/audio_classifier.py``, MFCC CNN, 100% on real unseen-voice clips) is run on test clips
and on altered versions of them, each isolating one suspect:

* the codec's reconstruction (``decode(encode(x))`` at ``--levels`` residual levels);
* the reconstruction scaled to the real clip's RMS (is it the level?);
* the reconstruction gated to where the real clip is above 1 % of its peak (is it hiss in the silences?);
* real clips and reconstructions low-passed at 2, 4 and 6 kHz (which bands does the judge need?).

Beside them, each signal's share of the energy in five bands, averaged over the clips (the bands a codec
loses show up here), and the judge's confusion matrix on the reconstructions (which words the codec turns into
which). Same clips for every row.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_judge_diagnosis.py --clips 160
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import SAMPLE_RATE, load_audio_tokenizer, load_or_train_classifier, load_split  # noqa: E402
from common import environment, print_table, write_json  # noqa: E402

from vqgen.data.spoken_digits import spoken_digits_root  # noqa: E402

BANDS_HZ = [(0, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, SAMPLE_RATE // 2 + 1)]


def band_shares(audio: torch.Tensor, n_fft: int = 1024) -> list[float]:
    """Mean power share of each band of ``BANDS_HZ`` over clips ``[N, 1, S]`` at 16 kHz (shares sum to 1)."""
    power = (
        torch.stft(audio[:, 0], n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)
        .abs()
        .pow(2)
        .mean(dim=(0, 2))
    )  # [n_fft / 2 + 1]
    freqs = torch.linspace(0, SAMPLE_RATE / 2, power.shape[0])
    return [float(power[(freqs >= low) & (freqs < high)].sum() / power.sum()) for low, high in BANDS_HZ]


def rms(audio: torch.Tensor) -> torch.Tensor:
    return audio.pow(2).mean(dim=-1, keepdim=True).sqrt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline",
        default="audio",
        help="audio (shipped), an audio pipeline or a tokenizer folder: the codec judged",
    )
    parser.add_argument("--name", default=None, help="JSON name (default audio_judge_diagnosis)")
    parser.add_argument("--levels", type=int, default=None, help="residual levels to decode (default: all)")
    parser.add_argument("--clips", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0, help="picks the test clips")
    args = parser.parse_args()

    judge, _ = load_or_train_classifier()
    audio, labels = load_split(spoken_digits_root(), "test")
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))[: args.clips]
    real, labels = audio[pick], labels[pick]
    tokenizer = load_audio_tokenizer(args.pipeline)
    if tokenizer.config.sample_rate != SAMPLE_RATE:
        raise SystemExit(
            f"the judge listens at {SAMPLE_RATE} Hz, the tokenizer codes {tokenizer.config.sample_rate} Hz"
        )
    with torch.no_grad():
        recon = torch.cat(
            [
                tokenizer.decode(tokenizer.encode(real[i : i + 32], num_levels=args.levels))
                .float()
                .clamp(-1, 1)
                for i in range(0, len(real), 32)
            ]
        )
    envelope = torch.nn.functional.max_pool1d(real.abs(), 801, 1, 400)  # 50 ms running peak
    variants = {
        "real clips": real,
        "reconstruction": recon,
        "reconstruction at the real RMS": recon * rms(real) / rms(recon).clamp_min(1e-8),
        "reconstruction gated to the real envelope": recon
        * (envelope > 0.01 * real.abs().amax(-1, keepdim=True)),
    }
    for cutoff in (2000, 4000, 6000):
        variants[f"real, low-passed {cutoff} Hz"] = torchaudio.functional.lowpass_biquad(
            real, SAMPLE_RATE, cutoff
        )
        variants[f"reconstruction, low-passed {cutoff} Hz"] = torchaudio.functional.lowpass_biquad(
            recon, SAMPLE_RATE, cutoff
        )

    band_names = [f"{low / 1000:g}-{min(high, SAMPLE_RATE // 2) / 1000:g} kHz" for low, high in BANDS_HZ]
    rows, results, heard = [], {}, {}
    for name, clips in variants.items():
        heard[name] = judge.classify(clips)
        accuracy = float((heard[name] == labels).float().mean())
        shares = band_shares(clips)
        level = float(rms(clips).mean())
        rows.append([name, f"{100 * accuracy:.1f}%", round(level, 4), *(f"{100 * s:.1f}%" for s in shares)])
        results[name] = {"accuracy": accuracy, "rms": level, "band_shares": dict(zip(band_names, shares))}
    print_table(
        f"Spoken-digit judge on altered test clips ({len(real)} clips, {args.levels or 'all'} levels)",
        ["signal", "recognised", "mean RMS", *(f"energy {b}" for b in band_names)],
        rows,
    )
    confusion = torch.zeros(10, 10, dtype=torch.long)
    for true, judged in zip(labels.tolist(), heard["reconstruction"].tolist()):
        confusion[true, judged] += 1
    print_table(
        "Judge on the reconstructions: rows the digit spoken, columns the digit heard",
        ["spoken", *(str(d) for d in range(10))],
        [[str(d), *row] for d, row in enumerate(confusion.tolist())],
    )
    write_json(
        args.name or "audio_judge_diagnosis",
        {
            "pipeline": args.pipeline,
            "levels": args.levels,
            "clips": len(real),
            "seed": args.seed,
            "results": results,
            "reconstruction_confusion": confusion.tolist(),
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
