"""Training throughput of the colour tokenizer beside diffusers' ``VQModel`` of equal size, and its peak memory.

Command (the GPU figures in RESULTS.md; ``benchmarks/gpu_checks.sh`` runs it)::

    python benchmarks/tokenizer_training_speed.py --device cuda --precisions fp32 bf16 --resolutions 64 256

On the CPU: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tokenizer_training_speed.py --data /tmp/emoji64``.
Smoke run: ``--quick`` (tiny models, one round; its numbers mean nothing).

Models: a fresh vqgen ``ImageTokenizer`` built as the shipped emoji recipe builds it
(``scripts/train_default_emoji.sh``: base 32 channels, multipliers 1,2,2, one res block a level, 64 latent
channels, 1,024 codes, dead-code restart after 20 idle steps; 16x16 codes of a 64x64 image) and the diffusers
``VQModel`` with the same levels, latent width, codebook and code grid whose parameter count is nearest to it
(``emoji_rate_distortion.matched_vqmodel``). Each step is a generator step of vqgen's tokenizer loss as the
recipe sets it (L1 + 0.2 (1 - MS-SSIM) + the quantizer's loss; forward, backward, gradient clipping at 1, AdamW):
the discriminator is off in the recipe's first stage. ``bf16`` runs forward and loss under
``torch.autocast(dtype=torch.bfloat16)`` with fp32 weights (what ``--mixed-precision bf16`` does through
Accelerate); ``fp32`` runs without autocast.

Images: ``--batch-size`` images of the data's train split (``--data``, an emoji build), resized bilinearly to
each of ``--resolutions`` (the models are fully convolutional: at 256 x 256 the code grid is 64 x 64); without
``--data``, seeded uniform noise in [-1, 1] (the speed of a step does not depend on the pixels).

Figures: images/s = ``--steps`` steps of one batch over their wall time (CUDA synchronised), the median of
``--repeats`` rounds after ``--warmup`` untimed steps, the two models alternating round by round; on CUDA the
peak memory allocated by torch during the timed steps of each model (``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats``), weights, AdamW state and activations included. Never asserted.

Output: tables on stdout and ``benchmarks/out/<--output-name>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_label, print_table, resolve_device, synchronize, write_json  # noqa: E402

NAME = "tokenizer_training_speed"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
#: the shipped emoji tokenizer's first stage (scripts/train_default_emoji.sh)
RECIPE = {
    "base_channels": 32,
    "channel_multipliers": [1, 2, 2],
    "num_res_blocks": 1,
    "latent_channels": 64,
    "codebook_size": 1024,
    "dead_code_threshold": 20,
}
MS_SSIM_WEIGHT = 0.2
LEARNING_RATE = 6e-4
MAX_GRAD_NORM = 1.0


def generator_step(
    model: nn.Module,
    criterion,
    optimizer,
    x: torch.Tensor,
    max_grad_norm: float,
    autocast_dtype: torch.dtype | None = None,
) -> None:
    """One tokenizer generator step on ``x`` ``[B, C, H, W]``: forward, loss, backward, clip, AdamW step."""
    autocast = (
        torch.autocast(x.device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    )
    with autocast:
        out = model(x)
        last_layer = model.last_layer_weight
        loss, _ = criterion.generator_loss(x, out.reconstruction, out.losses["quantizer"], 0, last_layer)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()


def training_throughput(
    models: dict[str, nn.Module],
    batch: torch.Tensor,
    loss,
    *,
    learning_rate: float,
    max_grad_norm: float = MAX_GRAD_NORM,
    steps: int = 20,
    warmup: int = 5,
    repeats: int = 3,
    autocast_dtype: torch.dtype | None = None,
) -> dict:
    """Images per second of a generator training step of each model (a fresh copy each) on ``batch``
    ``[B, C, H, W]``, side by side: ``warmup`` untimed steps, then ``repeats`` rounds of ``steps`` timed
    steps, the models alternating; the median round, every round, the parameter count, and on CUDA the
    peak memory (bytes) of each model's timed steps. ``loss``: a ``TokenizerLossOptions``."""
    from vqgen.tokenizers.losses import TokenizerLoss

    device = batch.device
    runs = {}
    for name, model in models.items():
        model = copy.deepcopy(model).to(device).train()
        criterion = TokenizerLoss(
            in_channels=batch.shape[1],
            reconstruction=loss.reconstruction,
            reconstruction_weight=loss.reconstruction_weight,
            quantizer_weight=loss.quantizer_weight,
            ms_ssim_weight=loss.ms_ssim_weight,
        ).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.5, 0.9))
        runs[name] = (model, criterion, optimizer)
        for _ in range(warmup):
            generator_step(model, criterion, optimizer, batch, max_grad_norm, autocast_dtype)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, int | None] = {name: None for name in runs}
    for repeat in range(repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
        for name in order:
            model, criterion, optimizer = runs[name]
            synchronize(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            started = time.perf_counter()
            for _ in range(steps):
                generator_step(model, criterion, optimizer, batch, max_grad_norm, autocast_dtype)
            synchronize(device)
            rates[name].append(steps * batch.shape[0] / (time.perf_counter() - started))
            if device.type == "cuda":
                peaks[name] = max(peaks[name] or 0, torch.cuda.max_memory_allocated(device))
    return {
        name: {
            "images_per_s": statistics.median(values),
            "rounds": values,
            "parameters": sum(p.numel() for p in runs[name][0].parameters()),
            "peak_memory_bytes": peaks[name],
        }
        for name, values in rates.items()
    }


def batch_of(args: argparse.Namespace, resolution: int, device: torch.device) -> torch.Tensor:
    """``[B, 3, resolution, resolution]`` in [-1, 1]: train images of ``--data`` resized, or seeded noise."""
    if args.data:
        from emoji_common import load_split

        images = load_split(args.data, "train").images[: args.batch_size].float()
        if images.shape[0] < args.batch_size:
            raise SystemExit(
                f"{args.data}: {images.shape[0]} train images, --batch-size asks {args.batch_size}"
            )
        if images.shape[-1] != resolution:
            images = nn.functional.interpolate(images, size=(resolution, resolution), mode="bilinear")
    else:
        generator = torch.Generator().manual_seed(args.seed)
        images = torch.rand(args.batch_size, 3, resolution, resolution, generator=generator) * 2 - 1
    return images.clamp(-1, 1).to(device)


def models_of(args: argparse.Namespace) -> dict[str, nn.Module]:
    """The vqgen tokenizer of the recipe and its parameter-matched ``VQModel``, seeded."""
    from emoji_rate_distortion import matched_vqmodel
    from rate_distortion import DiffusersVQTokenizer

    from vqgen.media import TokenizerSettings, build_tokenizer, get_medium

    recipe = dict(RECIPE)
    if args.quick:
        recipe.update(base_channels=8, latent_channels=16, codebook_size=32)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer(get_medium("image"), TokenizerSettings(**recipe), channels=3)
    kwargs, _ = matched_vqmodel(tokenizer, 64)
    torch.manual_seed(args.seed)
    return {"vqgen ImageTokenizer": tokenizer, "diffusers VQModel": DiffusersVQTokenizer(**kwargs)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an emoji build (vqgen data build emoji); default: seeded noise")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=sorted(PRECISIONS))
    parser.add_argument("--resolutions", nargs="+", type=int, default=[64])
    parser.add_argument("--batch-size", type=int, default=16, help="the recipe's batch (16)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps a round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-name", default=NAME, help="JSON name under benchmarks/out")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, 2 steps, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.repeats, args.batch_size = 2, 1, 1, min(args.batch_size, 4)
        args.output_name = NAME + "_quick" if args.output_name == NAME else args.output_name
    for resolution in args.resolutions:
        if resolution % 4 or resolution < 16:
            raise SystemExit(
                f"--resolutions: {resolution} is not a multiple of 4 of at least 16 (two downsamplings)"
            )
    return args


def main(argv: list[str] | None = None) -> dict:
    from vqgen.training.tokenizer import TokenizerLossOptions

    args = parse_args(argv)
    device = resolve_device(args.device)
    models = models_of(args)
    loss = TokenizerLossOptions(ms_ssim_weight=MS_SSIM_WEIGHT)
    readings = []
    for resolution in args.resolutions:
        batch = batch_of(args, resolution, device)
        for precision in args.precisions:
            result = training_throughput(
                models, batch, loss, learning_rate=LEARNING_RATE, steps=args.steps, warmup=args.warmup,
                repeats=args.repeats, autocast_dtype=PRECISIONS[precision],
            )  # fmt: skip
            for name, figures in result.items():
                readings.append({"model": name, "resolution": resolution, "precision": precision, **figures})
            print(f"{resolution}px {precision}: " + ", ".join(
                f"{name} {figures['images_per_s']:.1f} images/s" for name, figures in result.items()
            ), flush=True)  # fmt: skip
    rows = []
    for reading in readings:
        peer = next(
            r for r in readings
            if r["model"] == "diffusers VQModel" and (r["resolution"], r["precision"]) == (reading["resolution"], reading["precision"])
        )  # fmt: skip
        peak = reading["peak_memory_bytes"]
        rows.append([
            reading["model"], f"{reading['parameters']:,}", f"{reading['resolution']}x{reading['resolution']}",
            reading["precision"], f"{reading['images_per_s']:.1f}", f"{reading['images_per_s'] / peer['images_per_s']:.2f}",
            "n/a" if peak is None else f"{peak / 2**20:,.0f}",
        ])  # fmt: skip
    name = device_label(device)
    table = print_table(
        f"Tokenizer training throughput, batch {args.batch_size} on {name}, median of {args.repeats} x {args.steps} steps",
        ["model", "parameters", "images", "precision", "images/s", "x VQModel", "peak MiB"],
        rows,
    )  # fmt: skip
    report = {"device": str(device), "device_name": name, "batch_size": args.batch_size, "recipe": RECIPE}
    report.update(readings=readings, data=args.data, table=table)
    write_json(args.output_name, report)
    return report


if __name__ == "__main__":
    main()
