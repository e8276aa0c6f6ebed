"""The emoji benchmarks (benchmarks/emoji_rate_distortion.py, benchmarks/emoji_sample_quality.py,
benchmarks/emoji_ablation.py, benchmarks/tokenizer_training_speed.py, benchmarks/pipeline_speed.py): their quick
paths on a 16 px build of the emoji-test.txt fixture with tiny models trained for a few steps, the equal-bytes
reading, and the k-NN precision / recall and nearest-neighbour distances of ``vqgen.evaluation.neighbours``.

No timing is asserted; the smoke runs write their JSON and pictures under a temporary folder."""

from __future__ import annotations

import collections
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import common  # noqa: E402
import emoji_ablation  # noqa: E402
import emoji_rate_distortion  # noqa: E402
import emoji_sample_quality  # noqa: E402
import pipeline_speed  # noqa: E402
import tokenizer_training_speed  # noqa: E402
from emoji_common import as_saved, load_pipeline_quietly, load_split, spread_indices  # noqa: E402
from emoji_rate_distortion import nearest_point, parse_qualities, value_at_bytes  # noqa: E402

import vqgen.data.emoji as emoji  # noqa: E402
from vqgen.errors import ConfigError, ShapeError  # noqa: E402
from vqgen.evaluation.neighbours import knn_radii, nearest_neighbours, precision_recall  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "emoji" / "emoji-test.txt"


def disc_renderer(text: str, resolution: int) -> np.ndarray:
    """A stand-in for the emoji font: a disc of a colour, size and place derived from the text, on white."""
    h = hashlib.sha256(text.encode()).digest()
    image = np.full((resolution, resolution, 3), 255, dtype=np.uint8)
    yy, xx = np.mgrid[:resolution, :resolution]
    centre = (resolution / 2 + h[3] % 5 - 2, resolution / 2 + h[4] % 5 - 2)
    radius = resolution * (0.25 + h[5] / 255 * 0.2)
    image[np.hypot(yy - centre[0], xx - centre[1]) < radius] = np.frombuffer(h[:3], dtype=np.uint8)
    return image


@pytest.fixture(scope="module")
def emoji_build(tmp_path_factory) -> Path:
    """26 train / 12 test 16x16 images in all nine groups."""
    root = tmp_path_factory.mktemp("emoji") / "build"
    emoji.build_emoji(root, resolution=16, progress=False, emoji_test_path=FIXTURE, renderer=disc_renderer)
    return root


@pytest.fixture
def out_dir(tmp_path, monkeypatch) -> Path:
    """benchmarks/out redirected to a temporary folder."""
    monkeypatch.setattr(common, "OUT_DIR", tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture(scope="module")
def tiny_pipeline(emoji_build, tmp_path_factory) -> Path:
    """An ImagePipeline of a tokenizer (16x16x3 -> 4x4 codes of 32) and a 9-class prior, each trained 3 steps."""
    from vqgen.pipelines import ImagePipeline
    from vqgen.priors.prior import CodePrior
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.prior import train_prior
    from vqgen.training.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("pipeline")
    train = load_split(emoji_build, "train")
    options = {"max_steps": 3, "batch_size": 8, "learning_rate": 1e-3, "progress": False, "log_every": 1}
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(
        in_channels=3,
        base_channels=8,
        channel_multipliers=(1, 2, 2),
        latent_channels=8,
        quantizer_config={"type": "vq", "codebook_size": 32},
    )
    tokenizer = train_tokenizer(
        tokenizer, train.dataset, TrainingOptions(output=str(folder / "tok"), **options)
    )
    (folder / "tok" / "training_config.json").unlink()  # as in a pipeline folder: the run is not known
    with torch.no_grad():
        codes = tokenizer.eval().encode(train.images)
    shards = [{"codes": codes[i], "label": int(train.labels[i])} for i in range(len(train))]
    prior = CodePrior(
        codebook_size=32, code_grid=[4, 4], num_classes=9, hidden_size=32, num_layers=2, num_heads=4
    )
    prior = train_prior(prior, shards, TrainingOptions(output=str(folder / "prior"), **options))
    ImagePipeline(tokenizer.eval(), prior.eval()).save_pretrained(folder / "pipe")
    return folder / "pipe"


# ---------------------------------------------------------------------------------------------------------
# Equal-bytes reading


def test_value_at_bytes_is_linear_in_log_bytes():
    # PSNR = 3 log2(bytes) + 1: exactly linear in log bytes, so interpolation must return the curve itself.
    points = [
        {"bytes": b, "psnr": 3 * math.log2(b) + 1, "quality": q} for q, b in enumerate((400, 100, 800, 200))
    ]
    for target in (100, 150, 283.5, 799.0, 800):
        assert value_at_bytes(points, target) == pytest.approx(3 * math.log2(target) + 1)
    assert value_at_bytes(points, 99.9) is None and value_at_bytes(points, 801) is None
    assert value_at_bytes(points, 0) is None and value_at_bytes([], 100) is None
    # Between two points it is the log-bytes weighting, not the bytes one: halfway in log at sqrt(a * b).
    two = [{"bytes": 100.0, "psnr": 20.0}, {"bytes": 400.0, "psnr": 30.0}]
    assert value_at_bytes(two, 200.0) == pytest.approx(25.0)
    assert nearest_point(points, 290)["bytes"] == 400 and nearest_point(points, 270)["bytes"] == 200


def test_targets_read_webp_at_the_vqz_bytes_or_settle_below_its_range():
    def point(quality: int, size: float, psnr: float) -> dict:
        return {"quality": quality, "bytes": size, "psnr": psnr, "ssim": 0.5, "ms_ssim": 0.5}

    curves = {
        "webp": [point(0, 190.0, 22.0), point(5, 300.0, 25.0)],
        "webp-m6": [point(0, 185.0, 21.5), point(5, 290.0, 26.0)],
    }
    steps = {"steps": 100, "tokenizer_steps": 100}
    for vqz_bytes, vqz_psnr in ((240.0, 24.5), (150.0, 23.0)):
        row = {"name": "vqgen .vqz", "bytes": vqz_bytes, "psnr": vqz_psnr}
        readings = emoji_rate_distortion.equal_bytes_rows([row], curves)
        goal = emoji_rate_distortion.targets(readings, curves, row, {"psnr": 24.0}, steps)
        assert goal["tokenizer_minus_vqmodel_db"] == pytest.approx(vqz_psnr - 24.0) and goal["equal_steps"]
        if vqz_bytes == 240.0:  # WebP method 6 reads higher at 240 B: it is the peer
            expected = 21.5 + 4.5 * math.log(240 / 185) / math.log(290 / 185)
            assert goal["vqz_webp_peer"] == "webp-m6"
            assert goal["vqz_minus_webp_db"] == pytest.approx(24.5 - expected)
        else:  # below both sweeps: compared with the smallest files, the better of which has 22.0 dB
            assert goal["vqz_minus_webp_db"] is None and goal["webp_smallest_bytes"] == 185.0
            assert goal["vqz_minus_smallest_webp_db"] == pytest.approx(1.0)
            assert "beats: fewer bytes and higher PSNR" in emoji_rate_distortion.print_targets(goal)


def test_parse_qualities_and_spread_indices():
    assert parse_qualities("0-3,10,2") == [0, 1, 2, 3, 10]
    assert parse_qualities("0-100") == list(range(101))
    with pytest.raises(SystemExit):
        parse_qualities("90-101")
    assert spread_indices(10, None) == list(range(10)) and spread_indices(10, 20) == list(range(10))
    assert spread_indices(9, 3) == [0, 4, 8]


def test_as_saved_rounds_to_uint8_levels():
    x = torch.tensor([[[[-1.0, 1.0, 0.0, 0.3]]]])
    saved = as_saved(x)
    assert saved.shape == x.shape
    torch.testing.assert_close((saved + 1) * 127.5, ((x + 1) * 127.5).round(), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# Nearest neighbours, precision and recall


def test_nearest_neighbours_exact_and_self_excluded():
    reference = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [0.0, 1.0]])
    d, i = nearest_neighbours(torch.tensor([[0.0, 0.1], [3.0, 4.0]]), reference, k=2, chunk_size=1)
    torch.testing.assert_close(d, torch.tensor([[0.1, 0.9], [0.0, math.sqrt(9 + 9)]], dtype=torch.float64))
    assert i[0, 0] == 0 and i[1, 0] == 1
    # Self excluded by index: the duplicate (rows 2 and 3) still counts at distance 0.
    d, i = nearest_neighbours(reference, reference, k=1, exclude_self=True)
    assert d[:, 0].tolist() == pytest.approx([1.0, math.sqrt(9 + 9), 0.0, 0.0])
    assert i[2, 0] == 3 and i[3, 0] == 2
    assert knn_radii(reference, k=2).tolist() == pytest.approx([1.0, math.sqrt(18), 1.0, 1.0])
    with pytest.raises(ConfigError, match="k must be in 1..3"):
        knn_radii(reference, k=4)
    with pytest.raises(ShapeError, match="dimensions"):
        nearest_neighbours(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="NaN"):
        nearest_neighbours(torch.tensor([[float("nan")]]), torch.zeros(2, 1))


def test_precision_recall_on_known_point_clouds():
    line = torch.arange(10.0).unsqueeze(1)  # real points 0..9: every k=1 radius is 1
    assert precision_recall(line, line, k=3)["precision"] == 1.0
    assert precision_recall(line, line, k=3)["recall"] == 1.0
    far = torch.tensor([[100.0], [101.0], [102.0]])
    figures = precision_recall(line, far, k=1)
    assert figures["precision"] == 0.0 and figures["recall"] == 0.0
    # 0.5 lies in the real ball of 0 (radius 1), 20 in none: precision 1/2. The two fakes' k=1 radii are 19.5,
    # so the ball around 0.5 covers every real point: recall 1.
    figures = precision_recall(line, torch.tensor([[0.5], [20.0]]), k=1)
    assert figures["precision"] == 0.5 and figures["recall"] == 1.0
    # Two real modes of 5 points each, samples covering one of them well: precision 1, recall 1/2.
    mode = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    real = torch.cat([mode, mode + 100])
    figures = precision_recall(real, mode * 0.9 + 0.05, k=3)
    assert figures["precision"] == 1.0 and figures["recall"] == 0.5
    assert figures["real_points"] == 10 and figures["fake_points"] == 5 and figures["k"] == 3


# ---------------------------------------------------------------------------------------------------------
# Smoke runs of the quick paths


def test_rate_distortion_quick_trains_both_tokenizers(emoji_build, out_dir):
    result = emoji_rate_distortion.main(["--quick", "--data", str(emoji_build)])
    names = [row["name"] for row in result["rows"]]
    assert names == ["vqgen raw codes", "diffusers VQModel raw codes"]
    raw = result["rows"][0]
    assert raw["code_grid"] == [4, 4] and raw["bytes"] == 16 * 5 / 8
    assert set(result["sweeps"]) == {"webp", "webp-m6", "jpeg", "jpeg-scan"}
    assert [p["quality"] for p in result["sweeps"]["webp"]] == [0, 10, 50, 90]
    assert result["targets"]["equal_steps"] is True  # both trained here for the same steps
    assert set(result["throughput"]) == {"vqgen ImageTokenizer", "diffusers VQModel"}
    saved = json.loads((out_dir / "emoji_rate_distortion_quick.json").read_text())
    assert saved["targets"] == result["targets"] and saved["test_images"] == list(range(12))


def test_rate_distortion_quick_with_a_pipeline_codes_vqz_files(emoji_build, tiny_pipeline, out_dir):
    args = ["--quick", "--data", str(emoji_build), "--pipeline", str(tiny_pipeline), "--no-vqmodel"]
    result = emoji_rate_distortion.main([*args, "--max-images", "6"])
    raw, vqz = result["rows"]
    assert vqz["name"] == "vqgen .vqz" and vqz["psnr"] == raw["psnr"]
    assert result["vqz"]["decoded_exactly"] and len(result["vqz"]["file_bytes"]) == 6
    assert vqz["bytes"] == np.mean(result["vqz"]["file_bytes"]) > result["vqz"]["payload_bytes"]
    assert "vqz_minus_webp_db" in result["targets"] and "tokenizer_minus_vqmodel_db" not in result["targets"]
    assert len(result["equal_bytes"]) == 2 * 4  # two vqgen rows x four curves


def test_sample_quality_quick(emoji_build, tiny_pipeline, out_dir):
    args = ["--quick", "--data", str(emoji_build), "--pipeline", str(tiny_pipeline), "--batch-size", "27"]
    result = emoji_sample_quality.main(args)
    assert result["num_samples"] == 27 and result["guidance_scale"] == 3.0
    assert 0 <= result["group_accuracy"] <= 1 and set(result["per_group_accuracy"]) == set(emoji.EMOJI_GROUPS)
    assert set(result["classifier"]["test_per_group_accuracy"]) == set(emoji.EMOJI_GROUPS)
    assert result["fd"]["floor_train_images"] == 27 and result["fd"]["fd"] >= 0
    assert result["fd_even"]["floor_train_images"] == 27 and result["fd_even"]["fd"] >= 0
    # the distribution draw asks the groups in the test split's proportions
    test_counts = torch.bincount(load_split(emoji_build, "test").labels, minlength=len(emoji.EMOJI_GROUPS))
    asked = result["distribution_labels"]
    assert list(asked) == list(emoji.EMOJI_GROUPS) and sum(asked.values()) == 27
    for group, count in zip(emoji.EMOJI_GROUPS, test_counts.tolist()):
        assert abs(asked[group] - 27 * count / int(test_counts.sum())) < 1
    assert 0 <= result["distribution_group_accuracy"] <= 1
    assert 0 <= result["group_accuracy_uncorrected"] <= 1
    assert set(result["per_group_accuracy_uncorrected"]) == set(emoji.EMOJI_GROUPS)
    assert 0 <= result["classifier"]["test_group_mean_accuracy_corrected"] <= 1
    assert 0 <= result["precision_recall"]["recall"] <= 1 and result["precision_recall"]["k"] == 3
    novelty = result["novelty"]
    assert len(novelty["sample_distances"]) == 27 and 0 <= novelty["copy_share"] <= 1
    assert [t[0] for t in result["targets"]] == ["group accuracy >= 80%", "FD <= 3 x floor", "recall >= 0.3"]
    ceiling = result["tokenizer_ceiling"]
    assert ceiling["train_images"] == 27 and ceiling["fd"] >= 0
    assert 0 <= ceiling["train_group_accuracy"] <= 1 and 0 <= ceiling["test_group_accuracy"] <= 1
    assert (out_dir / "emoji_sample_quality_quick.json").is_file()
    # a smoke run's pictures carry its name, so they never overwrite a release's
    assert (out_dir / "emoji_sample_quality_quick_samples.png").is_file()
    assert not (out_dir / "emoji_sample_quality_samples.png").exists()
    assert (out_dir / "emoji_classifier_quick.safetensors").is_file()
    # A second run loads the cached feature network and draws the same samples.
    again = emoji_sample_quality.main(args)
    assert (
        again["classifier"]["cached"] and again["novelty"]["sample_distances"] == novelty["sample_distances"]
    )


def test_label_shift_makes_the_judge_decide_for_the_draws_group_mix():
    from emoji_classifier import label_shift

    train_counts = torch.tensor([580, 20, 400])
    # nothing to correct when the draw holds the groups as the train split does
    assert torch.allclose(label_shift(train_counts, train_counts * 3), torch.zeros(3, dtype=torch.float64))
    # A judge that learned the train mix has logits log p(x | g) + log p_train(g) (+ a constant); the shift
    # turns its argmax into the Bayes decision under the draw's mix, here even.
    generator = torch.Generator().manual_seed(0)
    likelihood = torch.rand(200, 3, generator=generator, dtype=torch.float64).log()
    prior = train_counts.double() / train_counts.sum()
    logits = likelihood + prior.log() + 5.0
    assert torch.equal((logits + label_shift(train_counts)).argmax(1), likelihood.argmax(1))
    target = torch.tensor([1, 1, 8])
    expected = (likelihood + (target.double() / target.sum()).log()).argmax(1)
    assert torch.equal((logits + label_shift(train_counts, target)).argmax(1), expected)
    # the rare group wins a tie under an even mix; a group the draw never asks is never predicted
    assert (torch.zeros(3) + label_shift(train_counts)).argmax() == 1
    assert label_shift(train_counts, torch.tensor([1, 0, 1]))[1] == float("-inf")


def test_proportional_labels_follow_the_counts_and_interleave():
    labels = emoji_sample_quality.proportional_labels(torch.tensor([1, 0, 3, 6]), 20)
    assert collections.Counter(labels) == {0: 2, 2: 6, 3: 12}
    # interleaved: the first half of the draw holds half of every group
    assert collections.Counter(labels[:10]) == {0: 1, 2: 3, 3: 6}
    # largest remainders: 7 x (1/3, 1/3, 1/3) -> 3, 2, 2
    thirds = collections.Counter(emoji_sample_quality.proportional_labels(torch.ones(3), 7))
    assert sorted(thirds.values()) == [2, 2, 3]


def test_floor_indices_match_the_asked_groups_and_repeat_small_ones():
    train_labels = torch.tensor([0, 0, 1, 1, 1, 2])
    chosen = emoji_sample_quality.floor_indices(train_labels, [0, 2, 2, 2, 1], seed=3)
    assert sorted(train_labels[chosen].tolist()) == [0, 1, 2, 2, 2]
    assert chosen.tolist().count(5) == 3  # group 2 has one image: repeated
    again = emoji_sample_quality.floor_indices(train_labels, [0, 2, 2, 2, 1], seed=3)
    assert torch.equal(chosen, again)
    # a group without train images takes its share from the whole split
    assert len(emoji_sample_quality.floor_indices(train_labels, [3, 3, 0], seed=0)) == 3


def test_reconstruct_goes_through_the_tokenizer_and_rounds_like_a_png(emoji_build, tiny_pipeline):
    from vqgen import load_pipeline

    pipe = load_pipeline(tiny_pipeline)
    images = load_split(emoji_build, "test").images[:5]
    out = emoji_sample_quality.reconstructed_images(pipe, images, batch_size=2)
    assert out.shape == images.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, as_saved(out))  # uint8 levels
    with torch.no_grad():
        expected = pipe.tokenizer.decode(pipe.tokenizer.encode(images)).clamp(-1, 1)
    assert torch.equal(out, as_saved(expected))


def test_ablation_quick_trains_every_variant(emoji_build, out_dir):
    result = emoji_ablation.main(["--quick", "--data", str(emoji_build)])
    saved = json.loads((out_dir / "emoji_ablation_quick.json").read_text())
    rows = saved["variants"]
    assert list(rows) == list(emoji_ablation.VARIANTS) and len(rows) == 8
    for name, row in rows.items():
        assert math.isfinite(row["psnr"]) and 0 <= row["test_usage"] <= 1, name
        assert row["steps"] == 3 and row["test_perplexity"] >= 1, name
    # 16 px fixture images: three downsamplings give 2x2 codes, the 8x8 row's grid at 64 px; the rest 4x4.
    assert rows["8x8-codes"]["code_grid"] == [2, 2] and rows["l1+msssim"]["code_grid"] == [4, 4]
    assert rows["8x8-codes"]["bytes"] == 4 * 5 / 8 and rows["l1+msssim"]["bytes"] == 16 * 5 / 8
    # Each row changes what it names, and only that.
    assert rows["l1"]["loss"]["ms_ssim_weight"] == 0 and rows["l1+msssim"]["loss"]["ms_ssim_weight"] == 0.2
    gan = rows["l1+msssim+gan"]["loss"]
    assert (
        gan["discriminator_weight"] > 0
        and gan["feature_matching_weight"] > 0
        and gan["discriminator_start"] == 1
    )
    assert result["training"]["options"]["learning_rate"] == 6e-4 and len(saved["test_images"]) == 8
    assert "| 8x8-codes " in saved["tables"][0]


def test_ablation_variants_select_and_build_what_they_name():
    args = emoji_ablation.parse_args(["--quick", "--variants", "8x8-codes,l1"])
    assert args.variants == ["l1", "8x8-codes"]  # the table's order
    with pytest.raises(SystemExit, match="unknown"):
        emoji_ablation.parse_args(["--variants", "l1,perceptual"])
    quantizer = {}
    for name in ("no-ema-codebook", "+rotation-trick", "+simvq", "no-dead-code-restart", "8x8-codes"):
        tokenizer = emoji_rate_distortion.scratch_tokenizer(args, **emoji_ablation.VARIANTS[name].settings)
        quantizer[name] = tokenizer.config["quantizer_config"]
        if name == "8x8-codes":  # 64x64 images: 8x8 codes
            assert list(tokenizer.code_grid((3, 64, 64))) == [8, 8]
    assert (
        quantizer["no-ema-codebook"]["ema"] is False
        and quantizer["no-ema-codebook"]["dead_code_threshold"] == 20
    )
    assert quantizer["+rotation-trick"]["rotation_trick"] and quantizer["+rotation-trick"]["ema"]
    assert quantizer["+simvq"]["simvq"] and quantizer["+simvq"]["ema"] is False
    assert quantizer["no-dead-code-restart"]["dead_code_threshold"] == 0


def test_tokenizer_training_speed_quick_times_both_models_at_each_size_and_precision(emoji_build, out_dir):
    args = [
        "--quick",
        "--data",
        str(emoji_build),
        "--resolutions",
        "16",
        "32",
        "--precisions",
        "fp32",
        "bf16",
    ]
    result = tokenizer_training_speed.main(args)
    seen = {(r["model"], r["resolution"], r["precision"]) for r in result["readings"]}
    assert seen == {
        (model, size, precision)
        for model in ("vqgen ImageTokenizer", "diffusers VQModel")
        for size in (16, 32)
        for precision in ("fp32", "bf16")
    }
    assert all(r["images_per_s"] > 0 and r["peak_memory_bytes"] is None for r in result["readings"])
    assert "x VQModel" in result["table"]
    assert (out_dir / "tokenizer_training_speed_quick.json").is_file()


def test_tokenizer_training_speed_refuses_a_size_the_models_cannot_halve_twice():
    with pytest.raises(SystemExit, match="--resolutions: 18"):
        tokenizer_training_speed.parse_args(["--resolutions", "64", "18"])


def test_pipeline_speed_quick_on_a_class_pipeline(tiny_pipeline, out_dir):
    result = pipeline_speed.main(["--quick", "--pipeline", str(tiny_pipeline)])
    (reading,) = result["readings"]
    assert reading["items_per_s"] > 0 and "seconds_per_audio_second" not in reading
    labels = pipeline_speed.condition_arguments(load_pipeline_quietly(str(tiny_pipeline)), 5, 0)
    assert set(labels) == {"conditions"} and len(labels["conditions"]["class"]) == 5
    assert (out_dir / "pipeline_speed_quick.json").is_file()


def test_pipeline_speed_refuses_an_unknown_dtype():
    with pytest.raises(SystemExit, match="'float33' is not a torch dtype"):
        pipeline_speed.parse_args(["--dtypes", "float33"])
