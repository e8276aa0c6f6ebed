"""Reproduce the shipped default video pipeline (``vqgen/pretrained/video-moving-mnist``) with fixed seeds.

    python scripts/train_default_video.py --stage tokenizer --run runs/video-base
    python scripts/train_default_video.py --stage tokenizer --run runs/video-default \
        --init-from runs/video-base/tok --tokenizer-steps 2000 --tokenizer-stop-after 1500 --mixed-precision no
    python scripts/train_default_video.py --stage prior --run runs/video-default --mixed-precision no
    python scripts/train_default_video.py --stage export --run runs/video-default

(the shipped tokenizer: 1,200 steps from scratch, then 1,500 steps of a 2,000-step schedule from those
weights; the model card says how the shipped run deviated).

Every stage resumes from its last checkpoint when run again. Clips: one real digit bouncing in 32x32
frames, 9 frames at 8 fps (``demo:moving-mnist``), 8,000 training clips from the train digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from accelerate.utils import set_seed

from vqgen.data.video import moving_mnist
from vqgen.tokenizers.video import VideoTokenizer
from vqgen.training.common import TrainingOptions
from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer

FRAMES, SIZE, TRAIN_CLIPS, TEST_CLIPS = 9, 32, 8000, 1000
# The prior sees more clips than the tokenizer: new bounces of the same train digits cost nothing to make.
PRIOR_CLIPS = 10000


def tokenizer_stage(
    run: Path,
    max_steps: int = 1200,
    mixed_precision: str = "bf16",
    init_from=None,
    batch_size: int = 16,
    stop_after: int = 0,
) -> None:
    """Train the video tokenizer into ``run/tok``; ``init_from`` starts from a saved video tokenizer of this
    architecture (e.g. the shipped one) instead of fresh weights."""
    set_seed(0)
    tokenizer = VideoTokenizer(
        in_channels=1,
        base_channels=32,
        channel_multipliers=(1, 2, 2),
        num_res_blocks=1,
        latent_channels=64,
        temporal_factor=4,
        quantizer_config={"type": "vq", "codebook_size": 256, "dead_code_threshold": 20},
    )
    if init_from is not None:
        from vqgen.loading import load_tokenizer

        tokenizer.load_state_dict(load_tokenizer(init_from).float().state_dict())
    train = moving_mnist("train", num_clips=TRAIN_CLIPS, frames=FRAMES, size=SIZE, seed=0)
    test = moving_mnist("test", num_clips=TEST_CLIPS, frames=FRAMES, size=SIZE, seed=1)
    options = TrainingOptions(
        output=str(run / "tok"),
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=1e-3,
        lr_schedule="cosine",
        warmup_steps=100,
        mixed_precision=mixed_precision,
        checkpoint_every=100,
        eval_every=300,
        log_every=50,
        seed=0,
        resume=True,
        stop_after=stop_after,
    )
    train_tokenizer(tokenizer, train, options, TokenizerLossOptions(), eval_dataset=test)


def prior_stage(run: Path, mixed_precision: str = "bf16") -> None:
    from vqgen.data.shards import CodeShardDataset, encode_dataset
    from vqgen.loading import load_tokenizer
    from vqgen.priors.prior import CodePrior
    from vqgen.training.prior import train_prior

    tokenizer = load_tokenizer(run / "tok")
    for split, clips, seed in (("train", PRIOR_CLIPS, 2), ("test", TEST_CLIPS, 1)):
        if not (run / f"shards-{split}").exists():
            data = moving_mnist(split, num_clips=clips, frames=FRAMES, size=SIZE, seed=seed)
            encode_dataset(
                tokenizer, data, run / f"shards-{split}", batch_size=128, source=f"demo:moving-mnist/{split}"
            )
    train, val = CodeShardDataset(run / "shards-train"), CodeShardDataset(run / "shards-test")
    set_seed(0)
    prior = CodePrior(
        codebook_size=train.codebook_size,
        code_grid=list(train.code_grid),
        num_classes=train.num_classes,
        hidden_size=192,
        num_layers=6,
        num_heads=6,
    )
    options = TrainingOptions(
        output=str(run / "prior"),
        max_steps=2000,
        batch_size=32,
        learning_rate=6e-4,
        lr_schedule="cosine",
        warmup_steps=200,
        weight_decay=0.01,
        ema_decay=0.999,
        mixed_precision=mixed_precision,
        checkpoint_every=200,
        eval_every=500,
        log_every=50,
        seed=0,
        resume=True,
    )
    prior = train_prior(prior, train, options, val_dataset=val)


def export_stage(run: Path, output: Path) -> None:
    import shutil

    from vqgen.loading import load_tokenizer
    from vqgen.pipelines.video import VideoPipeline
    from vqgen.priors.prior import CodePrior

    tokenizer = load_tokenizer(run / "tok")
    prior = CodePrior.from_pretrained(str(run / "prior")).eval()
    shutil.rmtree(output, ignore_errors=True)
    provenance = {"script": "scripts/train_default_video.py", "data": "demo:moving-mnist", "dtype": "float16"}
    VideoPipeline(tokenizer.eval(), prior).to(torch.float16).save_pretrained(
        str(output), provenance=provenance
    )
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    print(f"wrote {output} ({size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["tokenizer", "prior", "export"], required=True)
    parser.add_argument("--run", default="runs/video-default")
    parser.add_argument("--output", default="vqgen/pretrained/video-moving-mnist")
    parser.add_argument("--tokenizer-steps", type=int, default=1200)
    parser.add_argument("--tokenizer-batch-size", type=int, default=16)
    parser.add_argument(
        "--mixed-precision",
        default="bf16",
        choices=["no", "bf16", "fp16"],
        help="tokenizer and prior stages (on CPUs without fast bf16, e.g. AVX2 only, 'no' is several times faster)",
    )
    parser.add_argument(
        "--tokenizer-stop-after",
        type=int,
        default=0,
        help="tokenizer stage: end at this step, the cosine schedule still spanning --tokenizer-steps",
    )
    parser.add_argument("--init-from", default=None, help="tokenizer stage: start from this video tokenizer")
    args = parser.parse_args()
    run = Path(args.run)
    torch.set_float32_matmul_precision("high")
    if args.stage == "tokenizer":
        tokenizer_stage(
            run,
            args.tokenizer_steps,
            args.mixed_precision,
            args.init_from,
            args.tokenizer_batch_size,
            args.tokenizer_stop_after,
        )
    elif args.stage == "prior":
        prior_stage(run, args.mixed_precision)
    else:
        export_stage(run, Path(args.output))


if __name__ == "__main__":
    main()
