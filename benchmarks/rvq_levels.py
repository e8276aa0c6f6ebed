"""Do the residual levels of an audio codec refine each other? Per level, on spoken-digit test clips.

For a residual-VQ audio tokenizer, encoder output ``z`` and the sum ``q_1 + ... + q_k`` of the first ``k``
levels' vectors: the relative error ``||z - sum_k|| / ||z||`` (a working residual quantizer drives it down
level by level), each level's share ``||q_k|| / ||z||``, and the codec's mel distance to the clip when
decoding ``k`` levels (what the listener gets). A second table decodes all levels with some replaced by random
codes: levels after ``k`` (if the decoder ignored them, nothing would change) and level 1 alone (if later levels
only refined it, randomising it would ruin the result).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rvq_levels.py --tokenizer audio --clips 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import load_audio_tokenizer, load_split  # noqa: E402
from common import print_table, write_json  # noqa: E402

from vqgen.data.spoken_digits import spoken_digits_root  # noqa: E402
from vqgen.tokenizers.losses import MultiScaleMelLoss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokenizer", default="audio", help="audio (shipped), a pipeline or a tokenizer folder"
    )
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--name", default=None, help="JSON name (default rvq_levels)")
    args = parser.parse_args()

    tokenizer = load_audio_tokenizer(args.tokenizer)
    audio, _ = load_split(spoken_digits_root(), "test")
    clips = audio[: args.clips]
    mel = MultiScaleMelLoss(tokenizer.config.sample_rate)
    rows = []
    with torch.no_grad():
        # One encoder pass and one quantization: the first k levels' codes are what encode(num_levels=k)
        # gives (each level sees only the residual of the levels before it), and each level's vector is its
        # codes looked up again.
        z = tokenizer.encoder(clips)
        codes = tokenizer.quantizer(z).codes  # [B, levels, frames]
        total = torch.zeros_like(z)
        for k, level in enumerate(tokenizer.quantizer.levels, start=1):
            vector = level.codes_to_vectors(codes[:, k - 1])
            total = total + vector
            decoded = tokenizer.decode(codes[:, :k]).float().clamp(-1, 1)
            rows.append(
                {
                    "levels": k,
                    "relative_error": float((z - total).norm() / z.norm()),
                    "level_share": float(vector.norm() / z.norm()),
                    "mel_distance": float(mel(decoded, clips)),
                }
            )
    variants = [("all true", codes)]  # (name, codes [B, levels, frames]) to decode
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        levels = codes.shape[1]
        for keep in [k for k in (1, 2, 4, 8) if k < levels]:
            noisy = codes.clone()
            noisy[:, keep:] = torch.randint(
                0, tokenizer.codebook_size, noisy[:, keep:].shape, generator=generator
            )
            variants.append((f"levels {keep + 1}-{levels} random", noisy))
        noisy = codes.clone()
        noisy[:, 0] = torch.randint(0, tokenizer.codebook_size, noisy[:, 0].shape, generator=generator)
        variants.append(("level 1 random, the rest true", noisy))
        randomised = [
            {"codes": name, "mel_distance": float(mel(tokenizer.decode(c).float().clamp(-1, 1), clips))}
            for name, c in variants
        ]
    table = print_table(
        f"residual levels of {args.tokenizer} ({args.clips} test clips)",
        ["levels", "error of the sum (rel. to z)", "level vector (rel. to z)", "mel distance"],
        [[r["levels"], r["relative_error"], r["level_share"], r["mel_distance"]] for r in rows],
    )
    random_table = print_table(
        f"all {len(rows)} levels decoded, some replaced by random codes",
        ["codes", "mel distance"],
        [[r["codes"], r["mel_distance"]] for r in randomised],
    )
    write_json(
        args.name or "rvq_levels",
        {
            "tokenizer": args.tokenizer,
            "rows": rows,
            "randomised": randomised,
            "tables": [table, random_table],
        },
    )


if __name__ == "__main__":
    main()
