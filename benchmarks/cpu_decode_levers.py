"""What each CPU lever of vqgen's decode step is worth: the sampler of ``benchmarks/sampling.py`` with each
lever switched off in turn, in one process, interleaved.

The levers (``vqgen/priors/sampling.py``):

- oneDNN-packed products: ``KVDecoder`` packs its fused weights once per call into oneDNN's blocked layout and
  runs every projection through ``torch.ops.mkldnn._linear_pointwise``; switched off, the same products run
  as ``F.linear`` (MKL, what ``transformers`` does);
- paged cache: a large cache is kept in pages of ``PAGE_SIZE`` positions of every row, so its filled part is one
  contiguous block; switched off, one page (each row's positions together, the filled part a slice with gaps).

Prior ``CodePrior(codebook_size=256, code_grid=[16, 16], num_classes=10, hidden_size=256, num_layers=6,
num_heads=8)`` with random weights; ``prior.sample(B, class_labels=..., top_k=100)``, 256 new tokens. Figures:
milliseconds per decode step (median of ``--repeats``), each variant's time over the full sampler's, and
whether it drew the same codes (the products and the paged attention sum in another order, so a variant may
differ in the last bits of a logit and, rarely, in a draw). Times are never asserted; compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402
from sampling import PRIOR_SHAPE  # noqa: E402  (the same prior as the sampling benchmark)

import vqgen.priors.sampling as sampling  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402


@contextlib.contextmanager
def levers(onednn: bool, paged: bool) -> Iterator[None]:
    saved = sampling._onednn_packing, sampling.PAGED_FROM_BYTES
    if not onednn:
        sampling._onednn_packing = lambda device, dtype: False
    if not paged:
        sampling.PAGED_FROM_BYTES = float("inf")
    try:
        yield
    finally:
        sampling._onednn_packing, sampling.PAGED_FROM_BYTES = saved


VARIANTS = {
    "vqgen (all levers)": (True, True),
    "without oneDNN-packed products": (False, True),
    "without the paged cache": (True, False),
    "without both": (False, False),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=3, help="timed samplings per variant (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(environment(), flush=True)
    torch.manual_seed(args.seed)
    prior = CodePrior(codebook_size=256, code_grid=[16, 16], **PRIOR_SHAPE).eval()
    steps = prior.layout.length
    results = []
    for batch in args.batch_sizes:
        labels = torch.arange(batch) % PRIOR_SHAPE["num_classes"]
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        codes = {}
        prior.sample(batch, class_labels=labels, top_k=100)  # warm-up, untimed
        for _ in range(args.repeats):  # interleaved, so a change in machine load hits every variant alike
            for name, switches in VARIANTS.items():
                with levers(*switches):
                    generator = torch.Generator().manual_seed(args.seed)
                    start = time.perf_counter()
                    codes[name] = prior.sample(batch, class_labels=labels, top_k=100, generator=generator)
                    times[name].append(time.perf_counter() - start)
        base = sorted(times["vqgen (all levers)"])[args.repeats // 2]
        for name in VARIANTS:
            seconds = sorted(times[name])[args.repeats // 2]
            same = bool(torch.equal(codes[name], codes["vqgen (all levers)"]))
            results.append(
                {
                    "batch": batch,
                    "variant": name,
                    "ms_per_step": seconds / steps * 1e3,
                    "time_over_vqgen": seconds / base,
                    "same_codes": same,
                    "times": times[name],
                }
            )
            print(f"batch {batch}, {name}: {seconds / steps * 1e3:.2f} ms per step", flush=True)
    print_table(
        f"Decode-step levers, {steps} new tokens, top-k 100, median of {args.repeats}",
        ["batch", "variant", "ms per step", "time / vqgen's", "same codes"],
        [
            [r["batch"], r["variant"], r["ms_per_step"], r["time_over_vqgen"], r["same_codes"]]
            for r in results
        ],
    )
    write_json("cpu_decode_levers", {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
