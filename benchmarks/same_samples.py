"""Do two revisions draw the same samples? The shipped defaults' samples for a fixed seed, saved and compared.

Save with each revision (a ``git worktree`` of the old one, run with ``PYTHONPATH`` set to it), then compare::

    (cd /work/wt-old && PYTHONPATH=. OMP_NUM_THREADS=1 python /path/to/benchmarks/same_samples.py save old.npz)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/same_samples.py save new.npz
    .venv/bin/python benchmarks/same_samples.py compare old.npz new.npz

``save`` draws 32 samples from each shipped default (image, video, audio), labels 0-9 three times then 0, 1,
``torch.Generator().manual_seed(--seed)``, the pipelines' default sampling, as float arrays in [-1, 1].
``compare`` prints, per medium, how many samples are bit-identical and the largest absolute difference.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

LABELS = list(range(10)) * 3 + [0, 1]


def draw(seed: int) -> dict[str, np.ndarray]:
    from vqgen.pipelines.loading import load_pipeline

    arrays = {}
    for medium in ("image", "video", "audio"):
        pipe = load_pipeline(medium)
        generator = torch.Generator().manual_seed(seed)
        output = pipe(len(LABELS), class_labels=LABELS, generator=generator, output_type="pt")
        media = output[0] if isinstance(output, tuple) else next(iter(output.values()))
        arrays[medium] = torch.as_tensor(media).float().numpy()
    return arrays


def compare(old: dict, new: dict) -> None:
    for medium in old:
        a, b = old[medium], new[medium]
        same = sum(np.array_equal(a[i], b[i]) for i in range(len(a)))
        print(f"{medium}: {same}/{len(a)} identical samples, max abs difference {np.abs(a - b).max():.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    save = sub.add_parser("save")
    save.add_argument("output")
    save.add_argument("--seed", type=int, default=0)
    both = sub.add_parser("compare")
    both.add_argument("old")
    both.add_argument("new")
    args = parser.parse_args()
    if args.command == "save":
        np.savez(args.output, **draw(args.seed))
    else:
        compare(dict(np.load(args.old)), dict(np.load(args.new)))


if __name__ == "__main__":
    main()
