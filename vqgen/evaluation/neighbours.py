"""Nearest-neighbour measures of a sample set against real data: k-NN radii, nearest distances, and the
improved precision and recall of Kynkäänniemi et al. (2019, "Improved Precision and Recall Metric for
Assessing Generative Models").

Points are rows of float tensors ``[N, D]`` (features, or flattened pixels); distances are Euclidean,
computed in float64 in blocks of ``chunk_size`` rows, so ``N x M`` distance matrices never need to fit in
memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from vqgen.errors import ConfigError, ShapeError

__all__ = ["knn_radii", "nearest_neighbours", "precision_recall"]


def _points(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"{name} must be a non-empty point set [N, D], got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise ConfigError(f"{name} holds NaN or infinite values")
    return x


def _pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _points(a, names[0]), _points(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"{names[0]} has {a.shape[1]} dimensions, {names[1]} has {b.shape[1]}")
    return a, b


def _distance_blocks(a: torch.Tensor, b: torch.Tensor, chunk_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, D)`` with ``D [c, M]`` the distances of rows ``a[start : start + c]`` to every row of ``b``."""
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    b_squared = b.pow(2).sum(dim=1)
    for start in range(0, a.shape[0], chunk_size):
        block = a[start : start + chunk_size]
        squared = block.pow(2).sum(dim=1, keepdim=True) + b_squared - 2.0 * block @ b.T
        yield start, squared.clamp_min_(0.0).sqrt_()


def nearest_neighbours(
    queries: torch.Tensor,
    reference: torch.Tensor,
    k: int = 1,
    exclude_self: bool = False,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest rows of ``reference`` to each row of ``queries``: distances ``[N, k]`` (float64,
    ascending) and their indices into ``reference`` ``[N, k]``.

    ``exclude_self``: ``queries`` IS ``reference`` (same rows, same order) and a point is not its own
    neighbour; it is excluded by index, so an exact duplicate elsewhere in the set still counts at distance 0.
    """
    queries, reference = _pair(queries, reference, ("queries", "reference"))
    if exclude_self and queries.shape[0] != reference.shape[0]:
        raise ShapeError(
            f"exclude_self needs queries and reference to be the same set, got {queries.shape[0]} and "
            f"{reference.shape[0]} points"
        )
    available = reference.shape[0] - int(exclude_self)
    if not 1 <= k <= available:
        raise ConfigError(f"k must be in 1..{available} for a reference set of {reference.shape[0]}, got {k}")
    distances, indices = [], []
    for start, block in _distance_blocks(queries, reference, chunk_size):
        if exclude_self:
            rows = torch.arange(block.shape[0])
            block[rows, rows + start] = float("inf")
        d, i = block.topk(k, dim=1, largest=False, sorted=True)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def knn_radii(points: torch.Tensor, k: int = 3, chunk_size: int = 1024) -> torch.Tensor:
    """Distance from each point to its ``k``-th nearest OTHER point of the same set ``[N]`` (float64): the
    radii of the k-NN balls whose union estimates the set's manifold."""
    distances, _ = nearest_neighbours(points, points, k=k, exclude_self=True, chunk_size=chunk_size)
    return distances[:, -1]


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk_size: int = 1024
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake [M, D]`` against ``real [N, D]``.

    Each set's manifold is the union of balls around its points with radius the distance to the point's
    ``k``-th nearest neighbour in its own set (:func:`knn_radii`). ``precision``: the share of fake points
    inside the real manifold (are samples realistic?); ``recall``: the share of real points inside the fake
    manifold (is the real variety covered?). A point on a ball's boundary counts as inside. Both are in
    [0, 1]; both are 1 for ``fake`` equal to ``real``. The paper uses ``k = 3``; both depend on the set sizes,
    so compare figures measured at the same sizes.
    """
    real, fake = _pair(real, fake, ("real", "fake"))
    real_radii = knn_radii(real, k, chunk_size)
    fake_radii = knn_radii(fake, k, chunk_size)
    fake_inside = torch.zeros(fake.shape[0], dtype=torch.bool)
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool)
    for start, block in _distance_blocks(fake, real, chunk_size):  # block [c, N]: fake rows to real
        fake_inside[start : start + block.shape[0]] = (block <= real_radii).any(dim=1)
        real_inside |= (block <= fake_radii[start : start + block.shape[0], None]).any(dim=0)
    return {
        "precision": float(fake_inside.double().mean()),
        "recall": float(real_inside.double().mean()),
        "k": k,
        "real_points": real.shape[0],
        "fake_points": fake.shape[0],
    }
