"""Range coding under the prior: exact round trips, a compact header, refusal of other pipelines and junk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer
from PIL import Image

from vqgen.cli import main
from vqgen.compression import MAGIC, compress, decompress, read_header
from vqgen.errors import ConfigError, DataError, MismatchError
from vqgen.pipelines import ImagePipeline


@pytest.fixture
def pipe():
    return ImagePipeline(make_tokenizer(), make_prior())


def pixels(n: int = 6) -> torch.Tensor:
    data = make_images(n)
    return torch.stack([data[i]["pixels"] for i in range(n)])


@pytest.mark.parametrize("labels", [None, [0, 1, 2, 0, 1, 2]])
def test_round_trip_gives_exactly_the_tokenizers_reconstruction(pipe, labels):
    x = pixels()
    data = pipe.compress(x, class_labels=labels)
    assert data[:4] == MAGIC
    media, got_labels = decompress(pipe, data)
    torch.testing.assert_close(
        media, pipe.tokenizer.decode(pipe.tokenizer.encode(x)).clamp(-1, 1), rtol=0, atol=0
    )
    assert got_labels == labels
    header, _ = read_header(data)
    assert header["sample_shape"] == [1, 8, 8] and header["items"] == 6


def test_a_trained_prior_codes_below_the_raw_size(pipe):
    """Fit the prior to one image's codes: its range-coded size must drop well below log2(K) bits per code."""
    x = pixels(1)
    codes = pipe.tokenizer.encode(x)
    before = len(compress(pipe, x))
    prior = pipe.prior.train()
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(60):
        loss = prior(codes).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prior.eval()
    after = compress(pipe, x)
    _, words = read_header(after)
    assert len(after) < before and 4 * len(words) < 16 * 4 / 8  # raw: 16 codes of 4 bits = 8 bytes
    torch.testing.assert_close(
        pipe.decompress(after), pipe.tokenizer.decode(codes).clamp(-1, 1), rtol=0, atol=0
    )


def test_another_pipeline_or_junk_is_refused(pipe):
    data = pipe.compress(pixels(2))
    other = ImagePipeline(make_tokenizer(), make_prior(seed=1))
    with pytest.raises(MismatchError, match="compressed with pipeline"):
        other.decompress(data)
    with pytest.raises(DataError, match="magic"):
        pipe.decompress(b"PK\x03\x04 not ours")
    with pytest.raises(DataError, match="truncated"):
        pipe.decompress(data[:-1])
    with pytest.raises(DataError, match="truncated"):
        pipe.decompress(data[:15])
    for position in (20, len(data) // 2, len(data) - 6, len(data) - 1):  # header, body, trailer
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        with pytest.raises(DataError, match="corrupt"):
            pipe.decompress(bytes(flipped))
    with pytest.raises(ConfigError, match="unconditional"):
        ImagePipeline(make_tokenizer(), make_prior(num_classes=0)).compress(pixels(1), class_labels=[0])


def test_compress_and_decompress_commands(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    array = np.round((pixels(1)[0, 0].numpy() + 1) * 127.5).astype(np.uint8)
    Image.fromarray(array).save(tmp_path / "in.png")
    assert (
        main(
            [
                "compress",
                "--pipeline",
                str(tmp_path / "p"),
                "--input",
                str(tmp_path / "in.png"),
                "--output",
                str(tmp_path / "x.vqz"),
                "--class-label",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "decompress",
                "--pipeline",
                str(tmp_path / "p"),
                "--input",
                str(tmp_path / "x.vqz"),
                "--output",
                str(tmp_path / "out.png"),
            ]
        )
        == 0
    )
    out = np.asarray(Image.open(tmp_path / "out.png"))
    x = torch.from_numpy(array).float()[None, None] / 127.5 - 1
    with torch.no_grad():
        expected = pipe.tokenizer.decode(pipe.tokenizer.encode(x)).clamp(-1, 1)[0, 0].numpy()
    expected = np.round((expected + 1) * 127.5)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    assert (
        main(
            [
                "decompress",
                "--pipeline",
                str(tmp_path / "p"),
                "--input",
                str(tmp_path / "in.png"),
                "--output",
                str(tmp_path / "bad.png"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad.png").exists()


def test_a_moved_copy_of_the_pipeline_decompresses(pipe, tmp_path):
    import shutil

    from vqgen.pipelines.loading import load_pipeline

    pipe.save_pretrained(tmp_path / "here")
    data = load_pipeline(tmp_path / "here").compress(pixels(2))
    shutil.copytree(tmp_path / "here", tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "here")
    moved = load_pipeline(tmp_path / "elsewhere")
    torch.testing.assert_close(
        moved.decompress(data), moved.tokenizer.decode(moved.tokenizer.encode(pixels(2)))
    )


def test_an_all_black_image_round_trips(pipe):
    black = -torch.ones(2, 1, 8, 8)
    expected = pipe.tokenizer.decode(pipe.tokenizer.encode(black)).clamp(-1, 1)
    torch.testing.assert_close(pipe.decompress(pipe.compress(black)), expected, rtol=0, atol=0)
