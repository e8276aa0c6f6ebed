"""Prior training: next-code cross-entropy on code shards, with the same Accelerate machinery as tokenizers."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from vqgen.training.common import (
    CheckpointManager,
    MetricLogger,
    NonFiniteGuard,
    TrainingOptions,
    begin_loop,
    collate,
    ema_weights,
    finish_loop,
    lr_lambda,
    make_accelerator,
    make_ema,
    save_options,
)


def _labels(prior, batch: dict, device: torch.device) -> torch.Tensor | None:
    """Class labels of a batch for a conditional prior; unlabelled items (-1) train the null class."""
    if not prior.is_conditional:
        return None
    labels = batch["label"].to(device)
    return labels if bool((labels >= 0).all()) else None


def train_prior(
    prior: torch.nn.Module,
    train_dataset,
    options: TrainingOptions,
    val_dataset=None,
    save_samples=None,
) -> torch.nn.Module:
    """Train ``prior`` on code shards (items ``{"codes", "label"}``) and ``save_pretrained`` it to ``options.output``.

    Logs the training loss and, on ``val_dataset``, the validation loss in bits per token at each evaluation.
    ``save_samples(prior, path)`` writes a picture of samples at each evaluation (decoded by the caller's
    tokenizer). Returns the unwrapped prior (EMA weights when ``options.ema_decay`` > 0).
    """
    accelerator = make_accelerator(options)
    output = Path(options.output)
    checkpoints = CheckpointManager(output, options.keep_checkpoints)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        save_options(output, options, {"prior": dict(prior.config)})

    optimizer = torch.optim.AdamW(
        prior.parameters(), lr=options.learning_rate, betas=(0.9, 0.95), weight_decay=options.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(options))
    model, optimizer, scheduler = accelerator.prepare(prior, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    ema = make_ema(unwrapped, options.ema_decay, accelerator.device)

    step, batches, bar = begin_loop(accelerator, options, checkpoints, ema, train_dataset, "train prior")
    logger = MetricLogger(output, accelerator.is_main_process)
    eval_logger = MetricLogger(output, accelerator.is_main_process, "eval")
    guard = NonFiniteGuard(options.max_nonfinite_steps)
    last_checkpoint = checkpoints.latest()
    accum = options.gradient_accumulation_steps
    model.train()
    running, tokens_seen, started = 0.0, 0, time.perf_counter()
    while step < options.last_step:
        finite = True
        for _ in range(accum):
            batch = next(batches)
            codes = batch["codes"].to(accelerator.device)
            with accelerator.accumulate(model):
                loss = model(codes, _labels(unwrapped, batch, accelerator.device), return_logits=False).loss
                ok = guard.all_finite(accelerator, loss)
                if ok:
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        norm = accelerator.clip_grad_norm_(model.parameters(), options.max_grad_norm)
                        ok = guard.all_finite(accelerator, torch.as_tensor(norm))
                    if ok:
                        optimizer.step()
                        scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            finite = finite and ok
            running += float(accelerator.reduce(loss.detach(), "mean")) / accum  # the mean over processes
            tokens_seen += codes[0].numel() * codes.shape[0] * accelerator.num_processes
        guard.record(finite, step, {"loss": running}, last_checkpoint)
        if finite and ema is not None:
            ema.step(unwrapped.parameters())
        step += 1
        bar.update(1)

        if step % options.log_every == 0 or step == options.last_step:
            elapsed = max(time.perf_counter() - started, 1e-9)
            loss_value = running / (step % options.log_every or options.log_every)
            values = {"loss": loss_value, "bits_per_token": loss_value / math.log(2)}
            values.update(lr=scheduler.get_last_lr()[0], tokens_per_s=tokens_seen / elapsed)
            logger.log(step, values)
            bar.set_postfix(loss=f"{loss_value:.4f}", tok_s=f"{values['tokens_per_s']:.0f}")
            running, tokens_seen, started = 0.0, 0, time.perf_counter()
        if step % options.eval_every == 0 or step == options.last_step:
            with ema_weights(unwrapped, ema):
                metrics = {}
                if val_dataset is not None:
                    metrics["val_bits_per_token"] = validation_bits_per_token(
                        unwrapped, val_dataset, options.batch_size
                    )
                if accelerator.is_main_process:
                    if metrics:
                        eval_logger.log(step, metrics)
                        bar.write(
                            f"step {step}: validation {metrics['val_bits_per_token']:.4f} bits per token"
                        )
                    if save_samples is not None:
                        save_samples(unwrapped, output / "samples" / f"step-{step:08d}.png")
            model.train()
        if step % options.checkpoint_every == 0 or step == options.last_step:
            last_checkpoint = checkpoints.save(accelerator, step, ema)
    return finish_loop(accelerator, unwrapped, ema, output, bar, logger, eval_logger, prepared=model)


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
        nll = -prior.log_likelihood(codes, _labels(prior, batch, device))
        total += float(nll.sum())
        count += codes[0].numel() * codes.shape[0]
    prior.train(was_training)
    return total / count / math.log(2)
