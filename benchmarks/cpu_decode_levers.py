"""What each CPU lever of vqgen's decode step is worth: the sampler of ``benchmarks/sampling.py`` with each
lever switched off in turn, in one process, interleaved.

The levers (``vqgen/priors/sampling.py``):

- feature-major products: the one-token step computes every projection as ``W @ h`` with ``h [in, B]``;
  switched off, the same products run as ``F.linear(x, W)`` with ``x [B, in]`` (what ``transformers`` does);
- huge pages: the fused weights and the KV cache lie on transparent huge pages; switched off, in ordinary
  ``torch.zeros`` memory (4 KB pages).

Prior ``CodePrior(codebook_size=256, code_grid=[16, 16], num_classes=10, hidden_size=256, num_layers=6,
num_heads=8)`` with random weights; ``prior.sample(B, class_labels=..., top_k=100)``, 256 new tokens. Figures:
milliseconds per decode step (median of ``--repeats``) and each variant's time over the full sampler's.
Times are never asserted; compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402
from sampling import PRIOR_SHAPE  # noqa: E402  (the same prior as the sampling benchmark)

import vqgen.priors.sampling as sampling  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402


def _linear_form(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``_FusedLinear.feature_major`` computed the ``F.linear`` way: ``(x^T @ W^T)^T``."""
    out = F.linear(x.t(), self.weight, self.bias).t()
    return out if residual is None else out + residual


def _small_pages(shape, dtype, device) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype, device=device)


@contextlib.contextmanager
def levers(feature_major: bool, huge_pages: bool) -> Iterator[None]:
    saved = sampling._FusedLinear.feature_major, sampling._huge_page_zeros
    if not feature_major:
        sampling._FusedLinear.feature_major = _linear_form
    if not huge_pages:
        sampling._huge_page_zeros = _small_pages
    try:
        yield
    finally:
        sampling._FusedLinear.feature_major, sampling._huge_page_zeros = saved


VARIANTS = {
    "vqgen (all levers)": (True, True),
    "without huge pages": (True, False),
    "without feature-major products": (False, True),
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
