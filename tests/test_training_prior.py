"""Prior training on code shards: loss goes down, validation bits per token, samples, checkpoints and resume."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from conftest import make_prior
from safetensors.torch import load_file

from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.errors import ConfigError
from vqgen.training.common import BatchSchedule, TrainingOptions, label_balance_weights
from vqgen.training.prior import train_prior, validation_bits_per_token


@pytest.fixture
def shards(tmp_path, tokenizer, images):
    encode_dataset(tokenizer, images, tmp_path / "shards", progress=False)
    return CodeShardDataset(tmp_path / "shards")


def options(tmp_path, **overrides) -> TrainingOptions:
    base = dict(
        output=str(tmp_path / "run"),
        max_steps=6,
        batch_size=8,
        learning_rate=3e-3,
        checkpoint_every=2,
        eval_every=3,
        log_every=1,
        progress=False,
        keep_checkpoints=2,
    )
    return TrainingOptions(**{**base, **overrides})


def column(path, name) -> list[float]:
    with open(path, newline="") as f:
        return [float(row[name]) for row in csv.DictReader(f)]


def test_training_lowers_the_loss_and_reports_bits_per_token(tmp_path, shards):
    saved = []
    before = validation_bits_per_token(make_prior(), shards)
    prior = train_prior(
        make_prior(),
        shards,
        options(tmp_path, max_steps=40, eval_every=20, checkpoint_every=40),
        val_dataset=shards,
        save_samples=lambda model, path: saved.append(path),
    )
    losses = column(tmp_path / "run" / "log.csv", "loss")
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])
    val = column(tmp_path / "run" / "eval.csv", "val_bits_per_token")
    assert len(val) == 2 and val[-1] < before
    assert val[-1] == pytest.approx(validation_bits_per_token(prior, shards), rel=1e-5)
    assert [p.name for p in saved] == ["step-00000020.png", "step-00000040.png"]
    assert (tmp_path / "run" / "config.json").is_file()


def test_resume_matches_an_uninterrupted_run(tmp_path, shards):
    train_prior(make_prior(), shards, options(tmp_path, output=str(tmp_path / "full")))
    train_prior(make_prior(), shards, options(tmp_path, output=str(tmp_path / "part"), max_steps=4))
    train_prior(make_prior(), shards, options(tmp_path, output=str(tmp_path / "part"), resume=True))
    steps = column(tmp_path / "part" / "log.csv", "step")
    assert steps == [1, 2, 3, 4, 5, 6]  # continued from step 4, not from zero
    full = load_file(str(tmp_path / "full" / "diffusion_pytorch_model.safetensors"))
    part = load_file(str(tmp_path / "part" / "diffusion_pytorch_model.safetensors"))
    for key in full:
        torch.testing.assert_close(full[key], part[key], rtol=0, atol=1e-6, msg=lambda m, key=key: key + m)


def test_stop_after_ends_early_on_the_full_schedule_and_resumes(tmp_path, shards):
    """--stop-after 3 of a 6-step cosine schedule: saves a prior at step 3 with the learning rates of the
    6-step run, and a --resume run without it ends exactly where the uninterrupted run does."""
    cosine = dict(lr_schedule="cosine", warmup_steps=1)
    train_prior(make_prior(), shards, options(tmp_path, output=str(tmp_path / "full"), **cosine))
    part = options(tmp_path, output=str(tmp_path / "part"), stop_after=3, **cosine)
    assert part.last_step == 3 and options(tmp_path, stop_after=9).last_step == 6
    train_prior(make_prior(), shards, part)
    assert (tmp_path / "part" / "config.json").is_file()
    assert column(tmp_path / "part" / "log.csv", "lr") == column(tmp_path / "full" / "log.csv", "lr")[:3]
    train_prior(make_prior(), shards, options(tmp_path, output=str(tmp_path / "part"), resume=True, **cosine))
    assert column(tmp_path / "part" / "log.csv", "step") == [1, 2, 3, 4, 5, 6]
    full = load_file(str(tmp_path / "full" / "diffusion_pytorch_model.safetensors"))
    resumed = load_file(str(tmp_path / "part" / "diffusion_pytorch_model.safetensors"))
    for key in full:
        torch.testing.assert_close(full[key], resumed[key], rtol=0, atol=1e-6, msg=lambda m, key=key: key + m)
    with pytest.raises(ConfigError, match="--stop-after"):
        options(tmp_path, stop_after=-1).validate()


def test_bf16_mixed_precision_trains_on_the_cpu(tmp_path, shards):
    """Accelerate's bf16 autocast: the loss is finite and the saved prior stays float32."""
    prior = train_prior(make_prior(), shards, options(tmp_path, max_steps=3, mixed_precision="bf16"))
    losses = column(tmp_path / "run" / "log.csv", "loss")
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert next(prior.parameters()).dtype == torch.float32


def test_label_balance_weights_tilt_groups_by_a_power_of_their_size():
    labels = torch.tensor([0] * 90 + [1] * 10 + [-1] * 25)
    for power, expected in ((0.0, [90, 10, 25]), (1.0, [1, 1, 1]), (0.5, [90**0.5, 10**0.5, 25**0.5])):
        weights = label_balance_weights(labels, power)
        shares = [float(weights[labels == g].sum()) for g in (0, 1, -1)]
        total = sum(expected)
        assert shares == pytest.approx([e / total * float(weights.sum()) for e in expected])


def test_a_weighted_schedule_draws_balanced_batches_as_a_function_of_the_step():
    labels = torch.tensor([0] * 180 + [1] * 20)
    weights = label_balance_weights(labels, 1.0)
    a = BatchSchedule(200, 10, 1, 0, seed=4, weights=weights)
    b = BatchSchedule(200, 10, 1, 0, seed=4, weights=weights)
    steps = range(400)  # 20 epochs of 20 batches
    drawn = [a.indices(s) for s in steps]
    assert drawn == [b.indices(s) for s in reversed(steps)][::-1]  # resumable: a pure function of the step
    share = float((labels[torch.tensor(drawn).flatten()] == 1).double().mean())
    assert 0.45 < share < 0.55  # 10% of the data, half of the draws
    unweighted = torch.tensor([BatchSchedule(200, 10, 1, 0, seed=4).indices(s) for s in steps]).flatten()
    assert float((labels[unweighted] == 1).double().mean()) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="item weights must be 200 positive numbers"):
        BatchSchedule(200, 10, 1, 0, seed=4, weights=torch.ones(199))


def test_balanced_training_records_the_balance_and_refuses_bad_values(tmp_path, shards):
    train_prior(make_prior(), shards, options(tmp_path, max_steps=2), balance_labels=0.5)
    saved = json.loads((tmp_path / "run" / "training_config.json").read_text())
    assert saved["balance_labels"] == 0.5
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match=r"--balance-labels must be in \[0, 1\]"):
            train_prior(
                make_prior(), shards, options(tmp_path, output=str(tmp_path / "bad")), balance_labels=bad
            )
