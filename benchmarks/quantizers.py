"""vqgen ``VectorQuantizer`` against vector-quantize-pytorch's ``VectorQuantize``, side by side in one process.

Command (the figures in RESULTS.md)::

    .venv/bin/python benchmarks/quantizers.py --seed 0 --steps 300

(about 4.5 minutes on the loaded 2-core machine; the default ``--steps 150`` halves the fit.)

Smoke run: ``.venv/bin/python benchmarks/quantizers.py --quick``. Needs the ``bench`` extra
(``pip install -e '.[bench]'`` or ``pip install vector-quantize-pytorch``).

Matched settings: dim 64, 1024 codes, EMA decay 0.99, k-means init (10 Lloyd iterations) on the first
training batch, commitment weight 0.25, plain straight-through gradient (the peer's default rotation trick is
turned off), Euclidean distance, fp32. Both take the same channels-first tensor ``[B, 64, H, W]`` (the peer
with ``accept_image_fmap=True``). Dead-code handling cannot be matched exactly: vqgen re-seeds a code unused
for ``--dead-code-steps`` training steps, the peer one whose EMA cluster size falls below
``--dead-code-ema``; both re-seed from encoder outputs of the current batch.

(a) speed: median seconds of one training-mode forward + backward (EMA update and dead-code check included),
and of one eval-mode forward (encoding), on the same input; ratio = vqgen / peer (< 1: vqgen faster).

(b) fit (batches of ``--fit-batch`` maps): the same small autoencoder (linear encoder 64->64, quantizer,
linear decoder 64->64, identical initial weights) trained with Adam for ``--steps`` steps on the same
batches drawn from a fixed clustered data set (4096 Gaussian clusters with Zipf-distributed weights, so rare clusters tempt codes to die). On a
held-out set: codebook usage (fraction of the 1024 codes used), perplexity, quantization MSE
``||z - q(z)||^2`` relative to ``Var(z)`` (a scale-free figure; the encoder may shrink ``z``), and
reconstruction MSE of the decoder output against the data. Ratios are vqgen / peer.

Times are never asserted; the machine may be loaded, so compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median_time, print_table, write_json  # noqa: E402

from vqgen.tokenizers.quantizers import VectorQuantizer  # noqa: E402

DIM = 64
CODEBOOK_SIZE = 1024
DECAY = 0.99
BETA = 0.25


def build_pair(dead_code_steps: int, dead_code_ema: float, seed: int) -> tuple[nn.Module, nn.Module]:
    """(vqgen quantizer, peer quantizer) with matched settings."""
    from vector_quantize_pytorch import VectorQuantize

    torch.manual_seed(seed)
    ours = VectorQuantizer(
        dim=DIM,
        codebook_size=CODEBOOK_SIZE,
        beta=BETA,
        ema=True,
        decay=DECAY,
        kmeans_init=True,
        kmeans_iters=10,
        dead_code_threshold=dead_code_steps,
    )
    torch.manual_seed(seed)
    theirs = VectorQuantize(
        dim=DIM,
        codebook_size=CODEBOOK_SIZE,
        decay=DECAY,
        kmeans_init=True,
        kmeans_iters=10,
        threshold_ema_dead_code=dead_code_ema,
        commitment_weight=BETA,
        rotation_trick=False,
        accept_image_fmap=True,
    )
    return ours, theirs


def quantize(module: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One call convention for both: ``z [B, D, H, W]`` -> (quantized ``[B, D, H, W]``, codes, loss)."""
    out = module(z)
    if isinstance(out, tuple):
        quantized, codes, loss = out[:3]
        return quantized, codes, loss.sum()
    return out.quantized, out.codes, out.loss


# ----------------------------------------------------------------------------- (a) speed


def time_pair(args: argparse.Namespace, generator: torch.Generator) -> list[dict]:
    batch, side = args.batch, args.side
    data = clustered_data(batch * side * side, generator, args.clusters)
    z0 = data.reshape(batch, side, side, DIM).permute(0, 3, 1, 2).contiguous()
    results = []
    ours, theirs = build_pair(args.dead_code_steps, args.dead_code_ema, args.seed)
    for name, module in (("vqgen", ours), ("vector-quantize-pytorch", theirs)):
        module.train()
        with torch.no_grad():
            quantize(module, z0)  # k-means init happens here, outside the timing

        def train_step(module: nn.Module = module) -> None:
            z = z0.clone().requires_grad_(True)
            quantized, _, loss = quantize(module, z)
            (loss + quantized.square().mean()).backward()

        def encode(module: nn.Module = module) -> None:
            with torch.no_grad():
                quantize(module, z0)

        train_s, train_all = median_time(train_step, args.repeats, warmup=2)
        module.eval()
        eval_s, eval_all = median_time(encode, args.repeats, warmup=2)
        results.append(
            {
                "impl": name,
                "train_fwd_bwd_s": train_s,
                "eval_fwd_s": eval_s,
                "train_times": train_all,
                "eval_times": eval_all,
            }
        )
    return results


# ----------------------------------------------------------------------------- (b) fit


def clustered_data(n: int, generator: torch.Generator, clusters: int) -> torch.Tensor:
    """``n`` points ``[n, 64]`` from a fixed mixture: ``clusters`` Gaussian centres (seeded by a fixed
    generator so train and held-out sets share them), Zipf(1) weights, isotropic noise 0.25."""
    fixed = torch.Generator().manual_seed(1234)
    centres = torch.randn(clusters, DIM, generator=fixed)
    weights = 1.0 / torch.arange(1, clusters + 1, dtype=torch.float64)
    which = torch.multinomial(weights, n, replacement=True, generator=generator)
    return centres[which] + 0.25 * torch.randn(n, DIM, generator=generator)


class AutoEncoder(nn.Module):
    """Linear encoder -> quantizer -> linear decoder on ``[B, 64, H, W]`` feature maps."""

    def __init__(self, quantizer: nn.Module):
        super().__init__()
        self.encoder = nn.Conv2d(DIM, DIM, 1)
        self.quantizer = quantizer
        self.decoder = nn.Conv2d(DIM, DIM, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        quantized, codes, loss = quantize(self.quantizer, z)
        return z, quantized, codes, loss


def as_fmap(points: torch.Tensor, side: int) -> torch.Tensor:
    """``[B * side * side, 64]`` -> ``[B, 64, side, side]``."""
    return points.reshape(-1, side, side, DIM).permute(0, 3, 1, 2).contiguous()


def fit_pair(args: argparse.Namespace) -> list[dict]:
    side, batch = args.side, args.fit_batch
    per_batch = batch * side * side
    data_gen = torch.Generator().manual_seed(args.seed)
    train = clustered_data(args.train_points, data_gen, args.clusters)
    held_out = as_fmap(clustered_data(per_batch, data_gen, args.clusters), side)
    order_gen = torch.Generator().manual_seed(args.seed + 1)
    batches = [torch.randint(0, train.shape[0], (per_batch,), generator=order_gen) for _ in range(args.steps)]

    ours, theirs = build_pair(args.dead_code_steps, args.dead_code_ema, args.seed)
    torch.manual_seed(args.seed)
    template = AutoEncoder(nn.Identity())
    results = []
    for name, quantizer in (("vqgen", ours), ("vector-quantize-pytorch", theirs)):
        model = copy.deepcopy(template)
        model.quantizer = quantizer
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        torch.manual_seed(args.seed)  # both sides see the same global RNG stream (dead-code draws)
        start = time.perf_counter()
        for idx in batches:
            x = as_fmap(train[idx], side)
            _, quantized, _, vq_loss = model(x)
            loss = F.mse_loss(model.decoder(quantized), x) + vq_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            z, quantized, codes, _ = model(held_out)
            counts = torch.bincount(codes.reshape(-1), minlength=CODEBOOK_SIZE).double()
            probs = counts / counts.sum()
            perplexity = float(torch.exp(-(probs * probs.clamp_min(1e-12).log()).sum()))
            quant_mse = float(F.mse_loss(quantized, z))
            results.append(
                {
                    "impl": name,
                    "fit_s": seconds,
                    "usage": float((counts > 0).double().mean()),
                    "perplexity": perplexity,
                    "quant_mse": quant_mse,
                    "quant_mse_rel": quant_mse / float(z.var()),
                    "recon_mse": float(F.mse_loss(model.decoder(quantized), held_out)),
                }
            )
    return results


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32, help="feature maps per batch")
    parser.add_argument("--side", type=int, default=16, help="feature maps are side x side positions")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per measurement (median)")
    parser.add_argument("--steps", type=int, default=150, help="training steps of the fit")
    parser.add_argument("--fit-batch", type=int, default=8, help="feature maps per batch in the fit")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clusters", type=int, default=4096)
    parser.add_argument("--train-points", type=int, default=200_000)
    parser.add_argument(
        "--dead-code-steps", type=int, default=50, help="vqgen: steps unused before re-seeding"
    )
    parser.add_argument("--dead-code-ema", type=float, default=2.0, help="peer: EMA cluster size threshold")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.side, args.repeats = 8, 8, 3
        args.fit_batch, args.steps, args.train_points = 8, 20, 20_000
    torch.manual_seed(args.seed)
    print(f"environment: {environment()}", flush=True)

    speed = time_pair(args, torch.Generator().manual_seed(args.seed))
    ours, theirs = speed
    shape = f"[{args.batch}, {DIM}, {args.side}, {args.side}]"
    speed_table = print_table(
        f"(a) time per call, input {shape}, {CODEBOOK_SIZE} codes (median of {args.repeats}, ms)",
        ["measurement", "vqgen", "vector-quantize-pytorch", "ratio vqgen/peer"],
        [
            [
                "train forward+backward",
                1e3 * ours["train_fwd_bwd_s"],
                1e3 * theirs["train_fwd_bwd_s"],
                ratio(ours["train_fwd_bwd_s"], theirs["train_fwd_bwd_s"]),
            ],
            [
                "eval forward (encode)",
                1e3 * ours["eval_fwd_s"],
                1e3 * theirs["eval_fwd_s"],
                ratio(ours["eval_fwd_s"], theirs["eval_fwd_s"]),
            ],
        ],
    )

    fit = fit_pair(args)
    ours, theirs = fit
    shape = f"[{args.fit_batch}, {DIM}, {args.side}, {args.side}]"
    rows = []
    for key, label in (
        ("usage", "codebook usage, held-out (higher better)"),
        ("perplexity", "code perplexity, held-out (higher better)"),
        ("quant_mse_rel", "quantization MSE / Var(z) (lower better)"),
        ("quant_mse", "quantization MSE (lower better)"),
        ("recon_mse", "reconstruction MSE (lower better)"),
        ("fit_s", f"wall time of {args.steps} steps, s (lower better)"),
    ):
        rows.append([label, ours[key], theirs[key], ratio(ours[key], theirs[key])])
    fit_table = print_table(
        f"(b) fit: {args.steps} Adam steps, batch {shape} from {args.clusters} Zipf-weighted clusters",
        ["measurement", "vqgen", "vector-quantize-pytorch", "ratio vqgen/peer"],
        rows,
    )
    write_json(
        "quantizers",
        {"args": vars(args), "speed": speed, "fit": fit, "tables": [speed_table, fit_table]},
    )


if __name__ == "__main__":
    main()
