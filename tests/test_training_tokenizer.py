"""The shared Accelerate loop end to end on a tiny tokenizer: training, checkpoints, resume, non-finite steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vqgen.data.images import TensorImageDataset
from vqgen.errors import ConfigError, TrainingError
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.training.common import BatchSchedule, CheckpointManager, TrainingOptions, make_accelerator
from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer


def tiny_tokenizer() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer(
        base_channels=8,
        channel_multipliers=(1, 2),
        latent_channels=8,
        quantizer_config={"type": "vq", "codebook_size": 16, "dead_code_threshold": 2},
    )


def tiny_dataset(n: int = 48) -> TensorImageDataset:
    rng = np.random.default_rng(0)
    images = np.zeros((n, 8, 8), dtype=np.uint8)
    for i in range(n):  # a bright square at a random place: learnable structure, not noise
        r, c = rng.integers(0, 5, size=2)
        images[i, r : r + 3, c : c + 3] = 255
    return TensorImageDataset(images, labels=np.arange(n) % 3)


def options(tmp_path, **overrides) -> TrainingOptions:
    base = dict(
        output=str(tmp_path / "run"),
        max_steps=6,
        batch_size=8,
        learning_rate=1e-3,
        checkpoint_every=2,
        eval_every=3,
        log_every=2,
        progress=False,
        keep_checkpoints=2,
    )
    base.update(overrides)
    return TrainingOptions(**base)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def test_training_writes_model_logs_checkpoints_and_previews(tmp_path):
    saved = []
    model = train_tokenizer(
        tiny_tokenizer(),
        tiny_dataset(),
        options(tmp_path),
        save_preview=lambda originals, recon, path: saved.append((originals.shape, recon.shape, path)),
    )
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / "diffusion_pytorch_model.safetensors").is_file()
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 1 + 3
    assert "usage" in rows[0] and "items_per_s" in rows[0]
    assert (run / "eval.csv").is_file()
    names = [p.name for p in CheckpointManager(run, 2).list()]
    assert names == ["checkpoint-00000004", "checkpoint-00000006"]  # the newest two, the final step included
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert saved and saved[0][0] == saved[0][1]
    reloaded = ImageTokenizer.from_pretrained(str(run))
    x = tiny_dataset()[0]["pixels"][None]
    assert torch.equal(reloaded.eval().encode(x), model.eval().encode(x))


def test_training_reduces_reconstruction_loss(tmp_path):
    train_tokenizer(
        tiny_tokenizer(),
        tiny_dataset(),
        options(tmp_path, max_steps=30, log_every=5, checkpoint_every=100, eval_every=100),
    )
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = header.index("reconstruction")
    losses = [float(r.split(",")[column]) for r in rows[1:]]
    assert losses[-1] < 0.7 * losses[0]


def test_resume_continues_and_matches_uninterrupted_run(tmp_path):
    full = tmp_path / "full"
    train_tokenizer(tiny_tokenizer(), tiny_dataset(), options(tmp_path, output=str(full)))

    part = tmp_path / "part"
    train_tokenizer(
        tiny_tokenizer(), tiny_dataset(), options(tmp_path, output=str(part), max_steps=4, checkpoint_every=2)
    )
    state = json.loads((CheckpointManager(part, 2).list()[-1] / "trainer_state.json").read_text())
    assert state["step"] == 4  # the final step is checkpointed too, so a longer run can resume from it
    # A later checkpoint write was interrupted: its temporary folder must be ignored on resume.
    (part / "checkpoints" / ".tmp-checkpoint-00000006").mkdir()
    resumed = options(tmp_path, output=str(part), resume=True)
    train_tokenizer(tiny_tokenizer(), tiny_dataset(), resumed)
    steps = [int(r.split(",")[0]) for r in (part / "log.csv").read_text().splitlines()[1:]]
    assert steps == [2, 4, 6]  # continued from step 4, not from zero
    a, b = weights(full), weights(part)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_ema_weights_are_saved(tmp_path):
    model = train_tokenizer(tiny_tokenizer(), tiny_dataset(), options(tmp_path, ema_decay=0.9))
    ckpt = CheckpointManager(tmp_path / "run", 2).latest()
    assert (ckpt / "ema.safetensors").is_file()
    assert model is not None


def test_nonfinite_steps_stop_the_run_with_a_clear_error(tmp_path):
    data = tiny_dataset()

    class Poisoned(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            item = dict(data[i])
            item["pixels"] = torch.full_like(item["pixels"], float("nan"))
            return item

    with pytest.raises(TrainingError, match="consecutive non-finite steps"):
        train_tokenizer(tiny_tokenizer(), Poisoned(), options(tmp_path, max_nonfinite_steps=3))


def test_batch_schedule_is_a_function_of_the_step():
    a = BatchSchedule(50, 8, 1, 0, seed=3)
    b = BatchSchedule(50, 8, 1, 0, seed=3)
    assert [a.indices(s) for s in range(20)] == [b.indices(s) for s in reversed(range(20))][::-1]
    ranks = [BatchSchedule(50, 4, 2, r, seed=3).indices(5) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1])
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        BatchSchedule(5, 8, 1, 0, seed=0)


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="mixed-precision"):
        TrainingOptions(mixed_precision="fp8").validate()
    with pytest.raises(ConfigError, match="max-steps"):
        TrainingOptions(max_steps=0).validate()


@pytest.mark.parametrize(
    ("flag", "launched", "effective"),
    [("auto", None, "no"), ("auto", "bf16", "bf16"), ("no", "bf16", "no"), ("bf16", None, "bf16")],
)
def test_mixed_precision_follows_accelerate_launch_unless_given(monkeypatch, flag, launched, effective):
    """``accelerate launch --mixed_precision bf16`` (ACCELERATE_MIXED_PRECISION) holds unless the flag says
    otherwise; the precision in effect is written back to the options (and so to training_config.json)."""
    if launched is None:
        monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    options = TrainingOptions(mixed_precision=flag)
    assert make_accelerator(options).mixed_precision == effective
    assert options.mixed_precision == effective


def test_discriminator_trains_after_its_start_step(tmp_path):
    losses = TokenizerLossOptions(discriminator_weight=0.1, discriminator_start=3)
    train_tokenizer(
        tiny_tokenizer(),
        tiny_dataset(),
        options(tmp_path, max_steps=6, log_every=1, checkpoint_every=3),
        losses,
    )
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    adversarial = [r.split(",")[header.index("generator_adv")] for r in rows[1:]]
    assert adversarial[:3] == ["", "", ""] and all(v != "" for v in adversarial[3:])
    # the discriminator's optimizer state is part of the checkpoint, so resume restores it too
    ckpt = CheckpointManager(tmp_path / "run", 2).latest()
    assert (ckpt / "optimizer_1.bin").is_file()


def test_bf16_mixed_precision_trains_on_the_cpu(tmp_path):
    """Accelerate's bf16 autocast with the quantizer kept in float32: finite losses, usable model."""
    model = train_tokenizer(
        tiny_tokenizer(), tiny_dataset(), options(tmp_path, max_steps=3, mixed_precision="bf16")
    )
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    totals = [float(r.split(",")[header.index("total")]) for r in rows[1:]]
    assert totals and all(np.isfinite(totals))
    assert model.eval().encode(tiny_dataset()[0]["pixels"][None]).dtype == torch.long


def test_decoder_only_keeps_every_code_and_trains_the_decoder(tmp_path):
    start = train_tokenizer(tiny_tokenizer(), tiny_dataset(), options(tmp_path / "first"))
    before = {name: value.clone() for name, value in start.state_dict().items()}
    x = torch.stack([tiny_dataset()[i]["pixels"] for i in range(16)])
    codes = start.eval().encode(x)
    losses = TokenizerLossOptions(discriminator_weight=0.5, discriminator_start=0)
    tuned = train_tokenizer(
        start, tiny_dataset(), options(tmp_path / "second", ema_decay=0.9), losses, decoder_only=True
    )
    after = tuned.state_dict()
    frozen = [n for n in before if n.startswith(("encoder.", "quantizer."))]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)  # codebook buffers too
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("decoder."))
    assert torch.equal(tuned.eval().encode(x), codes)
    config = json.loads((tmp_path / "second" / "run" / "training_config.json").read_text())
    assert config["decoder_only"] is True
