"""pipe.score: bits per dim / per token from the prior, reconstruction error, every media form; vqgen score."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer
from PIL import Image

from vqgen.cli import main
from vqgen.errors import ShapeError
from vqgen.pipelines import ImagePipeline


@pytest.fixture
def pipe():
    return ImagePipeline(make_tokenizer(), make_prior())


def pixels(n: int = 6) -> torch.Tensor:
    data = make_images(n)
    return torch.stack([data[i]["pixels"] for i in range(n)])


def test_scores_follow_the_prior_and_tokenizer(pipe):
    x = pixels()
    out = pipe.score(x, batch_size=4)
    codes = pipe.tokenizer.encode(x)
    nats = -pipe.prior.log_likelihood(codes, None)
    torch.testing.assert_close(out.bits_per_token, nats / math.log(2) / 16)
    torch.testing.assert_close(out.bits_per_dim, nats / math.log(2) / 64)
    torch.testing.assert_close(
        out.reconstruction_error, (pipe.tokenizer.decode(codes).clamp(-1, 1) - x).pow(2).mean((1, 2, 3))
    )
    conditional = pipe.score(x, class_labels=[0, 1, 2, 0, 1, 2])
    assert not torch.allclose(conditional.bits_per_dim, out.bits_per_dim)


def test_every_media_form_gives_the_same_scores(pipe, tmp_path):
    x = pixels(3)
    arrays = np.round((x.permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)
    expected = pipe.score(torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1).bits_per_dim
    paths = []
    for i, array in enumerate(arrays):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(array[..., 0]).save(paths[-1])
    forms = [
        arrays,
        list(arrays),
        [Image.fromarray(a[..., 0]) for a in arrays],
        paths,
        [str(p) for p in paths],
    ]
    for form in forms:
        torch.testing.assert_close(pipe.score(form).bits_per_dim, expected)


def test_bad_media_is_refused(pipe):
    with pytest.raises(ShapeError, match=r"\[N, 1, 8, 8\]"):
        pipe.score(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ShapeError, match="uint8"):
        pipe.score(np.zeros((2, 8, 8, 1), dtype=np.float64))
    with pytest.raises(ShapeError, match="finite"):
        pipe.score(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ShapeError, match="cannot use"):
        pipe.score(42)


def test_score_command_writes_sorted_csv_and_plot(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    data = tmp_path / "images"
    data.mkdir()
    for i in range(10):
        array = np.round((make_images(10)[i]["pixels"][0].numpy() + 1) * 127.5).astype(np.uint8)
        Image.fromarray(array).save(data / f"{i}.png")
    assert (
        main(
            [
                "score",
                "--pipeline",
                str(tmp_path / "p"),
                "--data",
                str(data),
                "--output",
                str(tmp_path / "s.csv"),
                "--plot",
                "--no-progress",
            ]
        )
        == 0
    )
    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["item"].split("/")[-1] for r in rows} == {f"{i}.png" for i in range(10)}
    scores = [float(r["bits_per_dim"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert (tmp_path / "s.png").stat().st_size > 1000
