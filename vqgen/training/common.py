"""Machinery every training loop shares: options, deterministic batches, atomic checkpoints, logs, EMA.

Checkpoints hold Accelerate's ``save_state`` (models as safetensors; optimizer, scheduler and RNG states
that Accelerate reads back with ``torch.load(weights_only=True)``) plus our own ``trainer_state.json``
and ``ema.safetensors``. We deliberately do not use ``register_for_checkpointing``: Accelerate unpickles
those objects with ``weights_only=False``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file

from vqgen.data.batching import collate
from vqgen.errors import CheckpointError, ConfigError, TrainingError
from vqgen.io import atomic_write_bytes

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
EMA_FILE = "ema.safetensors"


@dataclass
class TrainingOptions:
    """Options common to tokenizer and prior training (the CLI flags of the same names)."""

    output: str = "runs/out"
    max_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    gradient_accumulation_steps: int = 1
    # "auto": what `accelerate launch --mixed_precision` (or `accelerate config`) says, "no" without either;
    # an explicit value wins over both. make_accelerator writes the precision in effect back here.
    mixed_precision: str = "auto"
    max_grad_norm: float = 1.0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    eval_every: int = 500
    log_every: int = 10
    ema_decay: float = 0.0
    seed: int = 0
    resume: bool = False
    max_nonfinite_steps: int = 10
    num_workers: int = 0
    progress: bool = True
    # End this run after this step while the schedule still spans max_steps (a time box: a later --resume
    # run without it continues to max_steps). 0 = run to max_steps.
    stop_after: int = 0

    @property
    def last_step(self) -> int:
        """The step this run ends at: ``stop_after`` when set and earlier, else ``max_steps``."""
        return min(self.max_steps, self.stop_after) if self.stop_after > 0 else self.max_steps

    def validate(self) -> None:
        """Raise :class:`ConfigError` (naming the CLI flag) for an option out of range."""
        positive = (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "checkpoint_every",
            "eval_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.stop_after < 0:
            raise ConfigError(f"--stop-after must be 0 (off) or a step, got {self.stop_after}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(
                f"--mixed-precision must be one of auto, no, bf16, fp16, got '{self.mixed_precision}'"
            )
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"--lr-schedule must be constant or cosine, got '{self.lr_schedule}'")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")


def make_accelerator(options: TrainingOptions) -> Accelerator:
    """An Accelerator configured from the options, with the global seed set on every process.

    Accelerate keeps one state per process, and its precision is fixed by the first ``Accelerator``: a later
    run in the same process (a notebook, a script that trains a tokenizer and then a prior) must ask for the
    same precision, else it is refused with a :class:`ConfigError` rather than silently run at the old one.
    ``"auto"`` means what ``accelerate launch --mixed_precision`` says (``ACCELERATE_MIXED_PRECISION``), else
    ``"no"``; the precision in effect is written back to ``options.mixed_precision``.
    """
    options.validate()
    check_process_precision(options.mixed_precision)
    accelerator = Accelerator(
        mixed_precision=None if options.mixed_precision == "auto" else options.mixed_precision,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
    )
    options.mixed_precision = str(accelerator.mixed_precision)
    set_seed(options.seed)
    return accelerator


def check_process_precision(requested: str) -> None:
    """Refuse a run whose precision (``"auto"``, ``"no"``, ``"bf16"``, ``"fp16"``) differs from the one this
    process's Accelerate state already holds; nothing to check before the first ``Accelerator``."""
    from accelerate.state import AcceleratorState, is_initialized
    from accelerate.utils import DistributedType

    if not is_initialized():
        return
    state = AcceleratorState()
    if state.distributed_type == DistributedType.DEEPSPEED:  # DeepSpeed's config file sets the precision
        return
    wanted = requested
    if requested == "auto":
        wanted = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if wanted != state.mixed_precision:
        raise ConfigError(
            f"this process already trains with mixed precision '{state.mixed_precision}' (Accelerate keeps "
            f"one state per process); a run with mixed precision '{wanted}' needs a new process"
        )


def lr_lambda(options: TrainingOptions):
    """Multiplier of the base learning rate at an optimizer step: linear warm-up, then constant or cosine."""

    def factor(step: int) -> float:
        if options.warmup_steps and step < options.warmup_steps:
            return (step + 1) / options.warmup_steps
        if options.lr_schedule == "cosine":
            span = max(1, options.max_steps - options.warmup_steps)
            progress = min(1.0, (step - options.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


class BatchSchedule:
    """Which dataset indices each process sees at each micro-batch: a pure function of (seed, micro-step).

    Every epoch is a fresh permutation drawn from ``seed + epoch`` or, with item ``weights`` ``[dataset_size]``,
    ``dataset_size`` draws with replacement in proportion to them (:func:`label_balance_weights`); each global
    batch of ``batch_size * num_processes`` items is split across ranks. Because the schedule is a function of
    the micro-step counter alone, a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        num_processes: int,
        process_index: int,
        seed: int,
        weights: torch.Tensor | None = None,
    ):
        global_batch = batch_size * num_processes
        if dataset_size < global_batch:
            raise ConfigError(
                f"the dataset has {dataset_size} items, fewer than one global batch of {global_batch} "
                f"(batch size {batch_size} x {num_processes} processes): lower --batch-size"
            )
        self.dataset_size, self.batch_size, self.seed = dataset_size, batch_size, seed
        self.num_processes, self.process_index = num_processes, process_index
        self.batches_per_epoch = dataset_size // global_batch
        if weights is not None and (weights.shape != (dataset_size,) or not bool((weights > 0).all())):
            raise ConfigError(
                f"item weights must be {dataset_size} positive numbers, got shape {list(weights.shape)}"
            )
        self.weights = None if weights is None else weights.double()
        self._epoch, self._permutation = -1, None

    def indices(self, micro_step: int) -> list[int]:
        """This process's dataset indices at ``micro_step``."""
        epoch, position = divmod(micro_step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            if self.weights is None:
                self._permutation = torch.randperm(self.dataset_size, generator=generator)
            else:
                self._permutation = torch.multinomial(
                    self.weights, self.dataset_size, replacement=True, generator=generator
                )
            self._epoch = epoch
        global_batch = self.batch_size * self.num_processes
        chunk = self._permutation[position * global_batch : (position + 1) * global_batch]
        return chunk[self.process_index :: self.num_processes].tolist()


def label_balance_weights(labels: torch.Tensor, power: float) -> torch.Tensor:
    """Item weights ``[N]`` that draw the groups of ``labels [N]`` (``-1``, unlabelled, is a group too) in
    proportion to ``count ** (1 - power)``: ``power`` 0 keeps the data's own proportions, 1 draws every group
    equally often, 0.5 in proportion to the square root of its size."""
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse].double() ** -float(power)


def iterate_batches(
    dataset, schedule: BatchSchedule, start_micro_step: int, num_workers: int = 0
) -> Iterator[dict]:
    """Endless batches from ``start_micro_step`` on, following ``schedule``."""

    class _Steps(torch.utils.data.Sampler):
        def __iter__(self):
            step = start_micro_step
            while True:
                yield schedule.indices(step)
                step += 1

    # A private generator: starting the loader would otherwise draw from torch's global RNG, and a resumed
    # run (which starts its loader after restoring the RNG) would then see other random draws.
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=_Steps(),
        collate_fn=collate,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


class CheckpointManager:
    """Atomic checkpoints under ``output/checkpoints``: written to a temporary folder, then renamed."""

    def __init__(self, output_dir: str | Path, keep: int):
        self.root = Path(output_dir) / "checkpoints"
        self.keep = max(1, keep)

    def list(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary folders of interrupted writes are ignored)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIX) and (path / STATE_FILE).is_file():
                suffix = path.name[len(CHECKPOINT_PREFIX) :]
                if suffix.isdigit():
                    found.append((int(suffix), path))
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        found = self.list()
        return found[-1] if found else None

    def save(self, accelerator: Accelerator, step: int, ema: EMAModel | None) -> Path:
        """Write the checkpoint of ``step`` (every process joins), keep the newest ``keep``; its folder."""
        final = self.root / f"{CHECKPOINT_PREFIX}{step:08d}"
        temporary = self.root / f".tmp-{CHECKPOINT_PREFIX}{step:08d}"
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(temporary), safe_serialization=True)
        accelerator.wait_for_everyone()  # every rank's files (RNG states) are in before the rename
        if accelerator.is_main_process:
            if ema is not None:
                save_file(
                    {f"p{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)},
                    str(temporary / EMA_FILE),
                    metadata={"optimization_step": str(ema.optimization_step)},
                )
            # The state file is written last: a folder without it is never taken for a checkpoint.
            state = {"step": step, "ema_optimization_step": ema.optimization_step if ema else 0}
            _write_synced(temporary / STATE_FILE, json.dumps(state, indent=2))
            if final.exists():
                self._discard(final)
            os.replace(temporary, final)
            for old in self.list()[: -self.keep]:
                self._discard(old)
            self._remove_leftovers(keep=temporary.name)
        accelerator.wait_for_everyone()
        return final

    def _discard(self, path: Path) -> None:
        """Delete a checkpoint so that no half-deleted folder is ever listed: rename it away, then remove it."""
        doomed = self.root / f".old-{path.name}-{os.getpid()}"
        shutil.rmtree(doomed, ignore_errors=True)
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _remove_leftovers(self, keep: str) -> None:
        """Temporary folders of writes or deletions that a killed run left behind."""
        for path in self.root.iterdir():
            if path.name != keep and path.name.startswith((f".tmp-{CHECKPOINT_PREFIX}", ".old-")):
                shutil.rmtree(path, ignore_errors=True)

    def load(self, accelerator: Accelerator, path: Path, ema: EMAModel | None) -> dict:
        """Restore models, optimizers, schedulers and RNG from ``path``; returns the trainer state dict."""
        try:
            state = json.loads((path / STATE_FILE).read_text())
            if not (isinstance(state, dict) and isinstance(state.get("step"), int)):
                raise ValueError(f"{STATE_FILE} holds no step number")
            accelerator.load_state(str(path))
        except Exception as error:  # noqa: BLE001 - any failure here means an unusable checkpoint
            text = " ".join(str(error).split())[:300] or type(error).__name__
            raise CheckpointError(f"cannot resume from checkpoint '{path}': {text}") from None
        if ema is not None and (path / EMA_FILE).is_file():
            tensors = load_file(str(path / EMA_FILE))
            for i, shadow in enumerate(ema.shadow_params):
                shadow.data.copy_(tensors[f"p{i}"].to(shadow.device))
            ema.optimization_step = int(state.get("ema_optimization_step", state["step"]))
        return state


class MetricLogger:
    """Appends one CSV row per logged step (``NAME.csv``) and mirrors to TensorBoard if it is installed."""

    def __init__(self, output_dir: str | Path, enabled: bool, name: str = "log"):
        self.path = Path(output_dir) / f"{name}.csv"
        self.enabled = enabled
        self._writer = None
        self._columns: list[str] | None = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(Path(output_dir) / "tensorboard" / name))
            except Exception:  # noqa: BLE001 - tensorboard is optional
                self._writer = None

    def log(self, step: int, values: dict[str, float]) -> None:
        """Append the row of ``step`` (new columns widen the file; a resumed run drops rows >= ``step``)."""
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time(), 3), **{k: float(v) for k, v in values.items()}}
        if self._columns is None and self.path.exists():
            self._columns = self._rewind(step)
        if self._columns is None:
            self._columns = list(row)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self._columns)
        new = [k for k in row if k not in self._columns]
        if new:  # a value that appears later (e.g. once the discriminator starts): widen the file
            with self.path.open(newline="") as f:
                old_rows = list(csv.DictReader(f))
            self._columns += new
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, self._columns)
                writer.writeheader()
                writer.writerows(old_rows)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self._columns])
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), step)

    def _rewind(self, step: int) -> list[str] | None:
        """Columns of the existing file, after dropping rows at ``step`` or later.

        A run resumed from a checkpoint repeats the steps after it; the rows the interrupted run logged for
        them (and a last row cut short by the interruption) are removed so that every step appears once.
        """
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return None
        columns, kept = rows[0], []
        for values in rows[1:]:
            try:
                complete = len(values) == len(columns) and int(values[0]) < step
            except ValueError:
                complete = False
            if complete:
                kept.append(values)
        if len(kept) != len(rows) - 1:
            text = io.StringIO()
            csv.writer(text).writerows([columns, *kept])
            atomic_write_bytes(self.path, text.getvalue().encode())
        return columns

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self._writer is not None:
            self._writer.close()


class NonFiniteGuard:
    """Counts consecutive non-finite steps and stops the run after ``limit`` of them."""

    def __init__(self, limit: int):
        self.limit, self.consecutive, self.total = limit, 0, 0

    def all_finite(self, accelerator: Accelerator, *values: torch.Tensor) -> bool:
        """True only when every value is finite on every process (all ranks take the same branch)."""
        flag = torch.tensor(
            [float(all(bool(torch.isfinite(v).all()) for v in values))], device=accelerator.device
        )
        return bool(accelerator.gather(flag).min() > 0)

    def record(self, finite: bool, step: int, losses: dict[str, float], checkpoint: Path | None) -> None:
        """Count a step: warn about a non-finite one, raise :class:`TrainingError` after ``limit`` in a row."""
        if finite:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.total += 1
        shown = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
        print(f"warning: skipped step {step}: non-finite loss or gradient ({shown})", flush=True)
        if self.consecutive >= self.limit:
            kept = f"; last good checkpoint: {checkpoint}" if checkpoint else ""
            raise TrainingError(
                f"stopped after {self.consecutive} consecutive non-finite steps at step {step} ({shown}){kept}"
            )


def _write_synced(path: Path, text: str) -> None:
    """Write ``text`` and flush it to disk: the file that marks a checkpoint complete must not be empty after a crash."""
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def make_ema(model: torch.nn.Module, decay: float, device: torch.device | None = None) -> EMAModel | None:
    """diffusers' EMAModel over ``model``'s parameters with warm-up (on ``device``), or None when ``decay`` is 0."""
    if decay <= 0:
        return None
    ema = EMAModel(model.parameters(), decay=decay, use_ema_warmup=True, power=2 / 3)
    if device is not None:
        ema.to(device)
    return ema


@contextlib.contextmanager
def ema_weights(model: torch.nn.Module, ema: EMAModel | None) -> Iterator[None]:
    """Run the block with the EMA weights swapped into ``model`` (a no-op without EMA), in eval mode."""
    if ema is not None:
        ema.store(model.parameters())
        ema.copy_to(model.parameters())
    model.eval()
    try:
        yield
    finally:
        if ema is not None:
            ema.restore(model.parameters())


def save_options(output_dir: Path, options: TrainingOptions, extra: dict) -> None:
    """Write ``training_config.json``: the options and the objective's ``extra`` entries."""
    (output_dir / "training_config.json").write_text(json.dumps({**asdict(options), **extra}, indent=2))
