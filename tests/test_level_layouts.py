"""CodePrior and sampling with the residual-level layouts ``flatten`` and ``delay`` (audio priors, MusicGen
style), and shorter clips (``time_steps``) for every layout.

References are built by hand from the ``transformers`` model: the input of a step is the sum of its tokens'
embedding rows, the next step's tokens are read from the code rows of ``lm_head`` within each level's range.
All priors are tiny (hidden 32, 2 layers, 4 heads; 3 levels x 4 frames, codebook 8).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_sampling import spy_sample_from_logits

from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.decoder import decoder_for
from vqgen.priors.prior import CodePrior
from vqgen.priors.sampling import sample_codes
from vqgen.priors.sampling_config import SamplingConfig
from vqgen.priors.walk import step_ids

LEVELS, FRAMES, CB = 3, 4, 8
GRID = [LEVELS, FRAMES]


pytestmark = pytest.mark.usefixtures("one_thread")


def make_prior(layout: str, num_classes: int = 4, seed: int = 0, grid=GRID, spread: bool = True, **kwargs):
    """A tiny prior; ``spread`` re-draws the weights widely so that logits are far from uniform."""
    torch.manual_seed(seed)
    args = dict(hidden_size=32, num_layers=2, num_heads=4, class_dropout=0.0, layout=layout)
    args.update(kwargs)
    prior = CodePrior(CB, list(grid), num_classes=num_classes, **args).eval()
    if spread:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, param in prior.named_parameters():
                noise = torch.randn(param.shape, generator=gen)
                param.copy_(1.0 + 0.3 * noise if "norm" in name else 0.35 * noise)
    return prior


def random_codes(batch: int, seed: int = 0, grid=GRID) -> torch.Tensor:
    return torch.randint(0, CB, (batch, *grid), generator=torch.Generator().manual_seed(seed))


def step_inputs(prior: CodePrior, head: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """By hand: embedding rows of the head ids, then per step the sum of its ``streams`` tokens' rows."""
    table = prior.model.model.embed_tokens.weight
    batch, streams = tokens.shape[0], prior.layout.streams
    steps = table[tokens].view(batch, -1, streams, table.shape[1]).sum(2)
    return torch.cat([table[head], steps], 1)


def full_logits(prior: CodePrior, head: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cache-free transformers forward -> code logits ``[B, 1 + steps, N]`` (rows of every input step)."""
    with torch.no_grad():
        out = prior.model(inputs_embeds=step_inputs(prior, head, tokens), use_cache=False).logits
    return out[:, prior.num_prefix_tokens - 1 :, : prior.num_code_tokens]


def greedy_full(prior, batch, labels=None, guidance_scale=1.0, known=None) -> torch.Tensor:
    """Greedy decoding with the full model and guidance by hand -> tokens ``[B, length]``.

    ``known``: tokens ``[B, length]`` with -1 where free (pads are taken from the layout).
    """
    layout = prior.layout
    streams = layout.streams
    cond_head, null_head = prior.prefix(labels, batch), prior.prefix(None, batch)
    fixed = layout.fixed_tokens()
    ranges = layout.code_ranges()
    tokens = torch.empty(batch, 0, dtype=torch.long)
    for step in range(layout.steps):
        logits = full_logits(prior, cond_head, tokens)[:, -1]
        if guidance_scale != 1.0:
            null_logits = full_logits(prior, null_head, tokens)[:, -1]
            logits = null_logits + guidance_scale * (logits - null_logits)
        new = []
        for position in range(step * streams, (step + 1) * streams):
            lo, hi = ranges[position].tolist()
            if fixed is not None and fixed[position] >= 0:
                new.append(fixed[position].expand(batch))
            elif known is not None and (known[:, position] >= 0).all():
                new.append(known[:, position])
            else:
                new.append(logits[:, lo:hi].argmax(-1) + lo)
        tokens = torch.cat([tokens, torch.stack(new, 1)], 1)
    return tokens


# ------------------------------------------------------------------ vocabulary and loss


def test_vocabulary_and_sequence_sizes():
    flat = make_prior("flatten", spread=False)
    assert flat.num_code_tokens == LEVELS * CB
    assert flat.seq_len == 2 + LEVELS * FRAMES
    delay = make_prior("delay", spread=False)
    assert delay.num_code_tokens == LEVELS * CB + 1  # plus the pad
    assert delay.layout.pad_id == LEVELS * CB
    assert delay.bos_id == delay.vocab_size - 1 == LEVELS * CB + 1 + 4 + 1
    assert delay.seq_len == 2 + FRAMES + LEVELS - 1
    assert delay.model.config.max_position_embeddings == delay.seq_len


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_forward_matches_hand_built_loss(layout):
    prior = make_prior(layout)
    codes = random_codes(3, seed=1)
    labels = torch.tensor([0, 3, 1])
    out = prior(codes, labels)
    tokens = prior.layout.flatten(codes)
    streams = prior.layout.streams
    logits = full_logits(prior, prior.prefix(labels, 3), tokens[:, :-streams])
    # each step's hidden state predicts all positions of the step, each within its own range
    logits = logits.repeat_interleave(streams, dim=1)
    ranges = prior.layout.code_ranges()
    ids = torch.arange(prior.num_code_tokens)
    allowed = (ids >= ranges[:, :1]) & (ids < ranges[:, 1:])
    logits = logits.masked_fill(~allowed, float("-inf"))
    torch.testing.assert_close(out.logits, logits, atol=1e-4, rtol=1e-4)
    assert out.logits.shape == (3, prior.layout.length, prior.num_code_tokens)
    real = tokens[0] != getattr(prior.layout, "pad_id", -1)
    expected = F.cross_entropy(logits[:, real].reshape(-1, logits.shape[-1]), tokens[:, real].reshape(-1))
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)
    # Training's path: each position scored over its own level's lm_head rows only, no full logits.
    lean = prior(codes, labels, return_logits=False)
    assert lean.logits is None
    torch.testing.assert_close(lean.loss, expected, atol=1e-5, rtol=1e-5)
    # the likelihood sums log p over the codes only (pads add nothing)
    ll = prior.log_likelihood(codes, labels)
    assert ll.shape == (3,)
    logp = torch.log_softmax(logits[:, real], -1).gather(-1, tokens[:, real, None]).squeeze(-1)
    torch.testing.assert_close(ll, logp.sum(1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ll.sum(), -out.loss * codes.numel(), atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_bad_codes_refused(layout):
    prior = make_prior(layout, spread=False)
    with pytest.raises(ShapeError, match=r"\[B, 3, 4\].*\[2, 4, 3\]"):
        prior(torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"\[0, 8\).*\[8, 8\]"):
        prior(torch.full((1, *GRID), 8))
    with pytest.raises(ConfigError, match=r"\[-2, 0\]"):
        prior.log_likelihood(torch.full((1, *GRID), -2).index_fill(2, torch.tensor([0]), 0))


# ------------------------------------------------------------------ lean decoder and greedy sampling


def test_kv_decoder_with_step_ids_matches_full_forward():
    """Multi-stream input: the prefill holds the prefix (one token per step, -1 beside it) and whole steps,
    every later call one step of ``S`` tokens whose embeddings the decoder sums."""
    prior = make_prior("delay", num_kv_heads=2)
    codes = random_codes(2, seed=4)
    tokens = prior.layout.flatten(codes)
    head = prior.prefix(torch.tensor([1, 2]), 2)
    full = full_logits(prior, head, tokens[:, :-LEVELS])  # [B, steps, N]
    assert full.std() > 0.5
    with torch.inference_mode():
        decoder = decoder_for(prior, 2, prior.seq_len - 1)
        first = 2  # prefill BOS, condition and two whole steps
        ids = step_ids(head, tokens[:, : first * LEVELS], LEVELS)
        assert ids.shape == (2, 2 + first, LEVELS) and (ids[:, :2, 1:] == -1).all()
        torch.testing.assert_close(decoder(ids), full[:, first], atol=1e-4, rtol=1e-4)
        for step in range(first, prior.layout.steps - 1):
            feed = step_ids(None, tokens[:, step * LEVELS : (step + 1) * LEVELS], LEVELS)
            torch.testing.assert_close(decoder(feed), full[:, step + 1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_greedy_sampling_matches_full_model(layout):
    prior = make_prior(layout)
    codes = sample_codes(prior, 3, class_labels=[0, 2, 3], sampling=SamplingConfig(temperature=0))
    assert codes.shape == (3, *GRID)
    expected = greedy_full(prior, 3, labels=torch.tensor([0, 2, 3]))
    assert torch.equal(prior.layout.flatten(codes), expected)


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_guided_greedy_matches_manual_guidance(layout):
    prior = make_prior(layout)
    codes = sample_codes(
        prior, 2, class_labels=[3, 1], sampling=SamplingConfig(guidance_scale=2.5, temperature=0)
    )
    expected = greedy_full(prior, 2, labels=torch.tensor([3, 1]), guidance_scale=2.5)
    assert torch.equal(prior.layout.flatten(codes), expected)
    assert not torch.equal(
        codes, sample_codes(prior, 2, class_labels=[3, 1], sampling=SamplingConfig(temperature=0))
    )


def test_delay_guidance_logits_per_level(monkeypatch):
    """One draw per step over every free level at once: rows [B * levels, codebook], null + g * (cond - null)."""
    prior = make_prior("delay")
    calls = spy_sample_from_logits(monkeypatch)
    labels = torch.tensor([2, 0])
    codes = sample_codes(
        prior,
        2,
        class_labels=labels,
        generator=torch.Generator().manual_seed(0),
        sampling=SamplingConfig(guidance_scale=3.0),
    )
    layout = prior.layout
    assert len(calls) == layout.steps
    with torch.no_grad():
        cond, null = prior(codes, labels).logits, prior(codes, None).logits
    guided = null + 3.0 * (cond - null)
    fixed = layout.fixed_tokens()
    for step, drawn in enumerate(calls):
        free = [p for p in range(step * LEVELS, (step + 1) * LEVELS) if fixed[p] < 0]
        assert drawn.shape == (2 * len(free), CB)
        lo = layout.code_ranges()[free, 0]
        expected = torch.stack([guided[:, p, int(lo_p) : int(lo_p) + CB] for p, lo_p in zip(free, lo)], 1)
        torch.testing.assert_close(drawn, expected.reshape(-1, CB), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_guidance_level_weights_share_the_strength_per_level(monkeypatch, layout):
    """Level ``k``'s codes are drawn from ``null + (1 + (g - 1) * w_k) * (cond - null)``."""
    prior = make_prior(layout)
    calls = spy_sample_from_logits(monkeypatch)
    labels = torch.tensor([2, 0])
    weights = (0.0, 0.5, 1.5)
    config = SamplingConfig(guidance_scale=3.0, guidance_level_weights=weights)
    codes = sample_codes(
        prior, 2, class_labels=labels, generator=torch.Generator().manual_seed(0), sampling=config
    )
    layout = prior.layout
    with torch.no_grad():
        cond, null = prior(codes, labels).logits, prior(codes, None).logits
    ranges, fixed = layout.code_ranges(), layout.fixed_tokens()
    free = [p for p in range(layout.length) if fixed is None or fixed[p] < 0]
    expected = []
    for p in free:  # sequence order, as the steps draw them (a delay step's levels in order)
        lo = int(ranges[p, 0])
        scale = 1 + 2.0 * weights[lo // CB]
        expected.append((null[:, p] + scale * (cond[:, p] - null[:, p]))[:, lo : lo + CB])
    if layout.streams == 1:
        drawn = torch.stack(calls, 1)
    else:  # rows [B * free levels of the step, CB] per step
        drawn = torch.cat([c.view(2, -1, CB) for c in calls], 1)
    torch.testing.assert_close(drawn, torch.stack(expected, 1), atol=2e-4, rtol=1e-4)


def test_guidance_level_weights_of_one_are_plain_guidance_and_other_counts_are_refused():
    prior = make_prior("delay")
    draw = dict(class_labels=[3, 1], generator=None)
    plain = sample_codes(prior, 2, sampling=SamplingConfig(guidance_scale=2.5, temperature=0), **draw)
    ones = SamplingConfig(guidance_scale=2.5, temperature=0, guidance_level_weights=[1, 1, 1])
    assert torch.equal(sample_codes(prior, 2, sampling=ones, **draw), plain)
    assert ones.guidance_level_weights == (1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="guidance_level_weights has 2 values; the prior has 3 code levels"):
        sample_codes(prior, 2, sampling=SamplingConfig(guidance_level_weights=(1, 1)), **draw)
    raster = CodePrior(CB, [4, 4], num_classes=2, hidden_size=32, num_layers=1, num_heads=4)
    with pytest.raises(ConfigError, match="needs a prior over residual code levels .* layout is raster"):
        sample_codes(raster, 1, class_labels=0, sampling=SamplingConfig(guidance_level_weights=(1,)))


@pytest.mark.parametrize("weights", [(), (1, -1), (1, float("nan")), "11", 2.0, (True, 1)])
def test_bad_guidance_level_weights_are_refused_in_one_line(weights):
    with pytest.raises(
        ConfigError, match="guidance_level_weights must be None or numbers >= 0, one per code level"
    ):
        SamplingConfig(guidance_level_weights=weights)


def test_guidance_level_weights_are_described():
    config = SamplingConfig(guidance_scale=5, guidance_level_weights=(0.75, 1))
    assert config.describe() == "temperature 1, guidance 5 (level weights 0.75,1)"


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_samples_are_legal_seeded_and_keep_pads(layout):
    prior = make_prior(layout)
    with torch.no_grad():  # other levels' rows (and the pad row) dominate: they must never be drawn
        prior.model.lm_head.weight[CB:] *= 50.0
    draw = dict(class_labels=1, guidance_scale=2.0, temperature=1.5, top_k=5, top_p=0.95)
    a = prior.sample(6, generator=torch.Generator().manual_seed(0), **draw)
    b = prior.sample(6, generator=torch.Generator().manual_seed(0), **draw)
    assert torch.equal(a, b) and not a.is_inference()
    assert a.shape == (6, *GRID) and int(a.min()) >= 0 and int(a.max()) < CB
    assert len(a[:, 1:].unique()) > 2  # the upper levels are sampled too
    assert not torch.equal(a, prior.sample(6, generator=torch.Generator().manual_seed(1), **draw))


# ------------------------------------------------------------------ prompts


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_prompt_frames_kept_and_continued(layout):
    prior = make_prior(layout)
    frames = random_codes(2, seed=5)[:, :, :2]
    codes = sample_codes(prior, 2, class_labels=[1, 2], prompt=frames, sampling=SamplingConfig(temperature=0))
    assert torch.equal(codes[:, :, :2], frames)
    known, _ = prior.layout.known_tokens(frames)
    expected = greedy_full(prior, 2, labels=torch.tensor([1, 2]), known=known)
    assert torch.equal(prior.layout.flatten(codes), expected)
    # random, guided sampling with one prompt broadcast over the batch keeps it too
    drawn = sample_codes(
        prior, 4, class_labels=0, prompt=frames[:1], sampling=SamplingConfig(guidance_scale=2.0)
    )
    assert (drawn[:, :, :2] == frames[:1]).all()
    assert len({tuple(c.flatten().tolist()) for c in drawn}) > 1
    # the whole clip as prompt comes back as it is
    full = random_codes(2, seed=6)
    assert torch.equal(sample_codes(prior, 2, prompt=full), full)


def test_prompt_tokens_in_sequence_order_and_bad_prompts():
    prior = make_prior("delay")
    codes = random_codes(1, seed=7)
    tokens = prior.layout.flatten(codes)[:, :7]  # steps 0, 1 and the first level of step 2
    drawn = sample_codes(prior, 2, prompt=tokens, generator=torch.Generator().manual_seed(0))
    assert torch.equal(prior.layout.flatten(drawn)[:, :7], tokens.expand(2, -1))
    bad = tokens.clone()
    bad[0, 1] = 3  # a level-1 code where the pattern has a pad
    with pytest.raises(ConfigError, match=r"code range.*token 3 at sequence position 1 where \[24, 25\)"):
        sample_codes(prior, 1, prompt=bad)
    with pytest.raises(ConfigError, match=r"\[0, 8\).*\[0, 9\]"):
        sample_codes(prior, 1, prompt=torch.full((1, LEVELS, 1), 9).index_fill(1, torch.tensor([0]), 0))
    with pytest.raises(ShapeError, match=r"n<=4.*\[1, 3, 5\]"):
        sample_codes(prior, 1, prompt=torch.zeros(1, LEVELS, 5, dtype=torch.long))
    with pytest.raises(ShapeError, match="batch"):
        sample_codes(prior, 3, prompt=torch.zeros(2, LEVELS, 1, dtype=torch.long))


# ------------------------------------------------------------------ shorter clips


@pytest.mark.parametrize(
    ("layout", "grid", "axis"),
    [("flatten", GRID, 1), ("delay", GRID, 1), ("raster", [4, 2, 3], 0), ("raster", [4, 3], 0)],
)
def test_time_steps_gives_the_start_of_a_full_sample(layout, grid, axis):
    prior = make_prior(layout, grid=grid)
    draw = dict(class_labels=[1, 3], guidance_scale=1.5, top_k=6)
    full = prior.sample(2, generator=torch.Generator().manual_seed(0), **draw)
    for n in (1, 2, grid[axis]):
        short = prior.sample(2, generator=torch.Generator().manual_seed(0), time_steps=n, **draw)
        assert torch.equal(short, full.narrow(axis + 1, 0, n))


def test_time_steps_with_prefix_and_errors():
    prior = make_prior("delay")
    frames = random_codes(1, seed=8)[:, :, :2]
    codes = prior.sample(2, prompt=frames, time_steps=3, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (2, LEVELS, 3) and (codes[:, :, :2] == frames).all()
    assert torch.equal(prior.sample(2, prompt=frames, time_steps=2), frames.expand(2, -1, -1))
    with pytest.raises(ShapeError, match=r"n<=1.*\[1, 3, 2\]"):  # prompt longer than the clip
        prior.sample(1, prompt=frames, time_steps=1)
    for bad in (0, 5, 1.5):
        with pytest.raises(ConfigError, match=rf"time_steps.*\[1, 4\].*{bad}"):
            prior.sample(1, time_steps=bad)
    raster = make_prior("raster", grid=[4, 3])
    with pytest.raises(ShapeError, match=r"P<=6.*\[1, 7\]"):
        raster.sample(1, prompt=torch.zeros(1, 7, dtype=torch.long), time_steps=2)


# ------------------------------------------------------------------ save, load, train


@pytest.mark.parametrize("layout", ["flatten", "delay"])
def test_save_and_load_round_trip(layout, tmp_path):
    prior = make_prior(layout)
    prior.save_pretrained(tmp_path)
    loaded = CodePrior.from_pretrained(tmp_path).eval()
    assert loaded.config.layout == layout and list(loaded.config.code_grid) == GRID
    assert type(loaded.layout) is type(prior.layout) and loaded.layout.grid == tuple(GRID)
    codes = random_codes(2, seed=9)
    torch.testing.assert_close(loaded.log_likelihood(codes), prior.log_likelihood(codes))
    draw = dict(class_labels=[0, 1], guidance_scale=2.0, generator=None)
    a = prior.sample(2, **{**draw, "generator": torch.Generator().manual_seed(3)})
    b = loaded.sample(2, **{**draw, "generator": torch.Generator().manual_seed(3)})
    assert torch.equal(a, b)


def test_training_a_tiny_delay_prior_lowers_its_loss():
    """Toy pattern: level 0 counts up from a random start, level k = level 0 + k (mod codebook)."""
    prior = make_prior("delay", num_classes=0, spread=False).train()
    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(prior.parameters(), lr=1e-2)

    def batch(n=16):
        first = torch.randint(0, CB, (n, 1, 1), generator=gen)
        return (first + torch.arange(FRAMES) + torch.arange(LEVELS).view(1, -1, 1)) % CB

    losses = []
    for _ in range(100):
        loss = prior(batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 1.8  # about log(8) at the start
    assert sum(losses[-5:]) / 5 < 0.4  # only the first code stays uncertain: log(8) / 12 = 0.17 in the limit
    prior.eval()
    drawn = prior.sample(8, generator=torch.Generator().manual_seed(0))
    counts_up = (drawn[:, :, 1:] - drawn[:, :, :-1]) % CB == 1
    level_steps = (drawn[:, 1:] - drawn[:, :-1]) % CB == 1
    assert float(counts_up.float().mean()) > 0.8 and float(level_steps.float().mean()) > 0.8
