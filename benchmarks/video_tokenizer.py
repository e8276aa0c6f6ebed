"""A causal video tokenizer against an image tokenizer applied frame by frame, on Moving-MNIST test clips.

Command (both tokenizers saved with ``save_pretrained``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/video_tokenizer.py \\
        --video-tokenizer runs/video-default/tok --image-tokenizer vqgen/pretrained/image-mnist/tokenizer

Data: ``vqgen.data.video.moving_mnist("test", num_clips=--clips, frames=--frames, size=--size, seed=--seed)``:
one real TEST-split digit bouncing in each clip (the clips the shipped video default is evaluated on use
seed 1, 9 frames, 32x32). Pixels in [-1, 1].

(1) ``VideoTokenizer``: ``decode(encode(clip))`` of whole clips ``[B, C, T, H, W]``.
(2) ``ImageTokenizer`` frame by frame: the ``T`` frames of each clip as ``T`` images ``[B * T, C, H, W]``.
(3) ``ImageTokenizer`` on keyframes: only frames ``0, k, 2k, ...`` (``k`` = the video tokenizer's temporal
factor) are tokenized, the frames between are linearly interpolated from the two decoded keyframes around
them. This spends ``1 + (T - 1) / k`` frames' worth of tokens, the video tokenizer's latent frame count, so it
is the equal-token baseline whenever the image tokenizer's frame grid equals the video tokenizer's.

Figures: PSNR (``vqgen.evaluation.metrics.psnr``, data range 2) of every frame, averaged over clips per
frame position and over all frames; tokens per clip (``prod(code_grid)``, residual levels counted) and
bits per clip (``tokens * log2(codebook_size)``) for both, and their ratio: the two tokenizers are compared
at EQUAL tokens per clip only when the ratio printed is 1 (the frame-by-frame image tokenizer spends
``T * h * w`` tokens where the video tokenizer spends ``(1 + (T - 1) / temporal_factor) * h' * w'``).
Encode and decode speed in frames per second (``clips * T / seconds``, one timed pass over all clips after
one untimed warm-up batch; the machine may be loaded, so read the ratio, not the absolute numbers).

Smoke run: ``--quick`` (16 clips).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from vqgen.data.video import moving_mnist  # noqa: E402
from vqgen.evaluation.video import frame_psnr  # noqa: E402
from vqgen.loading import load_tokenizer  # noqa: E402


def _frames_as_images(videos: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = videos.shape
    return videos.transpose(1, 2).reshape(b * t, c, h, w)


def _images_as_frames(images: torch.Tensor, t: int) -> torch.Tensor:
    bt, c, h, w = images.shape
    return images.reshape(bt // t, t, c, h, w).transpose(1, 2)


def _interpolated(keyframes: torch.Tensor, step: int) -> torch.Tensor:
    """Keyframes ``[B, C, K, H, W]`` at times ``0, step, ...`` -> ``[B, C, 1 + (K - 1) * step, H, W]``, linear."""
    if keyframes.shape[2] == 1 or step == 1:
        return keyframes
    weights = torch.arange(step, dtype=keyframes.dtype) / step  # [step]
    a, b = keyframes[:, :, :-1, None], keyframes[:, :, 1:, None]
    w = weights.view(1, 1, 1, step, 1, 1)
    between = (a * (1 - w) + b * w).flatten(2, 3)
    return torch.cat([between, keyframes[:, :, -1:]], dim=2)


@torch.no_grad()
def run_tokenizer(
    tokenizer, clips: torch.Tensor, batch_size: int, per_frame: bool, keyframe_step: int = 1
) -> dict:
    """Round trip every clip through ``tokenizer`` (frame by frame when ``per_frame``, then only every
    ``keyframe_step``-th frame, the rest interpolated); PSNR and speed (frames of the clip per second)."""
    n, c, t, h, w = clips.shape
    if (t - 1) % keyframe_step:
        raise SystemExit(f"{t} frames do not split into keyframes every {keyframe_step} frames")
    used = 1 + (t - 1) // keyframe_step  # frames that are tokenized

    def as_input(videos):
        return _frames_as_images(videos[:, :, ::keyframe_step]) if per_frame else videos

    shape = (c, h, w) if per_frame else (c, t, h, w)
    grid = tuple(tokenizer.code_grid(shape))
    tokens = math.prod(grid) * (used if per_frame else 1)
    warm = as_input(clips[:batch_size])
    tokenizer.decode(tokenizer.encode(warm))  # untimed warm-up
    encode_s = decode_s = 0.0
    psnrs = []
    for start in range(0, n, batch_size):
        x = as_input(clips[start : start + batch_size])
        begin = time.perf_counter()
        codes = tokenizer.encode(x)
        middle = time.perf_counter()
        y = tokenizer.decode(codes).float().clamp(-1, 1)
        decode_s += time.perf_counter() - middle
        encode_s += middle - begin
        if per_frame:
            y = _interpolated(_images_as_frames(y, used), keyframe_step)
        psnrs.append(frame_psnr(y, clips[start : start + batch_size]))
    per_clip_frame = torch.cat(psnrs)  # [n, t]
    return {
        "tokenizer_class": type(tokenizer).__name__,
        "code_grid": list(grid) if not per_frame else [used, *grid],
        "keyframe_step": keyframe_step,
        "codebook_size": int(tokenizer.codebook_size),
        "tokens_per_clip": int(tokens),
        "bits_per_clip": float(tokens * math.log2(tokenizer.codebook_size)),
        "psnr": float(per_clip_frame.mean()),
        "psnr_per_frame": [float(v) for v in per_clip_frame.mean(0)],
        "encode_frames_per_s": n * t / encode_s,
        "decode_frames_per_s": n * t / decode_s,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video-tokenizer", required=True, help="a saved VideoTokenizer folder")
    parser.add_argument("--image-tokenizer", required=True, help="a saved ImageTokenizer folder")
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="16 clips: checks that every path runs")
    args = parser.parse_args(argv)
    clips_count = 16 if args.quick else args.clips
    video_tok = load_tokenizer(args.video_tokenizer)
    image_tok = load_tokenizer(args.image_tokenizer)
    for tok, kind in ((video_tok, "VideoTokenizer"), (image_tok, "ImageTokenizer")):
        if type(tok).__name__ != kind:
            raise SystemExit(f"expected a {kind}, got a {type(tok).__name__}")
    data = moving_mnist("test", num_clips=clips_count, frames=args.frames, size=args.size, seed=args.seed)
    clips = torch.stack([data[i]["video"] for i in range(len(data))])
    torch.manual_seed(args.seed)
    video = run_tokenizer(video_tok, clips, args.batch_size, per_frame=False)
    image = run_tokenizer(image_tok, clips, args.batch_size, per_frame=True)
    step = video_tok.temporal_factor
    keys = run_tokenizer(image_tok, clips, args.batch_size, per_frame=True, keyframe_step=step)
    ratio = image["tokens_per_clip"] / video["tokens_per_clip"]
    key_ratio = keys["tokens_per_clip"] / video["tokens_per_clip"]
    rows = []
    named = (
        ("VideoTokenizer (whole clip)", video),
        ("ImageTokenizer (frame by frame)", image),
        (f"ImageTokenizer (keyframes every {step}, interpolated)", keys),
    )
    for name, r in named:
        rows.append(
            [
                name,
                "x".join(map(str, r["code_grid"])),
                r["tokens_per_clip"],
                r["tokens_per_clip"] / video["tokens_per_clip"],
                r["bits_per_clip"],
                r["psnr"],
                r["encode_frames_per_s"],
                r["decode_frames_per_s"],
            ]
        )
    columns = [
        "tokenizer",
        "codes",
        "tokens/clip",
        "x video tokens",
        "bits/clip",
        "PSNR dB",
        "encode fr/s",
        "decode fr/s",
    ]
    title = f"Moving-MNIST test clips: {clips_count} clips of {args.frames} frames, {args.size}x{args.size}"
    print_table(title, columns, rows)
    frames_rows = [
        [t, video["psnr_per_frame"][t], image["psnr_per_frame"][t], keys["psnr_per_frame"][t]]
        for t in range(args.frames)
    ]
    print_table(
        "PSNR per frame position (dB)",
        ["frame", "video tokenizer", "image, frame by frame", f"image, keyframes every {step}"],
        frames_rows,
    )
    for what, r, x in (("frame by frame", image, ratio), ("on keyframes", keys, key_ratio)):
        equal = "equal" if x == 1 else f"NOT equal: {x:.3g}x the video tokenizer's"
        print(
            f"tokens per clip, image tokenizer {what}: {r['tokens_per_clip']} vs {video['tokens_per_clip']} ({equal})",
            flush=True,
        )
    payload = {
        "data": {
            "clips": clips_count,
            "frames": args.frames,
            "size": args.size,
            "seed": args.seed,
            "split": "test",
        },
        "video_tokenizer": {"path": args.video_tokenizer, **video},
        "image_tokenizer": {"path": args.image_tokenizer, **image},
        "image_tokenizer_keyframes": {"path": args.image_tokenizer, **keys},
        "token_ratio_image_over_video": ratio,
        "token_ratio_keyframes_over_video": key_ratio,
    }
    write_json("video_tokenizer" + ("_quick" if args.quick else ""), payload)
    return payload


if __name__ == "__main__":
    main()
