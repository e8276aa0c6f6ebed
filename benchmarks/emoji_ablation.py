"""Ablation of the colour (emoji) tokenizer: each loss term's and quantizer option's effect at equal steps.

Command (every variant, 400 steps each, scored on the whole test split)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emoji_ablation.py --data /tmp/emoji64 --steps 400 --seed 0

``--variants l1,l1+msssim,8x8-codes`` runs some of them (names below; the table keeps this order). Smoke run:
add ``--quick`` (3 steps, tiny widths, 8 test images, every variant; written to ``emoji_ablation_quick.json``):
it checks that every path runs; its numbers mean nothing.

Data: an emoji build (``vqgen data build emoji --output /tmp/emoji64``). Every variant is a new
``ImageTokenizer`` trained from scratch on the TRAIN split by vqgen's own loop
(``vqgen.training.tokenizer.train_tokenizer``, through ``emoji_rate_distortion.train``) for the same
``--steps``, with the same seed (initial weights drawn after ``torch.manual_seed(--seed)``), data order and
schedule: the shipped recipe of ``scripts/train_default_emoji.sh`` (batch 16, AdamW 6e-4, cosine, warm-up
``min(200, steps // 2)`` steps, gradient clipping 1.0, EMA weights 0.999; ``--training-config`` takes a run's
``training_config.json`` instead) and its architecture (base 32, multipliers 1,2,2, one res block, latent 64,
1,024 codes, EMA codebook with k-means init, dead-code threshold 20, L1 + 0.2 (1 - MS-SSIM)). Each variant
changes one thing:

- ``l1``: L1 + quantizer loss only (no MS-SSIM term).
- ``l1+msssim``: the shipped recipe, unchanged (the reference row).
- ``l1+msssim+gan``: + a PatchGAN (hinge) with VQGAN's adaptive weight (``discriminator_weight`` 0.5, as in
  LlamaGen) and discriminator feature matching (weight 1.0), both from half the steps on.
- ``no-ema-codebook``: the codebook learned by gradient (the codebook term of the VQ loss) instead of by EMA
  (quantizer option ``ema``: ``--no-ema-codebook``); k-means init and dead-code restarts as in the recipe.
- ``+rotation-trick``: gradients through the quantizer by the rotation trick instead of straight-through.
- ``+simvq``: SimVQ codes (a learned linear map of a frozen random basis). SimVQ needs the gradient codebook,
  so this row is also without the EMA codebook, and k-means init and dead-code restarts do not apply to it.
- ``no-dead-code-restart``: dead-code threshold 0 (no restarts).
- ``8x8-codes``: one more downsampling level (multipliers 1,2,2,4): 8x8 codes of the same 1,024-entry
  codebook instead of 16x16 (80 raw bytes per image instead of 320; the fourth level's wider blocks add
  parameters).

Scores, on the TEST split (``--max-images``: that many, spread evenly over the groups), as
``emoji_rate_distortion.score_tokenizer`` gives them: ``decode(encode(x))`` rounded to uint8, PSNR (data
range 2), SSIM and MS-SSIM per image then averaged; codebook usage = share of the 1,024 codes that some test
image uses; perplexity = exp of the entropy of the codes' frequencies over every test code (1,024 at most);
raw bytes = ``prod(code_grid) * log2(K) / 8`` per image; seconds = training wall time (the machine may be
loaded: timings are reported, never compared with a target).

Output: one Markdown table on stdout and ``benchmarks/out/emoji_ablation.json``; the runs' logs under
``benchmarks/out/emoji_ablation_runs/<variant>/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402
from emoji_common import DEFAULT_DATA, load_split  # noqa: E402
from emoji_rate_distortion import fmt, score_tokenizer, scratch_tokenizer, train, training_setup  # noqa: E402

from vqgen.training.tokenizer import TokenizerLossOptions  # noqa: E402

NAME = "emoji_ablation"
#: scripts/train_default_emoji.sh's training options and losses, shaped like a run's training_config.json.
RECIPE = (
    "scripts/train_default_emoji.sh",
    {
        "max_steps": 1500,
        "batch_size": 16,
        "learning_rate": 6e-4,
        "lr_schedule": "cosine",
        "warmup_steps": 200,
        "max_grad_norm": 1.0,
        "ema_decay": 0.999,
        "loss": {"ms_ssim_weight": 0.2},
    },
)
#: GAN weights of the ``l1+msssim+gan`` row (adaptive weight as in LlamaGen; feature matching as in EnCodec).
GAN_WEIGHT, FEATURE_MATCHING_WEIGHT = 0.5, 1.0


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row: what it changes from the recipe in ``TokenizerSettings`` and in ``TokenizerLossOptions``."""

    description: str
    settings: dict = dataclasses.field(default_factory=dict)
    loss: dict = dataclasses.field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    "l1": Variant("L1 + quantizer loss only", loss={"ms_ssim_weight": 0.0}),
    "l1+msssim": Variant("the shipped recipe: L1 + 0.2 (1 - MS-SSIM) + quantizer loss"),
    "l1+msssim+gan": Variant(
        "+ PatchGAN, adaptive weight, feature matching, from half the steps",
        loss={"discriminator_weight": GAN_WEIGHT, "feature_matching_weight": FEATURE_MATCHING_WEIGHT},
    ),
    "no-ema-codebook": Variant("codebook learned by gradient, not EMA", settings={"ema_codebook": False}),
    "+rotation-trick": Variant(
        "rotation trick instead of straight-through", settings={"rotation_trick": True}
    ),
    "+simvq": Variant("SimVQ (needs the gradient codebook)", settings={"simvq": True, "ema_codebook": False}),
    "no-dead-code-restart": Variant("dead-code threshold 0", settings={"dead_code_threshold": 0}),
    "8x8-codes": Variant("multipliers 1,2,2,4: 8x8 codes", settings={"channel_multipliers": [1, 2, 2, 4]}),
}


def variant_loss(variant: Variant, recipe: TokenizerLossOptions, steps: int) -> TokenizerLossOptions:
    """The recipe's losses with the variant's changes; a discriminator starts at half the steps."""
    loss = dataclasses.replace(recipe, **variant.loss)
    if loss.discriminator_weight > 0 or loss.feature_matching_weight > 0:
        loss = dataclasses.replace(loss, discriminator_start=steps // 2)
    return loss


def run_variant(name: str, args, train_split, test, options: dict, recipe: TokenizerLossOptions) -> dict:
    """Train one variant from scratch and score it on ``test``: the row of the table, as a dict."""
    variant = VARIANTS[name]
    loss = variant_loss(variant, recipe, options["max_steps"])
    tokenizer = scratch_tokenizer(args, **variant.settings)
    trained, info = train(name, tokenizer, train_split, test, options, loss, runs=f"{NAME}_runs")
    row = score_tokenizer(name, trained, test, args.device)
    return {
        **row,
        **info,
        "description": variant.description,
        "steps": options["max_steps"],
        "settings": variant.settings,
        "loss": loss.__dict__,
    }


def print_rows(rows: list[dict], title: str) -> str:
    columns = ["variant", "steps", "PSNR dB", "SSIM", "MS-SSIM", "usage", "perplexity", "raw bytes",
               "seconds"]  # fmt: skip
    table = [
        [
            r["name"],
            r["steps"],
            fmt(r["psnr"]),
            fmt(r["ssim"], 4),
            fmt(r["ms_ssim"], 4),
            f"{r['test_usage']:.1%}",
            fmt(r["test_perplexity"], 1),
            f"{r['bytes']:.0f}",
            f"{r['train_seconds']:.0f}",
        ]
        for r in rows
    ]
    return print_table(title, columns, table)


def parse_variants(text: str) -> list[str]:
    """``"l1,8x8-codes"`` -> those names in the table's order; an unknown name is a SystemExit."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or not names:
        raise SystemExit(f"--variants: unknown {unknown or text!r}; known: {', '.join(VARIANTS)}")
    return [n for n in VARIANTS if n in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="the emoji build (vqgen data build emoji)")
    parser.add_argument("--steps", type=int, default=400, help="training steps of every variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default all)")
    parser.add_argument("--max-images", type=int, help="test images scored, spread evenly (default all)")
    parser.add_argument(
        "--training-config", help="a run's training_config.json instead of the shipped recipe"
    )
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the recipe's 16)")
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--latent-channels", type=int, default=64)
    parser.add_argument("--codebook-size", type=int, default=1024)
    parser.add_argument(
        "--device", default="auto", help="scoring device: auto (GPU when present), cpu or cuda"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, 3 steps, 8 test images")
    # training_setup also looks for a training config beside a saved tokenizer or pipeline: none here.
    parser.set_defaults(tokenizer=None, pipeline=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size = 3, args.batch_size or 8
        args.max_images = min(args.max_images or 8, 8)
        args.base_channels, args.latent_channels, args.codebook_size = 8, 16, 32
    args.variants = parse_variants(args.variants)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(auto if args.device == "auto" else args.device)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    train_split, test = load_split(args.data, "train"), load_split(args.data, "test", args.max_images)
    size = test.images.shape[-1]
    print(f"{args.data}: {len(train_split)} train / {len(test)} test images scored, {size}x{size}; "
          f"torch threads {torch.get_num_threads()}, variants {', '.join(args.variants)}", flush=True)  # fmt: skip
    options, recipe, steps_info = training_setup(args, RECIPE)
    steps_info["recipe_steps"] = steps_info.pop("tokenizer_steps")  # the recipe's own run, not these
    rows = [run_variant(name, args, train_split, test, options, recipe) for name in args.variants]
    title = f"Emoji tokenizer ablation, {options['max_steps']} steps each, test split ({len(test)} images)"
    results = {
        "data": str(args.data),
        "test_images": test.indices,
        "training": {**steps_info, "options": options, "loss": recipe.__dict__},
        "variants": {row["name"]: row for row in rows},
        "total_seconds": round(time.perf_counter() - started, 1),
        "tables": [print_rows(rows, title)],
    }
    write_json(NAME + ("_quick" if args.quick else ""), results)
    return results


if __name__ == "__main__":
    main()
