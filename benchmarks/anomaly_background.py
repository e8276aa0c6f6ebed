"""Anomaly detection by likelihood ratios: AUROC of prior bits minus background bits, letters and rotated digits.

The same data as ``benchmarks/anomaly.py`` (negatives: the 500 real test digits; positives: 500 rendered letters
and the 500 test digits rotated by 90 degrees) and the shipped pipeline. Every score is a code length in bits
(higher = more anomalous); each background is fitted on the train split's digits only:

* ``null``: ``-log2 p(codes)`` under the prior's null class (what ``pipe.score`` reports);
* ``class marginal``: ``-log2 (1/10) sum_y p(codes | y)``;
* ``- count(...)``: minus the bits of a count-based model of each code given its already-seen neighbours
  (``U`` up, ``L`` left, ``UL`` up-left; Witten-Bell interpolated back-off to the unigram), fitted on the train
  digits' codes (Ren et al. 2019 / Serra et al. 2020 "local background") or on their generic views;
* ``- noisy prior``: minus the bits of a small CodePrior trained on train codes with 20 % of the codes
  replaced at random (Ren et al. 2019's perturbed background; only with ``--noisy-steps`` > 0);
* ``- generic prior``: minus the bits of a small CodePrior trained on the codes of ``generic_views`` of the
  train digits (full-circle rotation, mirror, scale, shear, stroke thickness; Schirrmeister et al. 2020's
  general-domain background, ``vqgen.training.background.fit_background``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anomaly_background.py --seed 0 \\
        --save-background runs/background-generic
    # again, reusing the fitted background (skips the generic encoding and the fit):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anomaly_background.py --background runs/background-generic
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
from anomaly import to_tensor  # noqa: E402
from common import environment, print_table, write_json  # noqa: E402

from vqgen.data.demo import mnist_split  # noqa: E402
from vqgen.data.glyphs import render_letters  # noqa: E402
from vqgen.evaluation.background import (  # noqa: E402
    class_marginal_bits,
    code_bits,
    generic_views,
    load_background,
)
from vqgen.pipelines.loading import load_pipeline  # noqa: E402
from vqgen.training.background import fit_background  # noqa: E402

PAD = -1  # neighbour outside the grid


class ContextModel:
    """Count-based model of each code given already-seen neighbours, Witten-Bell interpolated back-off.

    ``chain`` lists context names from the most specific to the least, e.g. ``[("L", "U"), ("U",), ()]``; the
    empty context is the unigram, which backs off to uniform over ``codebook_size`` codes.
    """

    def __init__(self, chain: list[tuple[str, ...]], codebook_size: int) -> None:
        self.chain, self.size = chain, codebook_size

    def _contexts(self, codes: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """codes ``[B, H, W]`` -> (codes ``[B, H * W]``, neighbour name -> ``[B, H * W]``, PAD outside)."""
        c = codes.long().numpy()
        batch, height, width = c.shape
        padded = np.full((batch, height + 1, width + 2), PAD, dtype=np.int64)
        padded[:, 1:, 1:-1] = c
        shifted = {
            "U": padded[:, :-1, 1:-1],
            "L": padded[:, 1:, :-2],
            "UL": padded[:, :-1, :-2],
            "UR": padded[:, :-1, 2:],
        }
        return c.reshape(batch, -1), {k: v.reshape(batch, -1) for k, v in shifted.items()}

    def _key(self, neighbours: dict[str, np.ndarray], names: tuple[str, ...], like: np.ndarray) -> np.ndarray:
        key = np.zeros_like(like)
        for name in names:
            key = key * (self.size + 1) + neighbours[name] + 1
        return key

    def fit(self, codes: torch.Tensor) -> ContextModel:
        x, neighbours = self._contexts(codes)
        self.tables = []
        for names in self.chain:
            context = self._key(neighbours, names, x).ravel()
            joint, joint_counts = np.unique(context * self.size + x.ravel(), return_counts=True)
            contexts, context_counts = np.unique(context, return_counts=True)
            types = np.bincount(np.searchsorted(contexts, joint // self.size), minlength=len(contexts))
            self.tables.append((joint, joint_counts, contexts, context_counts, types))
        return self

    def bits(self, codes: torch.Tensor) -> np.ndarray:
        """``-log2 p(codes)`` ``[B]`` of code grids ``[B, H, W]``."""
        x, neighbours = self._contexts(codes)
        p = np.full(x.shape, 1.0 / self.size)
        for names, (joint, joint_counts, contexts, context_counts, types) in zip(
            reversed(self.chain), reversed(self.tables), strict=True
        ):
            context = self._key(neighbours, names, x)
            n_joint = _lookup(joint, joint_counts, context * self.size + x)
            n_context, n_types = _lookup(contexts, context_counts, context), _lookup(contexts, types, context)
            p = np.where(n_context > 0, (n_joint + n_types * p) / np.maximum(n_context + n_types, 1), p)
        return -np.log2(p).sum(1)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    index = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[index] == query, values[index], 0)


@torch.no_grad()
def encode(tokenizer, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Images ``[N, 1, 28, 28]`` -> codes ``[N, 7, 7]``."""
    return torch.cat(
        [tokenizer.encode(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    truth = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return float(roc_auc_score(truth, np.r_[normal, anomalous]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="image")
    parser.add_argument("--num-ood", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="seed of the letters, as in anomaly.py")
    parser.add_argument("--copies", type=int, default=8, help="generic views per train digit")
    parser.add_argument("--view-seed", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500, help="background prior training steps")
    parser.add_argument("--background", help="load the generic background prior from here instead of fitting")
    parser.add_argument("--save-background", help="save the fitted generic background prior here")
    parser.add_argument("--noisy-steps", type=int, default=0, help="also fit Ren's noisy-code background")
    args = parser.parse_args()

    pipe = load_pipeline(args.pipeline)
    tokenizer, prior = pipe.tokenizer, pipe.prior
    size = tokenizer.codebook_size
    digits, _ = mnist_split("test")
    letters, _ = render_letters(args.num_ood, seed=args.seed)
    sets = {"digits": digits, "letters": letters, "rotated digits": np.rot90(digits, k=1, axes=(1, 2))}
    codes = {name: encode(tokenizer, to_tensor(images)) for name, images in sets.items()}
    train = to_tensor(mnist_split("train")[0])
    train_codes = encode(tokenizer, train)

    timings = {}
    # The generic views feed the generic background prior and the generic count models.
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(args.view_seed)
    generic_codes = torch.cat(
        [encode(tokenizer, generic_views(train, generator)) for _ in range(args.copies)]
    )
    timings["encode generic views"] = time.perf_counter() - started
    if args.background:
        background = load_background(args.background)
    else:
        started = time.perf_counter()
        background = fit_background(generic_codes, size, steps=args.steps, progress=True)
        timings["fit generic background"] = time.perf_counter() - started
        if args.save_background:
            background.save_pretrained(args.save_background, safe_serialization=True)

    started = time.perf_counter()
    null = {name: code_bits(prior, c).numpy() for name, c in codes.items()}
    marginal = {name: class_marginal_bits(prior, c).numpy() for name, c in codes.items()}
    generic = {name: code_bits(background, c).numpy() for name, c in codes.items()}
    timings["score (prior x 11 + background)"] = time.perf_counter() - started

    variants: dict[str, dict[str, np.ndarray]] = {"null (shipped score)": null, "class marginal": marginal}
    chains = {
        "U": [("U",), ()],
        "L,U": [("L", "U"), ("L",), ()],
        "L,U,UL": [("L", "U", "UL"), ("L", "U"), ("L",), ()],
    }
    for fitted_on, data in [("train digits", train_codes), ("generic views", generic_codes)]:
        for context, chain in chains.items():
            model = ContextModel(chain, size).fit(data)
            variants[f"null - count({context}) on {fitted_on}"] = {
                name: null[name] - model.bits(c) for name, c in codes.items()
            }
    if args.noisy_steps:
        started = time.perf_counter()
        noisy = fit_background(train_codes, size, steps=args.noisy_steps, code_noise=0.2, progress=True)
        timings["fit noisy background"] = time.perf_counter() - started
        variants["null - noisy prior (mu 0.2)"] = {
            name: null[name] - code_bits(noisy, c).numpy() for name, c in codes.items()
        }
    variants["null - generic prior"] = {name: null[name] - generic[name] for name in codes}
    variants["class marginal - generic prior"] = {name: marginal[name] - generic[name] for name in codes}

    rows, results = [], {}
    for variant, scores in variants.items():
        letters_auc = auroc(scores["digits"], scores["letters"])
        rotated_auc = auroc(scores["digits"], scores["rotated digits"])
        rows.append([variant, round(letters_auc, 4), round(rotated_auc, 4)])
        results[variant] = {"auroc_letters": letters_auc, "auroc_rotated": rotated_auc}
    print_table(
        "Anomaly detection by likelihood ratio (AUROC, positives = out-of-distribution; target letters >= 0.95)",
        ["score (bits)", "AUROC letters", "AUROC rotated digits"],
        rows,
    )
    for what, seconds in timings.items():
        print(f"{what}: {seconds:.0f} s")
    write_json(
        "anomaly_background",
        {
            "pipeline": args.pipeline,
            "seed": args.seed,
            "copies": args.copies,
            "view_seed": args.view_seed,
            "steps": args.steps,
            "background": args.background,
            "results": results,
            "seconds": timings,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
