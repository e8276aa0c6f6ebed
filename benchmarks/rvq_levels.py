"""Do the residual levels of an audio codec refine each other? Per level, on spoken-digit test clips.

For a residual-VQ audio tokenizer, encoder output ``z`` and the sum ``q_1 + ... + q_k`` of the first ``k``
levels' vectors: the relative error ``||z - sum_k|| / ||z||`` (a working residual quantizer drives it down
level by level), each level's share ``||q_k|| / ||z||``, and the codec's mel distance to the clip when
decoding ``k`` levels (what the listener gets).

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
        z = tokenizer.encoder(clips)
        residual, total = z, torch.zeros_like(z)
        for k, level in enumerate(tokenizer.quantizer.levels, start=1):
            out = level(residual)
            total = total + out.quantized
            residual = residual - out.quantized
            decoded = tokenizer.decode(tokenizer.encode(clips, num_levels=k)).float().clamp(-1, 1)
            rows.append(
                {
                    "levels": k,
                    "relative_error": float((z - total).norm() / z.norm()),
                    "level_share": float(out.quantized.norm() / z.norm()),
                    "mel_distance": float(mel(decoded, clips)),
                }
            )
    table = print_table(
        f"residual levels of {args.tokenizer} ({args.clips} test clips)",
        ["levels", "error of the sum (rel. to z)", "level vector (rel. to z)", "mel distance"],
        [[r["levels"], r["relative_error"], r["level_share"], r["mel_distance"]] for r in rows],
    )
    write_json(args.name or "rvq_levels", {"tokenizer": args.tokenizer, "rows": rows, "table": table})


if __name__ == "__main__":
    main()
