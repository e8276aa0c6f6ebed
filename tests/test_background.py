"""Likelihood-ratio anomaly scores: generic views, fitting, saving and loading a background, the bit formulas,
the pipeline's optional background component and ``vqgen fit-background``."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer

from vqgen.errors import CheckpointError, ConfigError, ShapeError
from vqgen.evaluation.background import (
    class_marginal_bits,
    code_bits,
    generic_view_codes,
    generic_views,
    likelihood_ratio_bits,
    load_background,
)
from vqgen.training.background import BackgroundObjective, fit_background

SMALL = {"hidden_size": 32, "num_layers": 1, "num_heads": 4}


def test_generic_views_keep_shape_and_black_background():
    images = -torch.ones(4, 1, 12, 12)
    images[:, :, 4:8, 5:7] = 1.0
    views = generic_views(images, torch.Generator().manual_seed(0))
    assert views.shape == images.shape
    torch.testing.assert_close(generic_views(-torch.ones(2, 1, 12, 12)), -torch.ones(2, 1, 12, 12))
    torch.testing.assert_close(views, generic_views(images, torch.Generator().manual_seed(0)))
    assert not torch.allclose(views, images)
    with pytest.raises(ShapeError):
        generic_views(torch.zeros(12, 12))


def test_fitted_background_prefers_its_data_and_round_trips(tmp_path):
    codes = torch.zeros(64, 4, 4, dtype=torch.long)
    codes[:, ::2] = 3  # rows of 3s and 0s
    background = fit_background(codes, 16, steps=40, batch_size=16, learning_rate=3e-3, **SMALL)
    assert not background.is_conditional and not background.training
    other = torch.randint(0, 16, (8, 4, 4), generator=torch.Generator().manual_seed(0))
    bits = code_bits(background, torch.cat([codes[:8], other]))
    assert bits.shape == (16,)
    assert bits[:8].max() < bits[8:].min()
    background.save_pretrained(tmp_path / "bg", safe_serialization=True)
    torch.testing.assert_close(code_bits(load_background(tmp_path / "bg"), codes[:8]), bits[:8])


def test_background_batches_are_a_function_of_the_step():
    """A fit resumed at a step draws the batches an uninterrupted one would (also with code noise)."""
    from vqgen.training.common import TrainingOptions

    codes = torch.randint(0, 16, (20, 4, 4), generator=torch.Generator().manual_seed(1))
    objective = BackgroundObjective(make_prior(num_classes=0), codes, TrainingOptions(batch_size=3), 0.2)
    draws = objective.draws(process_index=0, start=0)
    first = [next(draws)["codes"] for _ in range(5)]
    later = objective.draws(process_index=0, start=3)
    torch.testing.assert_close(next(later)["codes"], first[3])
    torch.testing.assert_close(next(later)["codes"], first[4])
    other = next(objective.draws(process_index=1, start=0))["codes"]
    assert not torch.equal(other, first[0])  # another process draws other batches


def test_scoring_and_training_import_no_pipelines():
    import ast
    from pathlib import Path

    import vqgen

    root = Path(vqgen.__file__).parent
    for path in [*(root / "evaluation").glob("*.py"), *(root / "training").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith("vqgen.pipelines") for n in names), path.name


def test_fit_background_refuses_bad_input():
    with pytest.raises(ConfigError):
        fit_background(torch.full((4, 4, 4), 16), 16, steps=1, **SMALL)
    with pytest.raises(ConfigError):
        fit_background(torch.zeros(4, 4, 4, dtype=torch.long), 16, steps=1, code_noise=1.0, **SMALL)
    with pytest.raises(ShapeError):
        fit_background(torch.zeros(0, 4, 4, dtype=torch.long), 16, steps=1, **SMALL)


def test_bits_follow_the_formulas(tmp_path):
    prior = make_prior(num_classes=3)
    background = make_prior(num_classes=0, seed=1)
    codes = torch.randint(0, 16, (5, 4, 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(code_bits(prior, codes), -prior.log_likelihood(codes) / math.log(2))
    per_class = torch.stack([-prior.log_likelihood(codes, y) for y in range(3)], 1)
    marginal = -(torch.logsumexp(-per_class, 1) - math.log(3)) / math.log(2)
    torch.testing.assert_close(class_marginal_bits(prior, codes, batch_size=2), marginal)
    torch.testing.assert_close(class_marginal_bits(background, codes), code_bits(background, codes))
    torch.testing.assert_close(
        likelihood_ratio_bits(prior, background, codes), marginal - code_bits(background, codes)
    )
    torch.testing.assert_close(
        likelihood_ratio_bits(prior, background, codes, [0, 1, 2, 0, 1]),
        code_bits(prior, codes, [0, 1, 2, 0, 1]) - code_bits(background, codes),
    )
    prior.save_pretrained(tmp_path / "conditional", safe_serialization=True)
    with pytest.raises(CheckpointError):
        load_background(tmp_path / "conditional")


# ---------------------------------------------------------------- the pipeline's background component


def image_pipeline(background=True):
    from vqgen.pipelines import ImagePipeline

    return ImagePipeline(
        make_tokenizer(), make_prior(num_classes=3), make_prior(num_classes=0, seed=1) if background else None
    )


def test_pipeline_scores_the_likelihood_ratio():
    pipe = image_pipeline()
    x = torch.stack([make_images(5)[i]["pixels"] for i in range(5)])
    codes = pipe.tokenizer.encode(x)
    out = pipe.score(x, batch_size=2)
    dims = 64  # 1 x 8 x 8
    expected = (class_marginal_bits(pipe.prior, codes) - code_bits(pipe.background, codes)) / dims
    torch.testing.assert_close(out.likelihood_ratio, expected)
    torch.testing.assert_close(out.bits_per_dim, code_bits(pipe.prior, codes) / dims)
    labelled = pipe.score(x, class_labels=[0, 1, 2, 0, 1])
    expected = (code_bits(pipe.prior, codes, [0, 1, 2, 0, 1]) - code_bits(pipe.background, codes)) / dims
    torch.testing.assert_close(labelled.likelihood_ratio, expected)
    assert image_pipeline(background=False).score(x).likelihood_ratio is None


def test_pipeline_saves_and_loads_its_background(tmp_path):
    from vqgen.integrity import describe_pipeline
    from vqgen.pipelines.loading import load_pipeline

    pipe = image_pipeline()
    pipe.save_pretrained(tmp_path / "with")
    assert (tmp_path / "with" / "background" / "config.json").is_file()
    loaded = load_pipeline(tmp_path / "with")
    x = torch.stack([make_images(3)[i]["pixels"] for i in range(3)])
    torch.testing.assert_close(loaded.score(x).likelihood_ratio, pipe.score(x).likelihood_ratio)
    assert not loaded.background.training
    image_pipeline(background=False).save_pretrained(tmp_path / "without")
    assert load_pipeline(tmp_path / "without").background is None
    assert "background" in describe_pipeline(tmp_path / "with")["components"]
    assert "background" not in describe_pipeline(tmp_path / "without")["components"]
    pipe.set_background(None)
    assert pipe.background is None and pipe.score(x).likelihood_ratio is None


def test_pipeline_refuses_a_background_that_cannot_score_its_codes():
    from vqgen.errors import MismatchError
    from vqgen.pipelines import ImagePipeline

    tokenizer, prior = make_tokenizer(), make_prior(num_classes=3)
    with pytest.raises(MismatchError, match="unconditional"):
        ImagePipeline(tokenizer, prior, make_prior(num_classes=2))
    with pytest.raises(MismatchError, match=r"code grid \[2, 8\]"):
        ImagePipeline(tokenizer, prior, make_prior(num_classes=0, grid=(2, 8)))
    with pytest.raises(MismatchError, match="of 32 codes"):
        image_pipeline().set_background(make_prior(num_classes=0, codebook_size=32))
    with pytest.raises(ConfigError, match="CodePrior"):
        image_pipeline().set_background(torch.nn.Linear(2, 2))


def test_generic_view_codes_are_seeded():
    tokenizer = make_tokenizer()
    x = torch.stack([make_images(5)[i]["pixels"] for i in range(5)])
    codes = generic_view_codes(tokenizer, x, copies=3, seed=4, batch_size=2)
    assert codes.shape == (15, 4, 4) and codes.dtype == torch.long
    torch.testing.assert_close(codes, generic_view_codes(tokenizer, x, copies=3, seed=4, batch_size=2))
    with pytest.raises(ConfigError):
        generic_view_codes(tokenizer, x, copies=0)


def test_fit_background_command_then_score_ranks_by_the_ratio(tmp_path):
    from PIL import Image

    from vqgen.cli import main

    image_pipeline(background=False).save_pretrained(tmp_path / "p")
    (tmp_path / "p" / "README.md").write_text("model card")
    data = tmp_path / "images"
    data.mkdir()
    images = make_images(12)
    for i in range(12):
        array = np.round((images[i]["pixels"][0].numpy() + 1) * 127.5).astype(np.uint8)
        Image.fromarray(array).save(data / f"{i}.png")
    flags = ["--copies", "2", "--steps", "3", "--hidden-size", "32", "--num-layers", "1", "--no-progress"]
    argv = ["fit-background", "--pipeline", str(tmp_path / "p"), "--data", str(data), "--output"]
    assert main([*argv, str(tmp_path / "bg"), *flags]) == 0
    assert (tmp_path / "bg" / "background" / "config.json").is_file()
    assert (tmp_path / "bg" / "README.md").read_text() == "model card"
    assert main(["score", "--pipeline", str(tmp_path / "bg"), "--data", str(data), "--output",
                 str(tmp_path / "s.csv"), "--plot", "--no-progress"]) == 0  # fmt: skip
    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ratios = [float(r["likelihood_ratio"]) for r in rows]
    assert len(rows) == 12 and ratios == sorted(ratios, reverse=True)
    assert (tmp_path / "s.png").is_file()


def test_fit_background_command_refuses_other_media(tmp_path, capsys):
    from test_pipeline_video import GRID, make_video_tokenizer

    from vqgen.cli import main
    from vqgen.pipelines import VideoPipeline

    VideoPipeline(make_video_tokenizer(), make_prior(grid=GRID), fps=10).save_pretrained(tmp_path / "v")
    argv = ["fit-background", "--pipeline", str(tmp_path / "v"), "--data", "demo:mnist", "--output"]
    assert main([*argv, str(tmp_path / "out")]) != 0
    assert "image pipelines" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    image_pipeline(background=False).save_pretrained(tmp_path / "p")
    argv = ["fit-background", "--pipeline", str(tmp_path / "p"), "--data", str(tmp_path / "nowhere")]
    assert main([*argv, "--output", str(tmp_path / "out"), "--hidden-size", "30"]) != 0
    assert "multiple of num_heads" in capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "out")]) != 0
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_score_views_average_the_ratio_over_jittered_views():
    from vqgen.data.shards import jitter_images

    pipe = image_pipeline()
    x = torch.stack([make_images(4)[i]["pixels"] for i in range(4)])
    out = pipe.score(x, views=3, batch_size=3)
    generator = torch.Generator().manual_seed(0)
    inputs = [x] + [jitter_images(x, generator) for _ in range(2)]
    expected = torch.stack([pipe.score(v).likelihood_ratio for v in inputs]).mean(0)
    torch.testing.assert_close(out.likelihood_ratio, expected)
    torch.testing.assert_close(out.bits_per_dim, pipe.score(x).bits_per_dim)
    torch.testing.assert_close(pipe.score(x, views=3).likelihood_ratio, out.likelihood_ratio)
    other = pipe.score(x, views=3, generator=torch.Generator().manual_seed(5)).likelihood_ratio
    assert not torch.allclose(other, out.likelihood_ratio)
    with pytest.raises(ConfigError, match="views"):
        pipe.score(x, views=0)
    with pytest.raises(ConfigError, match="background"):
        image_pipeline(background=False).score(x, views=2)


def test_video_pipelines_take_a_background_but_no_score_views():
    from test_pipeline_video import GRID, make_video_tokenizer

    from vqgen.pipelines import VideoPipeline

    pipe = VideoPipeline(
        make_video_tokenizer(), make_prior(grid=GRID), fps=10, background=make_prior(num_classes=0, grid=GRID)
    )
    clips = torch.rand(2, *pipe.sample_shape) * 2 - 1
    assert pipe.score(clips).likelihood_ratio.shape == (2,)
    with pytest.raises(ConfigError, match="image pipelines"):
        pipe.score(clips, views=2)
