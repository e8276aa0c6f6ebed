"""vqgen's sampler at the working tree against the same sampler at an earlier git revision, in one process,
interleaved: how much a change to ``vqgen/priors/sampling.py`` is worth, measured on a machine too noisy for
two separate benchmark runs to tell a few percent apart.

Command (the figures in RESULTS.md)::

    .venv/bin/python benchmarks/sampler_ab.py --rev d3a0234 --repeats 9

The earlier ``vqgen/priors/sampling.py`` is read with ``git show REV:...`` and imported as a module beside the
current one (the rest of the package is today's). Both draw ``sample_codes(prior, B, class_labels=...,
top_k=100, generator=...)`` from the prior of ``benchmarks/sampling.py`` (random weights, 256 new tokens),
alternating, each with a fresh generator of the same seed; the table gives milliseconds per decode step (median)
and the median over repeats of the per-repeat time ratio (current / earlier), and whether the codes are equal.
Times are never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402
from sampling import PRIOR_SHAPE  # noqa: E402

from vqgen.priors import sampling as current  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def sampler_at(rev: str):
    """The module ``vqgen/priors/sampling.py`` as it was at git revision ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:vqgen/priors/sampling.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sampling_at_rev.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("sampling_at_rev", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def draw(module, prior, batch: int, labels, generator=None, top_k: int = 100):
    """``module.sample_codes`` at ``top_k``, in the call form of the module's revision (the sampling
    keywords became one ``SamplingConfig`` in the structure change)."""
    if hasattr(module, "SamplingConfig"):
        sampling = module.SamplingConfig(top_k=top_k)
        return module.sample_codes(prior, batch, class_labels=labels, sampling=sampling, generator=generator)
    return module.sample_codes(prior, batch, class_labels=labels, top_k=top_k, generator=generator)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="git revision of the earlier sampler")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(environment(), flush=True)
    earlier = sampler_at(args.rev)
    torch.manual_seed(args.seed)
    prior = CodePrior(codebook_size=256, code_grid=[16, 16], **PRIOR_SHAPE).eval()
    steps = prior.layout.length
    samplers = {args.rev: earlier, "working tree": current}
    rows = []
    for batch in args.batch_sizes:
        labels = torch.arange(batch) % PRIOR_SHAPE["num_classes"]
        times: dict[str, list[float]] = {name: [] for name in samplers}
        codes = {}
        for module in samplers.values():  # warm-up, untimed
            draw(module, prior, batch, labels)
        for _ in range(args.repeats):
            for name, module in samplers.items():
                generator = torch.Generator().manual_seed(args.seed)
                start = time.perf_counter()
                codes[name] = draw(module, prior, batch, labels, generator)
                times[name].append(time.perf_counter() - start)
        ratio = statistics.median(a / b for a, b in zip(times["working tree"], times[args.rev]))
        row = {
            "batch": batch,
            "earlier_ms_per_step": statistics.median(times[args.rev]) / steps * 1e3,
            "current_ms_per_step": statistics.median(times["working tree"]) / steps * 1e3,
            "time_ratio": ratio,
            "same_codes": bool(torch.equal(codes[args.rev], codes["working tree"])),
            "times": times,
        }
        rows.append(row)
        print(f"batch {batch}: working tree / {args.rev} = {ratio:.3f}", flush=True)
    print_table(
        f"Sampler at the working tree against {args.rev}, {steps} new tokens, top-k 100, {args.repeats} repeats",
        ["batch", f"{args.rev} ms per step", "working tree ms per step", "time ratio (median)", "same codes"],
        [
            [r["batch"], r["earlier_ms_per_step"], r["current_ms_per_step"], r["time_ratio"], r["same_codes"]]
            for r in rows
        ],
    )
    write_json("sampler_ab", {"args": vars(args), "results": rows})


if __name__ == "__main__":
    main()
