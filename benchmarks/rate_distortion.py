"""Rate-distortion on the demo digits: vqgen ``ImageTokenizer`` against patch k-means, JPEG and diffusers' ``VQModel``.

Command (the figures in RESULTS.md)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rate_distortion.py --seed 0 --steps 600

Smoke run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rate_distortion.py --quick`` (a few training
steps, one setting: checks that every path runs, the numbers mean nothing).

Data: ``demo:mnist`` (4,500 train / 500 test digits, 1 x 28 x 28, pixels in [-1, 1]). Every figure is
measured on the TEST split. PSNR is ``vqgen.evaluation.metrics.psnr`` (data range 2) per image, then
averaged over images. Bits per pixel (bpp) = ``prod(code_grid) * log2(codebook_size) / (28 * 28)``: the
raw rate of a fixed-length code, no entropy coding, for every code-based method.

(1) vqgen ``ImageTokenizer`` (64 base channels, multipliers (1, 2, 2): 28x28 -> 7x7, 64 latent channels,
EMA VQ with k-means init and dead-code restart after 20 idle steps) at the codebook sizes of ``--settings``:
16 codes = 0.25 bpp and 256 = 0.5 bpp by default; ``vq1024`` (0.625 bpp) is left out of the default run
only to keep it under 50 minutes on the loaded 2-core machine (each model costs about 1.5 s a step there). Trained with vqgen's own loop
``vqgen.training.tokenizer.train_tokenizer`` (L1 + quantizer loss, no GAN), ``--steps`` steps of batch 64,
AdamW lr 1e-3, linear warm-up over steps // 12 steps then cosine decay, fixed seed. Scored with
``vqgen.evaluation.tokenizer.evaluate_tokenizer`` (``decode(encode(x))``; usage = fraction of the codebook
used at least once on the test split).

(2) Classical VQ: k-means on non-overlapping 4x4 pixel patches (49 per image) of the train split
(220,500 patches), codebook of the same size as the vqgen setting, so the bpp is exactly equal; the test
images are rebuilt from the nearest centroids. The figure used for the targets is scikit-learn's full-batch
``KMeans`` (Lloyd, k-means++ init, run to its tolerance, which takes under 100 iterations here). A
``MiniBatchKMeans`` row (batch 4096, default early stopping) is shown beside it because it stops after a
few passes and lands up to 3.5 dB lower (2.5 dB at 256 codes): a baseline that weak would flatter the
learned tokenizers.

(3) JPEG (Pillow, greyscale, baseline, standard Huffman tables, quality ``--jpeg-qualities``). Only the
entropy-coded scan bytes count (from the end of the SOS segment header to the EOI marker): on 28x28
images the headers alone (about 300 bytes, i.e. 3 bpp) exceed the whole budget. The headers are fixed
for a given quality (quantisation tables derive from the quality, the Huffman tables are the standard
ones), so a decoder could know them in advance. ``bpp = 8 * scan_bytes / 784``, averaged over images.
"JPEG at equal bpp" is the PSNR linearly interpolated along the quality sweep.

(4) diffusers ``VQModel`` (3 ``DownEncoderBlock2D`` / ``UpDecoderBlock2D``, block_out_channels
(64, 96, 96), 1 layer per block, mid-block attention on (diffusers' default), latent 64, 256 codes of
dimension 64: 28x28 -> 7x7 = 0.5 bpp, 2.39 M parameters against vqgen's 2.47 M; the (64, 128, 128)
widths would give 3.95 M). Wrapped in a small adapter that exposes the vqgen tokenizer contract and
trained by the SAME loop, steps, batches, optimizer and schedule as the vqgen 256-code setting. Its
quantizer is diffusers' own (uniform codebook init, no EMA, no restart, legacy commitment loss).

The trained models and their training logs go to ``benchmarks/out/rate_distortion_runs/<name>``
(checkpoints removed). Training times are reported, never asserted; the machine may be loaded.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT_DIR, print_table, write_json  # noqa: E402

from vqgen.data.images import load_image_dataset  # noqa: E402
from vqgen.evaluation.metrics import psnr, ssim  # noqa: E402
from vqgen.evaluation.tokenizer import evaluate_tokenizer  # noqa: E402
from vqgen.tokenizers.base import TokenizerOutput  # noqa: E402
from vqgen.tokenizers.image import ImageTokenizer  # noqa: E402
from vqgen.tokenizers.quantizers import code_statistics  # noqa: E402
from vqgen.training.common import TrainingOptions  # noqa: E402
from vqgen.training.tokenizer import train_tokenizer  # noqa: E402

IMAGE_SIZE = 28
PIXELS = IMAGE_SIZE * IMAGE_SIZE
# name -> (channel multipliers, codebook size); every setting gives a 7x7 grid (4x downsampling).
SETTINGS: dict[str, tuple[tuple[int, ...], int]] = {
    "vq16": ((1, 2, 2), 16),
    "vq256": ((1, 2, 2), 256),
    "vq1024": ((1, 2, 2), 1024),
}
VQMODEL_MATCH = "vq256"  # the vqgen setting the diffusers VQModel is compared with (same grid and codebook)
VQMODEL_CHANNELS = (64, 96, 96)
RUNS_DIR = OUT_DIR / "rate_distortion_runs"


def bits_per_pixel(grid: tuple[int, ...], codebook_size: int) -> float:
    return math.prod(grid) * math.log2(codebook_size) / PIXELS


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stack_pixels(dataset) -> torch.Tensor:
    """All items' pixels as one tensor ``[N, 1, 28, 28]`` in [-1, 1]."""
    return torch.stack([dataset[i]["pixels"] for i in range(len(dataset))])


# --------------------------------------------------------------------------------------------------------
# (1) and (4): learned tokenizers trained by vqgen's loop


class DiffusersVQTokenizer(nn.Module):
    """diffusers ``VQModel`` behind vqgen's tokenizer contract (what ``train_tokenizer`` and
    ``evaluate_tokenizer`` use): ``forward(x) -> TokenizerOutput``, ``encode(x) -> codes [B, h, w]``,
    ``decode(codes) -> x``, ``code_grid``, ``codebook_size``, ``last_layer_weight``, ``config`` and
    ``save_pretrained``.

    ``VQModel.encode`` returns UN-quantised latents; the codes come from ``VQModel.quantize``, which returns
    ``(z_q, loss, (perplexity, min_encodings, indices))`` with flat ``indices [B * h * w]`` (and ``None``
    for the perplexity), so usage and perplexity are computed here from the indices of the batch.
    """

    def __init__(self, **vqmodel_kwargs):
        super().__init__()
        from diffusers import VQModel

        self.model = VQModel(**vqmodel_kwargs)
        self.config = dict(self.model.config)
        self.downsample_factor = 2 ** (len(self.model.config.block_out_channels) - 1)

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.num_vq_embeddings)

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.model.decoder.conv_out.weight

    def code_grid(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        _, height, width = input_shape
        f = self.downsample_factor
        return (height // f, width // f)

    def _quantize(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latents = self.model.encode(images).latents  # [B, D, h, w], not quantised
        quantized, loss, (_, _, indices) = self.model.quantize(latents)
        codes = indices.view(latents.shape[0], latents.shape[2], latents.shape[3])
        return quantized, loss, codes

    def _decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.model.decode(quantized, force_not_quantize=True).sample

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._quantize(images)[2]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch, height, width = codes.shape
        shape = (batch, height, width, self.model.config.vq_embed_dim)
        quantized = self.model.quantize.get_codebook_entry(codes.reshape(-1).long(), shape)
        return self._decode_latents(quantized)

    def forward(self, images: torch.Tensor) -> TokenizerOutput:
        quantized, loss, codes = self._quantize(images)
        reconstruction = self._decode_latents(quantized)
        _, perplexity, usage = code_statistics(codes.detach(), self.codebook_size)
        losses = {"quantizer": loss, "perplexity": perplexity, "usage": usage}
        return TokenizerOutput(reconstruction=reconstruction, codes=codes, losses=losses)

    def save_pretrained(self, path: str) -> None:
        self.model.save_pretrained(path)


def build_vqgen(setting: str) -> ImageTokenizer:
    multipliers, codebook_size = SETTINGS[setting]
    return ImageTokenizer(
        in_channels=1,
        base_channels=64,
        channel_multipliers=multipliers,
        latent_channels=64,
        quantizer_config={"type": "vq", "codebook_size": codebook_size, "dead_code_threshold": 20},
    )


def build_vqmodel() -> DiffusersVQTokenizer:
    return DiffusersVQTokenizer(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=VQMODEL_CHANNELS,
        layers_per_block=1,
        latent_channels=64,
        num_vq_embeddings=SETTINGS[VQMODEL_MATCH][1],
        vq_embed_dim=64,
        norm_num_groups=32,
        sample_size=IMAGE_SIZE,
    )


def train_and_evaluate(name: str, build, train, test, args: argparse.Namespace) -> dict:
    """Train a fresh tokenizer with vqgen's loop, then evaluate it on the test split."""
    torch.manual_seed(args.seed)
    tokenizer = build()
    output = RUNS_DIR / name
    shutil.rmtree(output, ignore_errors=True)
    options = TrainingOptions(
        output=str(output),
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        lr_schedule="cosine",
        warmup_steps=args.steps // 12,
        checkpoint_every=args.steps,
        eval_every=args.steps,
        log_every=max(1, min(50, args.steps)),
        progress=False,
        seed=args.seed,
    )
    print(f"[{name}] training {args.steps} steps ({count_parameters(tokenizer):,} parameters)", flush=True)
    started = time.perf_counter()
    tokenizer = train_tokenizer(tokenizer, train, options, eval_dataset=test)
    seconds = time.perf_counter() - started
    shutil.rmtree(output / "checkpoints", ignore_errors=True)
    metrics = evaluate_tokenizer(tokenizer, test, progress=False)
    metrics.pop("code_counts")
    metrics.update(
        {
            "name": name,
            "parameters": count_parameters(tokenizer),
            "train_seconds": round(seconds, 1),
            "seconds_per_step": round(seconds / args.steps, 3),
            "run_dir": str(output.relative_to(OUT_DIR.parent.parent)),
        }
    )
    print(
        f"[{name}] {seconds:.0f} s; test PSNR {metrics['psnr']:.2f} dB at {metrics['bits_per_pixel']:.4g} bpp, "
        f"usage {100 * metrics['usage']:.1f}%",
        flush=True,
    )
    return metrics


def score_pretrained(path: str, train_images, test_images, test, seed: int) -> dict:
    """An already trained tokenizer (``save_pretrained`` folder) on the test split, beside full-batch patch
    k-means fitted at the same code grid and codebook size (so the same bits per pixel)."""
    from vqgen.loading import load_tokenizer

    tokenizer = load_tokenizer(path).eval()
    metrics = evaluate_tokenizer(tokenizer, test, progress=False)
    metrics.pop("code_counts")
    kmeans = patch_kmeans(
        train_images, test_images, tuple(metrics["code_grid"]), metrics["codebook_size"], seed
    )
    metrics.update(
        tokenizer=str(path),
        kmeans_psnr=kmeans["psnr"],
        margin_over_kmeans_db=metrics["psnr"] - kmeans["psnr"],
        parameters=count_parameters(tokenizer),
    )
    print(
        f"[{path}] test PSNR {metrics['psnr']:.2f} dB at {metrics['bits_per_pixel']:.4g} bpp; patch k-means "
        f"{kmeans['psnr']:.2f} dB",
        flush=True,
    )
    return metrics


# --------------------------------------------------------------------------------------------------------
# (2) patch k-means


def to_patches(images: torch.Tensor, patch: int) -> np.ndarray:
    """``[N, 1, H, W]`` -> non-overlapping patches ``[N * (H/p) * (W/p), p * p]`` (raster order)."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c * patch * patch).numpy().astype(np.float32)


def from_patches(patches: np.ndarray, n: int, patch: int) -> torch.Tensor:
    g = IMAGE_SIZE // patch
    x = torch.from_numpy(patches).reshape(n, g, g, 1, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, 1, IMAGE_SIZE, IMAGE_SIZE)


def patch_kmeans(
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    grid: tuple[int, int],
    codebook_size: int,
    seed: int,
) -> dict:
    """Full-batch k-means (the baseline of the targets) and MiniBatchKMeans (for reference) on patches."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    patch = IMAGE_SIZE // grid[0]
    train_patches = to_patches(train_images, patch)
    test_patches = to_patches(test_images, patch)
    result = {
        "name": f"kmeans{codebook_size}",
        "patch": f"{patch}x{patch}",
        "codebook_size": codebook_size,
        "code_grid": list(grid),
        "bits_per_pixel": bits_per_pixel(grid, codebook_size),
        "train_patches": len(train_patches),
    }
    estimators = {
        "": KMeans(n_clusters=codebook_size, n_init=1, max_iter=300, random_state=seed),
        "minibatch_": MiniBatchKMeans(
            n_clusters=codebook_size, batch_size=max(4096, 4 * codebook_size), n_init=3, random_state=seed
        ),
    }
    for prefix, estimator in estimators.items():
        started = time.perf_counter()
        estimator.fit(train_patches)
        seconds = time.perf_counter() - started
        labels = estimator.predict(test_patches)
        centroids = estimator.cluster_centers_[labels].astype(np.float32)
        reconstruction = from_patches(centroids, len(test_images), patch).clamp(-1, 1)
        result.update(
            {
                f"{prefix}psnr": float(psnr(reconstruction, test_images).mean()),
                f"{prefix}ssim": float(ssim(reconstruction, test_images).mean()),
                f"{prefix}usage": np.unique(labels).size / codebook_size,
                f"{prefix}fit_seconds": round(seconds, 1),
                f"{prefix}iterations": int(getattr(estimator, "n_iter_", 0)),
            }
        )
    return result


# --------------------------------------------------------------------------------------------------------
# (3) JPEG


def jpeg_scan_bytes(data: bytes) -> int:
    """Bytes of entropy-coded data: from the end of the (single, baseline) SOS segment to the EOI marker.

    Walks the marker segments from SOI, so a 0xFFDA pair inside a table cannot be mistaken for SOS.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream (no SOI marker)")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"expected a marker at byte {position}")
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            start = position + 2 + length
            end = data.rindex(b"\xff\xd9")
            if data.count(b"\xff\xda", start) or end < start:
                raise ValueError("expected one baseline scan")
            return end - start
        position += 2 + length
    raise ValueError("no SOS marker")


def jpeg_sweep(test_images: torch.Tensor, qualities: list[int]) -> list[dict]:
    from PIL import Image

    original = ((test_images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    reference = torch.from_numpy(original).float().div(127.5).sub(1).unsqueeze(1)
    rows = []
    for quality in qualities:
        decoded, scan_bits, file_bytes = [], [], []
        for image in original:
            buffer = io.BytesIO()
            Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=quality, optimize=False)
            data = buffer.getvalue()
            scan_bits.append(8 * jpeg_scan_bytes(data))
            file_bytes.append(len(data))
            decoded.append(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
        reconstruction = torch.from_numpy(np.stack(decoded)).float().div(127.5).sub(1).unsqueeze(1)
        rows.append(
            {
                "name": f"jpeg-q{quality}",
                "quality": quality,
                "bits_per_pixel": float(np.mean(scan_bits)) / PIXELS,
                "file_bits_per_pixel": 8 * float(np.mean(file_bytes)) / PIXELS,
                "psnr": float(psnr(reconstruction, test_images).mean()),
                "ssim": float(ssim(reconstruction, test_images).mean()),
                # how far the uint8 rounding of the input alone is from the float original
                "psnr_uint8_input": float(psnr(reference, test_images).mean()),
            }
        )
    return rows


def interpolate_psnr(points: list[dict], bpp: float) -> float | None:
    """PSNR at ``bpp`` by linear interpolation along a rate sweep; None outside the swept rates."""
    ordered = sorted(points, key=lambda p: p["bits_per_pixel"])
    rates = [p["bits_per_pixel"] for p in ordered]
    if not rates or bpp < rates[0] or bpp > rates[-1]:
        return None
    return float(np.interp(bpp, rates, [p["psnr"] for p in ordered]))


# --------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600, help="training steps per learned model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--settings",
        default="vq256,vq16",
        help=f"comma-separated vqgen settings among {', '.join(SETTINGS)}",
    )
    parser.add_argument("--no-vqmodel", action="store_true", help="skip diffusers' VQModel")
    parser.add_argument(
        "--pretrained",
        action="append",
        default=[],
        metavar="DIR",
        help="also score an already trained image tokenizer (e.g. the shipped "
        "vqgen/pretrained/image-mnist/tokenizer) against patch k-means at its bits per pixel; repeatable",
    )
    parser.add_argument("--jpeg-qualities", default="1,5,10,20,40,70")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10 steps, the 256-code setting only, 3 qualities"
    )
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip() and s.strip() != "none"]
    qualities = [int(q) for q in args.jpeg_qualities.split(",")]
    if args.quick:
        args.steps = 10
        settings = [VQMODEL_MATCH]
        qualities = [5, 20, 70]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}, choose among {list(SETTINGS)}")
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    train = load_image_dataset("demo:mnist", "train")
    test = load_image_dataset("demo:mnist", "test")
    train_images, test_images = stack_pixels(train), stack_pixels(test)
    print(
        f"demo:mnist: {len(train)} train / {len(test)} test images; torch threads {torch.get_num_threads()}",
        flush=True,
    )

    jpeg = jpeg_sweep(test_images, qualities)
    vqgen_results, kmeans_results = {}, {}
    vqmodel = None
    # The diffusers VQModel trains right after the vqgen setting it is compared with.
    order = sorted(settings, key=lambda s: s != VQMODEL_MATCH)
    for setting in order:
        result = train_and_evaluate(setting, lambda s=setting: build_vqgen(s), train, test, args)
        vqgen_results[setting] = result
        kmeans = patch_kmeans(
            train_images, test_images, tuple(result["code_grid"]), result["codebook_size"], args.seed
        )
        kmeans_results[setting] = kmeans
        print(
            f"[{kmeans['name']}] test PSNR {kmeans['psnr']:.2f} dB ({kmeans['fit_seconds']:.0f} s fit, "
            f"{kmeans['iterations']} iterations); MiniBatchKMeans {kmeans['minibatch_psnr']:.2f} dB",
            flush=True,
        )
        if setting == VQMODEL_MATCH and not args.no_vqmodel:
            vqmodel = train_and_evaluate("diffusers-vqmodel", build_vqmodel, train, test, args)
    if vqmodel is None and not args.no_vqmodel:
        vqmodel = train_and_evaluate("diffusers-vqmodel", build_vqmodel, train, test, args)
    total = time.perf_counter() - started
    settings = sorted(settings, key=lambda s: SETTINGS[s][1])  # tables in order of rate

    # Table 1: every point on the rate-distortion plane.
    rows = []
    for setting in settings:
        r, k = vqgen_results[setting], kmeans_results[setting]
        grid = "x".join(map(str, r["code_grid"]))
        rows.append(
            [
                f"vqgen ImageTokenizer ({setting})",
                f"{grid}, {r['codebook_size']} codes",
                round(r["bits_per_pixel"], 4),
                round(r["psnr"], 2),
                round(r["ssim"], 3),
                f"{100 * r['usage']:.1f}%",
                f"{r['parameters'] / 1e6:.2f} M",
                f"{r['train_seconds']:.0f} s",
            ]
        )
        for prefix, label in (("", "patch k-means"), ("minibatch_", "patch MiniBatchKMeans (ref.)")):
            rows.append(
                [
                    f"{label} ({k['patch']})",
                    f"{grid}, {k['codebook_size']} codes",
                    round(k["bits_per_pixel"], 4),
                    round(k[f"{prefix}psnr"], 2),
                    round(k[f"{prefix}ssim"], 3),
                    f"{100 * k[f'{prefix}usage']:.1f}%",
                    "",
                    f"{k[f'{prefix}fit_seconds']:.0f} s",
                ]
            )
    if vqmodel is not None:
        grid = "x".join(map(str, vqmodel["code_grid"]))
        rows.append(
            [
                "diffusers VQModel",
                f"{grid}, {vqmodel['codebook_size']} codes",
                round(vqmodel["bits_per_pixel"], 4),
                round(vqmodel["psnr"], 2),
                round(vqmodel["ssim"], 3),
                f"{100 * vqmodel['usage']:.1f}%",
                f"{vqmodel['parameters'] / 1e6:.2f} M",
                f"{vqmodel['train_seconds']:.0f} s",
            ]
        )
    for j in jpeg:
        rows.append(
            [
                f"JPEG quality {j['quality']} (*)",
                "",
                round(j["bits_per_pixel"], 4),
                round(j["psnr"], 2),
                round(j["ssim"], 3),
                "",
                "",
                "",
            ]
        )
    title = f"Rate-distortion on demo:mnist test (500 digits), {args.steps} training steps, seed {args.seed}"
    columns = ["method", "codes", "bpp", "PSNR (dB)", "SSIM", "test usage", "params", "train time"]
    table = print_table(title, columns, rows)
    footnote = (
        "(*) JPEG bpp counts only the entropy-coded scan bytes (end of the SOS header to EOI): on 28x28 "
        "images the headers alone exceed the whole budget (full files: "
        + ", ".join(f"q{j['quality']} {j['file_bits_per_pixel']:.2f}" for j in jpeg)
        + " bpp). Code-based methods: fixed-length codes, bpp = 49 * log2(K) / 784."
    )
    print(footnote + "\n", flush=True)

    # Table 2: the targets, at equal bpp.
    target_rows = []
    rates = [j["bits_per_pixel"] for j in jpeg]
    for setting in settings:
        r, k = vqgen_results[setting], kmeans_results[setting]
        margin = r["psnr"] - k["psnr"]
        jpeg_psnr = interpolate_psnr(jpeg, r["bits_per_pixel"])
        row = [
            setting,
            round(r["bits_per_pixel"], 4),
            round(r["psnr"], 2),
            round(k["psnr"], 2),
            f"{margin:+.2f} ({'met' if margin >= 3 else 'missed'})",
            f"n/a (swept {min(rates):.2f}-{max(rates):.2f})" if jpeg_psnr is None else round(jpeg_psnr, 2),
            f"{100 * r['usage']:.1f}% ({'met' if r['usage'] >= 0.9 else 'missed'})",
        ]
        if vqmodel is not None and setting == VQMODEL_MATCH:
            gap = r["psnr"] - vqmodel["psnr"]
            row.append(f"{vqmodel['psnr']:.2f}: {gap:+.2f} ({'met' if gap > 0 else 'missed'})")
        else:
            row.append("")
        r["margin_over_kmeans_db"] = margin
        r["jpeg_psnr_at_equal_bpp"] = jpeg_psnr
        target_rows.append(row)
    targets = print_table(
        "Targets at equal bpp (vqgen - k-means >= 3 dB; vqgen > VQModel; test usage >= 90%)",
        [
            "setting",
            "bpp",
            "vqgen PSNR",
            "k-means PSNR",
            "vqgen - k-means",
            "JPEG PSNR (interp.)",
            "vqgen test usage",
            "VQModel PSNR: vqgen - VQModel",
        ],
        target_rows,
    )
    pretrained = [
        score_pretrained(path, train_images, test_images, test, args.seed) for path in args.pretrained
    ]
    if pretrained:
        print_table(
            "Trained tokenizers loaded as they are (not retrained here) vs patch k-means at equal bpp",
            ["tokenizer", "bpp", "vqgen PSNR", "k-means PSNR", "vqgen - k-means", "vqgen test usage"],
            [
                [
                    p["tokenizer"],
                    round(p["bits_per_pixel"], 4),
                    round(p["psnr"], 2),
                    round(p["kmeans_psnr"], 2),
                    f"{p['margin_over_kmeans_db']:+.2f} ({'met' if p['margin_over_kmeans_db'] >= 3 else 'missed'})",
                    f"{100 * p['usage']:.1f}%",
                ]
                for p in pretrained
            ],
        )
    print(f"total time {total / 60:.1f} min", flush=True)

    write_json(
        "rate_distortion",
        {
            "settings": {
                "seed": args.seed,
                "steps": args.steps,
                "batch_size": args.batch_size,
                "learning_rate": 1e-3,
                "lr_schedule": "cosine",
                "warmup_steps": args.steps // 12,
                "quick": args.quick,
                "vqgen_settings": settings,
                "vqmodel_block_out_channels": list(VQMODEL_CHANNELS),
                "jpeg_qualities": qualities,
            },
            "vqgen": vqgen_results,
            "patch_kmeans": kmeans_results,
            "diffusers_vqmodel": vqmodel,
            "pretrained": pretrained,
            "jpeg": jpeg,
            "total_seconds": round(total, 1),
            "table": table,
            "footnote": footnote,
            "targets_table": targets,
        },
    )


if __name__ == "__main__":
    main()
