"""benchmarks/sampling.py's memory-traffic floor: the bytes it counts for the KV cache are the bytes the
``transformers`` model really caches."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from sampling import decode_bytes  # noqa: E402

from vqgen.priors.prior import CodePrior  # noqa: E402


def cache_bytes(prior: CodePrior, batch: int, length: int) -> int:
    """Bytes of keys and values the model caches for ``length`` positions of ``batch`` sequences."""
    ids = torch.zeros(batch, length, dtype=torch.long)
    with torch.no_grad():
        cache = prior.model(input_ids=ids, use_cache=True).past_key_values
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


def test_decode_bytes_counts_the_weights_and_the_real_cache_at_every_step():
    prior = CodePrior(
        codebook_size=16,
        code_grid=[2, 4],
        num_classes=3,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
    )
    batch, new_tokens, prompt = 3, 5, 2
    weights = prior.non_embedding_parameters() * 4
    # Step k reads the cache of the prompt and the k tokens drawn before it.
    cache = sum(cache_bytes(prior, batch, prompt + k) for k in range(new_tokens))
    assert decode_bytes(prior, batch, new_tokens, prompt) == new_tokens * weights + cache


def test_sampler_ab_imports_the_sampler_of_a_git_revision():
    """benchmarks/sampler_ab.py compares against ``vqgen/priors/`` as of a git revision, imported as its own
    package; at HEAD it must be a separate import whose prior class is its own, and it must draw what the
    current sampler draws (only HEAD's code, so uncommitted changes to the sampler may differ: compared on a
    prior and settings the sampler has long handled alike)."""
    from sampler_ab import ROOT, draw, prior_for, sampler_at

    from vqgen.priors import sampling

    if (
        shutil.which("git") is None
        or subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode
    ):
        pytest.skip("not a git checkout")

    at_head = sampler_at("HEAD")
    assert at_head is not sampling and at_head.__file__ != sampling.__file__
    prior = CodePrior(
        codebook_size=16, code_grid=[2, 4], num_classes=3, hidden_size=32, num_layers=2, num_heads=4
    ).eval()
    twin = prior_for(at_head, prior)
    assert type(twin) is not CodePrior and type(twin).__module__ == "priors_at_rev.prior"
    a = draw(at_head, twin, 2, [0, 2], torch.Generator().manual_seed(0), top_k=8)
    b = draw(sampling, prior, 2, [0, 2], torch.Generator().manual_seed(0), top_k=8)
    assert torch.equal(a, b)
