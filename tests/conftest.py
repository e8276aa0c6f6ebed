"""Shared tiny models and data: small enough that the whole chain runs in seconds on a CPU."""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import pytest
import torch

from vqgen.data.images import TensorImageDataset
from vqgen.priors.prior import CodePrior
from vqgen.tokenizers.image import ImageTokenizer


def make_tokenizer(codebook_size: int = 16, seed: int = 0) -> ImageTokenizer:
    """A 2x-downsampling tokenizer for 1-channel 8x8 images: codes [B, 4, 4]."""
    torch.manual_seed(seed)
    return ImageTokenizer(
        base_channels=8,
        channel_multipliers=(1, 2),
        latent_channels=8,
        quantizer_config={"type": "vq", "codebook_size": codebook_size, "kmeans_init": False},
    ).eval()


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and the test machine is shared with other jobs
    (``pytestmark = pytest.mark.usefixtures("one_thread")`` in a module)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_prior(num_classes: int = 3, codebook_size: int = 16, grid=(4, 4), seed: int = 0) -> CodePrior:
    torch.manual_seed(seed)
    return CodePrior(
        codebook_size=codebook_size,
        code_grid=list(grid),
        num_classes=num_classes,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
    ).eval()


def make_images(n: int = 48, seed: int = 0) -> TensorImageDataset:
    """8x8 images with a bright 3x3 square at a random place, labelled 0..2."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(0, 5, size=2)
        images[i, r : r + 3, c : c + 3] = 255
    return TensorImageDataset(images, labels=np.arange(n) % 3, label_names=["a", "b", "c"])


@pytest.fixture
def tokenizer() -> ImageTokenizer:
    return make_tokenizer()


@pytest.fixture
def prior() -> CodePrior:
    return make_prior()


@pytest.fixture
def images() -> TensorImageDataset:
    return make_images()


def cpu_launcher(processes: int) -> list[str]:
    """``accelerate launch`` for ``processes`` CPU processes. Several need its multi-process launcher (torchrun)
    run with :func:`cpu_environment`, which makes Accelerate use gloo on the CPU; ``--cpu`` starts one."""
    kind = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *kind,
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        # A free port per launch, not torchrun's fixed 29500, which another job on the machine may hold.
        "--main_process_port",
        str(free_port()),
    ]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_environment() -> dict[str, str]:
    return {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps one state per process, its precision fixed by the first ``Accelerator``; vqgen refuses a
    second run at another precision. Tests train at several precisions in one process, so each test ends by
    resetting the state with Accelerate's own test helper (``AccelerateTestCase.tearDown``)."""
    yield
    from accelerate.test_utils.testing import AccelerateTestCase

    AccelerateTestCase().tearDown()
