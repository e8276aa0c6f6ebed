"""Sampling from a CodePrior: the KV-cached decoder against the full transformers forward, temperature, top-k,
top-p, classifier-free guidance, prompts, seeding and argument checks.

The key test is ``test_kv_decoder_matches_full_forward``: the lean ``KVDecoder`` must give the same code logits
as a cache-free ``LlamaForCausalLM`` forward at every step, for multi-head, grouped-query and multi-query
attention. Weights are re-drawn with a large spread so that wrong attention, RoPE or norms would show.
All priors are tiny (hidden 32, 2 layers, 4 heads, grid 3x4, codebook 16).
"""

from __future__ import annotations

import pytest
import torch

import vqgen.priors.sampling as sampling
from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.prior import CodePrior
from vqgen.priors.sampling import KVDecoder, check_call, sample_codes, sample_from_logits
from vqgen.priors.sampling_config import SamplingConfig

GRID = [3, 4]
K = 16
L = 12


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and the test machine is shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_prior(num_classes: int = 10, num_kv_heads: int | None = None, seed: int = 0, **kwargs) -> CodePrior:
    """A tiny prior with spread-out random weights (default init gives near-uniform, near-identical logits)."""
    torch.manual_seed(seed)
    args = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=num_kv_heads, class_dropout=0.0)
    args.update(kwargs)
    prior = CodePrior(K, GRID, num_classes=num_classes, **args).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in prior.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "norm" in name:
                param.copy_(1.0 + 0.3 * noise)
            else:
                param.copy_(0.35 * noise)
    return prior


def full_code_logits(prior: CodePrior, ids: torch.Tensor) -> torch.Tensor:
    """Cache-free transformers forward: code logits ``[B, T, K]`` for every position of ``ids``."""
    with torch.no_grad():
        return prior.model(input_ids=ids, use_cache=False).logits[..., :K]


def greedy_full(prior, batch, labels=None, guidance_scale=1.0, known=None) -> torch.Tensor:
    """Greedy decoding with the full model, guidance computed by hand. Returns tokens ``[B, L]``."""
    if prior.is_conditional:
        null = torch.full((batch,), prior.null_class_id)
        cond = null if labels is None else torch.as_tensor(labels).expand(batch) + K
        cond_ids = prior.prefix_ids(cond, batch)
        null_ids = prior.prefix_ids(null, batch)
    else:
        cond_ids = null_ids = prior.prefix_ids(None, batch)
    tokens = torch.empty(batch, 0, dtype=torch.long) if known is None else known.clone()
    while tokens.shape[1] < L:
        c = full_code_logits(prior, torch.cat([cond_ids, tokens], 1))[:, -1]
        if guidance_scale != 1.0:
            n = full_code_logits(prior, torch.cat([null_ids, tokens], 1))[:, -1]
            c = n + guidance_scale * (c - n)
        tokens = torch.cat([tokens, c.argmax(-1, keepdim=True)], 1)
    return tokens


# ------------------------------------------------------------------ KVDecoder


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("prefill", [2, 7])
@pytest.mark.parametrize(
    "static, page_size",
    [(False, None), (False, 4), (True, None)],
    ids=["filled-cache", "paged", "static-cache"],
)
@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "F.linear"])
def test_kv_decoder_matches_full_forward(monkeypatch, num_kv_heads, prefill, static, page_size, onednn):
    """All one-token paths: attention over the filled cache (the CPU default), the same over a paged cache
    (pages of 4 positions: the prefill spans two, the last page is partly written at most steps), and the
    fixed-shape masked step over the whole cache (what a CUDA graph captures; run eagerly here); each with
    the products on oneDNN-packed weights (where this torch has the ops) and with plain ``F.linear``."""
    if onednn and not sampling._onednn_packing(torch.device("cpu"), torch.float32):
        pytest.skip("this torch build has no oneDNN linear ops")
    if not onednn:
        monkeypatch.setattr(sampling, "_onednn_packing", lambda device, dtype: False)
    prior = make_prior(num_kv_heads=num_kv_heads, seed=num_kv_heads)
    batch = 3
    codes = torch.randint(0, K, (batch, L), generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([1, 4, 9])
    seq = torch.cat([prior.prefix_ids(labels + K, batch), codes], 1)[:, :-1]  # [B, 2 + L - 1]
    full = full_code_logits(prior, seq)
    assert full.std() > 0.5  # the logits are far from uniform, so errors would show
    with torch.inference_mode():
        decoder = KVDecoder(prior.model, batch, seq.shape[1], K, static=static, page_size=page_size)
        assert decoder.static == static and not decoder.graphed
        assert decoder.page_size == (page_size or seq.shape[1])  # this small cache: one page by default
        assert all((linear.packed is not None) == onednn for linear in decoder.layers[0][:4])
        assert decoder.rotation is not None  # float32 RoPE as complex products (the fallback: a test below)
        logits = decoder(seq[:, :prefill])
        torch.testing.assert_close(logits, full[:, prefill - 1], atol=1e-4, rtol=1e-4)
        for t in range(prefill, seq.shape[1]):
            logits = decoder(seq[:, t : t + 1])
            assert logits.shape == (batch, K)
            torch.testing.assert_close(logits, full[:, t], atol=1e-4, rtol=1e-4)
        assert decoder.length == seq.shape[1]
        with pytest.raises(ShapeError, match="positions"):
            decoder(seq[:, :1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_graph_decoder_matches_eager_steps(dtype):
    """On a GPU the one-token step is captured as a CUDA graph: its logits follow the eager step's, and
    sampling through it is reproducible for a seeded CUDA generator."""
    prior = make_prior(num_kv_heads=2).to("cuda", dtype)
    batch = 3
    codes = torch.randint(0, K, (batch, L), generator=torch.Generator().manual_seed(5)).cuda()
    seq = torch.cat([prior.prefix_ids(torch.tensor([1, 4, 9], device="cuda") + K, batch), codes], 1)[:, :-1]
    tolerance = 1e-3 if dtype == torch.float32 else 0.1
    with torch.inference_mode():
        graphed = KVDecoder(prior.model, batch, seq.shape[1], K)
        eager = KVDecoder(prior.model, batch, seq.shape[1], K, static=False)
        assert graphed.graphed and not eager.static
        for t in range(seq.shape[1]):
            ids = seq[:, : t + 1] if t == 0 else seq[:, t : t + 1]
            got, want = graphed(ids).clone(), eager(ids)
            torch.testing.assert_close(got.float(), want.float(), atol=tolerance, rtol=tolerance)

    def draw():
        return sample_codes(
            prior,
            batch,
            class_labels=[1, 4, 9],
            generator=torch.Generator("cuda").manual_seed(0),
            sampling=SamplingConfig(guidance_scale=2.0, top_k=8),
        )

    first = draw()
    assert first.device.type == "cuda" and int(first.max()) < K
    assert torch.equal(first, draw())


@pytest.mark.parametrize("static", [False, True], ids=["step", "static-step"])
def test_kv_decoder_rotate_half_fallback_matches_full_forward(monkeypatch, static):
    """The RoPE path of bfloat16 decoders (no complex type), run in float32 here so the comparison is tight."""
    monkeypatch.setattr(sampling, "_complex_rope", lambda dtype, cos, sin: False)
    prior = make_prior(num_kv_heads=2)
    seq = torch.cat([prior.prefix_ids(torch.tensor([1, 4]) + K, 2), torch.randint(0, K, (2, L - 1))], 1)
    full = full_code_logits(prior, seq)
    with torch.inference_mode():
        decoder = KVDecoder(prior.model, 2, seq.shape[1], K, static=static, page_size=None if static else 4)
        assert decoder.rotation is None
        got = [decoder(seq[:, :3])] + [decoder(seq[:, t : t + 1]) for t in range(3, seq.shape[1])]
    torch.testing.assert_close(torch.stack(got, 1), full[:, 2:], atol=1e-4, rtol=1e-4)


def test_kv_decoder_other_rope_theta_and_unconditional():
    prior = make_prior(num_classes=0, num_kv_heads=2, rope_theta=50.0)
    seq = torch.cat([prior.prefix_ids(None, 2), torch.randint(0, K, (2, L - 1))], 1)
    full = full_code_logits(prior, seq)
    with torch.inference_mode():
        decoder = KVDecoder(prior.model, 2, seq.shape[1], K)
        got = [decoder(seq[:, :1])] + [decoder(seq[:, t : t + 1]) for t in range(1, seq.shape[1])]
    torch.testing.assert_close(torch.stack(got, 1), full, atol=1e-4, rtol=1e-4)


def test_kv_decoder_refuses_bad_calls():
    prior = make_prior()
    with torch.inference_mode():
        decoder = KVDecoder(prior.model, 2, 5, K)
        with pytest.raises(ShapeError, match="2 rows"):
            decoder(torch.zeros(3, 1, dtype=torch.long))
        with pytest.raises(ShapeError, match="6"):
            decoder(torch.zeros(2, 6, dtype=torch.long))
        decoder(torch.zeros(2, 2, dtype=torch.long))
        with pytest.raises(ShapeError, match="prefill"):
            decoder(torch.zeros(2, 2, dtype=torch.long))
        for bad in (0, 6, 2.5):
            with pytest.raises(
                ConfigError, match=f"page_size must be an int in \\[1, max_len=5\\], got {bad}"
            ):
                KVDecoder(prior.model, 2, 5, K, page_size=bad)
        with pytest.raises(ConfigError, match="static decoder keeps one page"):
            KVDecoder(prior.model, 2, 5, K, static=True, page_size=2)


def test_kv_decoder_pages_a_large_cpu_cache_only():
    """Pages of PAGE_SIZE positions for an eager CPU decoder whose keys take at least PAGED_FROM_BYTES per
    layer; one page for a smaller cache, a static decoder, or a sequence no longer than a page."""
    prior = make_prior()  # 2 layers, 4 kv heads of 8 features: 128 bytes per row and position
    max_len = 2 * sampling.PAGE_SIZE + 3
    rows = -(-sampling.PAGED_FROM_BYTES // (128 * max_len))
    with torch.inference_mode():
        paged = KVDecoder(prior.model, rows, max_len, K)
        assert paged.page_size == sampling.PAGE_SIZE
        assert paged.keys.shape == (2, 3, rows * 4, sampling.PAGE_SIZE, 8)
        assert KVDecoder(prior.model, rows - 1, max_len, K).page_size == max_len
        assert KVDecoder(prior.model, rows, max_len, K, static=True).page_size == max_len
        assert KVDecoder(prior.model, 4 * rows, sampling.PAGE_SIZE, K).page_size == sampling.PAGE_SIZE


@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
def test_sampling_through_paged_cache_is_greedy_of_full_model(monkeypatch, guidance_scale):
    """With pages of 5 positions for every decoder (the 13 positions span three pages, the last one partly
    written), greedy sampling still follows the full model step by step."""
    monkeypatch.setattr(sampling, "PAGE_SIZE", 5)
    monkeypatch.setattr(sampling, "PAGED_FROM_BYTES", 1)
    prior = make_prior(num_kv_heads=2)
    labels = torch.tensor([0, 5, 9])
    codes = sample_codes(
        prior, 3, class_labels=labels, sampling=SamplingConfig(guidance_scale=guidance_scale, temperature=0)
    )
    want = greedy_full(prior, 3, labels=labels, guidance_scale=guidance_scale)
    assert torch.equal(codes.view(3, L), want)


# ------------------------------------------------------------------ greedy and seeding


@pytest.mark.parametrize("num_kv_heads", [4, 2])
def test_temperature_zero_is_greedy_of_full_model(num_kv_heads):
    prior = make_prior(num_kv_heads=num_kv_heads)
    codes = sample_codes(prior, 3, class_labels=[0, 5, 9], sampling=SamplingConfig(temperature=0))
    assert codes.shape == (3, *GRID)
    expected = greedy_full(prior, 3, labels=torch.tensor([0, 5, 9]))
    assert torch.equal(codes.reshape(3, L), expected)
    # greedy draws no noise: any generator gives the same result
    again = prior.sample(
        3, class_labels=[0, 5, 9], temperature=0, generator=torch.Generator().manual_seed(9), progress=True
    )
    assert torch.equal(again, codes)


def test_top_k_one_and_tiny_top_p_are_greedy():
    prior = make_prior(num_classes=0)
    greedy = greedy_full(prior, 2).reshape(2, *GRID)
    gen = torch.Generator().manual_seed(3)
    assert torch.equal(
        sample_codes(prior, 2, generator=gen, sampling=SamplingConfig(top_k=1, temperature=1.5)), greedy
    )
    assert torch.equal(sample_codes(prior, 2, generator=gen, sampling=SamplingConfig(top_p=1e-6)), greedy)
    assert torch.equal(
        sample_codes(prior, 2, generator=gen, sampling=SamplingConfig(top_k=5, top_p=1e-6)), greedy
    )
    assert not torch.equal(sample_codes(prior, 2, generator=gen), greedy)  # really sampling otherwise


def test_greedy_matches_transformers_generate():
    prior = make_prior(num_classes=0)
    ours = sample_codes(prior, 2, sampling=SamplingConfig(temperature=0)).reshape(2, L)
    with torch.no_grad():
        out = prior.model.generate(
            input_ids=prior.prefix_ids(None, 2),
            max_new_tokens=L,
            min_new_tokens=L,
            do_sample=False,
            suppress_tokens=list(range(K, prior.vocab_size)),
            attention_mask=torch.ones(2, 1, dtype=torch.long),
            pad_token_id=K,
        )
    assert torch.equal(out[:, 1:], ours)


def test_same_seed_same_codes_different_seed_different_codes():
    prior = make_prior()

    def draw(seed):
        return prior.sample(
            4, class_labels=3, guidance_scale=2.0, generator=torch.Generator().manual_seed(seed)
        )

    a, b, c = draw(0), draw(0), draw(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the global RNG does not matter when a generator is given
    torch.manual_seed(123)
    assert torch.equal(draw(0), a)


def test_codes_in_range_and_normal_tensor():
    prior = make_prior()
    with torch.no_grad():  # make non-code rows of lm_head dominate: they must still never be sampled
        prior.model.lm_head.weight[K:] *= 100.0
    codes = prior.sample(8, class_labels=[1] * 8, guidance_scale=3.0, temperature=2.0)
    assert codes.dtype == torch.long
    assert codes.shape == (8, *GRID)
    assert int(codes.min()) >= 0 and int(codes.max()) < K
    assert not codes.is_inference()
    assert len(codes.unique()) > 4


# ------------------------------------------------------------------ sample_from_logits


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    keep = expected > 0
    assert (counts[~keep] == 0).all(), "a zero-probability candidate was drawn"
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


def draw_counts(logits_row, n, **kwargs):
    logits = logits_row.expand(n, -1)
    gen = torch.Generator().manual_seed(0)
    picks = sample_from_logits(logits, generator=gen, **kwargs)
    assert picks.shape == (n,) and picks.dtype == torch.long
    return torch.bincount(picks, minlength=logits_row.shape[0]).double()


# chi-square 99.9% quantiles for 5 and 2 degrees of freedom are about 20.5 and 13.8
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_sample_from_logits_matches_softmax(temperature):
    row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    counts = draw_counts(row, 6000, temperature=temperature)
    probs = torch.softmax(row.double() / temperature, -1)
    assert chi_square(counts, probs) < 20.5
    # and it is not the distribution at another temperature
    wrong = torch.softmax(row.double() / (temperature * 2), -1)
    assert chi_square(counts, wrong) > 50


def test_sample_from_logits_top_k_distribution():
    row = torch.tensor([0.5, 2.0, -1.0, 1.0, 0.0, -3.0])
    counts = draw_counts(row, 6000, top_k=3)
    probs = torch.zeros(6, dtype=torch.double)
    probs[[1, 3, 0]] = torch.softmax(row[[1, 3, 0]].double(), -1)
    assert chi_square(counts, probs) < 13.8


def test_sample_from_logits_top_p_distribution():
    row = torch.tensor([0.0, 2.0, 1.0, -1.0, 0.5, -3.0])
    p = torch.softmax(row.double(), -1)  # sorted: 1, 2, 4, 0, 3, 5
    order = [1, 2, 4]
    top_p = float(p[[1, 2]].sum()) + 0.01  # needs the third candidate to reach it
    counts = draw_counts(row, 6000, top_p=top_p)
    probs = torch.zeros(6, dtype=torch.double)
    probs[order] = p[order] / p[order].sum()
    assert chi_square(counts, probs) < 13.8
    # exactly reaching the mass of the first two keeps only those two
    counts2 = draw_counts(row, 2000, top_p=float(p[[1, 2]].sum()) - 1e-4)
    assert counts2[[0, 3, 4, 5]].sum() == 0 and counts2[1] > 0 and counts2[2] > 0


def test_top_k_never_outside_top_k():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3000, K, generator=gen) * 3
    for k in (1, 3, 7):
        picks = sample_from_logits(logits, temperature=1.5, top_k=k, generator=gen)
        allowed = logits.topk(k, dim=-1).indices
        assert (allowed == picks[:, None]).any(-1).all()
        # and top-p on top of top-k keeps within top-k too
        picks = sample_from_logits(logits, top_k=k, top_p=0.9, generator=gen)
        assert (allowed == picks[:, None]).any(-1).all()


def test_sample_from_logits_greedy_and_seeded():
    logits = torch.randn(50, K, generator=torch.Generator().manual_seed(2))
    assert torch.equal(sample_from_logits(logits, temperature=0), logits.argmax(-1))
    a = sample_from_logits(logits, generator=torch.Generator().manual_seed(4))
    b = sample_from_logits(logits, generator=torch.Generator().manual_seed(4))
    c = sample_from_logits(logits, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampling_codes_single_position_distribution():
    """One free position of a real prior: the sampled code follows softmax of the model's logits."""
    prior = make_prior(num_classes=0)
    known = torch.randint(0, K, (1, L - 1), generator=torch.Generator().manual_seed(7))
    n = 3000
    codes = sample_codes(prior, n, prompt=known, generator=torch.Generator().manual_seed(0))
    assert (codes.reshape(n, L)[:, :-1] == known).all()
    counts = torch.bincount(codes.reshape(n, L)[:, -1], minlength=K).double()
    logits = full_code_logits(prior, torch.cat([prior.prefix_ids(None, 1), known], 1))[0, -1]
    probs = torch.softmax(logits.double(), -1)
    # merge rare candidates so the chi-square approximation holds
    big = probs * n >= 5
    merged_counts = torch.cat([counts[big], counts[~big].sum(0, keepdim=True)])
    merged_probs = torch.cat([probs[big], probs[~big].sum(0, keepdim=True)])
    dof = int(big.sum())  # categories - 1
    assert chi_square(merged_counts, merged_probs) < 3 * dof + 15


# ------------------------------------------------------------------ guidance


def spy_sample_from_logits(monkeypatch):
    calls = []
    real = sampling.sample_from_logits

    def spy(logits, *args, **kwargs):
        calls.append(logits.detach().clone())
        return real(logits, *args, **kwargs)

    monkeypatch.setattr(sampling, "sample_from_logits", spy)
    return calls


@pytest.mark.parametrize("scale", [0.0, 3.0])
def test_guidance_logits_are_null_plus_scale_times_difference(monkeypatch, scale):
    prior = make_prior(num_kv_heads=2)
    calls = spy_sample_from_logits(monkeypatch)
    labels = torch.tensor([2, 7])
    codes = sample_codes(
        prior,
        2,
        class_labels=labels,
        generator=torch.Generator().manual_seed(0),
        sampling=SamplingConfig(guidance_scale=scale),
    )
    assert len(calls) == L
    tokens = codes.reshape(2, L)
    with torch.no_grad():
        cond = prior(codes, labels).logits
        null = prior(codes, None).logits
    expected = null + scale * (cond - null)
    for position, step in enumerate(calls):
        assert step.shape == (2, K)
        torch.testing.assert_close(step, expected[:, position], atol=2e-4, rtol=1e-4)
    assert tokens.shape == (2, L)


def test_guided_greedy_matches_manual_guidance():
    prior = make_prior()
    codes = sample_codes(
        prior, 2, class_labels=[4, 1], sampling=SamplingConfig(guidance_scale=2.5, temperature=0)
    )
    expected = greedy_full(prior, 2, labels=torch.tensor([4, 1]), guidance_scale=2.5)
    assert torch.equal(codes.reshape(2, L), expected)
    # guidance really changes the result here
    plain = sample_codes(prior, 2, class_labels=[4, 1], sampling=SamplingConfig(temperature=0))
    assert not torch.equal(plain, codes)


def test_guidance_scale_one_and_no_labels_do_not_double_batch(monkeypatch):
    prior = make_prior()
    rows = []
    real = sampling.KVDecoder

    class SpyDecoder(real):
        def __init__(self, model, batch, *args, **kwargs):
            rows.append(batch)
            super().__init__(model, batch, *args, **kwargs)

    monkeypatch.setattr(sampling, "KVDecoder", SpyDecoder)
    calls = spy_sample_from_logits(monkeypatch)
    sample_codes(prior, 3, class_labels=[1, 2, 3], sampling=SamplingConfig(guidance_scale=1.0))
    sample_codes(
        prior, 3, class_labels=None, sampling=SamplingConfig(guidance_scale=4.0)
    )  # null vs null guidance is a no-op
    sample_codes(prior, 3, class_labels=[1, 2, 3], sampling=SamplingConfig(guidance_scale=4.0))
    assert rows == [3, 3, 6]
    assert all(c.shape == (3, K) for c in calls)


def test_static_cache_decoder_samples_the_same_codes(monkeypatch):
    """sample_codes through the fixed-shape step (the CUDA-graph path, run eagerly) draws what the default
    step draws from the same generator, with guidance and top-k."""
    prior = make_prior(num_kv_heads=2)

    def draw():
        return sample_codes(
            prior,
            3,
            class_labels=[1, 2, 3],
            generator=torch.Generator().manual_seed(3),
            sampling=SamplingConfig(guidance_scale=2.0, top_k=8),
        )

    default = draw()
    real = sampling.KVDecoder
    monkeypatch.setattr(sampling, "KVDecoder", lambda *args, **kwargs: real(*args, static=True, **kwargs))
    assert torch.equal(draw(), default)


def test_unlabelled_sampling_uses_null_class():
    prior = make_prior()
    codes = prior.sample(2, temperature=0)
    assert torch.equal(codes.reshape(2, L), greedy_full(prior, 2))


# ------------------------------------------------------------------ prompt


def test_prompt_sequence_form_kept_and_continued():
    prior = make_prior()
    known = torch.randint(0, K, (2, 5), generator=torch.Generator().manual_seed(1))
    codes = sample_codes(prior, 2, class_labels=[3, 6], prompt=known, sampling=SamplingConfig(temperature=0))
    tokens = codes.reshape(2, L)
    assert torch.equal(tokens[:, :5], known)
    assert torch.equal(tokens, greedy_full(prior, 2, labels=torch.tensor([3, 6]), known=known))
    # random sampling keeps the prefix too, with guidance
    drawn = sample_codes(
        prior, 2, class_labels=[3, 6], prompt=known, sampling=SamplingConfig(guidance_scale=2.0)
    )
    assert torch.equal(drawn.reshape(2, L)[:, :5], known)


def test_prompt_top_rows_block_and_broadcast():
    prior = make_prior(num_classes=0)
    rows = torch.randint(0, K, (1, 2, 4), generator=torch.Generator().manual_seed(2))
    codes = sample_codes(prior, 3, prompt=rows, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (3, *GRID)
    assert (codes[:, :2] == rows).all()
    assert len({tuple(c.flatten().tolist()) for c in codes}) > 1  # the rest is sampled per row
    greedy = sample_codes(prior, 1, prompt=rows, sampling=SamplingConfig(temperature=0))
    assert torch.equal(greedy.reshape(1, L), greedy_full(prior, 1, known=rows.reshape(1, 8)))


def test_full_prefix_returned_as_is():
    prior = make_prior()
    full = torch.randint(0, K, (2, *GRID))
    codes = sample_codes(prior, 2, class_labels=1, prompt=full)
    assert torch.equal(codes, full)
    assert codes.data_ptr() != full.data_ptr()


@pytest.mark.parametrize("bad", [16, -1])
def test_prompt_out_of_range_refused(bad):
    prior = make_prior()
    prefix = torch.tensor([[0, 3, bad]])
    with pytest.raises(ConfigError, match=str(bad)):
        sample_codes(prior, 1, prompt=prefix)


def test_prompt_bad_shape_or_batch():
    prior = make_prior()
    with pytest.raises(ShapeError, match="batch"):
        sample_codes(prior, 3, prompt=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"\[1, 2, 3\]"):
        sample_codes(prior, 1, prompt=torch.zeros(1, 2, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match="float32"):
        sample_codes(prior, 1, prompt=torch.zeros(1, 4))


# ------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(top_p=0.0), "0.0"),
        (dict(top_p=1.5), "1.5"),
        (dict(temperature=-0.5), "-0.5"),
        (dict(temperature=float("nan")), "nan"),
        (dict(top_k=0), "got 0"),
        (dict(top_k=17), "17"),
        (dict(top_k=2.0), "2.0"),
        (dict(guidance_scale=-1.0), "-1.0"),
        (dict(guidance_scale=float("inf")), "inf"),
        (dict(class_labels=12), "12"),
        (dict(class_labels=10), "10"),
        (dict(class_labels=[1, 2, 3]), r"\[3\]"),
        (dict(generator=0), "int"),
    ],
)
def test_bad_sampling_args(kwargs, needle):
    prior = make_prior(num_classes=10)
    error = (
        ShapeError if "class_labels" in kwargs and isinstance(kwargs["class_labels"], list) else ConfigError
    )
    with pytest.raises(error, match=needle):
        prior.sample(2, **kwargs)


def test_unconditional_prior_refuses_guidance_and_labels():
    prior = make_prior(num_classes=0)
    with pytest.raises(ConfigError, match="guidance_scale=2.0"):
        prior.sample(1, guidance_scale=2.0)
    with pytest.raises(ConfigError, match="num_classes=0"):
        prior.sample(1, class_labels=3)


@pytest.mark.parametrize("batch_size", [0, -1, 1.0, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ConfigError, match="batch_size"):
        check_call(batch_size, None)
