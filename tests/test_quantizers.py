"""Tests for vqgen.tokenizers.quantizers (DESIGN.md §2, Quantizer contract).

Covers VectorQuantizer (loss formula and where its gradient goes, straight-through estimator, one EMA step
against a hand computation, k-means init on the first training batch, dead-code restarts, l2-normalised
lookup, low-dimensional codes, float32 under bf16 autocast, eval mode leaving buffers alone,
codes_to_vectors, usage/perplexity), FiniteScalarQuantizer (codebook size, range, round trip,
reachability of every code, straight-through gradient), ResidualQuantizer (residual error shrinking with
levels, code shape, num_levels, quantizer dropout, partial decoding, straight-through gradient),
build_quantizer errors, and a 2-process gloo run checking that codebooks stay identical across ranks.
Everything is tiny: the whole file runs in a few seconds on CPU.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.quantizers import (
    FiniteScalarQuantizer,
    QuantizerOutput,
    ResidualQuantizer,
    VectorQuantizer,
    build_quantizer,
    rotate_onto,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def _nearest(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    return torch.cdist(flat.double(), codebook.double()).argmin(dim=-1)


def _plain_vq(**kwargs) -> VectorQuantizer:
    """A VQ that does nothing behind the test's back unless asked (no k-means, no restarts)."""
    options = {"kmeans_init": False, "dead_code_threshold": 0}
    options.update(kwargs)
    return VectorQuantizer(**options)


def _buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.detach().clone() for name, b in module.named_buffers()}


# --------------------------------------------------------------------------------------------------
# VectorQuantizer
# --------------------------------------------------------------------------------------------------


def test_vq_output_fields_codes_and_shapes():
    torch.manual_seed(0)
    vq = _plain_vq(dim=4, codebook_size=8).eval()
    z = torch.randn(2, 4, 3, 5)
    out = vq(z)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == z.shape
    assert out.codes.shape == (2, 3, 5) and out.codes.dtype == torch.long
    assert out.loss.dim() == 0 and out.perplexity.dim() == 0 and out.usage.dim() == 0
    expected_codes = _nearest(_flat(z), vq.codebook).reshape(2, 3, 5)
    assert torch.equal(out.codes, expected_codes)
    # the quantized vectors are the selected codebook rows
    assert torch.allclose(_flat(out.quantized), vq.codebook[expected_codes.reshape(-1)], atol=1e-6)


def test_vq_works_on_1d_and_3d_spatial_inputs():
    vq = _plain_vq(dim=3, codebook_size=4).eval()
    assert vq(torch.randn(2, 3, 7)).codes.shape == (2, 7)
    assert vq(torch.randn(2, 3, 2, 3, 4)).codes.shape == (2, 2, 3, 4)


@pytest.mark.parametrize("ema", [True, False])
def test_vq_loss_matches_formula(ema):
    torch.manual_seed(1)
    beta = 0.37
    vq = _plain_vq(dim=4, codebook_size=8, beta=beta, ema=ema).eval()
    z = torch.randn(3, 4, 2, 2)
    out = vq(z)
    flat = _flat(z)
    e = vq.codebook.detach()[_nearest(flat, vq.codebook.detach())]
    expected = beta * (flat - e).pow(2).mean()
    if not ema:
        expected = expected + (e - flat).pow(2).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_vq_loss_gradient_ema_goes_to_encoder_only():
    torch.manual_seed(2)
    beta = 0.3
    vq = _plain_vq(dim=4, codebook_size=8, beta=beta, ema=True)
    codebook0 = vq.codebook.clone()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z)  # training mode: the EMA step moves the codebook after the lookup
    out.loss.backward()
    assert not torch.equal(vq.codebook, codebook0)
    e = codebook0[out.codes.reshape(-1)]
    flat = _flat(z.detach())
    expected = beta * 2 * (flat - e) / flat.numel()
    assert torch.allclose(_flat(z.grad), expected, atol=1e-7)
    assert not vq.codebook.requires_grad and vq.codebook.grad is None
    assert "codebook" in dict(vq.named_buffers())
    assert not any(name == "codebook" for name, _ in vq.named_parameters())


def test_vq_loss_gradient_without_ema_reaches_codebook():
    torch.manual_seed(3)
    beta = 0.25
    vq = _plain_vq(dim=4, codebook_size=8, beta=beta, ema=False)
    assert isinstance(vq.codebook, torch.nn.Parameter)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z)
    out.loss.backward()
    codes = out.codes.reshape(-1)
    flat = _flat(z.detach())
    e = vq.codebook.detach()[codes]
    n = flat.numel()
    # encoder: only the beta-weighted commitment term (the codebook term sees sg(z))
    assert torch.allclose(_flat(z.grad), beta * 2 * (flat - e) / n, atol=1e-7)
    # codebook: only the codebook term (the commitment term sees sg(e)), summed over assigned rows
    expected = torch.zeros_like(vq.codebook).index_add_(0, codes, 2 * (e - flat) / n)
    assert torch.allclose(vq.codebook.grad, expected, atol=1e-7)


def test_vq_straight_through_gradient_is_identity():
    torch.manual_seed(4)
    vq = _plain_vq(dim=4, codebook_size=8)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(2, 4, 3, 3)
    (vq(z).quantized * upstream).sum().backward()
    assert torch.allclose(z.grad, upstream)


def test_vq_ema_step_matches_hand_computation():
    torch.manual_seed(5)
    decay, eps, k, d = 0.9, 1e-5, 6, 3
    vq = _plain_vq(dim=d, codebook_size=k, decay=decay, eps=eps, ema=True).train()
    codebook0 = vq.codebook.clone()
    cluster0, sum0 = vq.ema_cluster_size.clone(), vq.ema_embed_sum.clone()
    z = torch.randn(4, d, 5) * 2
    out = vq(z)

    flat = _flat(z)
    codes = _nearest(flat, codebook0)
    assert torch.equal(out.codes.reshape(-1), codes)
    counts = torch.bincount(codes, minlength=k).float()
    sums = torch.zeros(k, d).index_add_(0, codes, flat)
    cluster = decay * cluster0 + (1 - decay) * counts
    embed_sum = decay * sum0 + (1 - decay) * sums
    total = cluster.sum()
    smoothed = (cluster + eps) / (total + k * eps) * total
    expected = embed_sum / smoothed[:, None]
    assert torch.allclose(vq.ema_cluster_size, cluster, atol=1e-6)
    assert torch.allclose(vq.ema_embed_sum, embed_sum, atol=1e-6)
    assert torch.allclose(vq.codebook, expected, atol=1e-5)
    # every used code moved toward the mean of the vectors assigned to it
    for code in codes.unique():
        mean = flat[codes == code].mean(0)
        assert (vq.codebook[code] - mean).norm() < (codebook0[code] - mean).norm()


def _blobs(centers: torch.Tensor, per_blob: int, std: float, seed: int = 0) -> torch.Tensor:
    """``[1, D, n]`` points drawn around each row of ``centers``, shuffled."""
    g = torch.Generator().manual_seed(seed)
    points = centers.repeat_interleave(per_blob, 0) + std * torch.randn(
        per_blob * len(centers), centers.shape[1], generator=g
    )
    points = points[torch.randperm(len(points), generator=g)]
    return points.t().unsqueeze(0)


def test_vq_kmeans_init_on_first_training_batch_finds_clusters(monkeypatch):
    torch.manual_seed(6)
    centers = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    z = _blobs(centers, per_blob=32, std=0.1)
    vq = VectorQuantizer(2, 4, kmeans_init=True, dead_code_threshold=0)
    assert not bool(vq.initialized)
    vq.eval()(z)
    assert not bool(vq.initialized), "eval mode must not run k-means"
    vq.train()(z)
    assert bool(vq.initialized)
    # one centroid per blob (one-to-one), each close to the blob mean
    distances = torch.cdist(centers, vq.codebook)
    nearest = distances.argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]
    assert distances.min(1).values.max() < 0.2
    # the EMA state agrees with the new codebook
    assert torch.allclose(vq.ema_embed_sum / vq.ema_cluster_size[:, None], vq.codebook, atol=1e-5)

    # later training batches do not re-run k-means
    def fail(flat):
        raise AssertionError("k-means ran twice")

    monkeypatch.setattr(vq, "_kmeans_init", fail)
    vq(z + 100.0)
    assert bool(vq.initialized)


def test_vq_kmeans_init_with_fewer_vectors_than_codes():
    torch.manual_seed(7)
    vq = VectorQuantizer(3, 16, kmeans_init=True, dead_code_threshold=0).train()
    z = torch.randn(1, 3, 5)
    vq(z)
    assert bool(vq.initialized) and torch.isfinite(vq.codebook).all()
    # every code sits near one of the five input vectors
    assert torch.cdist(vq.codebook, _flat(z)).min(1).values.max() < 0.1


def test_vq_dead_code_restart_reseeds_from_batch():
    torch.manual_seed(8)
    vq = _plain_vq(dim=2, codebook_size=4, dead_code_threshold=2, decay=0.9)
    with torch.no_grad():
        far = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
        vq.codebook.copy_(far)
        vq.ema_embed_sum.copy_(far)
    z = torch.rand(2, 2, 8)  # all near the first three codes; code 3 is never used
    flat = _flat(z)
    vq.train()(z)
    assert vq.steps_unused[3].item() == 1
    assert vq.codebook[3].norm() > 50, "one unused step is below the threshold of 2"
    vq(z)
    # restarted: code 3 now equals one of this batch's vectors, with fresh EMA state
    assert torch.cdist(vq.codebook[3:4], flat).min() < 1e-6
    assert vq.ema_cluster_size[3].item() == 1.0
    assert torch.equal(vq.ema_embed_sum[3], vq.codebook[3])
    assert vq.steps_unused[3].item() == 0
    assert vq.codebook[:3].norm(dim=1).max() < 2, "used codes are not restarted"


def test_vq_dead_code_threshold_zero_disables_restarts():
    vq = _plain_vq(dim=2, codebook_size=4, dead_code_threshold=0)
    with torch.no_grad():
        vq.codebook[3] = vq.ema_embed_sum[3] = torch.tensor([100.0, 100.0])
    z = torch.rand(2, 2, 8)
    for _ in range(3):
        vq.train()(z)
    assert vq.codebook[3].norm() > 50


def test_vq_l2_normalize_unit_rows_and_cosine_lookup():
    torch.manual_seed(9)
    vq = VectorQuantizer(4, 8, l2_normalize=True, kmeans_init=True, dead_code_threshold=1).train()
    z = torch.randn(2, 4, 4, 4)
    for _ in range(2):
        vq(z)
    assert torch.allclose(vq.codebook.norm(dim=1), torch.ones(8), atol=1e-5)
    vq.eval()
    out = vq(z)
    expected = (F.normalize(_flat(z), dim=-1) @ F.normalize(vq.codebook, dim=-1).t()).argmax(-1)
    assert torch.equal(out.codes.reshape(-1), expected)
    # cosine lookup ignores the input's scale; quantized vectors lie on the unit sphere
    assert torch.equal(vq(z * 7.5).codes, out.codes)
    assert torch.allclose(out.quantized.norm(dim=1), torch.ones(2, 4, 4), atol=1e-5)


def test_vq_learned_code_norms_choose_by_direction_and_keep_lengths():
    """DAC-style codes: the search is by cosine, but each code is the mean of the raw vectors it won, so its
    length follows the data (here about 3) instead of being 1; the decoder gets those raw vectors."""
    torch.manual_seed(9)
    vq = VectorQuantizer(4, 8, l2_normalize=True, learned_code_norms=True, dead_code_threshold=0).train()
    z = 3 * F.normalize(torch.randn(2, 4, 4, 4), dim=1)
    for _ in range(3):
        vq(z)
    vq.eval()
    out = vq(z)
    expected = (_flat(z) @ F.normalize(vq.codebook, dim=-1).t()).argmax(-1)
    assert torch.equal(out.codes.reshape(-1), expected)
    assert torch.equal(vq(z * 0.1).codes, out.codes)  # the search ignores the input's scale
    norms = out.quantized.norm(dim=1)
    assert norms.mean() > 2.0 and not torch.allclose(norms, torch.ones_like(norms), atol=0.1)
    torch.testing.assert_close(vq.codes_to_vectors(out.codes), out.quantized)
    with pytest.raises(ConfigError, match="needs l2_normalize"):
        VectorQuantizer(4, 8, learned_code_norms=True)


def test_vq_low_dimensional_codebook():
    torch.manual_seed(10)
    vq = _plain_vq(dim=8, codebook_size=16, codebook_dim=3)
    assert isinstance(vq.project_in, torch.nn.Linear) and isinstance(vq.project_out, torch.nn.Linear)
    assert vq.project_in.weight.shape == (3, 8) and vq.project_out.weight.shape == (8, 3)
    assert vq.codebook.shape == (16, 3) and vq.ema_embed_sum.shape == (16, 3)
    vq.eval()
    z = torch.randn(2, 8, 3, 3)
    out = vq(z)
    assert out.quantized.shape == z.shape and out.codes.shape == (2, 3, 3)
    with torch.no_grad():
        low = vq.project_in(_flat(z))
        assert torch.equal(out.codes.reshape(-1), _nearest(low, vq.codebook))
        expected = vq.project_out(vq.codebook[out.codes.reshape(-1)])
    assert torch.allclose(_flat(out.quantized), expected, atol=1e-5)
    # the projections are trained through the straight-through path
    z.requires_grad_(True)
    vq.train()(z).quantized.sum().backward()
    assert vq.project_in.weight.grad.abs().sum() > 0 and vq.project_out.weight.grad.abs().sum() > 0
    # square case has no projections
    assert isinstance(_plain_vq(dim=4, codebook_size=4).project_in, torch.nn.Identity)


def test_vq_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(11)
    vq = _plain_vq(dim=8, codebook_size=32, codebook_dim=4).eval()
    z = torch.randn(2, 8, 4, 4)
    reference = vq(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z)
        half = vq(z.bfloat16())
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.codes, reference.codes)
    assert torch.allclose(out.quantized, reference.quantized)
    assert out.loss.dtype == torch.float32
    assert half.quantized.dtype == torch.bfloat16


def test_vq_eval_mode_does_not_change_buffers():
    torch.manual_seed(12)
    vq = VectorQuantizer(4, 8, kmeans_init=True, dead_code_threshold=1).eval()
    before = _buffers(vq)
    for _ in range(3):
        vq(torch.randn(2, 4, 3, 3) * 5)
    after = _buffers(vq)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # sanity: the same calls in training mode do change them
    vq.train()(torch.randn(2, 4, 3, 3) * 5)
    assert not torch.equal(_buffers(vq)["codebook"], before["codebook"])


@pytest.mark.parametrize("codebook_dim", [None, 2])
def test_vq_codes_to_vectors_equals_quantized_in_eval(codebook_dim):
    torch.manual_seed(13)
    vq = VectorQuantizer(4, 8, codebook_dim=codebook_dim, dead_code_threshold=1).train()
    z = torch.randn(2, 4, 3, 3)
    vq(z)  # k-means init + one EMA step
    vq.eval()
    out = vq(z)
    assert torch.allclose(vq.codes_to_vectors(out.codes), out.quantized, atol=1e-6)


def test_vq_codes_to_vectors_rejects_bad_codes():
    vq = _plain_vq(dim=4, codebook_size=8)
    with pytest.raises(ShapeError, match=r"\[0, 8\)"):
        vq.codes_to_vectors(torch.tensor([[0, 8]]))
    with pytest.raises(ShapeError, match=r"\[0, 8\)"):
        vq.codes_to_vectors(torch.tensor([[-1, 0]]))
    with pytest.raises(ShapeError, match="int64"):
        vq.codes_to_vectors(torch.tensor([[0.0, 1.0]]))


def test_vq_usage_and_perplexity_on_crafted_batches():
    k = 4
    vq = _plain_vq(dim=2, codebook_size=k).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]))
    same = vq(torch.zeros(3, 2, 4))
    assert same.usage.item() == pytest.approx(1 / k)
    assert same.perplexity.item() == pytest.approx(1.0)
    uniform = vq(vq.codebook.t().unsqueeze(0).repeat(2, 1, 3))  # each code 6 times
    assert uniform.usage.item() == pytest.approx(1.0)
    assert uniform.perplexity.item() == pytest.approx(float(k), rel=1e-5)
    half = vq(vq.codebook[:2].t().unsqueeze(0))  # two codes, once each
    assert half.usage.item() == pytest.approx(0.5)
    assert half.perplexity.item() == pytest.approx(2.0, rel=1e-5)


def test_vq_rejects_bad_input_and_config():
    vq = _plain_vq(dim=4, codebook_size=8)
    with pytest.raises(ShapeError, match="4"):
        vq(torch.randn(2, 3, 5))
    with pytest.raises(ShapeError):
        vq(torch.randn(2, 4))
    with pytest.raises(ConfigError, match="codebook_size"):
        VectorQuantizer(4, 1)
    with pytest.raises(ConfigError, match="decay"):
        VectorQuantizer(4, 8, decay=1.0)


# --------------------------------------------------------------------------------------------------
# FiniteScalarQuantizer
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 3]])
def test_fsq_codebook_size_range_and_round_trip(levels):
    torch.manual_seed(14)
    fsq = FiniteScalarQuantizer(6, levels)
    size = 1
    for v in levels:
        size *= v
    assert fsq.codebook_size == size
    z = torch.randn(4, 6, 5, 5) * 4
    out = fsq(z)
    assert out.quantized.shape == z.shape and out.codes.shape == (4, 5, 5)
    assert out.codes.dtype == torch.long
    assert out.codes.min() >= 0 and out.codes.max() < size
    assert out.loss.item() == 0.0
    assert torch.allclose(fsq.codes_to_vectors(out.codes), out.quantized, atol=1e-6)
    with pytest.raises(ShapeError, match=rf"\[0, {size}\)"):
        fsq.codes_to_vectors(torch.tensor([[size]]))


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 3]])
def test_fsq_every_code_reachable(levels):
    d = len(levels)
    fsq = FiniteScalarQuantizer(d, levels)
    assert isinstance(fsq.project_in, torch.nn.Identity)
    basis = [1]
    for v in levels[:-1]:
        basis.append(basis[-1] * v)
    # sweep each channel, recording one input value per digit
    sweep = torch.linspace(-10, 10, 4001)
    codes = fsq(sweep.expand(d, -1).unsqueeze(0)).codes[0]
    value_for_digit = []
    for c, (v, b) in enumerate(zip(levels, basis)):
        digits = (codes // b) % v
        assert sorted(digits.unique().tolist()) == list(range(v)), f"channel {c} misses digits"
        value_for_digit.append([sweep[digits == digit][0] for digit in range(v)])
    # the product of per-channel digits reaches every code exactly once
    combos = list(itertools.product(*[range(v) for v in levels]))
    z = torch.tensor([[value_for_digit[c][digit] for c, digit in enumerate(combo)] for combo in combos])
    out = fsq(z.t().unsqueeze(0))
    expected = torch.tensor([sum(digit * b for digit, b in zip(combo, basis)) for combo in combos])
    assert torch.equal(out.codes[0], expected)
    assert sorted(out.codes[0].tolist()) == list(range(fsq.codebook_size))
    # quantized values are the evenly spaced grid in [-1, 1]
    grid = out.quantized[0]
    for c, v in enumerate(levels):
        assert torch.allclose(grid[c].unique(), (torch.arange(v) - v // 2) / (v // 2))


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 3]])
def test_fsq_straight_through_gradient(levels):
    torch.manual_seed(15)
    d = len(levels)
    fsq = FiniteScalarQuantizer(d, levels)
    z = torch.randn(2, d, 3, 3, requires_grad=True)
    upstream = torch.randn(2, d, 3, 3)
    (fsq(z).quantized * upstream).sum().backward()
    # rounding passes the gradient straight through: it is that of the smooth bounded value
    z2 = z.detach().clone().requires_grad_(True)
    half_width = torch.tensor([v // 2 for v in levels], dtype=torch.float32)
    smooth = _channels_first_from(fsq._bound(_flat(z2)) / half_width, z2)
    (smooth * upstream).sum().backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-6)
    assert (z.grad != 0).all()


def _channels_first_from(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return flat.reshape(like.shape[0], *like.shape[2:], flat.shape[-1]).movedim(-1, 1)


def test_fsq_float32_under_autocast_and_config_errors():
    fsq = FiniteScalarQuantizer(6, [8, 5, 5, 5])
    z = torch.randn(2, 6, 4)
    reference = fsq(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fsq(z)
    assert out.quantized.dtype == torch.float32 and torch.equal(out.codes, reference.codes)
    with pytest.raises(ConfigError):
        FiniteScalarQuantizer(4, [8, 1])
    with pytest.raises(ConfigError):
        FiniteScalarQuantizer(4, [])
    with pytest.raises(ShapeError):
        fsq(torch.randn(2, 5, 4))


# --------------------------------------------------------------------------------------------------
# ResidualQuantizer
# --------------------------------------------------------------------------------------------------


def test_rvq_residual_error_decreases_with_levels():
    torch.manual_seed(16)
    rvq = ResidualQuantizer(4, 3, 16, decay=0.8, dead_code_threshold=2).train()
    z = torch.randn(4, 4, 4, 4)
    for _ in range(4):
        rvq(z)
    rvq.eval()
    errors = [F.mse_loss(rvq(z, num_levels=n).quantized, z).item() for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.5 * errors[0]


def test_rvq_with_l2_lookup_refines_only_when_code_norms_are_learned():
    """Residual levels of unit-length codes cannot add small corrections (the shipped audio codec's flaw: its
    12 levels reconstruct no better than 1); with learned code norms the residual error keeps falling."""

    def errors(learned: bool) -> list[float]:
        torch.manual_seed(16)
        rvq = ResidualQuantizer(
            4, 4, 32, l2_normalize=True, learned_code_norms=learned, decay=0.8, dead_code_threshold=0
        ).train()
        z = 4 * torch.randn(8, 4, 4, 4)
        for _ in range(6):
            rvq(z)
        rvq.eval()
        return [
            F.mse_loss(rvq(z, num_levels=n).quantized, z).item() / z.pow(2).mean().item() for n in (1, 2, 4)
        ]

    learned, unit = errors(True), errors(False)
    assert learned[0] > learned[1] > learned[2] and learned[2] < 0.3
    # unit vectors against data of length ~8: each level adds at most 1, so 4 levels stay far behind
    assert unit[2] > 10 * learned[2] and unit[0] > 0.6


def test_rvq_with_projected_codes_refines_only_with_the_input_space_loss():
    """Codes looked up in 4 of 16 dimensions: nothing in the lookup loss trains ``project_out`` to map a code
    back onto its input, so the residual never shrinks (the shipped audio codec's redundant levels). With
    ``input_space_weight`` the quantizer's own loss does, and each level refines the one before."""

    def errors(weight: float) -> list[float]:
        torch.manual_seed(21)
        rvq = ResidualQuantizer(
            16, 4, 64, codebook_dim=4, l2_normalize=True, learned_code_norms=True, decay=0.8,
            dead_code_threshold=0, input_space_weight=weight,
        ).train()  # fmt: skip
        z = torch.randn(16, 16, 8)
        optimizer = torch.optim.Adam(rvq.parameters(), lr=1e-2)
        for _ in range(150):
            optimizer.zero_grad()
            rvq(z).loss.backward()
            optimizer.step()
        rvq.eval()
        with torch.no_grad():
            return [
                F.mse_loss(rvq(z, num_levels=n).quantized, z).item() / z.pow(2).mean().item()
                for n in (1, 2, 4)
            ]

    with_loss, without = errors(1.0), errors(0.0)  # measured: 0.71, 0.47, 0.20 against 1.15, 1.36, 1.57
    assert with_loss[0] > with_loss[1] > with_loss[2] and with_loss[2] < 0.35, with_loss
    # project_out never trained: each level adds a vector that does not point at the residual
    assert without[0] < without[1] < without[2] and without[2] > 1.0, without
    with pytest.raises(ConfigError, match="input_space_weight"):
        VectorQuantizer(4, 8, codebook_dim=2, input_space_weight=float("nan"))


def test_rvq_codes_shape_and_num_levels():
    torch.manual_seed(17)
    rvq = ResidualQuantizer(4, 3, 8, kmeans_init=False, dead_code_threshold=0).eval()
    z = torch.randn(2, 4, 3, 5)
    out = rvq(z)
    assert out.codes.shape == (2, 3, 3, 5) and out.quantized.shape == z.shape
    assert rvq(torch.randn(2, 4, 6)).codes.shape == (2, 3, 6)
    two = rvq(z, num_levels=2)
    assert two.codes.shape == (2, 2, 3, 5)
    assert torch.equal(two.codes, out.codes[:, :2])
    assert rvq.codebook_size == 8
    for bad in (0, 4, -1):
        with pytest.raises(ConfigError, match="num_levels"):
            rvq(z, num_levels=bad)
    # levels quantize what the previous ones left over
    first = rvq.levels[0](z)
    assert torch.equal(rvq.levels[1](z - first.quantized).codes, out.codes[:, 1])


def test_rvq_codes_to_vectors_with_fewer_levels():
    torch.manual_seed(18)
    rvq = ResidualQuantizer(4, 3, 8, dead_code_threshold=1).train()
    z = torch.randn(2, 4, 3, 3)
    rvq(z)
    rvq.eval()
    full = rvq(z)
    for n in (1, 2, 3):
        expected = rvq(z, num_levels=n).quantized
        assert torch.allclose(rvq.codes_to_vectors(full.codes[:, :n]), expected, atol=1e-5)
    with pytest.raises(ShapeError, match="1 <= L <= 3"):
        rvq.codes_to_vectors(torch.zeros(2, 4, 3, 3, dtype=torch.long))
    with pytest.raises(ShapeError):
        rvq.codes_to_vectors(torch.zeros(2, dtype=torch.long))


def test_rvq_quantizer_dropout_uses_fewer_levels_for_some_items():
    torch.manual_seed(19)
    # gradient-learned codebooks, no k-means, no restarts: buffers stay put in training mode
    rvq = ResidualQuantizer(
        4, 3, 8, quantizer_dropout=1.0, ema=False, kmeans_init=False, dead_code_threshold=0
    ).train()
    z = torch.randn(24, 4, 2, 2)
    out = rvq(z)
    assert out.codes.shape == (24, 3, 2, 2)
    with torch.no_grad():
        partial = [rvq.codes_to_vectors(out.codes[:, :n]) for n in (1, 2, 3)]
    used = []
    for b in range(24):
        matches = [n for n, p in zip((1, 2, 3), partial) if torch.allclose(out.quantized[b], p[b], atol=1e-5)]
        assert matches, f"item {b} matches no prefix of levels"
        used.append(matches[0])
    assert min(used) < 3, "dropout=1.0 should give some items fewer levels"
    # eval mode ignores dropout
    rvq.eval()
    assert torch.allclose(rvq(z).quantized, partial[2], atol=1e-5)


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_rvq_straight_through_gradient_is_identity(dropout):
    torch.manual_seed(20)
    rvq = ResidualQuantizer(4, 3, 8, quantizer_dropout=dropout, kmeans_init=False, dead_code_threshold=0)
    z = torch.randn(6, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(6, 4, 3, 3)
    (rvq.train()(z).quantized * upstream).sum().backward()
    assert torch.allclose(z.grad, upstream, atol=1e-6)


def test_rvq_config_errors():
    with pytest.raises(ConfigError):
        ResidualQuantizer(4, 0, 8)
    with pytest.raises(ConfigError):
        ResidualQuantizer(4, 2, 8, quantizer_dropout=1.5)


# --------------------------------------------------------------------------------------------------
# build_quantizer
# --------------------------------------------------------------------------------------------------


def test_build_quantizer_types_and_errors():
    assert isinstance(build_quantizer(4, {"codebook_size": 8}), VectorQuantizer)
    vq = build_quantizer(4, {"type": "vq", "codebook_size": 8, "beta": 0.5})
    assert isinstance(vq, VectorQuantizer) and vq.beta == 0.5 and vq.codebook_size == 8
    fsq = build_quantizer(4, {"type": "fsq", "levels": [3, 3]})
    assert isinstance(fsq, FiniteScalarQuantizer) and fsq.codebook_size == 9
    rvq = build_quantizer(4, {"type": "rvq", "num_quantizers": 2, "codebook_size": 8, "decay": 0.5})
    assert isinstance(rvq, ResidualQuantizer) and len(rvq.levels) == 2 and rvq.levels[1].decay == 0.5
    config = {"type": "fsq", "levels": [3, 3]}
    build_quantizer(4, config)
    assert config == {"type": "fsq", "levels": [3, 3]}, "the caller's config must not be mutated"

    with pytest.raises(ConfigError, match="pq"):
        build_quantizer(4, {"type": "pq", "codebook_size": 8})
    with pytest.raises(ConfigError, match="vq"):
        build_quantizer(4, {"codebook_size": 8, "levels": [3, 3]})
    with pytest.raises(ConfigError, match="fsq"):
        build_quantizer(4, {"type": "fsq"})
    with pytest.raises(ConfigError, match="rvq"):
        build_quantizer(4, {"type": "rvq", "num_quantizers": 2, "codebook_size": 8, "bogus": 1})
    with pytest.raises(ConfigError):
        build_quantizer(4, {"type": "vq", "codebook_size": 1})


# --------------------------------------------------------------------------------------------------
# Two processes (gloo): codebooks stay identical across ranks
# --------------------------------------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from vqgen.tokenizers.quantizers import VectorQuantizer

    rank, init_file, out_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    torch.manual_seed(0)  # same module init on every rank (DDP would broadcast it)
    vq = VectorQuantizer(3, 16, decay=0.8, kmeans_init=True, kmeans_iters=4, dead_code_threshold=1).train()
    torch.manual_seed(100 + rank)  # different data (and batch size) on each rank
    restarts = []
    original = vq._restart_dead_codes

    def counting(flat, counts):
        restarts.append(int(((vq.steps_unused + 1).masked_fill(counts > 0, 0) >= 1).sum()))
        return original(flat, counts)

    vq._restart_dead_codes = counting
    first = None
    for step in range(5):
        z = torch.randn(2 + rank, 3, 4) * (1 + rank) + rank
        first = z if first is None else first
        vq(z)
    state = {name: b.clone() for name, b in vq.named_buffers()}
    same = {}
    for name, tensor in state.items():
        gathered = [torch.empty_like(tensor) for _ in range(2)]
        dist.all_gather(gathered, tensor.contiguous())
        same[name] = bool(torch.equal(gathered[0], gathered[1]))
    torch.save({"state": state, "same": same, "restarts": restarts, "first": first}, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()
    """
)


def test_two_process_codebooks_stay_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    init_file = tmp_path / "init"
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), str(init_file), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=90)[0].decode(errors="replace"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]

    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert results[0]["first"].shape != results[1]["first"].shape, "ranks must see different data"
    assert all(results[0]["same"].values()) and all(results[1]["same"].values())
    assert set(results[0]["state"]) >= {"codebook", "ema_cluster_size", "ema_embed_sum", "steps_unused"}
    for name, tensor in results[0]["state"].items():
        assert torch.equal(tensor, results[1]["state"][name]), f"{name} differs across ranks"
    assert bool(results[0]["state"]["initialized"])
    assert results[0]["restarts"] == results[1]["restarts"]
    assert sum(results[0]["restarts"]) > 0, "the test must exercise dead-code restarts"
    assert torch.isfinite(results[0]["state"]["codebook"]).all()


# ------------------------------------------------------------------ rotation trick and SimVQ


def test_rotate_onto_has_the_code_as_value_and_a_scaled_rotation_as_jacobian():
    generator = torch.Generator().manual_seed(0)
    z, e = torch.randn(2, 5, generator=generator).unbind(0)
    out = rotate_onto(z[None], e[None])[0]
    torch.testing.assert_close(out, e, atol=1e-5, rtol=1e-5)
    jacobian = torch.autograd.functional.jacobian(lambda x: rotate_onto(x[None], e[None])[0], z)
    scale = e.norm() / z.norm()
    rotation = jacobian / scale
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(5), atol=1e-5, rtol=1e-5)
    assert torch.linalg.det(rotation) > 0  # a rotation, not a reflection
    torch.testing.assert_close(jacobian @ z, e, atol=1e-5, rtol=1e-5)


def test_rotation_trick_quantizer_keeps_values_and_changes_only_the_gradient():
    torch.manual_seed(0)
    z = torch.randn(2, 8, 3, 3)
    plain = VectorQuantizer(8, 16, kmeans_init=False, dead_code_threshold=0).eval()
    rotated = VectorQuantizer(8, 16, kmeans_init=False, dead_code_threshold=0, rotation_trick=True).eval()
    rotated.load_state_dict(plain.state_dict())
    grads = []
    for quantizer in (plain, rotated):
        x = z.clone().requires_grad_(True)
        out = quantizer(x)
        (out.quantized * torch.arange(8.0).view(1, 8, 1, 1)).sum().backward()
        grads.append(x.grad)
        values = out.quantized.detach()
    torch.testing.assert_close(values, plain(z).quantized, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(grads[0], grads[1])  # straight-through copies the gradient; rotation turns it


def test_simvq_learns_a_linear_map_of_a_frozen_basis():
    with pytest.raises(ConfigError, match="ema=False"):
        VectorQuantizer(8, 16, simvq=True)
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 16, ema=False, simvq=True).train()
    assert bool(quantizer.initialized) and quantizer.dead_code_threshold == 0
    assert "codebook" not in dict(quantizer.named_parameters())  # the basis is a frozen buffer
    basis = quantizer.codebook.clone()
    optimizer = torch.optim.SGD(quantizer.parameters(), lr=0.1)
    z = torch.randn(4, 8, 4, 4)
    before = quantizer.codes_to_vectors(torch.arange(16).view(1, 16)).detach()
    for _ in range(3):
        optimizer.zero_grad()
        quantizer(z).loss.backward()
        optimizer.step()
    after = quantizer.codes_to_vectors(torch.arange(16).view(1, 16)).detach()
    assert torch.equal(quantizer.codebook, basis)
    moved = (after - before).norm(dim=1).squeeze(0) > 0
    assert bool(moved.all())  # every code moves through W, used or not
    again = VectorQuantizer(8, 16, ema=False, simvq=True)
    again.load_state_dict(quantizer.state_dict())
    torch.testing.assert_close(again.codes_to_vectors(torch.arange(16).view(1, 16)), after)


def test_simvq_basis_has_the_scale_of_unit_length_inputs():
    """SimVQ's frozen basis is drawn at std 1/sqrt(d), as its reference does: vectors of length about 1 spread
    over hundreds of the 1,024 codes at initialisation. At std 1 (codes of length 8 for d = 64) they all fell on
    the 7 shortest codes, and the emoji tokenizer collapsed to 0.9% of its codebook in 250 steps."""
    torch.manual_seed(0)
    quantizer = VectorQuantizer(64, 1024, ema=False, simvq=True)
    lengths = quantizer.codes_to_vectors(torch.arange(1024).view(1, 1024)).detach().norm(dim=1)
    assert 0.8 < float(lengths.median()) < 1.2
    z = torch.randn(4, 64, 16, 16) / 8.0
    with torch.no_grad():
        used = quantizer(z).codes.unique().numel()
    assert used > 300


def test_rotation_trick_and_simvq_flags_reach_the_quantizer_config():
    from vqgen.cli import build_parser
    from vqgen.cli.common import dataclass_from_args
    from vqgen.media import get_medium
    from vqgen.media.settings import TokenizerSettings, build_tokenizer, quantizer_config

    argv = [
        "train-tokenizer",
        "--data",
        "x",
        "--output",
        "y",
        "--rotation-trick",
        "--simvq",
        "--no-ema-codebook",
    ]
    settings = dataclass_from_args(TokenizerSettings, build_parser().parse_args(argv))
    config = quantizer_config(get_medium("image"), settings)
    assert config["rotation_trick"] and config["simvq"] and not config["ema"]
    tokenizer = build_tokenizer(get_medium("image"), settings, channels=3)
    assert tokenizer.quantizer.rotation_trick and tokenizer.quantizer.simvq
    plain = quantizer_config(get_medium("image"), TokenizerSettings())
    assert "rotation_trick" not in plain and "simvq" not in plain  # saved configs of plain runs are unchanged
