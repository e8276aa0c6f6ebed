"""Where an instrument codec loses the timbre: the family classifier on real notes, on an oracle harmonic
resynthesis, and on the codec's reconstructions with continuous (unquantized) latents and at K levels.

Command (the shipped instrument codec, 400 notes of each split spread evenly)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/notes_timbre.py \\
        --tokenizer vqgen/pretrained/audio-instruments/tokenizer --data /tmp/notes16k

Smoke run: ``--max-notes 16 --levels 2 --output-name notes_timbre_smoke``.

The judge is ``notes_classifier.py``'s (MFCC + 1-D CNN on the build's train split, cached). For each split it
reads (as the share assigned to the true family):

- ``real``: the notes themselves (on train: what the judge memorised; on test: unseen programs);
- ``oracle harmonics``: each note resynthesised by the codec's own harmonic synthesiser
  (``HarmonicDecoder1d.harmonics``) from the codec's pitch level and, per 20 ms frame, the note's measured
  amplitude of each harmonic (the Hann-window STFT magnitude at the nearest bin, ``n_fft = 4 * hop``), no
  noise: what the synthesis model can carry when its parameters are right;
- ``continuous``: the codec's encoder output decoded without quantization: what the encoder and decoder carry
  before any code is chosen;
- ``K levels`` for each ``--levels``: ``decode(encode(x, num_levels=K))``.

A gap between ``oracle harmonics`` and ``continuous`` is the trained networks'; between ``continuous`` and the
levels, the quantizer's. Needs an ``AudioTokenizer`` with a pitch level (``frontend="stft-harmonic"`` or
``"parametric-harmonic"``).

Output: a table on stdout and ``benchmarks/out/<--output-name>.json`` (default ``notes_timbre``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import load_audio_tokenizer  # noqa: E402
from common import print_table, write_json  # noqa: E402
from notes_classifier import NoteClassifierSettings, features_and_predictions, load_or_train  # noqa: E402
from notes_common import DEFAULT_DATA, load_notes, notes_root  # noqa: E402

from vqgen.tokenizers.layers.harmonic import (  # noqa: E402
    harmonic_frequencies,
    synthesise_harmonics,
    upsample_frames,
)


@torch.no_grad()
def oracle_harmonics(tokenizer, audio: torch.Tensor) -> torch.Tensor:
    """``audio [N, 1, S]`` -> the codec's harmonic synthesis from the coded pitch and measured amplitudes."""
    hop = tokenizer.downsample_factor
    n_fft = 4 * hop
    f0 = tokenizer.pitch.decode(tokenizer.pitch.encode(audio))  # [N, T] Hz, 0 unvoiced
    frames = f0.shape[-1]
    spectrum = torch.stft(
        audio[:, 0], n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True
    )[..., :frames].abs()  # [N, bins, T]
    freqs, audible = harmonic_frequencies(f0, tokenizer.config.sample_rate)  # [N, H, T]
    bins = (freqs * n_fft / tokenizer.config.sample_rate).round().long().clamp(0, spectrum.shape[1] - 1)
    # a sinusoid of amplitude a peaks at a * sum(window) / 2 = a * n_fft / 4 in a Hann-window STFT
    amplitudes = spectrum.gather(1, bins) * 4 / n_fft * audible
    synth = synthesise_harmonics(
        upsample_frames(amplitudes.unsqueeze(1), hop),
        upsample_frames(f0.unsqueeze(1), hop),
        tokenizer.config.sample_rate,
    )
    return synth[..., : audio.shape[-1]]


@torch.no_grad()
def continuous(tokenizer, audio: torch.Tensor) -> torch.Tensor:
    """The codec's decoder on its encoder's unquantized latents, with the coded pitch."""
    latents = tokenizer.latents(audio)
    f0 = tokenizer.pitch.decode(tokenizer.pitch.encode(audio))
    return tokenizer.decoder(latents, f0)[..., : audio.shape[-1]]


@torch.no_grad()
def at_levels(tokenizer, audio: torch.Tensor, levels: int) -> torch.Tensor:
    return tokenizer.decode(tokenizer.encode(audio, num_levels=levels))[..., : audio.shape[-1]]


def in_batches(fn, audio: torch.Tensor, size: int = 100) -> torch.Tensor:
    return torch.cat([fn(audio[i : i + size]) for i in range(0, audio.shape[0], size)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="an AudioTokenizer folder (stft-harmonic)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="an instrument-notes build")
    parser.add_argument("--max-notes", type=int, default=400, help="notes per split, spread evenly")
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 12], help="level counts to decode")
    parser.add_argument("--classifier-seed", type=int, default=0)
    parser.add_argument("--classifier-epochs", type=int, default=NoteClassifierSettings.epochs)
    parser.add_argument("--classifier-cache", help="default benchmarks/out/notes_classifier.safetensors")
    parser.add_argument("--output-name", default="notes_timbre")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    root = notes_root(args.data)
    tokenizer = load_audio_tokenizer(args.tokenizer).eval()
    if getattr(tokenizer, "pitch", None) is None:
        raise SystemExit(
            f"'{args.tokenizer}' has no pitch level (frontend stft-harmonic or parametric-harmonic)"
        )
    levels = [k for k in args.levels if 1 <= k <= tokenizer.num_levels]
    settings = NoteClassifierSettings(seed=args.classifier_seed, epochs=args.classifier_epochs)
    judge, info = load_or_train(root, settings, args.classifier_cache)
    rows, report = [], {"tokenizer": args.tokenizer, "judge": info, "splits": {}}
    for split in ("train", "test"):
        notes = load_notes(root, split, tokenizer.config.sample_rate, args.max_notes)
        views = {
            "real": notes.audio,
            "oracle harmonics": in_batches(lambda x: oracle_harmonics(tokenizer, x), notes.audio),
            "continuous": in_batches(lambda x: continuous(tokenizer, x), notes.audio),
            **{
                f"{k} levels": in_batches(lambda x, k=k: at_levels(tokenizer, x, k), notes.audio)
                for k in levels
            },
        }
        shares = {}
        for name, audio in views.items():
            _, predicted = features_and_predictions(judge, audio, tokenizer.config.sample_rate)
            shares[name] = float((predicted == notes.families).double().mean())
        report["splits"][split] = {"notes": len(notes), "family_accuracy": shares}
        rows += [[split, name, f"{100 * share:.1f}%"] for name, share in shares.items()]
    print_table("Family accuracy of the judge, by what it hears", ["split", "audio", "family acc"], rows)
    write_json(args.output_name, report)
    return report


if __name__ == "__main__":
    main()
