"""What a CPU lever of vqgen's decode step would be worth, measured where the decoder has no switch for it.

The decoder (``vqgen/priors/decoder.py``) keeps no CPU lever behind a switch: the paged KV cache and RoPE as
complex products were measured with this script's earlier form at commit fb8cb7f (``.venv/bin/python
benchmarks/cpu_decode_levers.py --repeats 9``: the real sampler with each switched off through ``decoder_for``'s
keyword options, interleaved), came out within 3% of the plain form on the 2-core AVX2 machine, and were removed
(``benchmarks/RESULTS.md``, "one decode walk"). What is left to measure here is the form of the step's products:

the step's 24 layer products (q/k/v, o, gate/up, down of 6 layers) of the prior of ``benchmarks/sampling.py``
(``hidden_size=256``, SwiGLU width 704) at the step's shapes, one call each, in the public forms tried:
``F.linear(x, W)`` (batch-major, what ``transformers`` runs), ``W @ h`` on feature-major activations ``h = x^T``
(what the decoder runs), the layer that ``torch.utils.mkldnn.to_mkldnn`` makes of an ``nn.Linear``, and two
forms that undo the decoder's other derivations: ``W @ h`` with q, k, v and gate, up as five products instead of
two stacked ones, and ``W @ h`` plus the 13 RMSNorm-weight multiplies of a step that folding removes.
Microseconds per step (median of ``--repeats`` rounds of all forms, interleaved) and each form's time over
``F.linear``'s. Times are never asserted; compare the ratios.

    .venv/bin/python benchmarks/cpu_decode_levers.py --seed 0 --repeats 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402
from sampling import PRIOR_SHAPE  # noqa: E402  (the same prior as the sampling benchmark)


def _linear(weight: torch.Tensor) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def bench_products(args: argparse.Namespace) -> list[dict]:
    """The 24 layer products of one step (q/k/v, o, gate/up, down; 6 layers), per public form."""
    from torch.utils import mkldnn

    torch.manual_seed(args.seed)
    hidden, inner = PRIOR_SHAPE["hidden_size"], 704
    shapes = [(3 * hidden, hidden), (hidden, hidden), (2 * inner, hidden), (hidden, inner)]
    layers = [
        [torch.randn(out, width) * 0.05 for out, width in shapes] for _ in range(PRIOR_SHAPE["num_layers"])
    ]
    onednn = [[mkldnn.to_mkldnn(_linear(w)) for w in ws] for ws in layers]
    # q, k, v and gate, up as separate weights: [q, k, v, o, gate, up, down] per layer
    split = [[*ws[0].chunk(3), ws[1], *ws[2].chunk(2), ws[3]] for ws in layers]
    norms = [torch.rand(hidden, 1) + 0.5 for _ in range(2 * len(layers) + 1)]
    results = []
    for batch in args.batch_sizes:
        xs = [torch.randn(batch, width) for _, width in shapes]
        hs = [x.t().contiguous() for x in xs]
        forms = {
            "F.linear(x, W)": lambda xs=xs: [F.linear(x, w) for ws in layers for w, x in zip(ws, xs)],
            "W @ h (feature-major)": lambda hs=hs: [w @ h for ws in layers for w, h in zip(ws, hs)],
            "torch.utils.mkldnn Linear": lambda xs=xs: [m(x) for ms in onednn for m, x in zip(ms, xs)],
            "W @ h, not stacked (5 products)": lambda hs=hs: [
                w @ h for ws in split for w, h in zip(ws, [hs[0]] * 3 + [hs[1]] + [hs[2]] * 2 + [hs[3]])
            ],
            "W @ h, norm weights not folded": lambda hs=hs: [
                *(w @ h for ws in layers for w, h in zip(ws, hs)),
                *(hs[0] * norm for norm in norms),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in forms}
        for form in forms.values():
            form()
        for _ in range(args.repeats):
            for name, form in forms.items():
                start = time.perf_counter()
                form()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["F.linear(x, W)"])
        for name, values in times.items():
            results.append(
                {
                    "batch": batch,
                    "form": name,
                    "us": statistics.median(values) * 1e6,
                    "ratio": statistics.median(values) / base,
                }
            )
    print_table(
        f"The step's 24 layer products, microseconds (median of {args.repeats})",
        ["batch", "form", "us per step", "time / F.linear's"],
        [[r["batch"], r["form"], r["us"], r["ratio"]] for r in results],
    )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--repeats", type=int, default=40, help="interleaved rounds of all forms (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(environment(), flush=True)
    write_json("cpu_decode_products", {"args": vars(args), "results": bench_products(args)})


if __name__ == "__main__":
    main()
