"""Loaders never unpickle: a planted pickle that would write a marker file is refused everywhere."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest
from conftest import make_prior, make_tokenizer

from vqgen.data.shards import CodeShardDataset, encode_dataset
from vqgen.errors import CheckpointError, DataError, VqgenError
from vqgen.loading import load_tokenizer
from vqgen.pipelines import ImagePipeline, load_pipeline


class _Payload:
    """Unpickling this calls ``os.mkdir(marker)``: the proof that a loader ran pickle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def plant(path, marker) -> None:
    path.write_bytes(pickle.dumps({"weight": _Payload(str(marker))}))


WEIGHT_NAMES = [
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "pytorch_model.bin",
    "model.pt",
]


@pytest.mark.parametrize("name", WEIGHT_NAMES)
def test_tokenizer_folders_with_a_pickle_are_refused(tmp_path, name):
    marker = tmp_path / "pwned"
    make_tokenizer().save_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / "diffusion_pytorch_model.safetensors").unlink()
    plant(tmp_path / "tok" / name, marker)
    with pytest.raises(CheckpointError):
        load_tokenizer(tmp_path / "tok")
    assert not marker.exists()


@pytest.mark.parametrize("name", WEIGHT_NAMES)
def test_pipeline_folders_with_a_pickle_are_refused(tmp_path, name):
    marker = tmp_path / "pwned"
    ImagePipeline(make_tokenizer(), make_prior()).save_pretrained(tmp_path / "p")
    for component in ("tokenizer", "prior"):
        folder = tmp_path / f"p-{component}"
        shutil.copytree(tmp_path / "p", folder)
        (folder / component / "diffusion_pytorch_model.safetensors").unlink()
        plant(folder / component / name, marker)
        with pytest.raises(CheckpointError):
            load_pipeline(folder)
        assert not marker.exists()


def test_code_shards_holding_a_pickle_are_refused(tmp_path, tokenizer, images):
    marker = tmp_path / "pwned"
    encode_dataset(tokenizer, images, tmp_path / "s", progress=False)
    plant(tmp_path / "s" / "shard-00000.safetensors", marker)
    with pytest.raises(DataError):
        CodeShardDataset(tmp_path / "s")
    assert not marker.exists()


def test_training_checkpoints_holding_a_pickle_are_refused(tmp_path, tokenizer, images):
    """Optimizer state goes through torch.load(weights_only=True), which refuses arbitrary objects."""
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import train_tokenizer

    marker = tmp_path / "pwned"
    options = TrainingOptions(
        output=str(tmp_path / "run"), max_steps=2, batch_size=8, checkpoint_every=2, progress=False
    )
    train_tokenizer(make_tokenizer(), images, options)
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-00000002"
    plant(checkpoint / "optimizer.bin", marker)
    options.resume = True
    options.max_steps = 3
    with pytest.raises(VqgenError, match="cannot resume"):
        train_tokenizer(make_tokenizer(), images, options)
    assert not marker.exists()
