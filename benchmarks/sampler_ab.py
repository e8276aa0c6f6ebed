"""vqgen's sampler at the working tree against the sampler at an earlier git revision, in one process,
interleaved: how much a change to ``vqgen/priors/`` is worth, measured on a machine too noisy for two separate
benchmark runs to tell a few percent apart.

Command (the figures in RESULTS.md)::

    .venv/bin/python benchmarks/sampler_ab.py --rev a44436c --repeats 9

The package ``vqgen/priors/`` of the revision (prior, layout, sampler and whatever modules it had) is read with
``git ls-tree`` / ``git show`` and imported beside today's as the package ``priors_at_rev`` (its imports of
``vqgen.priors`` rewritten to it; the rest of ``vqgen``, errors and checks, is today's). The revision's
``CodePrior`` is built from today's prior's config and weights, so both samplers see the same model, each
through its own prior class. Both draw ``sample_codes(prior, B, class_labels=..., top_k=100, generator=...)``
from the prior of ``benchmarks/sampling.py`` (random weights, 256 new tokens), alternating, each with a fresh
generator of the same seed; the table gives milliseconds per decode step (median) and the median over repeats of
the per-repeat time ratio (current / earlier), and whether the codes are equal. Times are never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402
from sampling import PRIOR_SHAPE  # noqa: E402

from vqgen.priors import sampling as current  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "priors_at_rev"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def sampler_at(rev: str) -> ModuleType:
    """The module ``sampling`` of ``vqgen/priors/`` as it was at git revision ``rev``, imported with its own
    package (``PACKAGE.prior``, ``PACKAGE.layout``, ...), so its prior class is the revision's too."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # a second call imports the revision asked for, not the first one's
    folder = Path(tempfile.mkdtemp(prefix="sampler_ab_")) / PACKAGE
    folder.mkdir()
    for path in _git("ls-tree", "--name-only", rev, "vqgen/priors/").split():
        if path.endswith(".py"):
            source = _git("show", f"{rev}:{path}")
            source = re.sub(r"\bvqgen\.priors\b", PACKAGE, source)
            (folder / Path(path).name).write_text(source)
    sys.path.insert(0, str(folder.parent))
    try:
        return importlib.import_module(f"{PACKAGE}.sampling")
    finally:
        sys.path.remove(str(folder.parent))


def prior_for(module: ModuleType, prior: CodePrior):
    """``prior`` as the prior class of ``module``'s package (the same config and weights), in eval mode."""
    if module is current:
        return prior
    cls = importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".prior").CodePrior
    config = {k: v for k, v in dict(prior.config).items() if not k.startswith("_")}
    twin = cls(**config)
    twin.load_state_dict(prior.state_dict())
    return twin.eval()


def draw(module: ModuleType, prior, batch: int, labels, generator=None, top_k: int = 100) -> torch.Tensor:
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
    samplers = {args.rev: (earlier, prior_for(earlier, prior)), "working tree": (current, prior)}
    rows = []
    for batch in args.batch_sizes:
        labels = torch.arange(batch) % PRIOR_SHAPE["num_classes"]
        times: dict[str, list[float]] = {name: [] for name in samplers}
        codes = {}
        for module, model in samplers.values():  # warm-up, untimed
            draw(module, model, batch, labels)
        for _ in range(args.repeats):
            for name, (module, model) in samplers.items():
                generator = torch.Generator().manual_seed(args.seed)
                start = time.perf_counter()
                codes[name] = draw(module, model, batch, labels, generator)
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
