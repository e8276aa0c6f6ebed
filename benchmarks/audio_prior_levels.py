"""Does a prior over fewer residual levels make more recognisable digits? Delay priors on the first K levels.

Command (the figures in RESULTS.md)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_prior_levels.py --levels 3 --steps 3000 \\
        --work-dir runs/layouts --samples 200

Smoke run: ``.venv/bin/python benchmarks/audio_prior_levels.py --quick``.

The shipped audio tokenizer encodes the spoken-digits splits once (cached in ``--work-dir``, shared with
``audio_layouts.py``); for each ``--levels K`` a class-conditional delay ``CodePrior`` with the shipped prior's
size and recipe (hidden 128, 6 layers, 4 heads; batch 32, AdamW 6e-4, cosine, warm-up 200, weight decay 0.01,
EMA 0.999; fp32) is trained on the first K levels. Reported per K: validation bits per code on the unseen-voice
test split, and the spoken-digit judge (``audio_classifier.py``) on ``--samples`` class-conditional samples at
guidance 3 decoded from K levels, with the confusion matrix (rows: class asked, columns: class heard). The
shipped 12-level prior is judged the same way as the reference row (``--levels 0`` skips training and judges
only it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from accelerate.utils import set_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_classifier import load_or_train_classifier  # noqa: E402
from audio_layouts import FirstLevels, encode_split, validation_bits  # noqa: E402
from common import environment, print_table, write_json  # noqa: E402

from vqgen.pipelines.loading import load_pipeline  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402
from vqgen.training.common import TrainingOptions  # noqa: E402
from vqgen.training.prior import train_prior  # noqa: E402


def judge_samples(prior: CodePrior, tokenizer, judge, samples: int, seed: int) -> tuple[float, torch.Tensor]:
    """Accuracy of the judge on ``samples`` class-conditional samples (classes in turn, guidance 3) and the
    confusion matrix ``[10, 10]`` (rows: class asked, columns: class heard)."""
    labels = torch.arange(samples) % prior.config.num_classes
    confusion = torch.zeros(10, 10, dtype=torch.long)
    with torch.no_grad():
        for start in range(0, samples, 50):
            asked = labels[start : start + 50]
            generator = torch.Generator().manual_seed(seed + start)
            codes = prior.sample(len(asked), class_labels=asked, guidance_scale=3.0, generator=generator)
            audio = tokenizer.decode(codes).float().clamp(-1, 1)[..., : int(tokenizer.config.sample_rate)]
            for a, h in zip(asked.tolist(), judge.classify(audio).tolist()):
                confusion[a, h] += 1
    return float(confusion.diag().sum()) / samples, confusion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[3], help="K values (0: the shipped prior only)"
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--work-dir", default=None, help="cache of the encoded splits and the trained priors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 levels, 5 steps, 64 items, 20 samples"
    )
    args = parser.parse_args()
    limit = None
    if args.quick:
        args.levels, args.steps, args.samples, limit = [2], 5, 20, 64
    warnings.filterwarnings("ignore")
    print(f"environment: {environment()}", flush=True)

    pipe = load_pipeline("audio")
    tokenizer, shipped = pipe.tokenizer.eval(), pipe.prior.eval()
    if any(not 0 <= k <= tokenizer.num_levels for k in args.levels):
        parser.error(f"--levels must be in [0, {tokenizer.num_levels}]")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="audio-prior-levels-"))
    train_all = encode_split(tokenizer, "train", work / "shards-train", limit)
    test_all = encode_split(tokenizer, "test", work / "shards-test", limit)
    judge, _ = load_or_train_classifier()

    rows = []
    priors = [("shipped", tokenizer.num_levels, shipped, None)]
    for k in (k for k in args.levels if k > 0):
        set_seed(args.seed)
        grid = [k, *train_all[0]["codes"].shape[1:]]
        prior = CodePrior(
            codebook_size=tokenizer.codebook_size, code_grid=grid, num_classes=10, hidden_size=128,
            num_layers=6, num_heads=4, layout="delay",
        )  # fmt: skip
        options = TrainingOptions(
            output=str(work / f"prior-levels-{k}"), max_steps=args.steps, batch_size=32, learning_rate=6e-4,
            lr_schedule="cosine", warmup_steps=min(200, max(1, args.steps // 15)), weight_decay=0.01,
            ema_decay=0.999, mixed_precision="no", checkpoint_every=500, eval_every=args.steps,
            log_every=100, seed=args.seed, progress=False, resume=True,
        )  # fmt: skip
        started = time.perf_counter()
        prior = train_prior(prior, FirstLevels(train_all, k), options).eval()
        priors.append((f"{k} levels", k, prior, time.perf_counter() - started))
    for name, k, prior, seconds in priors:
        bits = validation_bits(prior, FirstLevels(test_all, k))
        accuracy, confusion = judge_samples(prior, tokenizer, judge, args.samples, args.seed)
        print(f"[{name}] {bits:.3f} bits per code, judged {100 * accuracy:.1f}%\n{confusion}", flush=True)
        rows.append(
            {
                "prior": name,
                "levels": k,
                "train_seconds": seconds,
                "val_bits_per_code": bits,
                "accuracy": accuracy,
                "confusion": confusion.tolist(),
            }
        )
    table = print_table(
        f"Delay priors on the first K levels of the shipped codec ({args.samples} samples at guidance 3)",
        ["prior", "levels", "val bits/code", "recognised", "train s"],
        [
            [
                r["prior"],
                r["levels"],
                round(r["val_bits_per_code"], 3),
                f"{100 * r['accuracy']:.1f}%",
                "-" if r["train_seconds"] is None else round(r["train_seconds"]),
            ]
            for r in rows
        ],  # fmt: skip
    )
    write_json(
        "audio_prior_levels" + ("_quick" if args.quick else ""),
        {"args": vars(args), "rows": rows, "tables": [table], "environment": environment()},
    )


if __name__ == "__main__":
    main()
