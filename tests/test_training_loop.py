"""The shared loop body with a toy objective: the hooks it calls, the auxiliary optimizer, non-finite steps,
and one Accelerate precision per process."""

from __future__ import annotations

import pytest
import torch

from vqgen.errors import ConfigError, TrainingError
from vqgen.training.common import TrainingOptions, make_accelerator
from vqgen.training.loop import Objective, StepOutput, Trainables, run_training


class Toy(Objective):
    """Fit ``y = 2x`` with a 1x1 linear model; a second 1x1 model trains on its own optimizer from step 2 on.
    Steps listed in ``nan_steps`` give a NaN loss."""

    description = "toy"

    def __init__(self, nan_steps=()):
        self.nan_steps, self.calls = set(nan_steps), []

    def setup(self, accelerator):
        torch.manual_seed(0)
        self.main, self.second = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
        self.initial = (self.main.weight.item(), self.second.weight.item())
        optimizer = torch.optim.SGD(self.main.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        second_optimizer = torch.optim.SGD(self.second.parameters(), lr=0.1)
        model, optimizer, scheduler, self.second, second_optimizer = accelerator.prepare(
            self.main, optimizer, scheduler, self.second, second_optimizer
        )
        return Trainables(model, optimizer, scheduler, second_optimizer)

    def start(self, accelerator, step):
        self.calls.append(("start", step))
        while True:
            yield {"x": torch.ones(4, 1)}

    def loss(self, batch, step):
        loss = ((self.main(batch["x"]) - 2 * batch["x"]) ** 2).mean()
        if step in self.nan_steps:
            loss = loss * float("nan")
        return StepOutput(loss, {"loss": loss.detach()}, items=4, extras=batch["x"])

    def auxiliary_loss(self, output, step):
        if step < 2:
            return None
        self.calls.append(("auxiliary", step))
        return (self.second(output.extras) ** 2).mean(), {"second": 1.0}

    def evaluate(self, step):
        self.calls.append(("evaluate", step, self.main.training))
        return {}


def toy_options(**overrides) -> TrainingOptions:
    base = dict(max_steps=4, batch_size=4, learning_rate=0.1, eval_every=2, log_every=1, progress=False)
    return TrainingOptions(**{**base, **overrides})


def test_the_loop_calls_the_objective_hooks_and_writes_nothing_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toy = Toy()
    model = run_training(toy, toy_options(), write_files=False)
    assert model is toy.main and not list(tmp_path.iterdir())
    assert toy.calls == [
        ("start", 0),
        ("evaluate", 2, False),
        ("auxiliary", 2),
        ("auxiliary", 3),
        ("evaluate", 4, False),
    ]
    main, second = model.weight.item(), toy.second.weight.item()
    assert abs(main - 2) < abs(toy.initial[0] - 2) and abs(second) < abs(toy.initial[1])  # both trained


def test_a_non_finite_step_is_skipped_and_a_run_of_them_stops_training(capsys):
    clean = run_training(Toy(), toy_options(max_steps=2), write_files=False).weight.detach().clone()
    skipped = run_training(Toy(nan_steps={1}), toy_options(max_steps=3), write_files=False)
    assert "skipped step 1" in capsys.readouterr().out
    torch.testing.assert_close(skipped.weight.detach(), clean)  # step 1 changed nothing; 2 steps were taken
    with pytest.raises(TrainingError, match="2 consecutive non-finite steps"):
        run_training(Toy(nan_steps={0, 1}), toy_options(max_nonfinite_steps=2), write_files=False)


def test_one_precision_per_process(monkeypatch):
    """Accelerate fixes the precision of a process at its first Accelerator: a later run asking for another
    one is refused clearly; one asking for the same (or ``auto`` resolving to it) goes ahead."""
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert make_accelerator(TrainingOptions(mixed_precision="no")).mixed_precision == "no"
    assert make_accelerator(TrainingOptions(mixed_precision="auto")).mixed_precision == "no"
    with pytest.raises(
        ConfigError, match="already trains with mixed precision 'no'.*'bf16' needs a new process"
    ):
        make_accelerator(TrainingOptions(mixed_precision="bf16"))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.raises(ConfigError, match="needs a new process"):
        make_accelerator(TrainingOptions(mixed_precision="auto"))
