"""Reliability figures: the fault-injection test files run once, their outcomes tallied per kind of fault.

Runs pytest (with the ``slow`` kill-and-resume cases) on the bad-input catalogue, the loader fuzzing, the safe
loading, integrity, kill-and-resume, non-finite and multi-process files, reads the JUnit report and prints
how many cases gave the expected clean behaviour. Fuzzing runs ``HYPOTHESIS_MAX_EXAMPLES`` examples per test
(``--fuzz-examples``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reliability.py --fuzz-examples 200
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = {
    "test_bad_input.py": "bad inputs (CLI and API): one-line vqgen error",
    "test_fuzz_loaders.py": "fuzzed files and folders: no crash, no hang",
    "test_safe_loading.py": "planted pickles: refused, marker never written",
    "test_integrity.py": "tampered pipeline folders: refused by checksum",
    "test_kill_resume.py": "SIGKILL during training: clean resume, same losses",
    "test_nonfinite.py": "NaN/inf batches: skipped, stopped after N",
    "test_multiprocess.py": "2 CPU processes: parity with 1 process",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-examples", type=int, default=40)
    args = parser.parse_args()
    files = [name for name in KINDS if (ROOT / "tests" / name).is_file()]
    report = Path(tempfile.mkdtemp()) / "junit.xml"
    env = {**os.environ, "HYPOTHESIS_MAX_EXAMPLES": str(args.fuzz_examples)}
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-m", "slow or not slow", f"--junitxml={report}"]
    subprocess.run([*command, *(f"tests/{name}" for name in files)], cwd=ROOT, env=env, check=False)
    seconds = time.perf_counter() - started

    outcomes: dict[str, Counter] = {name: Counter() for name in files}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")[-1] + ".py"
        if name not in outcomes:
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name]["failed"] += 1
        elif case.find("skipped") is not None:
            outcomes[name]["skipped"] += 1
        else:
            outcomes[name]["passed"] += 1
    rows = [
        [KINDS[name], name, sum(c.values()), c["passed"], c["failed"], c["skipped"]]
        for name, c in outcomes.items()
    ]
    print_table(
        f"Reliability (fuzzing: {args.fuzz_examples} examples per property)",
        ["fault", "file", "cases", "clean", "failed", "skipped"],
        rows,
    )
    print(f"{seconds:.0f} s")
    write_json(
        "reliability",
        {
            "fuzz_examples": args.fuzz_examples,
            "files": {name: dict(c) for name, c in outcomes.items()},
            "seconds": seconds,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
