"""Residual-code layouts for audio priors: ``flatten`` against ``delay`` (MusicGen's pattern), same data, same steps.

Commands (the figures in RESULTS.md; the 12-level comparison on a GPU, the CPU's timings from 30 steps)::

    python3 benchmarks/audio_layouts.py --levels 12 --steps 1500 --mixed-precision bf16 --work-dir runs/layouts-v2
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/audio_layouts.py --levels 12 --steps 30 --work-dir runs/layouts-v2

Smoke run: ``.venv/bin/python benchmarks/audio_layouts.py --quick``.

The shipped audio tokenizer (``load_pipeline("audio").tokenizer``: 50 code frames per second, 12 residual levels of
1,024 codes) encodes the spoken-digits train and test splits (``demo:spoken-digits``, test voices unseen; build
it with ``vqgen data build spoken-digits``) once; the first ``--levels`` levels are kept. Two class-conditional
``CodePrior`` s of the same size are trained with ``vqgen.training.prior.train_prior`` for the same steps on the
same batches (same seed), one per layout:

- ``flatten``: the K level codes of each frame one after another, one transformer step per code (K * 50 steps
  per second), each level over its own vocabulary range;
- ``delay``: K streams offset by one step each, one transformer step per frame (50 + K - 1 steps per second),
  the K level embeddings summed in and K level heads out.

Reported per layout: validation bits per code on the test split (``-log2 p`` summed over all codes / number of
codes; lower is better), training seconds per step, and sampling seconds per second of audio (``prior.sample``,
batch ``--sample-batch``, guidance 3, one second per item, after a warm-up call). Times depend on the machine's
load; compare within one run.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from accelerate.utils import set_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, synchronize, write_json  # noqa: E402

from vqgen.data.audio import load_audio_dataset  # noqa: E402
from vqgen.data.shards import CodeShardDataset, encode_dataset  # noqa: E402
from vqgen.pipelines.loading import load_pipeline  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402
from vqgen.training.common import TrainingOptions  # noqa: E402
from vqgen.training.prior import train_prior  # noqa: E402

LAYOUTS = ("flatten", "delay")


class FirstLevels(torch.utils.data.Dataset):
    """Code shards ``{"codes": [12, T], "label"}`` -> the same items with ``codes [levels, T]``."""

    def __init__(self, shards: CodeShardDataset, levels: int) -> None:
        self.shards, self.levels = shards, levels

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.shards[index])
        item["codes"] = item["codes"][: self.levels]
        return item


def encode_split(tokenizer, split: str, folder: Path, limit: int | None = None) -> CodeShardDataset:
    """Encode the 1-second spoken-digit clips of ``split`` (the first ``limit`` of them; once: reused from
    ``folder`` when there)."""
    if not (folder / "manifest.json").is_file():
        data = load_audio_dataset("demo:spoken-digits", split, tokenizer.config.sample_rate, 1, 1.0)
        if limit is not None:
            data = torch.utils.data.Subset(data, range(min(limit, len(data))))
        encode_dataset(tokenizer, data, folder, batch_size=64, source=f"demo:spoken-digits/{split}")
    return CodeShardDataset(folder)


@torch.no_grad()
def validation_bits(prior: CodePrior, data, batch_size: int = 64) -> float:
    """Mean ``-log2 p(code)`` over every code of ``data`` (class-conditional, each item's own label)."""
    device = next(prior.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        items = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        codes = torch.stack([item["codes"] for item in items]).to(device)
        labels = torch.tensor([int(item["label"]) for item in items], device=device)
        total += float(-prior.log_likelihood(codes, labels).sum()) / math.log(2)
        count += codes.numel()
    return total / count


def sampling_seconds_per_audio_second(
    prior: CodePrior, batch: int, seed: int, frames_per_second: float
) -> float:
    labels = torch.arange(batch) % prior.config.num_classes

    def draw() -> torch.Tensor:
        return prior.sample(
            batch, class_labels=labels, guidance_scale=3.0, generator=torch.Generator().manual_seed(seed)
        )

    device = next(prior.parameters()).device
    draw()  # warm-up
    synchronize(device)
    started = time.perf_counter()
    codes = draw()
    synchronize(device)
    seconds = time.perf_counter() - started
    audio_seconds = batch * codes.shape[-1] / frames_per_second
    return seconds / audio_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=4, help="residual levels kept (of the tokenizer's 12)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=6)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--sample-batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "bf16", "fp16"],
        default="no",
        help="training precision (bf16 for a GPU; this 2-core CPU trains fastest in fp32)",
    )
    parser.add_argument("--work-dir", default=None, help="where shards and priors go (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 levels, 5 steps, 64 items")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        args.levels, args.steps, args.sample_batch, limit = 2, 5, 2, 64
    warnings.filterwarnings("ignore")
    print(f"environment: {environment()}", flush=True)

    tokenizer = load_pipeline("audio").tokenizer.eval()
    if not 1 <= args.levels <= tokenizer.num_levels:
        parser.error(f"--levels must be in [1, {tokenizer.num_levels}]")
    frames_per_second = tokenizer.frame_rate
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="audio-layouts-"))
    train = FirstLevels(encode_split(tokenizer, "train", work / "shards-train", limit), args.levels)
    test = FirstLevels(encode_split(tokenizer, "test", work / "shards-test", limit), args.levels)
    grid = list(train[0]["codes"].shape)
    print(f"{len(train)} train / {len(test)} test clips, code grid {grid}", flush=True)

    rows = []
    for layout in LAYOUTS:
        set_seed(args.seed)
        prior = CodePrior(
            codebook_size=tokenizer.codebook_size,
            code_grid=grid,
            num_classes=10,
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            num_heads=args.num_heads,
            layout=layout,
        )
        options = TrainingOptions(
            output=str(work / f"prior-{layout}"),
            max_steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=6e-4,
            lr_schedule="cosine",
            warmup_steps=max(1, args.steps // 15),
            weight_decay=0.01,
            mixed_precision=args.mixed_precision,
            checkpoint_every=args.steps,
            eval_every=args.steps,
            log_every=max(1, args.steps // 10),
            seed=args.seed,
            progress=False,
        )
        started = time.perf_counter()
        prior = train_prior(prior, train, options).eval()
        train_seconds = time.perf_counter() - started
        bits = validation_bits(prior, test)
        speed = sampling_seconds_per_audio_second(prior, args.sample_batch, args.seed, frames_per_second)
        rows.append(
            {
                "layout": layout,
                "steps_per_second_of_audio": prior.layout.steps,
                "parameters": prior.non_embedding_parameters(),
                "val_bits_per_code": bits,
                "train_seconds_per_step": train_seconds / args.steps,
                "sampling_seconds_per_audio_second": speed,
            }
        )
        print(f"[{layout}] {bits:.3f} bits per code, sampling {speed:.4f} s per audio second", flush=True)

    table = print_table(
        f"Audio prior layouts: {args.levels} levels x 50 frames/s, {args.steps} steps of batch {args.batch_size}, "
        f"seed {args.seed}",
        ["layout", "steps / clip", "params", "val bits/code", "train s/step", "sampling s / audio s"],
        [
            [
                r["layout"],
                r["steps_per_second_of_audio"],
                r["parameters"],
                r["val_bits_per_code"],
                r["train_seconds_per_step"],
                r["sampling_seconds_per_audio_second"],
            ]
            for r in rows
        ],
    )
    write_json("audio_layouts", {"args": vars(args), "grid": grid, "rows": rows, "tables": [table]})


if __name__ == "__main__":
    main()
