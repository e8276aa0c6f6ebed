"""Classifier-judged quality of a digit pipeline's samples: images, videos or spoken digits.

Figures: conditional accuracy, class balance, Fréchet distance (images), temporal consistency (videos).

Command (the image figures in RESULTS.md; the shipped default image pipeline, 1,000 samples per setting)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_quality.py --seed 0

Smoke run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_quality.py --pipeline /path/to/pipeline --quick``
(100 images, 20 video clips or 50 audio clips per setting; written to ``sample_quality[_video|_audio]_quick.json``
so a smoke run never overwrites a full run's figures). Other pipelines: ``--pipeline FOLDER`` (default: the
shipped pipeline of ``--modality``, else ``image``); guidance: ``--guidance-scale 3.0`` or
``--guidance-scales 1 3 5``. ``--modality image|video|audio`` defaults to the pipeline's class (``ImagePipeline``,
``VideoPipeline``, ``AudioPipeline``); ``--num-samples`` defaults to 1,000 images, 200 clips or 500 audio clips.

Images (``--modality image``)
-----------------------------

1. Judge: a small CNN (``benchmarks/digit_classifier.py``: three conv blocks + a 128-wide feature layer) trained
   on the real train split of the bundled demo digits (``mnist_split("train")``, 4,500 images) with random
   rotations (±12°), shifts (±2.5 px) and scaling (±10%), 12 epochs, seed ``--classifier-seed``. Its accuracy
   on the real test split (``mnist_split("test")``, 500 images) is reported. The weights are cached in
   ``benchmarks/out/digit_classifier.safetensors`` keyed by a hash of the training settings (training takes
   about 45 s with one thread; seed 0 reached 99.2% on the real test split).
2. Samples: ``load_pipeline(--pipeline)`` then, for each guidance scale g (1 is always included),
   ``pipe(num_samples=N, class_labels=[0, 1, ..., 9, 0, 1, ...], guidance_scale=g,
   generator=torch.Generator().manual_seed(--seed), output_type="pt", batch_size=--batch-size)``, and once
   unconditionally (``class_labels=None``, g = 1) with the same seed. Temperature 1, no top-k/top-p unless given.
3. Figures: conditional accuracy (classifier prediction == requested label); for unconditional samples the share
   of each predicted class (all ten present? largest share <= 20%?); the Fréchet distance between the real test
   split and each sample set in the classifier's penultimate-layer (128-d) feature space, beside the same distance
   between a random subset of the real train split of the same size N (seeded by ``--seed``) and the real test
   split: the floor that a perfect generator would reach at this sample size. Generation time (the pipeline call
   only) and images per second, with the torch thread count; times are never asserted. A full run draws
   3 x 1,000 samples: about 1-2 minutes for a 4-6 layer, 192-256 wide prior on 7x7 codes with one thread.

Targets (from the issue): classifier test accuracy >= 97%, conditional accuracy >= 90% at the default guidance
(3.0), all ten classes present unconditionally with none over 20%. They are reported as met / not met, never
asserted. Output: a table on stdout and ``benchmarks/out/sample_quality.json``.

Videos (``--modality video``; ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_quality.py --modality video``)
-------------------------------------------------------------------------------------------------------------------

1. Judge: the same digit classifier, on every frame. Frames (one channel, at least 28x28; Moving-MNIST's are
   32x32 with the digit anywhere) are cropped to the 28x28 window centred on the frame's intensity centroid,
   clamped to the frame (``benchmarks/video_frames.py``). The crop is checked on ``--real-clips`` (1,000) real
   clips ``moving_mnist("test", frames=T, size=H, seed=--real-seed)`` (seed 1: the held-out clips of
   ``scripts/train_default_video.py``, digits the classifier never saw): their frame accuracy is the judge's
   ceiling for generated frames.
2. Samples, for each guidance scale g (``--guidance-scale`` and any ``--guidance-scales``; 1 is not added), with
   ``generator=torch.Generator().manual_seed(--seed)``: (a) from scratch, ``pipe(num_samples=N,
   class_labels=[0, 1, ..., 9, 0, ...], guidance_scale=g, output_type="pt")``, all ``T`` frames judged;
   (b) frame prediction, ``prompt_frames`` = the first ``1 + temporal_factor`` frames (5 at factor 4; 1 when the
   clip holds no more than that) of the first N real clips above, labels = their digits; only the generated
   frames after the prompt are judged.
3. Figures: accuracy over the judged frames; temporal consistency = the share of judged frames whose predicted
   class equals their clip's majority predicted class; the clips' majority-class accuracy; per-class accuracy;
   generation seconds per clip (the pipeline call only; never asserted). The same figures on the real clips (all
   frames, and the frames after the prompt) are the ceiling. Target (reported, not asserted): accuracy >= 85%
   from scratch at the default guidance 3. Output: tables and ``benchmarks/out/sample_quality_video.json``.

Audio (``--modality audio``; ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_quality.py --modality audio``)
-----------------------------------------------------------------------------------------------------------------

1. Judge: the spoken-digit classifier (``benchmarks/audio_classifier.py``, ``load_or_train_classifier()`` on
   ``demo:spoken-digits``; MFCCs + 1-D CNN, 16 kHz, 1-s clips); its accuracy on the real unseen-voice test split
   (640 clips) is the ceiling. Clips at other rates are resampled to 16 kHz by the classifier; clips shorter than
   1 s are padded with silence on both sides to 1 s (the training clips are 1 s with the word centred).
2. Samples, for each guidance scale g as for videos: ``pipe(num_samples=N, class_labels=[0, 1, ..., 9, 0, ...],
   guidance_scale=g, generator=torch.Generator().manual_seed(--seed), output_type="pt")``, full clip length.
3. Figures: accuracy, per-class accuracy, the share of each predicted class, generation seconds per second of
   audio (never asserted), and the prior's layout (``flatten`` / ``delay`` / ...). Target (reported, not
   asserted): accuracy >= 80% at the default guidance 3. Output: tables and
   ``benchmarks/out/sample_quality_audio.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT_DIR, environment, print_table, write_json  # noqa: E402
from digit_classifier import (  # noqa: E402
    ClassifierSettings,
    accuracy,
    features_and_predictions,
    load_or_train,
    to_model_input,
)
from video_frames import centroid_crop, clip_figures, frames_of  # noqa: E402

from vqgen.data.demo import mnist_split  # noqa: E402

NUM_CLASSES = 10
CLASSIFIER_PATH = OUT_DIR / "digit_classifier.safetensors"
TARGET_CLASSIFIER_ACCURACY = 0.97
TARGET_CONDITIONAL_ACCURACY = 0.90
TARGET_MAX_CLASS_SHARE = 0.20
TARGET_VIDEO_ACCURACY = 0.85
TARGET_AUDIO_ACCURACY = 0.80
MODALITY_OF_PIPELINE = {"ImagePipeline": "image", "VideoPipeline": "video", "AudioPipeline": "audio"}
DEFAULT_SAMPLES = {"image": 1000, "video": 200, "audio": 500}
QUICK_SAMPLES = {"image": 100, "video": 20, "audio": 50}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features ``a [N, D]`` and ``b [M, D]``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

    The covariances are singular here (some ReLU features never fire; ``N <= D`` in a quick run), so scipy's
    ``LinAlgWarning`` is silenced: on these features the result agrees to 1e-6 with an eigenvalue-based
    ``tr((S_a^(1/2) S_b S_a^(1/2))^(1/2))``.
    """
    from scipy import linalg

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma_a @ sigma_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma_a.shape[0]) * 1e-6
            covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))


def class_shares(predictions: torch.Tensor) -> list[float]:
    """Share of each predicted class 0..9 among ``predictions [N]``."""
    counts = torch.bincount(predictions, minlength=NUM_CLASSES).double()
    return (counts / counts.sum()).tolist()


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Accuracy for each requested class 0..9."""
    return [float((predictions[labels == c] == c).double().mean()) for c in range(NUM_CLASSES)]


def generate(pipe, n: int, labels, guidance: float, args) -> tuple[torch.Tensor, float]:
    """Draw ``n`` images ``[n, 1, 28, 28]`` in [-1, 1]; returns them and the seconds the pipeline call took."""
    start = time.perf_counter()
    out = pipe(
        num_samples=n,
        class_labels=labels,
        guidance_scale=guidance,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=torch.Generator().manual_seed(args.seed),
        output_type="pt",
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - start
    images = out.images
    if tuple(images.shape[1:]) != (1, 28, 28):
        raise SystemExit(
            f"the pipeline draws images of shape {tuple(images.shape[1:])}, this benchmark needs (1, 28, 28)"
        )
    return images.float(), seconds


def sampling_options(args) -> dict:
    """The pipeline-call arguments every video and audio setting shares (a fresh seeded generator each call)."""
    return {
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "generator": torch.Generator().manual_seed(args.seed),
        "output_type": "pt",
        "batch_size": args.batch_size,
    }


def load_digit_judge(args, log) -> tuple:
    """The digit classifier (cached or trained), its settings and info, and its accuracy on the real test split."""
    train_u8, train_labels_np = mnist_split("train")
    test_u8, test_labels_np = mnist_split("test")
    settings = ClassifierSettings(seed=args.classifier_seed)
    classifier, info = load_or_train(
        CLASSIFIER_PATH, settings, to_model_input(train_u8), torch.from_numpy(train_labels_np.copy()), log=log
    )
    test_accuracy = accuracy(classifier, to_model_input(test_u8), torch.from_numpy(test_labels_np.copy()))
    log(f"digit classifier accuracy on the real test split: {test_accuracy:.2%}")
    return classifier, settings, info, test_accuracy


def judge_video_frames(classifier, videos: torch.Tensor) -> torch.Tensor:
    """Predicted digit ``[N, T]`` of every frame of ``videos [N, 1, T, H, W]`` (centroid-cropped to 28x28)."""
    n, _, t = videos.shape[:3]
    _, preds = features_and_predictions(classifier, centroid_crop(frames_of(videos.float())))
    return preds.view(n, t)


def _percent(value) -> str:
    return "-" if value is None or value != value else f"{value:.1%}"


def run_video(pipe, args, log) -> None:
    """Frame accuracy and temporal consistency of a ``VideoPipeline``'s clips, from scratch and as frame
    prediction from real Moving-MNIST test clips (see the module docstring)."""
    from vqgen.data.video import MOVING_MNIST_SIZES, moving_mnist

    channels, frames, height, width = pipe.sample_shape
    if channels != 1 or height != width or height not in MOVING_MNIST_SIZES:
        raise SystemExit(
            f"the pipeline draws clips of {channels} channel(s) and {height}x{width} frames; the video benchmark "
            f"needs one channel and square frames of {' or '.join(map(str, MOVING_MNIST_SIZES))} (Moving-MNIST)"
        )
    n = args.num_samples
    guidance_scales = sorted({args.guidance_scale, *(args.guidance_scales or [])})
    conditional = int(getattr(pipe, "num_classes", 0) or 0) == NUM_CLASSES
    if not conditional:
        log(
            f"the pipeline has {pipe.num_classes} classes, not {NUM_CLASSES}: unconditional clips, guidance 1"
        )
        guidance_scales = [1.0]
    factor = pipe.temporal_factor
    latent_steps = (frames - 1) // factor  # latent frames after the first
    prompt_length = 1 + min(1, latent_steps - 1) * factor if latent_steps >= 1 else 0

    # 1. The judge and its ceiling on real clips.
    classifier, settings, classifier_info, classifier_accuracy = load_digit_judge(args, log)
    real_count = max(args.real_clips, n)
    log(
        f"making {real_count} real moving-mnist test clips ({frames} frames of {height}x{width}, seed {args.real_seed}) ..."
    )
    real = moving_mnist("test", num_clips=real_count, frames=frames, size=height, seed=args.real_seed)
    real_videos = real.videos.permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # [M, 1, T, H, W]
    real_labels = torch.tensor(real.labels, dtype=torch.long)
    real_preds = judge_video_frames(classifier, real_videos[: args.real_clips])
    ceiling = clip_figures(real_preds, real_labels[: args.real_clips])
    ceiling_after_prompt = (
        clip_figures(real_preds[:, prompt_length:], real_labels[: args.real_clips]) if prompt_length else None
    )
    log(
        f"real-clip frame accuracy (the judge's ceiling): {ceiling['accuracy']:.2%}, "
        f"temporal consistency {ceiling['temporal_consistency']:.2%}"
    )

    # 2. Samples.
    labels = torch.arange(n) % NUM_CLASSES if conditional else None
    prompt_labels = real_labels[:n] if conditional else None
    results: list[dict] = []
    for guidance in guidance_scales:
        log(f"drawing {n} clips from scratch at guidance {guidance:g} ...")
        start = time.perf_counter()
        videos = pipe(
            num_samples=n, class_labels=labels, guidance_scale=guidance, **sampling_options(args)
        ).videos
        seconds = time.perf_counter() - start
        entry = {"kind": "from scratch", "guidance_scale": guidance, "num_clips": n, "prompt_frames": 0}
        entry.update(
            frames_judged_per_clip=int(videos.shape[2]), seconds=seconds, seconds_per_clip=seconds / n
        )
        entry.update(clip_figures(judge_video_frames(classifier, videos), labels))
        results.append(entry)
        log(f"  {seconds:.1f} s ({seconds / n:.3f} s per clip)")
        if not prompt_length:
            continue
        log(
            f"drawing {n} clips by frame prediction ({prompt_length} real prompt frames) at guidance {guidance:g} ..."
        )
        start = time.perf_counter()
        videos = pipe(
            num_samples=n,
            class_labels=prompt_labels,
            prompt_frames=real_videos[:n, :, :prompt_length],
            guidance_scale=guidance,
            **sampling_options(args),
        ).videos
        seconds = time.perf_counter() - start
        preds = judge_video_frames(classifier, videos)
        entry = {"kind": "frame prediction", "guidance_scale": guidance, "num_clips": n}
        entry.update(prompt_frames=prompt_length, frames_judged_per_clip=int(videos.shape[2]) - prompt_length)
        entry.update(seconds=seconds, seconds_per_clip=seconds / n)
        entry.update(clip_figures(preds[:, prompt_length:], prompt_labels))
        decoded_prompt = clip_figures(preds[:, :prompt_length], prompt_labels)
        entry["decoded_prompt_frames_accuracy"] = decoded_prompt.get("accuracy")
        results.append(entry)
        log(f"  {seconds:.1f} s ({seconds / n:.3f} s per clip)")

    # 3. Report.
    print()
    rows = [
        [
            "real test clips (judge's ceiling)",
            "-",
            args.real_clips,
            frames,
            _percent(ceiling["accuracy"]),
            _percent(ceiling["temporal_consistency"]),
            _percent(ceiling["clip_majority_accuracy"]),
            "-",
        ]
    ]
    if ceiling_after_prompt is not None:
        rows.append(
            [
                f"real test clips, frames after the first {prompt_length}",
                "-",
                args.real_clips,
                frames - prompt_length,
                _percent(ceiling_after_prompt["accuracy"]),
                _percent(ceiling_after_prompt["temporal_consistency"]),
                _percent(ceiling_after_prompt["clip_majority_accuracy"]),
                "-",
            ]
        )
    for r in results:
        rows.append(
            [
                r["kind"] + (f" ({r['prompt_frames']} prompt frames)" if r["prompt_frames"] else ""),
                f"{r['guidance_scale']:g}",
                r["num_clips"],
                r["frames_judged_per_clip"],
                _percent(r.get("accuracy")),
                _percent(r["temporal_consistency"]),
                _percent(r.get("clip_majority_accuracy")),
                round(r["seconds_per_clip"], 4),
            ]
        )
    print_table(
        f"Video sample quality: {args.pipeline} (seed {args.seed}, torch threads {torch.get_num_threads()}; "
        f"digit classifier {classifier_accuracy:.2%} on real test digits)",
        [
            "clips",
            "guidance",
            "N",
            "frames judged",
            "frame accuracy",
            "temporal consistency",
            "clip majority accuracy",
            "s / clip",
        ],
        rows,
    )
    if conditional:
        print_table(
            "Per-class frame accuracy",
            ["clips", "guidance", *map(str, range(NUM_CLASSES))],
            [["real test clips (ceiling)", "-", *map(_percent, ceiling["per_class_accuracy"])]]
            + [
                [r["kind"], f"{r['guidance_scale']:g}", *map(_percent, r["per_class_accuracy"])]
                for r in results
            ],
        )
    default_scratch = next(
        (r for r in results if r["kind"] == "from scratch" and r["guidance_scale"] == args.guidance_scale),
        None,
    )
    scratch_accuracy = None if default_scratch is None else default_scratch.get("accuracy")
    key = f"from_scratch_frame_accuracy@{args.guidance_scale:g}>=0.85"
    targets = {
        "classifier_test_accuracy>=0.97": classifier_accuracy >= TARGET_CLASSIFIER_ACCURACY,
        key: None if scratch_accuracy is None else scratch_accuracy >= TARGET_VIDEO_ACCURACY,
    }
    values = {"classifier_test_accuracy>=0.97": f"{classifier_accuracy:.2%}", key: _percent(scratch_accuracy)}
    print_table(
        "Targets (reported, not asserted)",
        ["target", "value", "met"],
        [[k, values[k], "n/a" if v is None else ("yes" if v else "NO")] for k, v in targets.items()],
    )
    write_json(
        "sample_quality_video" + ("_quick" if args.quick else ""),
        {
            "modality": "video",
            "pipeline": str(args.pipeline),
            "seed": args.seed,
            "num_clips": n,
            "quick": args.quick,
            "batch_size": args.batch_size,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "default_guidance_scale": args.guidance_scale,
            "guidance_scales": guidance_scales,
            "clip": {"frames": frames, "height": height, "width": width, "fps": pipe.fps},
            "temporal_factor": factor,
            "prompt_frames": prompt_length,
            "torch_threads": torch.get_num_threads(),
            "classifier": {
                "path": str(CLASSIFIER_PATH),
                "settings": asdict(settings),
                "settings_key": classifier_info["key"],
                "loaded_from_cache": classifier_info["cached"],
                "train_seconds": classifier_info["train_seconds"],
                "test_accuracy": classifier_accuracy,
                "crop": "28x28 window centred on each frame's intensity centroid, clamped to the frame",
            },
            "ceiling": {
                "description": f"real moving_mnist('test', seed={args.real_seed}) clips, centroid-cropped frames",
                "num_clips": args.real_clips,
                "all_frames": ceiling,
                "frames_after_prompt": ceiling_after_prompt,
            },
            "results": results,
            "targets": targets,
            "environment_at_end": environment(),
        },
    )


def pad_to_one_second(audios: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Audio ``[N, C, S]`` shorter than one second -> ``[N, C, sample_rate]``, silence split around it."""
    missing = int(sample_rate) - audios.shape[-1]
    if missing <= 0:
        return audios
    return torch.nn.functional.pad(audios, (missing // 2, missing - missing // 2))


def run_audio(pipe, args, log) -> None:
    """Spoken-digit accuracy of an ``AudioPipeline``'s class-conditional clips (see the module docstring)."""
    from audio_classifier import features_and_predictions as audio_features_and_predictions
    from audio_classifier import load_or_train_classifier, load_split

    from vqgen.data.spoken_digits import spoken_digits_root

    n = args.num_samples
    guidance_scales = sorted({args.guidance_scale, *(args.guidance_scales or [])})
    conditional = int(getattr(pipe, "num_classes", 0) or 0) == NUM_CLASSES
    if not conditional:
        log(
            f"the pipeline has {pipe.num_classes} classes, not {NUM_CLASSES}: unconditional clips, guidance 1"
        )
        guidance_scales = [1.0]
    layout = pipe.prior.layout.name

    # 1. The judge and its ceiling on real clips.
    classifier, classifier_info = load_or_train_classifier(log=log)
    test_audio, test_labels = load_split(spoken_digits_root(), "test")
    _, test_preds = audio_features_and_predictions(classifier, test_audio)
    classifier_accuracy = float((test_preds == test_labels).double().mean())
    log(f"spoken-digit classifier accuracy on the real unseen-voice test split: {classifier_accuracy:.2%}")

    # 2. Samples.
    labels = torch.arange(n) % NUM_CLASSES if conditional else None
    results: list[dict] = []
    for guidance in guidance_scales:
        log(f"drawing {n} clips at guidance {guidance:g} (prior layout {layout!r}) ...")
        start = time.perf_counter()
        out = pipe(num_samples=n, class_labels=labels, guidance_scale=guidance, **sampling_options(args))
        seconds = time.perf_counter() - start
        clip_seconds = out.audios.shape[-1] / out.sample_rate
        _, preds = audio_features_and_predictions(
            classifier, pad_to_one_second(out.audios.float(), out.sample_rate), out.sample_rate
        )
        entry = {"guidance_scale": guidance, "num_samples": n, "sample_rate": out.sample_rate}
        entry.update(clip_seconds=clip_seconds, seconds=seconds)
        entry["seconds_per_audio_second"] = seconds / (n * clip_seconds)
        entry["predicted_class_shares"] = class_shares(preds)
        if conditional:
            entry["accuracy"] = float((preds == labels).double().mean())
            entry["per_class_accuracy"] = per_class_accuracy(preds, labels)
        results.append(entry)
        log(f"  {seconds:.1f} s ({entry['seconds_per_audio_second']:.3f} s per second of audio)")

    # 3. Report.
    print()
    rows = [
        ["real test clips (judge's ceiling)", "-", len(test_labels), "1", _percent(classifier_accuracy), "-"]
    ]
    for r in results:
        rows.append(
            [
                "generated",
                f"{r['guidance_scale']:g}",
                r["num_samples"],
                f"{r['clip_seconds']:.3g}",
                _percent(r.get("accuracy")),
                round(r["seconds_per_audio_second"], 4),
            ]
        )
    print_table(
        f"Audio sample quality: {args.pipeline} (prior layout {layout!r}, seed {args.seed}, "
        f"torch threads {torch.get_num_threads()})",
        ["clips", "guidance", "N", "clip s", "accuracy", "generation s / audio s"],
        rows,
    )
    print_table(
        "Per-class accuracy (conditional) and share of each predicted class",
        ["guidance", "figure", *map(str, range(NUM_CLASSES))],
        [
            [f"{r['guidance_scale']:g}", name, *map(_percent, r[key])]
            for r in results
            for name, key in (
                ("accuracy", "per_class_accuracy"),
                ("predicted share", "predicted_class_shares"),
            )
            if key in r
        ],
    )
    default = next((r for r in results if r["guidance_scale"] == args.guidance_scale), None)
    default_accuracy = None if default is None else default.get("accuracy")
    key = f"conditional_accuracy@{args.guidance_scale:g}>=0.80"
    targets = {key: None if default_accuracy is None else default_accuracy >= TARGET_AUDIO_ACCURACY}
    print_table(
        "Targets (reported, not asserted)",
        ["target", "value", "met"],
        [
            [
                key,
                _percent(default_accuracy),
                "n/a" if targets[key] is None else ("yes" if targets[key] else "NO"),
            ]
        ],
    )
    write_json(
        "sample_quality_audio" + ("_quick" if args.quick else ""),
        {
            "modality": "audio",
            "pipeline": str(args.pipeline),
            "prior_layout": layout,
            "seed": args.seed,
            "num_samples": n,
            "quick": args.quick,
            "batch_size": args.batch_size,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "default_guidance_scale": args.guidance_scale,
            "guidance_scales": guidance_scales,
            "torch_threads": torch.get_num_threads(),
            "classifier": {
                "path": classifier_info["path"],
                "settings_key": classifier_info["key"],
                "loaded_from_cache": classifier_info["cached"],
                "train_seconds": classifier_info["train_seconds"],
                "test_accuracy": classifier_accuracy,
                "test_size": int(len(test_labels)),
            },
            "results": results,
            "targets": targets,
            "environment_at_end": environment(),
        },
    )


def run_image(pipe, args, log) -> None:
    """Accuracy, class balance and Fréchet distance of an ``ImagePipeline``'s digits (see the module docstring)."""
    n = args.num_samples
    guidance_scales = sorted({1.0, args.guidance_scale, *(args.guidance_scales or [])})

    # 1. The judge.
    train_u8, train_labels_np = mnist_split("train")
    test_u8, test_labels_np = mnist_split("test")
    train_x, train_y = to_model_input(train_u8), torch.from_numpy(train_labels_np.copy())
    test_x, test_y = to_model_input(test_u8), torch.from_numpy(test_labels_np.copy())
    settings = ClassifierSettings(seed=args.classifier_seed)
    classifier, classifier_info = load_or_train(CLASSIFIER_PATH, settings, train_x, train_y, log=log)
    classifier_accuracy = accuracy(classifier, test_x, test_y)
    log(f"digit classifier accuracy on the real test split: {classifier_accuracy:.2%}")
    test_features, _ = features_and_predictions(classifier, test_x)
    test_features = test_features.numpy()

    # The floor: a random real-train subset of the same size as each sample set vs the real test split.
    rng = np.random.default_rng(args.seed)
    floor_size = min(n, train_x.shape[0])
    subset = torch.from_numpy(rng.choice(train_x.shape[0], size=floor_size, replace=False))
    floor_features, floor_preds = features_and_predictions(classifier, train_x[subset])
    floor_fd = frechet_distance(floor_features.numpy(), test_features)
    floor_shares = class_shares(floor_preds)

    # 2. Samples.
    num_pipe_classes = int(getattr(pipe, "num_classes", 0) or 0)
    conditional = num_pipe_classes == NUM_CLASSES
    if not conditional:
        log(f"the pipeline has {num_pipe_classes} classes, not {NUM_CLASSES}: conditional settings skipped")
    labels = torch.arange(n) % NUM_CLASSES
    results: list[dict] = []
    settings_to_run: list[tuple[str, float]] = (
        [("conditional", g) for g in guidance_scales] if conditional else []
    )
    if not args.no_unconditional:
        settings_to_run.append(("unconditional", 1.0))
    for kind, guidance in settings_to_run:
        log(f"drawing {n} {kind} samples at guidance {guidance:g} ...")
        images, seconds = generate(pipe, n, labels if kind == "conditional" else None, guidance, args)
        features, preds = features_and_predictions(classifier, images)
        shares = class_shares(preds)
        entry = {
            "kind": kind,
            "guidance_scale": guidance,
            "num_samples": n,
            "seconds": seconds,
            "images_per_second": n / seconds,
            "frechet_distance": frechet_distance(features.numpy(), test_features),
            "predicted_class_shares": shares,
            "classes_present": sum(s > 0 for s in shares),
            "max_class_share": max(shares),
        }
        if kind == "conditional":
            entry["accuracy"] = float((preds == labels).double().mean())
            entry["per_class_accuracy"] = per_class_accuracy(preds, labels)
        results.append(entry)
        log(f"  {seconds:.1f} s ({n / seconds:.2f} images/s)")

    # 3. Report.
    print()
    rows = [
        [
            "real test (classifier accuracy)",
            "-",
            test_x.shape[0],
            f"{classifier_accuracy:.2%}",
            "-",
            "-",
            "-",
            "-",
        ],
        [
            f"real train subset (floor, seed {args.seed})",
            "-",
            floor_size,
            "-",
            sum(s > 0 for s in floor_shares),
            f"{max(floor_shares):.1%}",
            round(floor_fd, 3),
            "-",
        ],
    ]
    for r in results:
        rows.append(
            [
                r["kind"],
                f"{r['guidance_scale']:g}",
                r["num_samples"],
                f"{r['accuracy']:.2%}" if "accuracy" in r else "-",
                r["classes_present"],
                f"{r['max_class_share']:.1%}",
                round(r["frechet_distance"], 3),
                round(r["images_per_second"], 2),
            ]
        )
    print_table(
        f"Sample quality: {args.pipeline} (seed {args.seed}, torch threads {torch.get_num_threads()})",
        [
            "samples",
            "guidance",
            "N",
            "accuracy",
            "classes present",
            "max class share",
            "Fréchet dist.",
            "images/s",
        ],
        rows,
    )
    default_cond = next(
        (r for r in results if r["kind"] == "conditional" and r["guidance_scale"] == args.guidance_scale),
        None,
    )
    uncond = next((r for r in results if r["kind"] == "unconditional"), None)
    targets = {
        "classifier_test_accuracy>=0.97": classifier_accuracy >= TARGET_CLASSIFIER_ACCURACY,
        f"conditional_accuracy@{args.guidance_scale:g}>=0.90": (
            None if default_cond is None else default_cond["accuracy"] >= TARGET_CONDITIONAL_ACCURACY
        ),
        "unconditional_all_ten_classes": None if uncond is None else uncond["classes_present"] == NUM_CLASSES,
        "unconditional_max_share<=0.20": None
        if uncond is None
        else uncond["max_class_share"] <= TARGET_MAX_CLASS_SHARE,
    }
    values = {
        "classifier_test_accuracy>=0.97": f"{classifier_accuracy:.2%}",
        f"conditional_accuracy@{args.guidance_scale:g}>=0.90": "-"
        if default_cond is None
        else f"{default_cond['accuracy']:.2%}",
        "unconditional_all_ten_classes": "-" if uncond is None else f"{uncond['classes_present']} classes",
        "unconditional_max_share<=0.20": "-" if uncond is None else f"{uncond['max_class_share']:.1%}",
    }
    print_table(
        "Targets (reported, not asserted)",
        ["target", "value", "met"],
        [[k, values[k], "n/a" if v is None else ("yes" if v else "NO")] for k, v in targets.items()],
    )
    if uncond is not None:
        print_table(
            "Unconditional: share of each predicted class",
            [str(c) for c in range(NUM_CLASSES)],
            [[f"{s:.1%}" for s in uncond["predicted_class_shares"]]],
        )

    write_json(
        "sample_quality" + ("_quick" if args.quick else ""),
        {
            "pipeline": str(args.pipeline),
            "seed": args.seed,
            "num_samples": n,
            "quick": args.quick,
            "batch_size": args.batch_size,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "default_guidance_scale": args.guidance_scale,
            "guidance_scales": guidance_scales,
            "torch_threads": torch.get_num_threads(),
            "classifier": {
                "path": str(CLASSIFIER_PATH),
                "settings": asdict(settings),
                "settings_key": classifier_info["key"],
                "loaded_from_cache": classifier_info["cached"],
                "train_seconds": classifier_info["train_seconds"],
                "test_accuracy": classifier_accuracy,
                "test_size": int(test_x.shape[0]),
            },
            "floor": {
                "description": "random real-train subset vs real test split",
                "subset_size": floor_size,
                "frechet_distance": floor_fd,
                "predicted_class_shares": floor_shares,
            },
            "results": results,
            "targets": targets,
            "environment_at_end": environment(),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pipeline",
        default=None,
        help="pipeline folder or shipped name (default: the shipped pipeline of --modality, else image)",
    )
    parser.add_argument(
        "--modality",
        choices=sorted(DEFAULT_SAMPLES),
        default=None,
        help="what the pipeline draws (default: from its class)",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="samples per setting (default: 1000 images, 200 video clips, 500 audio clips)",
    )
    parser.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="the default guidance to judge (default: the pipeline's default_guidance_scale, 3 unless it stores one)",
    )
    parser.add_argument(
        "--guidance-scales",
        type=float,
        nargs="+",
        default=None,
        help="more guidance scales to judge (--guidance-scale is always included; for images 1 too)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed and real-subset seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=100, help="pipeline batch size (default 100)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument(
        "--classifier-seed", type=int, default=0, help="the digit judge's training seed (default 0)"
    )
    parser.add_argument(
        "--no-unconditional", action="store_true", help="images: skip the unconditional samples"
    )
    parser.add_argument(
        "--real-clips", type=int, default=1000, help="video: real test clips for the judge's ceiling (1000)"
    )
    parser.add_argument(
        "--real-seed", type=int, default=1, help="video: seed of the real test clips and prompts (default 1)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100 images, 20 video clips or 50 audio clips per setting",
    )
    args = parser.parse_args()
    log = lambda message: print(message, flush=True)  # noqa: E731
    args.pipeline = args.pipeline or args.modality or "image"

    # Load the pipeline first, so a wrong --pipeline fails before a judge trains.
    log(f"loading pipeline {args.pipeline!r} ...")
    from vqgen.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    modality = MODALITY_OF_PIPELINE.get(type(pipe).__name__)
    if modality is None or (args.modality is not None and args.modality != modality):
        raise SystemExit(
            f"{args.pipeline!r} holds a pipeline of class {type(pipe).__name__}, not a "
            f"{args.modality or 'image, video or audio'} pipeline"
        )
    if args.guidance_scale is None:
        args.guidance_scale = pipe.default_guidance_scale
    if args.num_samples is None:
        args.num_samples = DEFAULT_SAMPLES[modality]
    if args.quick:
        args.num_samples = min(args.num_samples, QUICK_SAMPLES[modality])
        args.real_clips = min(args.real_clips, 200)
    if args.num_samples < 1 or args.real_clips < 1:
        raise SystemExit("--num-samples and --real-clips must be at least 1")
    {"image": run_image, "video": run_video, "audio": run_audio}[modality](pipe, args, log)


if __name__ == "__main__":
    main()
