"""Sampling from a CodePrior: the KV-cached decoder against the full transformers forward, temperature, top-k,
top-p, classifier-free guidance, prompts, seeding and argument checks.

The key test is ``test_kv_decoder_matches_full_forward``: the decoder ``decoder_for`` derives from the prior must
give the same code logits as a cache-free ``LlamaForCausalLM`` forward at every step, for multi-head,
grouped-query and multi-query attention, on every path (prefill, one-token step over the filled cache, the
fixed-shape step a CUDA graph captures, run eagerly here). Weights are re-drawn with a large spread so that
wrong attention, RoPE or norms would show.
All priors are tiny (hidden 32, 2 layers, 4 heads, grid 3x4, codebook 16).
"""

from __future__ import annotations

import pytest
import torch

import vqgen.priors.sampling as sampling
from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.decoder import decoder_for
from vqgen.priors.prior import CodePrior
from vqgen.priors.sampling import check_call, sample_codes, sample_from_logits
from vqgen.priors.sampling_config import SamplingConfig

GRID = [3, 4]
K = 16
L = 12


pytestmark = pytest.mark.usefixtures("one_thread")


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
    cond_ids = prior.prefix(labels, batch)
    null_ids = prior.prefix(None, batch)
    tokens = torch.empty(batch, 0, dtype=torch.long) if known is None else known.clone()
    while tokens.shape[1] < L:
        c = full_code_logits(prior, torch.cat([cond_ids, tokens], 1))[:, -1]
        if guidance_scale != 1.0:
            n = full_code_logits(prior, torch.cat([null_ids, tokens], 1))[:, -1]
            c = n + guidance_scale * (c - n)
        tokens = torch.cat([tokens, c.argmax(-1, keepdim=True)], 1)
    return tokens


# ------------------------------------------------------------------ the decoder


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("prefill", [2, 7])
@pytest.mark.parametrize("static", [False, True], ids=["filled-cache", "static-cache"])
def test_kv_decoder_matches_full_forward(num_kv_heads, prefill, static):
    """Both one-token paths: attention over the filled part of the cache (the CPU default) and the fixed-shape
    masked step over the whole cache (what a CUDA graph captures; run eagerly here), after the prefill."""
    prior = make_prior(num_kv_heads=num_kv_heads, seed=num_kv_heads)
    batch = 3
    codes = torch.randint(0, K, (batch, L), generator=torch.Generator().manual_seed(5))
    seq = torch.cat([prior.prefix(torch.tensor([1, 4, 9]), batch), codes], 1)[:, :-1]  # [B, 2 + L - 1]
    full = full_code_logits(prior, seq)
    assert full.std() > 0.5  # the logits are far from uniform, so errors would show
    with torch.inference_mode():
        decoder = decoder_for(prior, batch, seq.shape[1], static=static)
        assert decoder.static == static and not decoder.graphed
        logits = decoder(seq[:, :prefill])
        torch.testing.assert_close(logits, full[:, prefill - 1], atol=1e-4, rtol=1e-4)
        for t in range(prefill, seq.shape[1]):
            logits = decoder(seq[:, t : t + 1])
            assert logits.shape == (batch, K)
            torch.testing.assert_close(logits, full[:, t], atol=1e-4, rtol=1e-4)
        assert decoder.length == seq.shape[1]
        with pytest.raises(ShapeError, match="positions"):
            decoder(seq[:, :1])


def test_decoder_leaves_the_prior_untouched():
    """``decoder_for`` copies what it derives: the prior's parameters keep their values."""
    prior = make_prior(num_kv_heads=2)
    before = {name: p.detach().clone() for name, p in prior.named_parameters()}
    with torch.inference_mode():
        decoder_for(prior, 2, 5)
    assert all(torch.equal(p, before[name]) for name, p in prior.named_parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_graph_decoder_matches_eager_steps(dtype):
    """On a GPU the one-token step is captured as a CUDA graph: its logits follow the eager step's, and
    sampling through it is reproducible for a seeded CUDA generator."""
    prior = make_prior(num_kv_heads=2).to("cuda", dtype)
    batch = 3
    codes = torch.randint(0, K, (batch, L), generator=torch.Generator().manual_seed(5)).cuda()
    seq = torch.cat([prior.prefix(torch.tensor([1, 4, 9]), batch), codes], 1)[:, :-1]
    tolerance = 1e-3 if dtype == torch.float32 else 0.1
    with torch.inference_mode():
        graphed = decoder_for(prior, batch, seq.shape[1])
        eager = decoder_for(prior, batch, seq.shape[1], static=False)
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


def test_kv_decoder_other_rope_theta_and_unconditional():
    prior = make_prior(num_classes=0, num_kv_heads=2, rope_theta=50.0)
    seq = torch.cat([prior.prefix(None, 2), torch.randint(0, K, (2, L - 1))], 1)
    full = full_code_logits(prior, seq)
    with torch.inference_mode():
        decoder = decoder_for(prior, 2, seq.shape[1])
        got = [decoder(seq[:, :1])] + [decoder(seq[:, t : t + 1]) for t in range(1, seq.shape[1])]
    torch.testing.assert_close(torch.stack(got, 1), full, atol=1e-4, rtol=1e-4)


def test_kv_decoder_refuses_bad_calls():
    prior = make_prior()
    with torch.inference_mode():
        decoder = decoder_for(prior, 2, 5)
        with pytest.raises(ShapeError, match="2 rows"):
            decoder(torch.zeros(3, 1, dtype=torch.long))
        with pytest.raises(ShapeError, match="6"):
            decoder(torch.zeros(2, 6, dtype=torch.long))
        with pytest.raises(ShapeError, match=r"\[rows, T\]"):
            decoder(torch.zeros(2, dtype=torch.long))
        decoder(torch.zeros(2, 2, dtype=torch.long))
        with pytest.raises(ShapeError, match="prefill"):
            decoder(torch.zeros(2, 2, dtype=torch.long))


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
            input_ids=prior.prefix(None, 2),
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
    logits = full_code_logits(prior, torch.cat([prior.prefix(None, 1), known], 1))[0, -1]
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


@pytest.mark.parametrize(
    "schedule, first, last", [("rising", 1.0, 5.0), ("falling", 5.0, 1.0), ("constant", 5.0, 5.0)]
)
def test_guidance_schedule_moves_the_scale_over_the_drawn_tokens(monkeypatch, schedule, first, last):
    prior = make_prior()
    calls = spy_sample_from_logits(monkeypatch)
    labels = torch.tensor([2, 7])
    config = SamplingConfig(guidance_scale=5.0, guidance_schedule=schedule)
    codes = sample_codes(
        prior, 2, class_labels=labels, generator=torch.Generator().manual_seed(0), sampling=config
    )
    with torch.no_grad():
        cond = prior(codes, labels).logits
        null = prior(codes, None).logits
    scales = [first + (last - first) * i / (L - 1) for i in range(L)]
    for position, (step, scale) in enumerate(zip(calls, scales, strict=True)):
        expected = null[:, position] + scale * (cond[:, position] - null[:, position])
        torch.testing.assert_close(step, expected, atol=2e-4, rtol=1e-4)


def test_guidance_schedule_ramps_over_the_drawn_tokens_only(monkeypatch):
    """With a prompt, the ramp starts at the first token drawn, not at the first of the sequence."""
    prior = make_prior()
    calls = spy_sample_from_logits(monkeypatch)
    labels = torch.tensor([3])
    prompt = torch.tensor([[1, 2, 3, 4]])
    config = SamplingConfig(guidance_scale=3.0, guidance_schedule="rising")
    codes = sample_codes(prior, 1, class_labels=labels, prompt=prompt, sampling=config)
    assert len(calls) == L - 4
    with torch.no_grad():
        cond = prior(codes, labels).logits
        null = prior(codes, None).logits
    # the first drawn token is unguided (scale 1: the conditional logits), the last fully guided
    torch.testing.assert_close(calls[0], cond[:, 4], atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(
        calls[-1], null[:, -1] + 3.0 * (cond[:, -1] - null[:, -1]), atol=2e-4, rtol=1e-4
    )


def test_guidance_schedule_is_checked_and_described():
    with pytest.raises(ConfigError, match="guidance_schedule must be one of constant, rising, falling"):
        SamplingConfig(guidance_schedule="cosine")
    assert (
        SamplingConfig(guidance_scale=4, guidance_schedule="rising").describe()
        == "temperature 1, guidance 4 rising"
    )
    assert SamplingConfig(guidance_scale=4).describe() == "temperature 1, guidance 4"
    ramp = SamplingConfig(guidance_scale=4, guidance_schedule="falling")
    assert [ramp.guidance_at(f) for f in (0.0, 0.5, 1.0)] == [4.0, 2.5, 1.0]


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
    real = sampling.decoder_for

    def spy(prior, batch, *args, **kwargs):
        rows.append(batch)
        return real(prior, batch, *args, **kwargs)

    monkeypatch.setattr(sampling, "decoder_for", spy)
    calls = spy_sample_from_logits(monkeypatch)
    sample_codes(prior, 3, class_labels=[1, 2, 3], sampling=SamplingConfig(guidance_scale=1.0))
    sample_codes(
        prior, 3, class_labels=None, sampling=SamplingConfig(guidance_scale=4.0)
    )  # null vs null guidance is a no-op
    sample_codes(prior, 3, class_labels=[1, 2, 3], sampling=SamplingConfig(guidance_scale=4.0))
    assert rows == [3, 3, 6]
    assert all(c.shape == (3, K) for c in calls)


def test_static_cache_decoder_samples_the_same_codes():
    """sample_codes through the fixed-shape step (the CUDA-graph path, run eagerly) draws what the default
    step draws from the same generator, with guidance and top-k."""
    prior = make_prior(num_kv_heads=2)

    def draw(**options):
        return sample_codes(
            prior,
            3,
            class_labels=[1, 2, 3],
            generator=torch.Generator().manual_seed(3),
            sampling=SamplingConfig(guidance_scale=2.0, top_k=8),
            decoder_options=options,
        )

    assert torch.equal(draw(static=True), draw())


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


def test_sampling_config_describes_itself_for_reports():
    assert SamplingConfig().describe() == "temperature 1, guidance 1"
    assert (
        SamplingConfig(temperature=0.8, top_k=100, top_p=0.95, guidance_scale=5).describe()
        == "temperature 0.8, top-k 100, top-p 0.95, guidance 5"
    )


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


# ------------------------------------------------------------------ module structure


def test_the_sampler_never_imports_the_prior():
    """One-way dependency: ``prior`` imports the sampler; the sampler's modules import ``prior`` only for type
    hints (under ``TYPE_CHECKING``), nowhere else, not even lazily inside a function."""
    import ast
    from pathlib import Path

    import vqgen.priors

    folder = Path(vqgen.priors.__file__).parent
    for name in ("sampling", "walk", "decoder", "reference", "sampling_config", "layout"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only:
                if isinstance(node, ast.ImportFrom):
                    modules = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module or ""]
                else:
                    modules = [alias.name for alias in node.names]
                assert "vqgen.priors.prior" not in modules, f"{name}.py imports the prior"
