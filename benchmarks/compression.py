"""Learned compression on the demo test sets: raw codes vs codes range-coded under the prior.

Images (the default, ``--pipeline image``: demo test digits) report bits per pixel; a video pipeline
(``--pipeline video``: moving-digit test clips, seed 1) and an audio pipeline (``--pipeline audio``: the
spoken-digits test split, unseen voices, read at the pipeline's sample rate and clip length, ``--num-items``
clips spread evenly over the split) report bits per second. Each reports (a) raw codes, log2(codebook size)
bits each, (b) each item in its own ``.vqz`` file (header included, and payload only), (c) all items in one
stream (payload only), and (d) for a class-conditional prior, that stream coded given the true labels, with
the distortion of the decoded items (PSNR for images and video, ``mel_distance`` for audio: log-mel L1, 80
mels, lower is better), and checks that every decoded item equals the tokenizer's reconstruction exactly.
Target (issue): range-coded size at least 40% below raw codes at the same distortion (images).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py --seed 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py --pipeline video --num-items 100
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py --pipeline audio --num-items 100

Audio needs ``vqgen data build spoken-digits`` first.

``--drift`` measures instead how far the pinned reference path's logits move between CPU kernel sets and thread
counts (what decides whether a file decodes elsewhere; see ``vqgen/compression.py``): the reference logits of
the first ``--num-items`` test items at every coded position (teacher-forced through the decode walk), computed
in subprocesses under ``ATEN_CPU_CAPABILITY=default`` and ``avx2`` with 1 and 2 threads, against this process.
Reported: the largest logit difference, the expected number of integer counts that change per position,
``sum_i (Q - n) |dp_i|``, and the positions whose counts differ.

    .venv/bin/python benchmarks/compression.py --drift --num-items 50
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_json  # noqa: E402

from vqgen.compression import FREQUENCY_BITS, frequencies, read_header  # noqa: E402
from vqgen.data.demo import mnist_split  # noqa: E402
from vqgen.evaluation.metrics import psnr  # noqa: E402
from vqgen.pipelines.audio import AudioPipeline  # noqa: E402
from vqgen.pipelines.loading import load_pipeline  # noqa: E402
from vqgen.pipelines.video import VideoPipeline  # noqa: E402
from vqgen.priors.reference import ReferenceDecoder  # noqa: E402
from vqgen.priors.walk import walk  # noqa: E402

#: Items coded when ``--num-items`` is not given: audio clips cost far more to code than digits.
DEFAULT_ITEMS, DEFAULT_AUDIO_ITEMS = 500, 100


@dataclass
class TestMedia:
    """Test items of one medium and how to report them."""

    x: torch.Tensor  # [n, *sample_shape] in [-1, 1]
    labels: list[int]
    unit: str  # the rate's unit: "bits per pixel" / "bits per second"
    per_item: float  # pixels or seconds in one item
    noun: str  # what the rows call an item
    distortion: str  # column header of the distortion
    measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (decoded, original) -> [n]
    digits: int  # decimals the distortion is shown with
    indices: list[int] | None = None  # the items taken from the test split, where it is not its first n


def _psnr_media(noun: str, x: torch.Tensor, labels: list[int], unit: str, per_item: float) -> TestMedia:
    return TestMedia(x, labels, unit, per_item, noun, distortion="PSNR dB", measure=psnr, digits=2)


def test_media(pipe, n: int) -> TestMedia:
    """The first ``n`` test items (audio: ``n`` clips spread evenly over the split) and how to report them."""
    if isinstance(pipe, AudioPipeline):
        from vqgen.data.audio import AudioFolderDataset, audio_data_root
        from vqgen.evaluation.audio import mel_distance

        channels, _ = pipe.sample_shape
        clips = AudioFolderDataset(
            audio_data_root("demo:spoken-digits", "test"),
            pipe.sample_rate,
            channels,
            pipe.max_seconds,
            train=False,
        )
        # The split is sorted by digit, then voice: spread the clips so that every digit and voice shows up.
        indices = np.linspace(0, len(clips) - 1, min(n, len(clips))).round().astype(int).tolist()
        x = torch.stack([clips[i]["audio"] for i in indices])
        return TestMedia(
            x,
            labels=[clips.labels[i] for i in indices],
            unit="bits per second",
            per_item=pipe.max_seconds,
            noun="clip",
            distortion="mel dist",
            measure=lambda decoded, original: mel_distance(decoded, original, pipe.sample_rate),
            digits=3,
            indices=indices,
        )
    if isinstance(pipe, VideoPipeline):
        from vqgen.data.video import moving_mnist

        _, frames, size, _ = pipe.sample_shape
        clips = moving_mnist("test", num_clips=n, frames=frames, size=size, seed=1)
        x = torch.stack([clips[i]["video"] for i in range(n)])
        return _psnr_media("clip", x, clips.labels, "bits per second", frames / pipe.fps)
    digits, labels = mnist_split("test")
    x = torch.from_numpy(np.array(digits[:n], copy=True)).float()[:, None] / 127.5 - 1
    return _psnr_media("image", x, labels[:n].tolist(), "bits per pixel", float(math.prod(x.shape[2:])))


def reference_logits(pipe, x: torch.Tensor, labels: list[int] | None) -> list[torch.Tensor]:
    """The reference path's float64 logits over each coded position's range, teacher-forced on ``x``'s codes:
    one ``[n, hi - lo]`` per coded position, in sequence order."""
    prior = pipe.prior
    layout, streams = prior.layout, prior.layout.streams
    with torch.no_grad():
        tokens = layout.flatten(pipe.tokenizer.encode(x).cpu())
    fixed = layout.fixed_tokens()
    out = []

    def pick(step: int, logits: torch.Tensor) -> torch.Tensor:
        for position in range(step * streams, (step + 1) * streams):
            if fixed is None or fixed[position] < 0:
                lo, hi = layout.code_range(position)
                out.append(logits[:, lo:hi].clone())
        return tokens[:, step * streams : (step + 1) * streams]

    with torch.inference_mode():
        prefix = prior.prefix(labels if prior.is_conditional else None, x.shape[0]).cpu()
        decoder = ReferenceDecoder(prior, x.shape[0], prior.num_prefix_tokens + layout.steps - 1)
        walk(decoder, prefix, tokens.clone(), pick, streams=streams)
    return out


def drift(args: argparse.Namespace, pipe, media: TestMedia) -> None:
    """``--drift``: the reference logits here against subprocesses under other kernel sets and thread counts."""
    here = reference_logits(pipe, media.x, media.labels)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for capability, threads in (("default", 1), ("default", 2), ("avx2", 1), ("avx2", 2)):
            path = os.path.join(folder, f"{capability}-{threads}.pt")
            env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": str(threads)}
            command = [
                sys.executable,
                __file__,
                "--pipeline",
                args.pipeline,
                "--num-items",
                str(args.num_items),
            ]
            subprocess.run([*command, "--reference-logits", path], env=env, check=True)
            there = torch.load(path)
            largest = max(float((a - b).abs().max()) for a, b in zip(here, there))
            crossings, changed = [], 0
            for a, b in zip(here, there):
                n = a.shape[-1]
                total = 1 << max(FREQUENCY_BITS, n.bit_length() + 2)
                dp = (torch.softmax(a, -1) - torch.softmax(b, -1)).abs().sum(-1)
                crossings.append((total - n) * dp)
                changed += int((frequencies(a) != frequencies(b)).any(1).sum())
            expected = torch.cat(crossings)
            rows.append(
                [f"{capability}, {threads} thread(s)", f"{largest:.2e}", f"{float(expected.mean()):.2e}",
                 f"{float(expected.max()):.2e}", f"{changed} of {expected.numel()}"]
            )  # fmt: skip
    print_table(
        f"Reference-path drift against this process ({torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads), {media.x.shape[0]} test items",
        [
            "other process",
            "max abs logit difference",
            "expected count changes per position",
            "max",
            "positions changed",
        ],
        rows,
    )
    write_json("compression_drift", {"pipeline": args.pipeline, "items": args.num_items, "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="image", help="image, video, audio or a pipeline folder")
    parser.add_argument(
        "--num-items",
        "--num-images",
        dest="num_items",
        type=int,
        default=None,
        help=f"test items to code (default {DEFAULT_ITEMS}; audio {DEFAULT_AUDIO_ITEMS})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", action="store_true", help="the reference path across kernel sets instead")
    parser.add_argument("--reference-logits", help=argparse.SUPPRESS)  # --drift's subprocesses write here
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    pipe = load_pipeline(args.pipeline)
    if args.num_items is None:
        args.num_items = DEFAULT_AUDIO_ITEMS if isinstance(pipe, AudioPipeline) else DEFAULT_ITEMS
    media = test_media(pipe, args.num_items)
    if args.reference_logits:
        torch.save(reference_logits(pipe, media.x, media.labels), args.reference_logits)
        return
    if args.drift:
        drift(args, pipe, media)
        return
    rates(args, pipe, media)


def rates(args: argparse.Namespace, pipe, media: TestMedia) -> None:
    """The size table of the module docstring."""
    x, labels, unit, per_item, noun = media.x, media.labels, media.unit, media.per_item, media.noun
    n = x.shape[0]
    with torch.no_grad():
        reconstruction = pipe.tokenizer.decode(pipe.tokenizer.encode(x)).float().clamp(-1, 1)
    raw_bpp = pipe.prior.layout.codes_per_item * math.log2(pipe.tokenizer.codebook_size) / per_item

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

    quality = round(float(media.measure(reconstruction, x).mean()), media.digits)
    rows = [["raw codes", round(raw_bpp, 4), "1.000", quality]]

    def row(name: str, total_bytes: float) -> list:
        bpp = 8 * total_bytes / (n * per_item)
        return [name, round(bpp, 4), f"{bpp / raw_bpp:.3f}", quality]

    rows.append(row(f"one .vqz file per {noun} (with header)", sum(file_bytes)))
    rows.append(row(f"one file per {noun}, payload only", sum(payload_bytes)))
    rows.append(row(f"one stream, all {noun}s (payload)", 4 * len(words)))
    if conditional is not None:
        _, cond_words = read_header(conditional)
        rows.append(row("one stream, coded given the true labels", 4 * len(cond_words)))
    print_table(
        f"Compression of {n} test items {list(x.shape[1:])}",
        ["coding", unit, "ratio to raw", media.distortion],
        rows,
    )
    print(
        f"every decoded {noun} equals the tokenizer's reconstruction: {exact}; "
        f"{per_file_seconds / n * 1000:.0f} ms per {noun} to compress and decompress"
    )
    write_json(
        "compression" if args.pipeline == "image" else f"compression_{Path(args.pipeline).name}",
        {
            "unit": unit,
            "distortion": media.distortion,
            "pipeline": args.pipeline,
            "seed": args.seed,
            "items": n if media.indices is None else media.indices,
            "rows": rows,
            "exact": exact,
            "per_image_seconds": per_file_seconds / n,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
