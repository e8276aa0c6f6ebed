"""The one training loop body: tokenizer, prior and background objectives plug into :func:`run_training`.

The loop owns everything the objectives share: the Accelerator, gradient accumulation, the non-finite guard
(a step whose input, loss or gradient is not finite on some process is skipped and reported; a run of them
stops training), gradient clipping, EMA, the CSV/TensorBoard logs, periodic evaluation, atomic checkpoints
and exact resume, and the final ``save_pretrained``. An :class:`Objective` says what is trained and how a
micro-batch becomes a loss::

    setup(accelerator) -> Trainables          build optimizers, ``accelerator.prepare`` everything
    start(accelerator, step) -> batches       this process's batches from ``step`` on (after any resume)
    inputs(batch) -> tensors                  float inputs that must be finite before the forward pass
    loss(batch, step) -> StepOutput           the main model's loss, values to log, items seen
    auxiliary_loss(output, step)              a second model's loss (the GAN discriminator), or None
    evaluate(step) -> metrics                 held-out metrics and previews (EMA weights swapped in)

A micro-step runs: the finite-input check, ``loss`` inside ``accelerator.accumulate``, backward, clipping and
the optimizer and scheduler steps when gradients sync, then the auxiliary loss on its own optimizer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from vqgen.training.common import (
    BatchSchedule,
    CheckpointManager,
    MetricLogger,
    NonFiniteGuard,
    TrainingOptions,
    ema_weights,
    iterate_batches,
    make_accelerator,
    make_ema,
    save_options,
)

__all__ = ["Objective", "StepOutput", "Trainables", "dataset_batches", "run_training"]


@dataclass
class Trainables:
    """What ``accelerator.prepare`` returned for an objective.

    ``model`` is the prepared main model (EMA, checkpoints and the final ``save_pretrained`` follow it),
    ``optimizer`` and ``scheduler`` its prepared optimizer and learning-rate scheduler, and
    ``auxiliary_optimizer`` the optimizer of a second model trained on :meth:`Objective.auxiliary_loss` (the
    tokenizer's discriminator), or None.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    auxiliary_optimizer: torch.optim.Optimizer | None = None


@dataclass
class StepOutput:
    """One micro-batch through the main model: ``loss`` (scalar) to back-propagate, ``logs`` (name -> scalar)
    to average over processes and the log window, ``items`` counted for throughput (images, tokens) on this
    process, and ``extras`` for :meth:`Objective.auxiliary_loss` (e.g. the reconstruction)."""

    loss: torch.Tensor
    logs: dict[str, torch.Tensor | float]
    items: int
    extras: Any = None


class Objective:
    """What one kind of training plugs into :func:`run_training`; subclasses implement ``setup``, ``start``
    and ``loss``, and override the other hooks when they need them."""

    #: Label of the progress bar.
    description: str = "train"
    #: Name of the throughput column of the log (``items_per_s``, ``tokens_per_s``).
    throughput_name: str = "items_per_s"
    #: Logged values shown beside the progress bar.
    progress_keys: tuple[str, ...] = ("loss",)

    def config(self) -> dict:
        """Extra entries of ``training_config.json`` (the model's config, loss settings)."""
        return {}

    def setup(self, accelerator: Accelerator) -> Trainables:
        """Build the optimizers and schedulers and ``accelerator.prepare`` them with the models."""
        raise NotImplementedError

    def start(self, accelerator: Accelerator, step: int) -> Iterator[dict]:
        """Endless batches for this process from optimizer step ``step`` on, called once after any resume
        (so that whatever it draws from the restored RNG is what an uninterrupted run would draw)."""
        raise NotImplementedError

    def inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Float inputs of ``batch`` that must be finite on every process; a batch with a non-finite one is
        skipped (logged as ``nonfinite_input``). None by default."""
        return ()

    def loss(self, batch: dict, step: int) -> StepOutput:
        """The main model's loss on ``batch`` (on the device) at optimizer step ``step``."""
        raise NotImplementedError

    def auxiliary_loss(self, output: StepOutput, step: int) -> tuple[torch.Tensor, dict] | None:
        """``(loss, logs)`` of the second model after a finite main step, or None (none, or not started)."""
        return None

    def train_mode(self, model: torch.nn.Module) -> None:
        """Put the prepared main model in training mode: before the first step and after each evaluation.
        An objective that keeps part of the model frozen (its batch-norm or codebook statistics too) puts
        that part back in eval mode here."""
        model.train()

    def summarise(self, means: dict[str, float]) -> dict[str, float]:
        """Log values derived from the window means (e.g. bits per token from the loss)."""
        return means

    def evaluate(self, step: int) -> dict[str, float]:
        """Held-out metrics at ``step``, computed on every process with the EMA weights in and the model in
        eval mode (the main process logs them to ``eval.csv``); previews are the objective's to write."""
        return {}

    def report(self, step: int, metrics: dict[str, float]) -> str | None:
        """A line to print after an evaluation, or None."""
        return None

    def result(self, model: torch.nn.Module) -> torch.nn.Module:
        """What the run returns, given the unwrapped, trained model (EMA weights in)."""
        return model


def dataset_batches(
    dataset,
    options: TrainingOptions,
    accelerator: Accelerator,
    step: int,
    weights: torch.Tensor | None = None,
) -> Iterator[dict]:
    """This process's batches of ``dataset`` from optimizer step ``step`` on: a :class:`BatchSchedule` over
    ``options.seed`` (drawing items in proportion to ``weights [len(dataset)]`` when given), so a resumed run
    sees exactly the batches an uninterrupted one would."""
    schedule = BatchSchedule(
        len(dataset),
        options.batch_size,
        accelerator.num_processes,
        accelerator.process_index,
        options.seed,
        weights,
    )
    return iterate_batches(dataset, schedule, step * options.gradient_accumulation_steps, options.num_workers)


def run_training(objective: Objective, options: TrainingOptions, write_files: bool = True) -> torch.nn.Module:
    """Train ``objective`` for ``options``: the loop body every vqgen training shares.

    With ``write_files`` the run writes ``training_config.json``, ``log.csv``, ``eval.csv``, checkpoints and
    the final model (``save_pretrained``) under ``options.output`` and resumes from its latest checkpoint when
    ``options.resume``; without it nothing is written (a quick fit in memory). Returns
    ``objective.result(model)`` of the unwrapped, trained model (EMA weights when ``options.ema_decay`` > 0).
    """
    accelerator = make_accelerator(options)
    output = Path(options.output) if write_files else None
    if output is not None and accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        save_options(output, options, objective.config())
    loop = TrainingLoop(accelerator, objective, options, objective.setup(accelerator), output)
    loop.run()
    return objective.result(loop.finish())


@dataclass
class _Window:
    """Running sums of the logged values since the last log row."""

    sums: dict[str, float] = field(default_factory=dict)
    items: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value


class TrainingLoop:
    """The state of one run of :func:`run_training` (built after ``objective.setup``)."""

    def __init__(
        self,
        accelerator: Accelerator,
        objective: Objective,
        options: TrainingOptions,
        parts: Trainables,
        output: Path | None,
    ):
        self.accelerator, self.objective, self.options, self.parts = accelerator, objective, options, parts
        self.output = output
        self.unwrapped = accelerator.unwrap_model(parts.model)
        self.ema = make_ema(self.unwrapped, options.ema_decay, accelerator.device)
        self.checkpoints = CheckpointManager(output, options.keep_checkpoints) if output is not None else None
        self.step = self._resume()
        self.batches = objective.start(accelerator, self.step)
        self.bar = tqdm(
            total=options.last_step,
            initial=self.step,
            desc=objective.description,
            unit="step",
            disable=not (options.progress and accelerator.is_local_main_process),
        )
        writes = output is not None and accelerator.is_main_process
        self.logger = MetricLogger(output or ".", writes)
        self.eval_logger = MetricLogger(output or ".", writes, "eval")
        self.guard = NonFiniteGuard(options.max_nonfinite_steps)
        self.last_checkpoint = self.checkpoints.latest() if self.checkpoints else None
        self.window = _Window()

    def _resume(self) -> int:
        """Restore the latest checkpoint when ``options.resume``; the step to start from."""
        if not self.options.resume or self.checkpoints is None:
            return 0
        latest = self.checkpoints.latest()
        if latest is None:
            self.accelerator.print(f"no checkpoint in {self.checkpoints.root}: starting from step 0")
            return 0
        step = int(self.checkpoints.load(self.accelerator, latest, self.ema)["step"])
        self.accelerator.print(f"resumed from {latest} at step {step}")
        return step

    def run(self) -> None:
        """Optimizer steps up to ``options.last_step``, each of ``gradient_accumulation_steps`` micro-batches."""
        options = self.options
        self.objective.train_mode(self.parts.model)
        while self.step < options.last_step:
            finite = True
            for _ in range(options.gradient_accumulation_steps):
                finite = self._micro_step(next(self.batches)) and finite
            self.guard.record(finite, self.step, dict(self.window.sums), self.last_checkpoint)
            if finite and self.ema is not None:
                self.ema.step(self.unwrapped.parameters())
            self.step += 1
            self.bar.update(1)
            last = self.step == options.last_step
            if self.step % options.log_every == 0 or last:
                self._log()
            if self.step % options.eval_every == 0 or last:
                self._evaluate()
            if self.checkpoints is not None and (self.step % options.checkpoint_every == 0 or last):
                self.last_checkpoint = self.checkpoints.save(self.accelerator, self.step, self.ema)

    def _micro_step(self, batch: dict) -> bool:
        """One micro-batch: forward, backward and (when gradients sync) the optimizer step; False when the
        input, loss or gradient was not finite on some process."""
        accelerator, parts, accum = self.accelerator, self.parts, self.options.gradient_accumulation_steps
        batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        inputs = self.objective.inputs(batch)
        if inputs and not self.guard.all_finite(accelerator, *inputs):
            # A corrupt batch (NaN/inf pixels) is skipped like a non-finite loss, not a crash.
            self.window.add("nonfinite_input", 1.0 / accum)
            return False
        with accelerator.accumulate(parts.model):
            output = self.objective.loss(batch, self.step)
            ok = self._optimize(output.loss)
            logs = dict(output.logs)
            if ok and parts.auxiliary_optimizer is not None:
                logs.update(self._auxiliary_step(output))
        if logs:  # one collective per micro-step: the log shows the mean over all processes
            stacked = torch.stack(
                [torch.as_tensor(v, dtype=torch.float32, device=accelerator.device) for v in logs.values()]
            )
            for name, value in zip(logs, accelerator.reduce(stacked, "mean").tolist()):
                self.window.add(name, value / accum)
        self.window.items += output.items * accelerator.num_processes
        return ok

    def _optimize(self, loss: torch.Tensor) -> bool:
        """Backward ``loss``; when gradients sync, clip them and step the optimizer and scheduler. A
        non-finite loss or gradient norm skips the update. True when both were finite."""
        accelerator, parts = self.accelerator, self.parts
        ok = self.guard.all_finite(accelerator, loss)
        if ok:
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                norm = accelerator.clip_grad_norm_(parts.model.parameters(), self.options.max_grad_norm)
                ok = self.guard.all_finite(accelerator, torch.as_tensor(norm))
            if ok:
                parts.optimizer.step()
                parts.scheduler.step()
        parts.optimizer.zero_grad(set_to_none=True)
        return ok

    def _auxiliary_step(self, output: StepOutput) -> dict:
        """The second model's update (no clipping); its logs when it ran on a finite loss."""
        auxiliary = self.objective.auxiliary_loss(output, self.step)
        if auxiliary is None:
            return {}
        loss, logs = auxiliary
        optimizer = self.parts.auxiliary_optimizer
        finite = self.guard.all_finite(self.accelerator, loss)
        if finite:
            self.accelerator.backward(loss)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return logs if finite else {}

    def _log(self) -> None:
        """One row of ``log.csv``: the window means, the learning rate and the throughput."""
        elapsed = max(time.perf_counter() - self.window.started, 1e-9)
        span = self.step % self.options.log_every or self.options.log_every  # the last window may be shorter
        values = self.objective.summarise({k: v / span for k, v in self.window.sums.items()})
        values["lr"] = self.parts.scheduler.get_last_lr()[0]
        values[self.objective.throughput_name] = self.window.items / elapsed
        self.logger.log(self.step, values)
        shown = {k: f"{values[k]:.4f}" for k in self.objective.progress_keys if k in values}
        self.bar.set_postfix(**shown, per_s=f"{values[self.objective.throughput_name]:.0f}")
        self.window = _Window()

    def _evaluate(self) -> None:
        """The objective's evaluation with EMA weights in; the main process logs it."""
        with ema_weights(self.unwrapped, self.ema):
            metrics = self.objective.evaluate(self.step)
        if metrics and self.accelerator.is_main_process:
            self.eval_logger.log(self.step, metrics)
            message = self.objective.report(self.step, metrics)
            if message:
                self.bar.write(message)
        self.objective.train_mode(self.parts.model)

    def finish(self) -> torch.nn.Module:
        """Close the bar and logs, put the EMA weights in for good and save the model when the run writes
        files; the unwrapped model."""
        accelerator, model = self.accelerator, self.unwrapped
        self.bar.close()
        self.logger.close()
        self.eval_logger.close()
        accelerator.wait_for_everyone()
        if self.ema is not None:
            self.ema.copy_to(model.parameters())
        if self.output is not None:
            self._save(model)
        accelerator.end_training()
        return model

    def _save(self, model: torch.nn.Module) -> None:
        """``save_pretrained`` into the output folder on the main process.

        Under FSDP or DeepSpeed the parameters are sharded: every process joins ``accelerator.get_state_dict``
        (a collective) and the main process saves a full copy built from the gathered weights.
        """
        from accelerate.utils import DistributedType

        accelerator = self.accelerator
        if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            state = accelerator.get_state_dict(self.parts.model)
            if accelerator.is_main_process:
                full = type(model).from_config(model.config)
                full.load_state_dict(state)
                full.save_pretrained(str(self.output))
        elif accelerator.is_main_process:
            model.save_pretrained(str(self.output))
