"""CodePrior: vocabulary, teacher-forced loss and logits, class dropout, overfitting, save/load, likelihood, errors.

Every prior here is tiny (hidden 32, 2 layers, 4 heads, grid 3x4, codebook 16) so the file runs in seconds.
"""

from __future__ import annotations

import pytest
import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.prior import CodePrior

GRID = [3, 4]
K = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def make_prior(num_classes: int = 10, seed: int = 0, **kwargs) -> CodePrior:
    torch.manual_seed(seed)
    args = dict(hidden_size=32, num_layers=2, num_heads=4, class_dropout=0.0)
    args.update(kwargs)
    return CodePrior(K, GRID, num_classes=num_classes, **args).eval()


def random_codes(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, K, (batch, *GRID), generator=torch.Generator().manual_seed(seed))


def full_inputs(prior: CodePrior, codes: torch.Tensor, condition_ids: list[int] | None) -> torch.Tensor:
    """The whole teacher-forced input sequence built by hand: [BOS, (cond), code_0 .. code_{L-2}]."""
    b = codes.shape[0]
    tokens = codes.reshape(b, -1)
    parts = [torch.full((b, 1), prior.bos_id)]
    if condition_ids is not None:
        parts.append(torch.tensor(condition_ids).view(b, 1))
    parts.append(tokens[:, :-1])
    return torch.cat(parts, dim=1)


# ------------------------------------------------------------------ vocabulary


def test_vocabulary_conditional():
    prior = make_prior(num_classes=10)
    assert prior.is_conditional
    assert prior.num_code_tokens == 16
    assert prior.num_prefix_tokens == 2
    assert prior.vocab_size == 16 + 10 + 1 + 1
    assert prior.null_class_id == 26
    assert prior.bos_id == 27
    assert prior.model.config.vocab_size == 28
    assert prior.model.lm_head.out_features == 28
    assert prior.seq_len == 2 + 12
    assert prior.class_token(0).item() == 16
    assert prior.class_token([3, 9]).tolist() == [19, 25]
    assert prior.prefix([1, 2], 2).tolist() == [[27, 17], [27, 18]]
    # no labels -> the null class; guidance doubles the batch: conditional rows, then null-class rows
    assert prior.prefix(None, 3).tolist() == [[27, 26]] * 3
    assert prior.prefix([1, 2], 2, guided=True).tolist() == [[27, 17], [27, 18], [27, 26], [27, 26]]
    # one label broadcasts
    assert prior.labels_tensor(4, 3).tolist() == [4, 4, 4]
    assert prior.labels_tensor(torch.tensor([5]), 2).tolist() == [5, 5]


def test_vocabulary_unconditional():
    prior = make_prior(num_classes=0)
    assert not prior.is_conditional
    assert prior.num_prefix_tokens == 1
    assert prior.vocab_size == 17
    assert prior.bos_id == 16
    assert prior.null_class_id is None
    assert prior.prefix(None, 2).tolist() == [[16], [16]]
    with pytest.raises(ConfigError, match="guidance needs a class-conditional prior"):
        prior.prefix(None, 2, guided=True)
    with pytest.raises(ConfigError, match="unconditional"):
        prior.class_token(1)


# ------------------------------------------------------------------ forward


@pytest.mark.parametrize("num_classes", [0, 10])
def test_forward_loss_is_cross_entropy_of_logits_and_matches_full_model(num_classes):
    prior = make_prior(num_classes=num_classes)
    codes = random_codes(3)
    labels = [1, 7, 9] if num_classes else None
    out = prior(codes, labels)
    assert out.logits.shape == (3, 12, K)  # only code ids
    tokens = codes.reshape(3, -1)
    logp = torch.log_softmax(out.logits.double(), dim=-1)
    manual = -logp.gather(-1, tokens.unsqueeze(-1)).mean()
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)

    # logits agree with the full transformers model on a hand-built sequence, restricted to code ids
    conds = [16 + lab for lab in labels] if num_classes else None
    with torch.no_grad():
        full = prior.model(input_ids=full_inputs(prior, codes, conds)).logits
    start = prior.num_prefix_tokens - 1
    torch.testing.assert_close(out.logits, full[:, start:, :K], atol=1e-5, rtol=1e-5)


def test_forward_is_causal():
    """Changing code i only changes the logits at positions > i."""
    prior = make_prior()
    codes = random_codes(1)
    changed = codes.clone()
    changed[0, 1, 2] = (changed[0, 1, 2] + 1) % K  # flat position 6
    a = prior(codes, [2]).logits
    b = prior(changed, [2]).logits
    assert torch.allclose(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_class_labels_change_logits():
    prior = make_prior()
    codes = random_codes(1)
    a, b, null = prior(codes, [0]).logits, prior(codes, [5]).logits, prior(codes, None).logits
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, null)


def test_class_dropout_one_in_train_mode_gives_null_class_eval_keeps_labels():
    prior = make_prior(class_dropout=1.0)
    labels = [0, 3, 9, 4]
    prior.train()
    assert prior.prefix(labels, 4, class_dropout=True)[:, 1].tolist() == [26] * 4
    assert prior.prefix(labels, 4)[:, 1].tolist() == [16 + lab for lab in labels]  # only training drops
    codes = random_codes(4)
    # dropout 0 inside the Llama, so train-mode logits with all labels dropped equal eval-mode null logits
    train_logits = prior(codes, labels).logits
    prior.eval()
    torch.testing.assert_close(train_logits, prior(codes, None).logits)
    assert not torch.allclose(train_logits, prior(codes, labels).logits)


def test_class_dropout_fraction_and_zero():
    prior = make_prior(class_dropout=0.5)
    prior.train()
    torch.manual_seed(0)
    tokens = prior.prefix(torch.full((2000,), 3), 2000, class_dropout=True)[:, 1]
    frac = (tokens == prior.null_class_id).float().mean().item()
    assert 0.45 < frac < 0.55
    assert set(tokens.tolist()) == {19, 26}
    prior0 = make_prior(class_dropout=0.0).train()
    assert (prior0.prefix(torch.full((500,), 3), 500, class_dropout=True)[:, 1] == 19).all()


def test_overfits_four_sequences():
    prior = make_prior(num_classes=4)
    prior.train()
    codes = random_codes(4, seed=1)
    labels = torch.arange(4)
    opt = torch.optim.AdamW(prior.parameters(), lr=1e-2)
    first = None
    for _ in range(50):
        loss = prior(codes, labels).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = prior(codes, labels).loss.item()
    assert first > 2.0  # about log(16) at init
    assert final < 0.5 * first
    # the memorised codes are now much more likely than random ones
    ll_true = prior.log_likelihood(codes, labels)
    ll_rand = prior.log_likelihood(random_codes(4, seed=2), labels)
    assert (ll_true > ll_rand).all()
    assert prior.training  # log_likelihood restores the mode


def test_gradients_reach_all_trained_parameters():
    prior = make_prior()
    prior.train()
    prior(random_codes(2), [1, 2]).loss.backward()
    assert prior.model.lm_head.weight.grad is not None
    assert prior.model.lm_head.weight.grad[:K].abs().sum() > 0
    # non-code rows of lm_head are never used for codes
    assert prior.model.lm_head.weight.grad[K:].abs().sum() == 0


def test_save_pretrained_round_trip(tmp_path):
    prior = make_prior(num_classes=10, num_kv_heads=2, class_dropout=0.25)
    codes = random_codes(2)
    expected = prior(codes, [3, 8]).logits
    prior.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists()
    loaded = CodePrior.from_pretrained(tmp_path).eval()
    assert loaded.config.code_grid == GRID
    assert loaded.config.num_kv_heads == 2
    assert loaded.config.class_dropout == 0.25
    assert loaded.vocab_size == prior.vocab_size
    assert torch.equal(loaded(codes, [3, 8]).logits, expected)


def test_log_likelihood_is_sum_of_log_softmax_at_codes():
    prior = make_prior()
    prior.train()  # log_likelihood must switch to eval itself (no class dropout)
    codes = random_codes(3)
    labels = [2, 5, 0]
    ll = prior.log_likelihood(codes, labels)
    assert prior.training
    assert ll.shape == (3,) and ll.dtype == torch.float32
    prior.eval()
    with torch.no_grad():
        logits = prior(codes, labels).logits.double()
    logp = torch.log_softmax(logits, -1).gather(-1, codes.reshape(3, -1, 1)).squeeze(-1).sum(1)
    torch.testing.assert_close(ll.double(), logp, atol=1e-4, rtol=1e-5)
    assert (ll < 0).all()


def test_log_likelihood_ignores_class_dropout():
    prior = make_prior(class_dropout=1.0)
    codes = random_codes(2)
    prior.train()
    a = prior.log_likelihood(codes, [4, 4])
    prior.eval()
    cond = prior.log_likelihood(codes, [4, 4])
    null = prior.log_likelihood(codes, None)
    torch.testing.assert_close(a, cond)
    assert not torch.allclose(a, null)


def test_non_embedding_parameters():
    prior = make_prior()
    total = sum(p.numel() for p in prior.parameters())
    assert prior.non_embedding_parameters() == total - 28 * 32


# ------------------------------------------------------------------ errors


def test_label_out_of_range_names_value():
    prior = make_prior(num_classes=10)
    with pytest.raises(ConfigError, match="12"):
        prior(random_codes(1), [12])
    with pytest.raises(ConfigError, match="12"):
        prior.labels_tensor(12, 1)
    with pytest.raises(ConfigError, match=r"\[10, 10\]"):  # num_classes itself would alias the null class
        prior(random_codes(1), [10])
    with pytest.raises(ConfigError, match="-1"):
        prior(random_codes(2), torch.tensor([0, -1]))
    with pytest.raises(ConfigError, match="12"):
        prior.log_likelihood(random_codes(1), 12)


def test_labels_on_unconditional_prior():
    prior = make_prior(num_classes=0)
    with pytest.raises(ConfigError, match="num_classes=0"):
        prior(random_codes(1), [1])
    with pytest.raises(ConfigError, match="num_classes=0"):
        prior.labels_tensor(torch.tensor([0]), 1)


def test_float_and_badly_shaped_labels():
    prior = make_prior(num_classes=10)
    with pytest.raises(ShapeError, match="float32"):
        prior(random_codes(2), torch.tensor([1.0, 2.0]))
    with pytest.raises(ShapeError, match="float"):
        prior(random_codes(1), 1.5)
    with pytest.raises(ShapeError, match=r"\[3\]"):
        prior(random_codes(2), [1, 2, 3])
    with pytest.raises(ShapeError, match=r"\[2, 1\]"):
        prior(random_codes(2), torch.tensor([[1], [2]]))
    with pytest.raises(ConfigError, match="'cat'"):
        prior.labels_tensor("cat", 1)


def test_bad_codes():
    prior = make_prior()
    with pytest.raises(ConfigError, match="16"):
        prior(torch.full((1, 3, 4), 16), [0])
    with pytest.raises(ConfigError, match="-1"):
        prior.log_likelihood(torch.full((1, 3, 4), -1), [0])
    with pytest.raises(ShapeError, match=r"\[1, 4, 3\]"):
        prior(torch.zeros(1, 4, 3, dtype=torch.long), [0])
    with pytest.raises(ShapeError, match="float32"):
        prior(torch.zeros(1, 3, 4), [0])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(num_heads=5), "5"),
        (dict(hidden_size=24, num_heads=8), "even"),  # head dim 3 cannot be rotated in pairs
        (dict(num_heads=4, num_kv_heads=3), "3"),
        (dict(num_kv_heads=0), "0"),
        (dict(class_dropout=1.5), "1.5"),
        (dict(dropout=1.0), "1.0"),
        (dict(num_layers=0), "num_layers"),
        (dict(rope_theta=0.0), "rope_theta"),
        (dict(layout="zigzag"), "zigzag"),
        (dict(intermediate_size=0), "intermediate_size"),
    ],
)
def test_bad_config(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        make_prior(**kwargs)


def test_bad_num_classes_and_grid():
    with pytest.raises(ConfigError, match="-1"):
        make_prior(num_classes=-1)
    with pytest.raises(ConfigError, match="code grid"):
        CodePrior(K, [3, 0], hidden_size=32, num_layers=2, num_heads=4)
