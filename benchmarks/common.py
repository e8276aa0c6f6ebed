"""Shared helpers for the side-by-side benchmarks: timing, machine facts, a plain-text table, JSON output.

Not a benchmark itself. Every benchmark script prints a table with :func:`print_table` and writes
``benchmarks/out/<name>.json`` with :func:`write_json` (the folder is git-ignored).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from vqgen.cli.common import sampling_flag_values
from vqgen.priors.sampling_config import SamplingConfig

OUT_DIR = Path(__file__).resolve().parent / "out"


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed: (median seconds, all timings)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for queued GPU work on ``device`` (a no-op on the CPU), so a timer sees the work done."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    size: int = 1024, repeats: int = 5, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """The machine's dense matrix-multiply rate in GFLOP/s for ``dtype`` on ``device``: ``2 * size**3`` flops
    per ``size`` square product, median of ``repeats`` timed products after two warm-ups, with torch's
    default thread count."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def product() -> None:
        torch.mm(a, b)
        synchronize(device)

    seconds, _ = median_time(product, repeats, warmup=2)
    return 2 * size**3 / seconds / 1e9


def read_bandwidth_gbs(
    megabytes: int = 512,
    repeats: int = 5,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> float:
    """The machine's memory read rate in GB/s: a ``megabytes`` tensor (far larger than any cache) summed,
    median of ``repeats`` timed sums after two warm-ups, with torch's default thread count."""
    count = megabytes * 2**20 // torch.empty((), dtype=dtype).element_size()
    data = torch.ones(count, device=device, dtype=dtype)

    def read() -> None:
        data.sum()
        synchronize(device)

    seconds, _ = median_time(read, repeats, warmup=2)
    return count * data.element_size() / seconds / 1e9


def _cpu_model() -> str:
    """The CPU's model name with its family/model numbers (a VM may report only "AMD EPYC"): speed ratios
    differ between CPU models, so every result names its own."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not line.strip():
                    break  # the first processor's block is enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    name = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def resolve_device(name: str) -> torch.device:
    """``--device``: ``auto`` is the GPU when there is one, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """What a table title says the figures ran on: the GPU's name, or the CPU and its torch thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def environment() -> dict[str, Any]:
    """Facts that a reader needs to judge the numbers (versions, threads, load)."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    return info


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table, so it can be pasted into RESULTS.md as it is."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    text = "\n".join(lines)
    print(text, flush=True)
    print(flush=True)
    return text


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the command line and environment) to ``benchmarks/out/<name>.json``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    full = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "environment": environment()}
    full.update(payload)
    path.write_text(json.dumps(full, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
    return path


def labelled_sampling(pipe, args) -> SamplingConfig:
    """How a benchmark draws labelled samples: the pipeline's default sampling (``pipe.default_sampling``) with
    the flags of ``vqgen.cli.common.add_sampling_flags`` given put in (those ``vqgen generate`` takes); guidance
    not given is the pipeline's default for labels (``pipe.drawn_sampling``), as ``pipe(...)`` would pick it."""
    sampling = pipe.sampling_config(None, **sampling_flag_values(args))
    return pipe.drawn_sampling(sampling, labelled=True)
