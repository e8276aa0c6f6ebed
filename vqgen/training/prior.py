"""Prior training: next-code cross-entropy on code shards, on the loop body every vqgen training shares."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from accelerate import Accelerator

from vqgen.data.batching import collate
from vqgen.errors import ConfigError
from vqgen.training.common import TrainingOptions, label_balance_weights, lr_lambda
from vqgen.training.loop import Objective, StepOutput, Trainables, dataset_batches, run_training


def _conditions(prior, batch: dict, device: torch.device) -> dict:
    """The condition keyword of ``prior`` for a batch: ``{"conditions": {field: [B]}}`` from the shards' per-field
    labels when they hold every field of the prior (an item's -1 trains that field's null), else
    ``{"class_labels": [B]}`` from the single ``label`` (a batch holding an unlabelled item, -1, trains the null
    class throughout); nothing for an unconditional prior."""
    if not prior.is_conditional:
        return {}
    given = batch.get("conditions")
    if given is not None and all(name in given for name in prior.condition_fields):
        return {"conditions": {name: given[name].to(device) for name in prior.condition_fields}}
    labels = batch["label"].to(device)
    return {"class_labels": labels if bool((labels >= 0).all()) else None}


def train_prior(
    prior: torch.nn.Module,
    train_dataset,
    options: TrainingOptions,
    val_dataset=None,
    save_samples=None,
    balance_labels: float = 0.0,
) -> torch.nn.Module:
    """Train ``prior`` on code shards (items ``{"codes", "label"}``, and ``"conditions"`` for shards with
    condition fields) and ``save_pretrained`` it to ``options.output``.

    ``balance_labels``: draw the shards' classes in proportion to ``count ** (1 - balance_labels)`` instead of
    their own proportions (0: as they are; 1: every class equally often); see :class:`PriorObjective`.

    Logs the training loss and, on ``val_dataset``, the validation loss in bits per token at each evaluation.
    ``save_samples(prior, path)`` writes a picture of samples at each evaluation (decoded by the caller's
    tokenizer). Returns the unwrapped prior (EMA weights when ``options.ema_decay`` > 0).
    """
    objective = PriorObjective(
        prior, train_dataset, options, val_dataset, save_samples, balance_labels=balance_labels
    )
    return run_training(objective, options)


class PriorObjective(Objective):
    """Next-code cross-entropy of a :class:`~vqgen.priors.prior.CodePrior` (class labels for a conditional
    one), AdamW with betas (0.9, 0.95). Evaluation: validation bits per token and ``save_samples`` pictures.

    ``lr_factor(step)`` multiplies the learning rate (default: the options' warm-up and schedule).
    ``balance_labels`` in [0, 1] tilts the batches towards rare classes of the shards' ``labels``
    (:func:`~vqgen.training.common.label_balance_weights`): on the emoji set, where people-body is 58% of the
    training images and activities 2%, 2,000 steps at 0.75 raised the share of samples recognised as the group
    asked for from 72.5% to 75.0%, food and objects most (``benchmarks/RESULTS.md``).
    """

    description = "train prior"
    throughput_name = "tokens_per_s"
    progress_keys = ("loss",)

    def __init__(
        self,
        prior: torch.nn.Module,
        train_dataset,
        options: TrainingOptions,
        val_dataset=None,
        save_samples=None,
        lr_factor: Callable[[int], float] | None = None,
        balance_labels: float = 0.0,
    ):
        self.prior, self.train_dataset, self.options = prior, train_dataset, options
        self.val_dataset, self.save_samples = val_dataset, save_samples
        self.lr_factor = lr_factor or lr_lambda(options)
        if not 0.0 <= balance_labels <= 1.0:
            raise ConfigError(f"--balance-labels must be in [0, 1], got {balance_labels}")
        self.balance_labels = float(balance_labels)
        self.weights = None
        if self.balance_labels > 0:
            labels = getattr(train_dataset, "labels", None)
            if labels is None or not bool((labels >= 0).any()):
                raise ConfigError("--balance-labels needs shards with class labels; these have none")
            self.weights = label_balance_weights(labels, self.balance_labels)

    def config(self) -> dict:
        """The prior's config (and the class balance, when the batches are tilted)."""
        balance = {"balance_labels": self.balance_labels} if self.balance_labels > 0 else {}
        return {"prior": dict(self.prior.config), **balance}

    def setup(self, accelerator: Accelerator) -> Trainables:
        """AdamW and the learning-rate schedule, prepared with the prior."""
        self.accelerator = accelerator
        optimizer = torch.optim.AdamW(
            self.prior.parameters(),
            lr=self.options.learning_rate,
            betas=(0.9, 0.95),
            weight_decay=self.options.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
        self.model, optimizer, scheduler = accelerator.prepare(self.prior, optimizer, scheduler)
        self.unwrapped = accelerator.unwrap_model(self.model)
        return Trainables(self.model, optimizer, scheduler)

    def start(self, accelerator: Accelerator, step: int) -> Iterator[dict]:
        """The dataset's scheduled batches from ``step`` on."""
        return dataset_batches(self.train_dataset, self.options, accelerator, step, self.weights)

    def loss(self, batch: dict, step: int) -> StepOutput:
        """Mean next-code cross-entropy (nats) of ``batch["codes"]``; throughput in code tokens."""
        codes = batch["codes"]
        inputs = _conditions(self.unwrapped, batch, codes.device)
        loss = self.model(codes, return_logits=False, **inputs).loss
        return StepOutput(loss, {"loss": loss.detach()}, items=codes[0].numel() * codes.shape[0])

    def summarise(self, means: dict[str, float]) -> dict[str, float]:
        """Adds ``bits_per_token`` (the loss in bits)."""
        return {**means, "bits_per_token": means["loss"] / math.log(2)}

    def evaluate(self, step: int) -> dict[str, float]:
        """Validation bits per token (every process); the main process writes the samples picture."""
        metrics = {}
        if self.val_dataset is not None:
            metrics["val_bits_per_token"] = validation_bits_per_token(
                self.unwrapped, self.val_dataset, self.options.batch_size
            )
        if self.accelerator.is_main_process and self.save_samples is not None:
            self.save_samples(self.unwrapped, Path(self.options.output) / "samples" / f"step-{step:08d}.png")
        return metrics

    def report(self, step: int, metrics: dict[str, float]) -> str | None:
        """The validation bits per token."""
        return f"step {step}: validation {metrics['val_bits_per_token']:.4f} bits per token"


@torch.no_grad()
def validation_bits_per_token(prior: torch.nn.Module, dataset, batch_size: int = 256) -> float:
    """Mean negative log-likelihood of ``dataset``'s codes under ``prior``, in bits per code token (eval mode)."""
    was_training = prior.training
    prior.eval()
    total, count = 0.0, 0
    device = next(prior.parameters()).device
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        codes = batch["codes"].to(device)
        nll = -prior.log_likelihood(codes, **_conditions(prior, batch, device))
        total += float(nll.sum())
        count += codes[0].numel() * codes.shape[0]
    prior.train(was_training)
    return total / count / math.log(2)
