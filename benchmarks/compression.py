"""Learned compression on the demo test digits: raw codes vs codes range-coded under the prior.

Images (the default, ``--pipeline image``) report bits per pixel; a video pipeline (``--pipeline video``:
moving-digit test clips, seed 1) reports bits per second of video. Both report (a) raw codes, log2(codebook size) bits each, (b) each image in its own ``.vqz``
file (header included, and payload only), (c) all test images in one stream (payload only), with the PSNR
of the decoded images, and checks that every decoded image equals the tokenizer's reconstruction exactly.
Target (issue): range-coded size at least 40% below raw codes at the same distortion.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py --seed 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py --pipeline video --num-images 200
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402

from vqgen.compression import read_header  # noqa: E402
from vqgen.data.demo import mnist_split  # noqa: E402
from vqgen.evaluation.metrics import psnr  # noqa: E402
from vqgen.pipelines.loading import load_pipeline  # noqa: E402
from vqgen.pipelines.video import VideoPipeline  # noqa: E402


def test_media(pipe, n: int) -> tuple[torch.Tensor, list[int], str, float]:
    """Test items ``[n, *sample_shape]`` in [-1, 1], their labels, the unit and its size per item."""
    if isinstance(pipe, VideoPipeline):
        from vqgen.data.video import moving_mnist

        _, frames, size, _ = pipe.sample_shape
        clips = moving_mnist("test", num_clips=n, frames=frames, size=size, seed=1)
        x = torch.stack([clips[i]["video"] for i in range(n)])
        return x, clips.labels, "bits per second", frames / pipe.fps
    digits, labels = mnist_split("test")
    x = torch.from_numpy(np.array(digits[:n], copy=True)).float()[:, None] / 127.5 - 1
    return x, labels[:n].tolist(), "bits per pixel", float(math.prod(x.shape[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="image")
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    pipe = load_pipeline(args.pipeline)
    x, labels, unit, per_item = test_media(pipe, args.num_images)
    n = x.shape[0]
    with torch.no_grad():
        reconstruction = pipe.tokenizer.decode(pipe.tokenizer.encode(x)).float().clamp(-1, 1)
    raw_bpp = pipe.prior.layout.num_codes * math.log2(pipe.tokenizer.codebook_size) / per_item

    started = time.perf_counter()
    file_bytes, payload_bytes, exact = [], [], True
    for i in range(n):
        data = pipe.compress(x[i : i + 1])
        _, words = read_header(data)
        file_bytes.append(len(data))
        payload_bytes.append(4 * len(words))
        with torch.no_grad():  # the reference at the same batch size: conv numerics may depend on it
            reference = pipe.tokenizer.decode(pipe.tokenizer.encode(x[i : i + 1])).float().clamp(-1, 1)
        exact &= torch.equal(pipe.decompress(data), reference)
    per_file_seconds = time.perf_counter() - started
    stream = pipe.compress(x)
    _, words = read_header(stream)
    exact &= torch.equal(pipe.decompress(stream), reconstruction)
    conditional = pipe.compress(x, class_labels=labels) if pipe.num_classes else None

    quality = float(psnr(reconstruction, x).mean())
    rows = [["raw codes", round(raw_bpp, 4), "1.000", round(quality, 2)]]

    def row(name: str, total_bytes: float) -> list:
        bpp = 8 * total_bytes / (n * per_item)
        return [name, round(bpp, 4), f"{bpp / raw_bpp:.3f}", round(quality, 2)]

    rows.append(row("one .vqz file per image (with header)", sum(file_bytes)))
    rows.append(row("one file per image, payload only", sum(payload_bytes)))
    rows.append(row("one stream, all images (payload)", 4 * len(words)))
    if conditional is not None:
        _, cond_words = read_header(conditional)
        rows.append(row("one stream, coded given the true labels", 4 * len(cond_words)))
    print_table(
        f"Compression of {n} test items {list(x.shape[1:])}",
        ["coding", unit, "ratio to raw", "PSNR dB"],
        rows,
    )
    print(
        f"every decoded image equals the tokenizer's reconstruction: {exact}; "
        f"{per_file_seconds / n * 1000:.0f} ms per image to compress and decompress"
    )
    write_json(
        "compression" if args.pipeline == "image" else f"compression_{Path(args.pipeline).name}",
        {
            "unit": unit,
            "pipeline": args.pipeline,
            "seed": args.seed,
            "rows": rows,
            "exact": exact,
            "per_image_seconds": per_file_seconds / n,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
