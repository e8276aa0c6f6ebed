"""Anomaly detection with the prior's likelihood: AUROC of bits per dim against rendered letters and rotated digits.

Positives are out-of-distribution images, negatives the 500 real test digits. Beside each AUROC of
``pipe.score(...).bits_per_dim`` (unconditional, the null class), the AUROC of the tokenizer's reconstruction
error alone and, for a pipeline with a background prior (the shipped one has one; ``vqgen fit-background``),
the AUROC of ``likelihood_ratio``: class-marginal bits minus background bits, per dim, of the image alone and
averaged over ``--views`` (the image and jittered views of it, ``pipe.score(views=...)``). Target (issue):
AUROC >= 0.95 against letters.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anomaly.py --seed 0 --views 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402

from vqgen.data.demo import mnist_split  # noqa: E402
from vqgen.data.glyphs import render_letters  # noqa: E402
from vqgen.pipelines.loading import load_pipeline  # noqa: E402


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, copy=True)).float()[:, None] / 127.5 - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="image")
    parser.add_argument("--num-ood", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="seeds the letters and the jittered views")
    parser.add_argument("--views", type=int, default=4, help="views the averaged likelihood ratio uses")
    args = parser.parse_args()

    pipe = load_pipeline(args.pipeline)
    digits, _ = mnist_split("test")
    letters, _ = render_letters(args.num_ood, seed=args.seed)
    rotated = np.rot90(digits, k=1, axes=(1, 2))
    started = time.perf_counter()
    sets = [("digits", digits), ("letters", letters), ("rotated digits", rotated)]
    scores = {name: pipe.score(to_tensor(images)) for name, images in sets}
    seconds = time.perf_counter() - started

    fields = ["bits_per_dim", "reconstruction_error"]
    headers = ["AUROC bits/dim", "AUROC recon. error"]
    # Each data set's score columns, by field name.
    columns = {name: {field: getattr(out, field) for field in fields} for name, out in scores.items()}
    if pipe.background is not None:
        fields += ["likelihood_ratio", "likelihood_ratio_views"]
        headers += ["AUROC likelihood ratio", f"AUROC l. ratio, {args.views} views"]
        started = time.perf_counter()
        for name, images in sets:
            generator = torch.Generator().manual_seed(args.seed)
            out = pipe.score(to_tensor(images), views=args.views, generator=generator)
            columns[name]["likelihood_ratio"] = scores[name].likelihood_ratio
            columns[name]["likelihood_ratio_views"] = out.likelihood_ratio
        seconds_views = time.perf_counter() - started
    rows, results = [], {}
    normal = scores["digits"]
    for name in ("letters", "rotated digits"):
        out = scores[name]
        truth = np.r_[np.zeros(len(normal.bits_per_dim)), np.ones(len(out.bits_per_dim))]
        aurocs = {
            field: float(
                roc_auc_score(truth, np.r_[columns["digits"][field].numpy(), columns[name][field].numpy()])
            )
            for field in fields
        }
        mean_bits = float(out.bits_per_dim.mean())
        rows.append(
            [name, len(out.bits_per_dim), round(mean_bits, 4), *(round(a, 4) for a in aurocs.values())]
        )
        results[name] = {
            **{f"auroc_{field}": a for field, a in aurocs.items()},
            "mean_bits_per_dim": mean_bits,
        }
    rows.insert(
        0, ["test digits (normal)", len(normal.bits_per_dim), round(float(normal.bits_per_dim.mean()), 4)]
    )
    rows[0] += ["-"] * len(fields)
    print_table(
        "Anomaly detection (AUROC, positives = out-of-distribution)",
        ["data", "items", "mean bits/dim", *headers],
        rows,
    )
    print(f"scored {sum(len(s.bits_per_dim) for s in scores.values())} images in {seconds:.1f} s")
    if pipe.background is not None:
        print(f"scored them with {args.views} views in {seconds_views:.1f} s")
    write_json(
        "anomaly",
        {
            "pipeline": args.pipeline,
            "seed": args.seed,
            "views": args.views if pipe.background is not None else None,
            "results": results,
            "seconds": seconds,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
