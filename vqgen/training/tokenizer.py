"""Tokenizer training: one Accelerate loop for every medium (reconstruction + quantizer + optional GAN)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vqgen.errors import ConfigError
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


@dataclass
class TokenizerLossOptions:
    """Loss settings (see ``vqgen.tokenizers.losses.TokenizerLoss``)."""

    reconstruction: str = "l1"
    # Weight of the sample-wise term. Audio codecs trained on spectra mostly set it low (EnCodec 0.1, DAC 0):
    # a waveform L1 whose phase cannot be matched pulls the output towards silence.
    reconstruction_weight: float = 1.0
    quantizer_weight: float = 1.0
    discriminator_weight: float = 0.0
    discriminator_start: int = 2000
    discriminator_learning_rate: float | None = None
    # Audio only: weight of the multi-resolution STFT + multi-scale mel loss (0 = off).
    spectral_weight: float = 0.0


def media_key(batch: dict) -> str:
    """The media entry of a batch: ``pixels`` (images), ``video`` or ``audio``."""
    for key in ("pixels", "video", "audio"):
        if key in batch:
            return key
    raise ConfigError(f"a batch must hold pixels, video or audio, got keys {sorted(batch)}")


def train_tokenizer(
    tokenizer: torch.nn.Module,
    train_dataset,
    options: TrainingOptions,
    loss_options: TokenizerLossOptions | None = None,
    eval_dataset=None,
    save_preview=None,
) -> torch.nn.Module:
    """Train ``tokenizer`` on ``train_dataset`` and ``save_pretrained`` it into ``options.output``.

    ``save_preview(originals, reconstructions, path)`` writes a picture of held-out reconstructions at each
    evaluation (a reconstruction grid for images). Returns the unwrapped, trained tokenizer (EMA weights when
    ``options.ema_decay`` > 0).
    """
    from vqgen.tokenizers.losses import TokenizerLoss

    loss_options = loss_options or TokenizerLossOptions()
    accelerator = make_accelerator(options)
    output = Path(options.output)
    checkpoints = CheckpointManager(output, options.keep_checkpoints)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        save_options(output, options, {"loss": loss_options.__dict__, "tokenizer": dict(tokenizer.config)})

    sample = train_dataset[0]
    key = media_key(sample)
    dims = sample[key].dim() - 1
    criterion = TokenizerLoss(
        in_channels=sample[key].shape[0],
        dims=dims,
        reconstruction=loss_options.reconstruction,
        reconstruction_weight=loss_options.reconstruction_weight,
        quantizer_weight=loss_options.quantizer_weight,
        discriminator_weight=loss_options.discriminator_weight,
        discriminator_start=loss_options.discriminator_start,
        spectral_weight=loss_options.spectral_weight,
        sample_rate=int(getattr(tokenizer.config, "sample_rate", 16000)),
    )
    optimizer = torch.optim.AdamW(
        tokenizer.parameters(), lr=options.learning_rate, betas=(0.5, 0.9), weight_decay=options.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(options))
    objects = [tokenizer, optimizer, scheduler]
    discriminator = criterion.discriminator
    if discriminator is not None:
        d_optimizer = torch.optim.AdamW(
            discriminator.parameters(),
            lr=loss_options.discriminator_learning_rate or options.learning_rate,
            betas=(0.5, 0.9),
        )
        objects += [discriminator, d_optimizer]
    prepared = accelerator.prepare(*objects)
    model, optimizer, scheduler = prepared[:3]
    if discriminator is not None:
        criterion.discriminator, d_optimizer = prepared[3], prepared[4]
    unwrapped = accelerator.unwrap_model(model)
    ema = make_ema(unwrapped, options.ema_decay, accelerator.device)

    step, batches, bar = begin_loop(accelerator, options, checkpoints, ema, train_dataset, "train tokenizer")
    eval_batch = _evaluation_batch(eval_dataset or train_dataset, key, accelerator.device)
    logger = MetricLogger(output, accelerator.is_main_process)
    eval_logger = MetricLogger(output, accelerator.is_main_process, "eval")
    guard = NonFiniteGuard(options.max_nonfinite_steps)
    last_checkpoint = checkpoints.latest()
    accum = options.gradient_accumulation_steps
    model.train()
    running: dict[str, float] = {}
    images_seen = 0
    started = time.perf_counter()
    while step < options.last_step:
        finite = True
        for _ in range(accum):
            batch = next(batches)
            x = batch[key].to(accelerator.device)
            if not guard.all_finite(accelerator, x):
                # A corrupt batch (NaN/inf pixels) is skipped like a non-finite loss, not a crash.
                finite = False
                running["nonfinite_input"] = running.get("nonfinite_input", 0.0) + 1.0 / accum
                continue
            with accelerator.accumulate(model):
                out = model(x)
                g_loss, logs = criterion.generator_loss(
                    x, out.reconstruction, out.losses["quantizer"], step, unwrapped.last_layer_weight
                )
                logs = {
                    **logs,
                    "usage": out.losses["usage"].detach(),
                    "perplexity": out.losses["perplexity"].detach(),
                }
                ok = guard.all_finite(accelerator, g_loss)
                if ok:
                    accelerator.backward(g_loss)
                    if accelerator.sync_gradients:
                        norm = accelerator.clip_grad_norm_(model.parameters(), options.max_grad_norm)
                        ok = guard.all_finite(accelerator, torch.as_tensor(norm))
                    if ok:
                        optimizer.step()
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                else:
                    optimizer.zero_grad(set_to_none=True)
                finite = finite and ok
                if discriminator is not None and criterion.discriminator_active(step) and ok:
                    d_loss, d_logs = criterion.discriminator_loss(x, out.reconstruction, step)
                    if guard.all_finite(accelerator, d_loss):
                        accelerator.backward(d_loss)
                        d_optimizer.step()
                        logs.update(d_logs)
                    d_optimizer.zero_grad(set_to_none=True)
            # One collective per micro-step: the log shows the mean over all processes, not rank 0's share.
            stacked = torch.stack(
                [torch.as_tensor(v, dtype=torch.float32, device=accelerator.device) for v in logs.values()]
            )
            for name, value in zip(logs, accelerator.reduce(stacked, "mean").tolist()):
                running[name] = running.get(name, 0.0) + value / accum
            images_seen += x.shape[0] * accelerator.num_processes
        guard.record(finite, step, {k: v for k, v in running.items()}, last_checkpoint)
        if finite and ema is not None:
            ema.step(unwrapped.parameters())
        step += 1
        bar.update(1)

        if step % options.log_every == 0 or step == options.last_step:
            elapsed = max(time.perf_counter() - started, 1e-9)
            window = step % options.log_every or options.log_every  # the last window may be shorter
            values = {k: v / window for k, v in running.items()}
            values["lr"] = scheduler.get_last_lr()[0]
            values["items_per_s"] = images_seen / elapsed
            logger.log(step, values)
            bar.set_postfix(
                loss=f"{values.get('total', 0):.4f}",
                usage=f"{values.get('usage', 0):.2f}",
                it_s=f"{values['items_per_s']:.0f}",
            )
            running, images_seen, started = {}, 0, time.perf_counter()
        if step % options.eval_every == 0 or step == options.last_step:
            metrics = _evaluate(unwrapped, eval_batch, ema)
            if accelerator.is_main_process:
                eval_logger.log(step, {k: v for k, v in metrics.items() if k != "reconstruction"})
                if save_preview is not None:
                    save_preview(
                        eval_batch, metrics["reconstruction"], output / "samples" / f"step-{step:08d}.png"
                    )
            model.train()
        if step % options.checkpoint_every == 0 or step == options.last_step:
            last_checkpoint = checkpoints.save(accelerator, step, ema)
    return finish_loop(accelerator, unwrapped, ema, output, bar, logger, eval_logger, prepared=model)


def _evaluation_batch(dataset, key: str, device: torch.device, size: int = 32) -> torch.Tensor:
    items = [dataset[i] for i in range(min(size, len(dataset)))]
    return collate(items)[key].to(device)


@torch.no_grad()
def _evaluate(tokenizer, batch: torch.Tensor, ema) -> dict:
    """PSNR and code usage on a fixed held-out batch, with EMA weights swapped in when there are any."""
    from vqgen.evaluation.metrics import psnr

    with ema_weights(tokenizer, ema):
        out = tokenizer(batch)
    return {
        "psnr": float(psnr(out.reconstruction.float().clamp(-1, 1), batch.float()).mean()),
        "usage": float(out.losses["usage"]),
        "reconstruction": out.reconstruction.float().clamp(-1, 1).cpu(),
    }
