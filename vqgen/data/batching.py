"""Stacking data set items into batches: shared by training, evaluation, encoding and scoring."""

from __future__ import annotations

import torch

__all__ = ["collate"]


def collate(items: list[dict]) -> dict:
    """Stack a list of dataset items ``{"pixels"|"video"|"audio": [C, ...], "label", "index"}`` into a batch
    ``{key: [B, C, ...] or [B]}``; a dict value (``"conditions": {field: int}``) becomes a dict of ``[B]``."""
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], dict):
            batch[key] = collate(values)
        else:
            batch[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else torch.tensor(values)
    return batch
