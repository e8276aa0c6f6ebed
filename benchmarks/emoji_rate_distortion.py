"""Rate-distortion on the emoji test split: vqgen codes and ``.vqz`` files against WebP, JPEG and diffusers' ``VQModel``.

Commands (a saved class-conditional pipeline; its tokenizer's run folder holds the training_config.json that
the VQModel baseline copies)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emoji_rate_distortion.py --pipeline PIPELINE_DIR \\
        --training-config runs/emoji/tok/training_config.json --data /tmp/emoji64 --seed 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emoji_rate_distortion.py --tokenizer runs/emoji/tok --data /tmp/emoji64

Smoke run: add ``--quick`` (a few training steps, tiny models, 4 qualities, at most 16 test images; written
to ``emoji_rate_distortion_quick.json``): it checks that every path runs; its numbers mean nothing.

Data: an emoji build (``vqgen data build emoji --output /tmp/emoji64``: 64x64 RGB on white, 3,224 train /
431 test images in 9 groups). Every figure is measured on the TEST split (``--max-images``: that many, spread
evenly over the groups). Every decoded image is rounded to uint8 first (what a decoder that writes files
gives), then scored against the PNG's pixels with ``vqgen.evaluation.metrics``: PSNR (data range 2), SSIM and
MS-SSIM (11-px window; 3 scales at 64x64), each per image and then averaged over images. "Bytes" are mean
bytes per image.

Rows:

1. vqgen raw codes: ``decode(encode(x))`` of the tokenizer (``--pipeline``'s, ``--tokenizer``, or one trained
   here from scratch for ``--steps`` when neither is given); bytes = ``prod(code_grid) * log2(K) / 8``, a
   fixed-length code (16x16 codes of 1,024 entries: 320 bytes).
2. vqgen ``.vqz`` (``--pipeline`` only): each test image compressed ALONE by ``vqgen.compression.compress``
   under the pipeline's prior, given its true group label; bytes = the whole file (header included; the
   range-coded payload alone is reported beside it). The decoded image is the tokenizer's reconstruction
   (checked exactly on the first ``--check-files`` images), so its distortion is row 1's.
3. JPEG (Pillow/libjpeg, 4:2:0, ``optimize=True``: Huffman tables fitted per image) and WebP (Pillow/libwebp,
   lossy, default ``method=4``, and ``method=6``, the slowest and best), swept over ``--qualities`` (default
   every quality 0..100). Bytes = the whole file. Each codec's PSNR (and SSIM, MS-SSIM) at a vqgen row's
   exact mean bytes is interpolated linearly in log(bytes) between the two neighbouring sweep points, and the
   nearest real sweep point is shown beside it; "n/a" where the codec's sweep does not reach that size (WebP
   files of a 64x64 emoji stay above about 190 bytes even at quality 0). JPEG headers are 300+ bytes, so a
   "JPEG scan bytes only" curve (entropy-coded data, SOS to EOI, as in ``rate_distortion.py``) is shown too.
4. diffusers ``VQModel``: the same number of down/up levels, res blocks per level, latent width, codebook and
   code grid as the vqgen tokenizer, block widths ``c * channel_multipliers`` with ``c`` (a multiple of 8)
   chosen so that its parameter count is the nearest to the vqgen tokenizer's; diffusers' own quantizer and
   mid-block attention. Wrapped by ``rate_distortion.DiffusersVQTokenizer`` and trained on the emoji TRAIN
   split by vqgen's own loop (``vqgen.training.tokenizer.train_tokenizer``) for ``--steps`` steps with the
   training options and losses of the vqgen tokenizer's run (``--training-config``, default the
   ``training_config.json`` beside ``--tokenizer``: batch size, learning rate and schedule, warm-up, EMA,
   gradient clipping, L1 / MS-SSIM / GAN weights), so "equal steps" means the same loop, data and schedule.
   ``--steps`` defaults to that run's ``max_steps``; without a training config: 1,000 steps of batch 16,
   AdamW 4e-4, cosine, L1 + quantizer loss (and the "equal steps" comparison is marked unknown).

Targets (reported, never asserted): ``.vqz`` PSNR minus WebP PSNR at the ``.vqz`` mean bytes (the better of
the two WebP methods; positive = vqgen beats WebP; where the ``.vqz`` files are smaller than WebP's
smallest, the target cannot be read and the ``.vqz`` PSNR is compared with that of WebP's smallest files
instead: higher there means fewer bytes AND a higher PSNR), and vqgen tokenizer PSNR minus VQModel PSNR at
equal training steps (positive = vqgen better).

Training throughput (``tokenizer_training_speed.training_throughput``): both tokenizers side by side in this
process, each a fresh copy, generator steps only
(forward, reconstruction + quantizer (+ MS-SSIM) loss, backward, clipping, AdamW; no discriminator) on one
fixed batch of ``--batch-size`` training images, ``--throughput-warmup`` untimed steps each, then
``--throughput-repeats`` rounds of ``--throughput-steps`` timed steps each, the two models alternating;
images/s = the median round. Timings are reported, never asserted; the machine may be loaded.

Output: tables on stdout and ``benchmarks/out/emoji_rate_distortion.json``; the VQModel (and a vqgen
tokenizer trained here) with their logs under ``benchmarks/out/emoji_rate_distortion_runs/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import print_table, resolve_device, write_json  # noqa: E402
from emoji_common import (  # noqa: E402
    DEFAULT_DATA,
    as_saved,
    load_pipeline_quietly,
    load_split,
    reconstruct,
)
from rate_distortion import DiffusersVQTokenizer, count_parameters, jpeg_scan_bytes  # noqa: E402
from tokenizer_training_speed import training_throughput  # noqa: E402

from vqgen.evaluation.metrics import ms_ssim, psnr, ssim  # noqa: E402
from vqgen.training.common import TrainingOptions  # noqa: E402
from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer  # noqa: E402

NAME = "emoji_rate_distortion"
#: name -> (Pillow format, save options); "jpeg-scan" is derived from the "jpeg" sweep.
CODECS: dict[str, tuple[str, dict]] = {
    "webp": ("WEBP", {}),
    "webp-m6": ("WEBP", {"method": 6}),
    "jpeg": ("JPEG", {"optimize": True}),
}
CODEC_LABELS = {
    "webp": "WebP",
    "webp-m6": "WebP method 6",
    "jpeg": "JPEG",
    "jpeg-scan": "JPEG scan bytes only",
}
METRICS = ("psnr", "ssim", "ms_ssim")
#: Used when no training config of the vqgen tokenizer's run is known.
FALLBACK_OPTIONS = {"max_steps": 1000, "batch_size": 16, "learning_rate": 4e-4, "lr_schedule": "cosine"}
#: TrainingOptions fields copied from a run's training_config.json (the rest belong to that run's folder).
COPIED_OPTIONS = (
    "max_steps",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "warmup_steps",
    "lr_schedule",
    "gradient_accumulation_steps",
    "mixed_precision",
    "max_grad_norm",
    "ema_decay",
    "max_nonfinite_steps",
)


# --------------------------------------------------------------------------------------------------------
# Distortion and equal-bytes reading


def distortion(reconstruction: torch.Tensor, original: torch.Tensor) -> dict[str, float]:
    """Mean per-image PSNR, SSIM and MS-SSIM of ``reconstruction`` (rounded to uint8 first) against ``original``."""
    decoded = as_saved(reconstruction)
    return {
        "psnr": float(psnr(decoded, original).mean()),
        "ssim": float(ssim(decoded, original).mean()),
        "ms_ssim": float(ms_ssim(decoded, original).mean()),
    }


def value_at_bytes(points: list[dict], target: float, key: str = "psnr") -> float | None:
    """``key`` at ``target`` bytes, linear in log(bytes) between the two neighbouring points of a sweep
    (``points``: dicts with ``"bytes"`` and ``key``, any order); None outside the swept sizes."""
    ordered = sorted(points, key=lambda p: p["bytes"])
    sizes = np.log([p["bytes"] for p in ordered])
    if not ordered or target <= 0 or not sizes[0] <= math.log(target) <= sizes[-1]:
        return None
    return float(np.interp(math.log(target), sizes, [p[key] for p in ordered]))


def nearest_point(points: list[dict], target: float) -> dict:
    """The sweep point whose size is nearest to ``target`` bytes (by ratio)."""
    return min(points, key=lambda p: abs(math.log(p["bytes"] / target)))


# --------------------------------------------------------------------------------------------------------
# Classical codecs


def encode(image: np.ndarray, codec: str, quality: int) -> bytes:
    """One uint8 ``[H, W, 3]`` image as a JPEG or WebP file."""
    from PIL import Image

    file_format, options = CODECS[codec]
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format=file_format, quality=quality, **options)
    return buffer.getvalue()


def codec_sweep(
    originals: np.ndarray, reference: torch.Tensor, codec: str, qualities: list[int]
) -> list[dict]:
    """Mean bytes and distortion of every test image coded at each quality."""
    from PIL import Image

    from vqgen.media.image import images_from_uint8

    points = []
    for quality in qualities:
        files = [encode(image, codec, quality) for image in originals]
        decoded = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
        point = {"quality": quality, "bytes": float(np.mean([len(f) for f in files]))}
        if codec == "jpeg":
            point["scan_bytes"] = float(np.mean([jpeg_scan_bytes(f) for f in files]))
        point.update(distortion(images_from_uint8(decoded), reference))
        points.append(point)
    return points


def sweeps(test, qualities: list[int]) -> dict[str, list[dict]]:
    """Every codec's sweep over ``qualities`` (and the JPEG scan-bytes curve), timed."""
    curves = {}
    for codec in CODECS:
        started = time.perf_counter()
        curves[codec] = codec_sweep(test.uint8, test.images, codec, qualities)
        print(f"[{codec}] {len(qualities)} qualities in {time.perf_counter() - started:.0f} s", flush=True)
    curves["jpeg-scan"] = [{**p, "bytes": p["scan_bytes"]} for p in curves["jpeg"]]
    return curves


# --------------------------------------------------------------------------------------------------------
# Learned tokenizers


def score_tokenizer(name: str, tokenizer: nn.Module, test, device: torch.device) -> dict:
    """Raw-code bytes, distortion, and test codebook usage (share of the codes used) and perplexity (exp of
    the entropy of code use over every test code) of a tokenizer on the test images."""
    from vqgen.tokenizers.quantizers import code_statistics

    tokenizer = tokenizer.eval().to(device)
    grid = tuple(tokenizer.code_grid(tuple(test.images.shape[1:])))
    reconstruction, codes = reconstruct(tokenizer, test.images, device)
    result = {
        "name": name,
        "code_grid": list(grid),
        "codebook_size": int(tokenizer.codebook_size),
        "bytes": math.prod(grid) * math.log2(tokenizer.codebook_size) / 8,
        "parameters": count_parameters(tokenizer),
        "test_usage": torch.unique(codes).numel() / tokenizer.codebook_size,
        "test_perplexity": float(code_statistics(codes, tokenizer.codebook_size)[1]),
    }
    result.update(distortion(reconstruction, test.images))
    return result


def vqmodel_kwargs(tokenizer: nn.Module, image_size: int, width: int) -> dict:
    """diffusers ``VQModel`` arguments shaped like the vqgen ``ImageTokenizer`` with first-level width ``width``."""
    config = tokenizer.config
    multipliers = list(config["channel_multipliers"])
    quantizer = config["quantizer_config"]
    levels = len(multipliers)
    groups = next(g for g in (32, 16, 8) if width % g == 0)
    return {
        "in_channels": config["in_channels"],
        "out_channels": config["in_channels"],
        "down_block_types": ("DownEncoderBlock2D",) * levels,
        "up_block_types": ("UpDecoderBlock2D",) * levels,
        "block_out_channels": tuple(width * m for m in multipliers),
        "layers_per_block": config["num_res_blocks"],
        "latent_channels": config["latent_channels"],
        "num_vq_embeddings": int(tokenizer.codebook_size),
        "vq_embed_dim": quantizer.get("codebook_dim") or config["latent_channels"],
        "norm_num_groups": groups,
        "sample_size": image_size,
    }


def matched_vqmodel(tokenizer: nn.Module, image_size: int) -> tuple[dict, int]:
    """The ``VQModel`` arguments whose parameter count is nearest to ``tokenizer``'s, and that count.

    Widths are multiples of 8; counts grow with the width, so the scan stops at the first one above."""
    from diffusers import VQModel

    target = count_parameters(tokenizer)
    best = None
    for width in range(8, 8 * 4 * int(tokenizer.config["base_channels"]) + 1, 8):
        kwargs = vqmodel_kwargs(tokenizer, image_size, width)
        with torch.device("meta"):
            parameters = count_parameters(VQModel(**kwargs))
        if best is None or abs(parameters - target) < abs(best[1] - target):
            best = (kwargs, parameters)
        if parameters > target:
            break
    return best


def training_setup(
    args: argparse.Namespace, recipe: tuple[str, dict] | None = None
) -> tuple[dict, TokenizerLossOptions, dict]:
    """The VQModel's training options (``TrainingOptions`` keyword arguments), losses, and what they came from.

    ``recipe``: (source, a dict shaped like a run's ``training_config.json``) used when no training config is
    found, in place of this benchmark's defaults."""
    path = args.training_config
    beside = [Path(args.tokenizer)] if args.tokenizer else []
    beside += [Path(args.pipeline) / "tokenizer"] if args.pipeline else []
    for folder in beside:
        if path is None and (folder / "training_config.json").is_file():
            path = str(folder / "training_config.json")
    if path is None and recipe is None:
        options, loss, source = dict(FALLBACK_OPTIONS), TokenizerLossOptions(), "defaults of this benchmark"
        options["warmup_steps"] = (args.steps or options["max_steps"]) // 20
    else:
        source, saved = (path, json.loads(Path(path).read_text())) if path is not None else recipe
        options = {key: saved[key] for key in COPIED_OPTIONS if key in saved}
        known = {f.name for f in dataclasses.fields(TokenizerLossOptions)}
        loss = TokenizerLossOptions(**{k: v for k, v in saved.get("loss", {}).items() if k in known})
    recorded_steps = options.get("max_steps") if path is not None or recipe is not None else None
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    steps = args.steps or options["max_steps"]
    options.update(max_steps=steps, checkpoint_every=steps, eval_every=steps, seed=args.seed)
    options.update(log_every=max(1, min(50, steps)), progress=False, keep_checkpoints=1)
    options["warmup_steps"] = min(options.get("warmup_steps", 0), steps // 2)
    info = {"source": source, "tokenizer_steps": recorded_steps, "steps": steps}
    return options, loss, info


def train(
    name: str, tokenizer: nn.Module, train_split, test_split, options: dict, loss, runs: str = f"{NAME}_runs"
) -> tuple[nn.Module, dict]:
    """Train ``tokenizer`` with vqgen's loop into ``benchmarks/out/<runs>/<name>``."""
    output = common.OUT_DIR / runs / name
    shutil.rmtree(output, ignore_errors=True)
    print(
        f"[{name}] training {options['max_steps']} steps ({count_parameters(tokenizer):,} parameters)",
        flush=True,
    )
    started = time.perf_counter()
    trained = train_tokenizer(
        tokenizer,
        train_split.dataset,
        TrainingOptions(output=str(output), **options),
        loss,
        test_split.dataset,
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(output / "checkpoints", ignore_errors=True)
    return trained, {"train_seconds": round(seconds, 1), "run_dir": str(output)}


def scratch_tokenizer(args: argparse.Namespace, **overrides) -> nn.Module:
    """A new vqgen ``ImageTokenizer`` as ``vqgen train-tokenizer`` builds it for these settings (``overrides``:
    other ``TokenizerSettings`` fields, e.g. ``channel_multipliers=[1, 2, 2, 4]``), drawn from ``args.seed``."""
    from vqgen.media import TokenizerSettings, build_tokenizer, get_medium

    settings = TokenizerSettings(
        **{
            "base_channels": args.base_channels,
            "latent_channels": args.latent_channels,
            "codebook_size": args.codebook_size,
            "dead_code_threshold": 20,
            **overrides,
        }
    )
    torch.manual_seed(args.seed)
    return build_tokenizer(get_medium("image"), settings, channels=3)


# --------------------------------------------------------------------------------------------------------
# .vqz files


def vqz_sizes(pipe, test, check_files: int) -> dict:
    """Each test image compressed alone with its label: mean file and payload bytes, and exact decoding."""
    from vqgen.compression import compress, decompress, read_header

    pipe = pipe.to("cpu")
    file_bytes, payload_bytes, exact = [], [], True
    started = time.perf_counter()
    for i in range(len(test)):
        x, label = test.images[i : i + 1], [int(test.labels[i])]
        data = compress(pipe, x, class_labels=label)
        file_bytes.append(len(data))
        payload_bytes.append(4 * len(read_header(data)[1]))
        if i < check_files:
            with torch.no_grad():
                expected = pipe.tokenizer.decode(pipe.tokenizer.encode(x)).float().clamp(-1, 1)
            media, labels = decompress(pipe, data)
            exact &= torch.equal(media, expected) and labels == label
    seconds = time.perf_counter() - started
    return {
        "bytes": float(np.mean(file_bytes)),
        "payload_bytes": float(np.mean(payload_bytes)),
        "min_bytes": int(min(file_bytes)),
        "max_bytes": int(max(file_bytes)),
        "checked_files": min(check_files, len(test)),
        "decoded_exactly": bool(exact),
        "seconds_per_image": seconds / len(test),
        "file_bytes": file_bytes,
    }


# --------------------------------------------------------------------------------------------------------
# Tables


def equal_bytes_rows(vqgen_rows: list[dict], curves: dict[str, list[dict]]) -> list[dict]:
    """Every codec read at every vqgen row's mean bytes."""
    readings = []
    for row in vqgen_rows:
        for codec, points in curves.items():
            near = nearest_point(points, row["bytes"])
            reading = {
                "vqgen": row["name"],
                "bytes": row["bytes"],
                "vqgen_psnr": row["psnr"],
                "codec": codec,
                "nearest": {k: near[k] for k in ("quality", "bytes", *METRICS)},
                "swept_bytes": [min(p["bytes"] for p in points), max(p["bytes"] for p in points)],
            }
            reading.update({key: value_at_bytes(points, row["bytes"], key) for key in METRICS})
            reading["vqgen_minus_codec_db"] = (
                None if reading["psnr"] is None else row["psnr"] - reading["psnr"]
            )
            readings.append(reading)
    return readings


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_rows(rows: list[dict], vqz: dict | None, title: str) -> str:
    table = []
    for row in rows:
        note = f"{row['parameters'] / 1e6:.2f} M params, test usage {row['test_usage']:.1%}"
        if row["name"].endswith(".vqz") and vqz is not None:
            note = (
                f"payload {vqz['payload_bytes']:.1f} B; {vqz['min_bytes']}-{vqz['max_bytes']} B; decoded exactly: "
                f"{vqz['decoded_exactly']} ({vqz['checked_files']} checked)"
            )
        table.append(
            [
                row["name"],
                f"{row['bytes']:.1f}",
                fmt(row["psnr"]),
                fmt(row["ssim"], 4),
                fmt(row["ms_ssim"], 4),
                note,
            ]
        )
    return print_table(title, ["method", "bytes/image", "PSNR dB", "SSIM", "MS-SSIM", "notes"], table)


def print_equal_bytes(readings: list[dict]) -> str:
    table = []
    for r in readings:
        near = r["nearest"]
        swept = "n/a (swept {:.0f}-{:.0f} B)".format(*r["swept_bytes"])
        table.append(
            [
                r["vqgen"],
                f"{r['bytes']:.1f}",
                fmt(r["vqgen_psnr"]),
                CODEC_LABELS[r["codec"]],
                swept if r["psnr"] is None else fmt(r["psnr"]),
                fmt(r["ssim"], 4),
                fmt(r["ms_ssim"], 4),
                f"q{near['quality']}: {near['bytes']:.0f} B, {near['psnr']:.2f} dB",
                "n/a" if r["vqgen_minus_codec_db"] is None else f"{r['vqgen_minus_codec_db']:+.2f}",
            ]
        )
    columns = ["vqgen row", "bytes", "vqgen PSNR", "codec", "codec PSNR (interp.)", "SSIM", "MS-SSIM",
               "nearest sweep point", "vqgen - codec dB"]  # fmt: skip
    return print_table("Codecs read at the vqgen rows' mean bytes (linear in log bytes)", columns, table)


def targets(
    readings: list[dict],
    curves: dict[str, list[dict]],
    vqgen_row: dict,
    vqmodel: dict | None,
    steps_info: dict,
) -> dict:
    """The two targets of the issue, with how they were measured."""
    out: dict = {}
    webp = [r for r in readings if r["vqgen"].endswith(".vqz") and r["codec"] in ("webp", "webp-m6")]
    if webp:
        read = [r for r in webp if r["psnr"] is not None]
        best = max(read, key=lambda r: r["psnr"]) if read else None
        out["vqz_minus_webp_db"] = None if best is None else best["vqgen_minus_codec_db"]
        out["vqz_webp_peer"] = None if best is None else best["codec"]
        out["vqz_bytes"] = webp[0]["bytes"]
        out["webp_smallest_bytes"] = min(r["swept_bytes"][0] for r in webp)
        # Below WebP's smallest file the target cannot be read; fewer bytes AND a higher PSNR than the
        # smallest WebP files (the better of the two methods) still settles it.
        smallest = [min(curves[r["codec"]], key=lambda p: p["bytes"]) for r in webp]
        out["webp_smallest_psnr"] = max(p["psnr"] for p in smallest)
        out["vqz_minus_smallest_webp_db"] = vqgen_row["psnr"] - out["webp_smallest_psnr"]
    if vqmodel is not None:
        out["tokenizer_minus_vqmodel_db"] = vqgen_row["psnr"] - vqmodel["psnr"]
        tokenizer_steps = steps_info.get("tokenizer_steps")
        out["equal_steps"] = None if tokenizer_steps is None else tokenizer_steps == steps_info["steps"]
        out["vqmodel_steps"], out["tokenizer_steps"] = steps_info["steps"], tokenizer_steps
    return out


def print_targets(goal: dict) -> str:
    rows = []
    if "vqz_bytes" in goal:
        value = goal["vqz_minus_webp_db"]
        if value is None and goal["vqz_bytes"] < goal["webp_smallest_bytes"]:
            margin = goal["vqz_minus_smallest_webp_db"]
            verdict = (
                f"not readable: .vqz {goal['vqz_bytes']:.0f} B is below WebP's smallest files "
                f"({goal['webp_smallest_bytes']:.0f} B, {goal['webp_smallest_psnr']:.2f} dB); .vqz PSNR minus "
                f"theirs {margin:+.2f} dB ({'beats: fewer bytes and higher PSNR' if margin > 0 else 'undecided'})"
            )
        elif value is None:
            verdict = "n/a: outside the WebP sweep"
        else:
            verdict = f"{value:+.2f} dB vs {CODEC_LABELS[goal['vqz_webp_peer']]} ({'beats' if value > 0 else 'does not beat'})"
        rows.append([".vqz PSNR - WebP PSNR at equal bytes", verdict])
    if "tokenizer_minus_vqmodel_db" in goal:
        value, equal = goal["tokenizer_minus_vqmodel_db"], goal["equal_steps"]
        better = "vqgen better" if value > 0 else "VQModel better"
        steps = f"VQModel {goal['vqmodel_steps']} steps, tokenizer {goal['tokenizer_steps'] or 'unknown'}"
        if equal is None:
            steps += "; equal steps unknown: pass --training-config"
        elif not equal:
            steps += "; NOT equal steps"
        rows.append(["tokenizer PSNR - VQModel PSNR at equal steps", f"{value:+.2f} dB ({better}; {steps})"])
    return print_table("Targets (positive = vqgen better)", ["target", "result"], rows)


def print_sweeps(curves: dict[str, list[dict]]) -> str:
    shown = {0, 5, 10, 20, 30, 50, 75, 90, 100}
    table = [
        [
            CODEC_LABELS[codec],
            p["quality"],
            f"{p['bytes']:.1f}",
            fmt(p["psnr"]),
            fmt(p["ssim"], 4),
            fmt(p["ms_ssim"], 4),
        ]
        for codec, points in curves.items()
        for p in points
        if p["quality"] in shown or len(points) <= 12
    ]
    columns = ["codec", "quality", "bytes/image", "PSNR dB", "SSIM", "MS-SSIM"]
    return print_table("Codec sweeps (excerpt; every point in the JSON)", columns, table)


# --------------------------------------------------------------------------------------------------------


def parse_qualities(text: str) -> list[int]:
    """``"0-100"``, ``"0,5,10"`` or a mix: sorted unique qualities in 0..100."""
    values = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        values.update(range(int(low), int(high or low) + 1))
    if not values or min(values) < 0 or max(values) > 100:
        raise SystemExit(f"--qualities must lie in 0..100, got {text!r}")
    return sorted(values)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pipeline", help="a saved ImagePipeline (tokenizer + class-conditional prior)")
    source.add_argument("--tokenizer", help="a saved ImageTokenizer (raw codes only, no .vqz)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="the emoji build (vqgen data build emoji)")
    parser.add_argument(
        "--steps", type=int, help="training steps of the VQModel (and of a scratch tokenizer)"
    )
    parser.add_argument("--training-config", help="training_config.json of the vqgen tokenizer's run")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the run's, else 16)")
    parser.add_argument("--max-images", type=int, help="test images scored, spread evenly (default all)")
    parser.add_argument("--qualities", default="0-100", help="JPEG/WebP qualities, e.g. 0-100 or 0,5,10")
    parser.add_argument(
        "--no-vqmodel", action="store_true", help="skip diffusers' VQModel and the throughput"
    )
    parser.add_argument("--check-files", type=int, default=2, help=".vqz files decoded and checked exactly")
    parser.add_argument("--throughput-steps", type=int, default=20, help="timed steps a round (0: skip)")
    parser.add_argument("--throughput-warmup", type=int, default=5)
    parser.add_argument("--throughput-repeats", type=int, default=3)
    parser.add_argument("--base-channels", type=int, default=32, help="scratch tokenizer only")
    parser.add_argument("--latent-channels", type=int, default=64, help="scratch tokenizer only")
    parser.add_argument("--codebook-size", type=int, default=1024, help="scratch tokenizer only")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, a few steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = args.steps or 3
        args.batch_size = args.batch_size or 8
        args.qualities = "0,10,50,90"
        args.max_images = min(args.max_images or 16, 16)
        args.base_channels, args.latent_channels, args.codebook_size = 8, 16, 32
        args.throughput_steps, args.throughput_warmup, args.throughput_repeats = 2, 1, 1
    return args


def load_vqgen(args: argparse.Namespace):
    """The pipeline (or None) and tokenizer under test."""
    if args.pipeline:
        pipe = load_pipeline_quietly(args.pipeline)
        if not pipe.num_classes:
            raise SystemExit(f"{args.pipeline}: the prior is unconditional; the .vqz row needs group labels")
        return pipe, pipe.tokenizer
    if args.tokenizer:
        from vqgen.loading import load_tokenizer

        return None, load_tokenizer(args.tokenizer)
    return None, None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = resolve_device(args.device)
    started = time.perf_counter()
    train_split, test = load_split(args.data, "train"), load_split(args.data, "test", args.max_images)
    image_size = test.images.shape[-1]
    print(f"{args.data}: {len(train_split)} train / {len(test)} test images scored, {image_size}x{image_size}; "
          f"torch threads {torch.get_num_threads()}, device {device}", flush=True)  # fmt: skip
    pipe, tokenizer = load_vqgen(args)
    options, loss, steps_info = training_setup(args)
    results: dict = {"training": {**steps_info, "options": options, "loss": loss.__dict__}}
    if tokenizer is None:
        tokenizer, info = train("vqgen-tokenizer", scratch_tokenizer(args), train_split, test, options, loss)
        steps_info["tokenizer_steps"] = options["max_steps"]
        results["vqgen_training"] = info
    rows = [score_tokenizer("vqgen raw codes", tokenizer, test, device)]
    if pipe is not None:
        vqz = vqz_sizes(pipe, test, args.check_files)
        rows.append({**rows[0], "name": "vqgen .vqz", "bytes": vqz["bytes"]})
        results["vqz"] = vqz
    vqmodel = None
    if not args.no_vqmodel:
        kwargs, _ = matched_vqmodel(tokenizer, image_size)
        torch.manual_seed(args.seed)
        model, info = train(
            "diffusers-vqmodel", DiffusersVQTokenizer(**kwargs), train_split, test, options, loss
        )
        vqmodel = {**score_tokenizer("diffusers VQModel raw codes", model, test, device), **info}
        vqmodel["block_out_channels"] = list(kwargs["block_out_channels"])
        rows.append(vqmodel)
        if args.throughput_steps > 0:
            batch = train_split.images[: options["batch_size"]].to(device)
            models = {"vqgen ImageTokenizer": tokenizer, "diffusers VQModel": model}
            results["throughput"] = training_throughput(
                models, batch, loss, learning_rate=options["learning_rate"],
                max_grad_norm=options.get("max_grad_norm", 1.0), steps=args.throughput_steps,
                warmup=args.throughput_warmup, repeats=args.throughput_repeats,
            )  # fmt: skip
    curves = sweeps(test, parse_qualities(args.qualities))
    readings = equal_bytes_rows([r for r in rows if r["name"].startswith("vqgen")], curves)
    goal = targets(readings, curves, rows[0], vqmodel, steps_info)
    tables = [
        print_rows(rows, results.get("vqz"), f"Emoji test split ({len(test)} images), learned codes"),
        print_sweeps(curves),
        print_equal_bytes(readings),
        print_targets(goal),
    ]
    if "throughput" in results:
        t = results["throughput"]
        ratio = t["vqgen ImageTokenizer"]["images_per_s"] / t["diffusers VQModel"]["images_per_s"]
        tables.append(print_table(
            f"Training throughput, batch {options['batch_size']} on {device}, median of {args.throughput_repeats} x "
            f"{args.throughput_steps} steps (ratio vqgen/VQModel {ratio:.2f})",
            ["model", "parameters", "images/s"],
            [[name, f"{v['parameters']:,}", f"{v['images_per_s']:.2f}"] for name, v in t.items()],
        ))  # fmt: skip
    results.update(
        {
            "data": str(args.data),
            "test_images": test.indices,
            "rows": rows,
            "sweeps": curves,
            "equal_bytes": readings,
            "targets": goal,
            "total_seconds": round(time.perf_counter() - started, 1),
            "tables": tables,
        }
    )
    write_json(NAME + ("_quick" if args.quick else ""), results)
    return results


if __name__ == "__main__":
    main()
