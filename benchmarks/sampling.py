"""vqgen's KV-cached code sampler against ``transformers``' ``generate()`` on the same prior weights, in one process.

Command (the figures in RESULTS.md)::

    .venv/bin/python benchmarks/sampling.py --seed 0 --repeats 1

(about 3 minutes on the loaded 2-core machine; each extra repeat adds about as much again.)

Smoke run: ``.venv/bin/python benchmarks/sampling.py --quick``. On a GPU: ``--device cuda --dtype bfloat16``
(both samplers and the matmul rate then run on that device in that dtype; ``benchmarks/gpu_checks.sh``).

Part 1, sampler: ``CodePrior(codebook_size=256, code_grid=[16, 16], num_classes=10, hidden_size=256,
num_layers=6, num_heads=8)`` (random weights, eval mode). vqgen draws with ``prior.sample(B, class_labels=...,
top_k=K, generator=...)`` (``sample_codes``: the decode walk over ``decoder_for``'s decoder); the peer with
``prior.model.generate(prompt, do_sample=True, top_k=K, use_cache=True, max_new_tokens=L, min_new_tokens=L)``
from the same ``[BOS, class]`` prompt, with a logits processor that keeps only code ids (what vqgen's sampler
does by construction). Both sample at temperature 1 without guidance. Figures: tokens per second
(``B * L / median seconds``), speed-up (vqgen tok/s / generate tok/s), and the achieved share of the machine's
dense matmul rate in the run's dtype on its device, measured in the same run (a ``--matmul-size`` square product, ``2 n^3`` flops; median of
5, taken before and after the sampling runs), with sampler flops counted as
``2 * prior.non_embedding_parameters() * tokens`` (attention over the cache is not counted). Beside it, the
share of the memory-traffic floor: every decode step must read all weights but the input embedding and the
whole KV cache so far (``2 * layers * B * kv_heads * head_dim * positions`` values), at the machine's memory read
rate measured in the same run (a 512 MB sum); "% of memory floor" is that floor's time over the measured time.
Where it is high, no decode loop can be much faster on that machine, only less data per step can.

Part 2, whole pipeline: ``ImagePipeline(ImageTokenizer(in_channels=1, base_channels=64, channel_multipliers=(1, 2,
2), latent_channels=64, quantizer_config={"type": "vq", "codebook_size": 256}), CodePrior(..., code_grid=[7, 7]))``
called as ``pipe(num_samples=16, class_labels=[3] * 16, guidance_scale=3.0, generator=..., output_type="np")``,
against the same work done with ``generate(guidance_scale=3.0, negative_prompt_ids=[BOS, null class])``
(transformers' classifier-free guidance, which runs the unconditional rows as a second model call per step)
+ ``tokenizer.decode`` + the same uint8 conversion. Images per second and the ratio.

Times are never asserted; the machine may be loaded, so compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    environment,
    matmul_gflops,
    print_table,
    read_bandwidth_gbs,
    synchronize,
    write_json,
)

from vqgen.media.image import to_uint8_images  # noqa: E402
from vqgen.pipelines.image import ImagePipeline  # noqa: E402
from vqgen.priors.prior import CodePrior  # noqa: E402
from vqgen.tokenizers.image import ImageTokenizer  # noqa: E402

PRIOR_SHAPE = {"num_classes": 10, "hidden_size": 256, "num_layers": 6, "num_heads": 8}


class CodeIdsOnly:
    """A ``transformers`` logits processor: ``-inf`` on every id outside the code ids ``[0, n)``."""

    def __init__(self, num_code_tokens: int) -> None:
        self.n = num_code_tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores[:, self.n :] = float("-inf")
        return scores


def generate_codes(
    prior: CodePrior,
    labels: torch.Tensor,
    new_tokens: int,
    top_k: int | None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The peer: ``prior.model.generate`` from ``[BOS, class]`` -> code tokens ``[B, new_tokens]``."""
    from transformers import LogitsProcessorList

    batch = labels.shape[0]
    prompt = prior.prefix(labels, batch)
    kwargs = {}
    if guidance_scale != 1.0:
        kwargs = {"guidance_scale": guidance_scale, "negative_prompt_ids": prior.prefix(None, batch)}
    with torch.inference_mode():
        out = prior.model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=True,
            top_k=top_k or 0,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            use_cache=True,
            eos_token_id=None,
            pad_token_id=prior.bos_id,
            logits_processor=LogitsProcessorList([CodeIdsOnly(prior.num_code_tokens)]),
            **kwargs,
        )
    return out[:, prompt.shape[1] :]


def timed(fn, device: str = "cpu"):
    """(seconds, result) of one call, its GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def warm_up(args: argparse.Namespace, *fns) -> None:
    """On a GPU, one untimed call of each (kernel loading, cuBLAS handles, allocator growth)."""
    if args.device != "cpu":
        for fn in fns:
            timed(fn, args.device)


def bench_sampler(args: argparse.Namespace) -> tuple[list[dict], dict]:
    grid = [args.new_tokens // 16, 16] if args.new_tokens % 16 == 0 else [args.new_tokens]
    torch.manual_seed(args.seed)
    prior = (
        CodePrior(codebook_size=256, code_grid=grid, **PRIOR_SHAPE).eval().to(args.device, args.torch_dtype)
    )
    flops_per_token = 2 * prior.non_embedding_parameters()
    rows = []
    for batch in args.batch_sizes:
        labels = (torch.arange(batch) % PRIOR_SHAPE["num_classes"]).to(args.device)
        tokens = batch * args.new_tokens
        generator = torch.Generator(args.device).manual_seed(args.seed)
        torch.manual_seed(args.seed)  # generate() draws from the global generators

        def ours(labels: torch.Tensor = labels, generator: torch.Generator = generator) -> torch.Tensor:
            return prior.sample(labels.shape[0], class_labels=labels, top_k=args.top_k, generator=generator)

        def theirs(labels: torch.Tensor = labels) -> torch.Tensor:
            return generate_codes(prior, labels, args.new_tokens, args.top_k)

        # Alternate the two so that a change in machine load hits both alike; every output is checked.
        warm_up(args, ours, theirs)
        our_times, their_times = [], []
        for _ in range(args.repeats):
            seconds, out = timed(ours, args.device)
            assert out.reshape(batch, -1).shape == (batch, args.new_tokens)
            our_times.append(seconds)
            seconds, out = timed(theirs, args.device)
            assert out.shape == (batch, args.new_tokens) and int(out.max()) < prior.num_code_tokens
            their_times.append(seconds)
        our_s, their_s = sorted(our_times)[len(our_times) // 2], sorted(their_times)[len(their_times) // 2]
        traffic = decode_bytes(prior, batch, args.new_tokens)
        rows.append(
            {
                "batch": batch,
                "new_tokens": args.new_tokens,
                "vqgen_s": our_s,
                "generate_s": their_s,
                "vqgen_tok_s": tokens / our_s,
                "generate_tok_s": tokens / their_s,
                "speedup": their_s / our_s,
                "vqgen_gflops": flops_per_token * tokens / our_s / 1e9,
                "generate_gflops": flops_per_token * tokens / their_s / 1e9,
                "decode_bytes": traffic,
                "vqgen_gbs": traffic / our_s / 1e9,
                "generate_gbs": traffic / their_s / 1e9,
                "vqgen_times": our_times,
                "generate_times": their_times,
            }
        )
        print(
            f"batch {batch}: vqgen {tokens / our_s:.1f} tok/s, generate {tokens / their_s:.1f} tok/s",
            flush=True,
        )
    info = {"code_grid": grid, "non_embedding_parameters": prior.non_embedding_parameters()}
    return rows, info


def decode_bytes(prior: CodePrior, batch: int, new_tokens: int, prompt: int = 2) -> int:
    """Bytes a KV-cached sampler must read to draw ``new_tokens`` per item after a ``prompt`` of [BOS, class]:
    per step, every weight but the input embedding, and keys and values of every position so far."""
    config = prior.model.config
    size = next(prior.parameters()).element_size()
    head_dim = config.hidden_size // config.num_attention_heads
    per_position = 2 * config.num_hidden_layers * batch * config.num_key_value_heads * head_dim * size
    weights = prior.non_embedding_parameters() * size
    positions = sum(prompt + step for step in range(new_tokens))  # cache length read at each step
    return new_tokens * weights + positions * per_position


def bench_pipeline(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    tokenizer = ImageTokenizer(
        in_channels=1,
        base_channels=64,
        channel_multipliers=(1, 2, 2),
        latent_channels=64,
        quantizer_config={"type": "vq", "codebook_size": 256},
    ).eval()
    prior = CodePrior(codebook_size=256, code_grid=[7, 7], **PRIOR_SHAPE).eval()
    pipe = ImagePipeline(tokenizer, prior).to(args.device, args.torch_dtype)
    n = args.pipeline_samples
    labels = [3] * n

    def ours() -> object:
        generator = torch.Generator(args.device).manual_seed(args.seed)
        return pipe(
            num_samples=n, class_labels=labels, guidance_scale=3.0, generator=generator, output_type="np"
        ).images

    def theirs() -> object:
        codes = generate_codes(prior, torch.tensor(labels, device=prior.device), 49, None, guidance_scale=3.0)
        with torch.no_grad():
            images = tokenizer.decode(codes.reshape(n, 7, 7).clone()).float().clamp(-1, 1)
        return to_uint8_images(images)

    warm_up(args, ours, theirs)
    our_times, their_times = [], []
    for _ in range(args.repeats):
        seconds, a = timed(ours, args.device)
        our_times.append(seconds)
        seconds, b = timed(theirs, args.device)
        their_times.append(seconds)
        assert a.shape == b.shape == (n, 28, 28, 1), (a.shape, b.shape)
    our_s, their_s = sorted(our_times)[len(our_times) // 2], sorted(their_times)[len(their_times) // 2]
    return {
        "num_samples": n,
        "vqgen_s": our_s,
        "generate_s": their_s,
        "vqgen_images_s": n / our_s,
        "generate_images_s": n / their_s,
        "speedup": their_s / our_s,
        "vqgen_times": our_times,
        "generate_times": their_times,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--new-tokens", type=int, default=256, help="code tokens per item (grid 16 x L/16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--pipeline-samples", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both samplers and the matmul rate)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    args.torch_dtype = getattr(torch, args.dtype)
    if args.quick:
        args.batch_sizes, args.new_tokens, args.repeats = [1, 4], 32, 1
        args.matmul_size, args.pipeline_samples = 512, 4
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"environment: {environment()}", flush=True)

    rate_before = matmul_gflops(args.matmul_size, device=args.device, dtype=args.torch_dtype)
    bandwidth_before = read_bandwidth_gbs(device=args.device)
    rows, info = bench_sampler(args)
    pipeline = bench_pipeline(args)
    rate_after = matmul_gflops(args.matmul_size, device=args.device, dtype=args.torch_dtype)
    bandwidth_after = read_bandwidth_gbs(device=args.device)
    rate = (rate_before + rate_after) / 2
    bandwidth = (bandwidth_before + bandwidth_after) / 2
    print(
        f"memory read rate: {bandwidth_before:.1f} GB/s before, {bandwidth_after:.1f} after (mean {bandwidth:.1f})",
        flush=True,
    )
    print(
        f"{args.dtype} matmul {args.matmul_size}^3: {rate_before:.1f} GFLOP/s before, {rate_after:.1f} after "
        f"(mean {rate:.1f}); prior non-embedding parameters {info['non_embedding_parameters']:,}",
        flush=True,
    )
    for row in rows:
        row["vqgen_matmul_fraction"] = row["vqgen_gflops"] / rate
        row["generate_matmul_fraction"] = row["generate_gflops"] / rate
        row["vqgen_memory_fraction"] = row["vqgen_gbs"] / bandwidth
        row["generate_memory_fraction"] = row["generate_gbs"] / bandwidth

    sampler_table = print_table(
        f"sampler: {args.new_tokens} new tokens, top-k {args.top_k}, median of {args.repeats} "
        f"(matmul rate {rate:.0f} GFLOP/s, memory read rate {bandwidth:.0f} GB/s)",
        [
            "batch",
            "vqgen tok/s",
            "generate() tok/s",
            "speed-up",
            "vqgen % of matmul",
            "generate() % of matmul",
            "MB read per item",
            "vqgen % of memory floor",
            "generate() % of memory floor",
        ],
        [
            [
                r["batch"],
                r["vqgen_tok_s"],
                r["generate_tok_s"],
                r["speedup"],
                100 * r["vqgen_matmul_fraction"],
                100 * r["generate_matmul_fraction"],
                r["decode_bytes"] / r["batch"] / 1e6,
                100 * r["vqgen_memory_fraction"],
                100 * r["generate_memory_fraction"],
            ]
            for r in rows
        ],
    )
    pipeline_table = print_table(
        f"ImagePipeline, {pipeline['num_samples']} samples 28x28, guidance 3.0 (median of {args.repeats})",
        ["path", "images/s", "seconds"],
        [
            ["vqgen ImagePipeline", pipeline["vqgen_images_s"], pipeline["vqgen_s"]],
            ["generate(guidance_scale=3) + decode", pipeline["generate_images_s"], pipeline["generate_s"]],
            ["speed-up (vqgen / generate)", pipeline["speedup"], ""],
        ],
    )
    plain = args.device == "cpu" and args.dtype == "float32"
    write_json(
        "sampling" if plain else f"sampling-{args.device}-{args.dtype}",
        {
            "args": {k: v for k, v in vars(args).items() if k != "torch_dtype"},
            "prior": info,
            "matmul_gflops": {"before": rate_before, "after": rate_after, "mean": rate},
            "read_gbs": {"before": bandwidth_before, "after": bandwidth_after, "mean": bandwidth},
            "sampler": rows,
            "pipeline": pipeline,
            "tables": [sampler_table, pipeline_table],
        },
    )


if __name__ == "__main__":
    main()
