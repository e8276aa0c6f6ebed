"""Range coding under the prior: exact round trips, a compact header, refusal of other pipelines, other format
versions and junk; the pinned reference path against the transformers forward, and files that decode under
another CPU kernel set and thread count."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_images, make_prior, make_tokenizer
from PIL import Image

from vqgen.cli import main
from vqgen.compression import FORMAT_VERSION, MAGIC, compress, decompress, decompress_codes, read_header
from vqgen.errors import ConfigError, DataError, MismatchError
from vqgen.pipelines import ImagePipeline
from vqgen.priors.prior import CodePrior
from vqgen.priors.reference import ReferenceDecoder
from vqgen.priors.walk import step_ids


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


# ------------------------------------------------------------------ format versions and the tokens' CRC


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_a_format_4_file_is_refused_naming_both_versions(pipe):
    """A header as the previous release (format 4) wrote it, built by hand: magic, version 4, the pipeline
    checksum, shape, item count, no labels, one range-coder word, the file's CRC-32."""
    from vqgen.compression import pipeline_checksum

    shape = (1, 8, 8)
    body = MAGIC + struct.pack("<B8sB", 4, bytes.fromhex(pipeline_checksum(pipe)), len(shape))
    body += struct.pack("<3HIB", *shape, 1, 0) + struct.pack("<I", 12345)
    assert FORMAT_VERSION == 5
    with pytest.raises(DataError) as error:
        pipe.decompress(with_crc(body))
    assert (
        str(error.value) == "this .vqz file is format 4; this vqgen reads format 5: compress the source again"
    )
    with pytest.raises(DataError, match="format 9; this vqgen reads format 5: read it with a newer vqgen"):
        read_header(with_crc(MAGIC + struct.pack("<B8sB", 9, bytes(8), 0) + bytes(8)))


def test_codes_that_fail_their_crc_are_refused(pipe):
    """A file whose coded tokens decode to other codes than it recorded (what a machine computing other
    probabilities would see) is refused, not decoded to other media."""
    data = pipe.compress(pixels(2))
    header, _ = read_header(data)
    body = bytearray(data[:-4])
    offset = 14 + struct.calcsize("<3HIB")  # no labels: the tokens' CRC follows the item count
    assert struct.unpack_from("<I", body, offset)[0] == header["tokens_crc"]
    struct.pack_into("<I", body, offset, header["tokens_crc"] ^ 1)
    with pytest.raises(DataError, match="fail the file's CRC-32"):
        pipe.decompress(with_crc(bytes(body)))


# ------------------------------------------------------------------ the reference path


def spread(prior):
    """Re-draw the weights widely, so that a wrong step would show in the logits."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in prior.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1.0 + 0.3 * noise if "norm" in name else 0.35 * noise)
    return prior.eval()


@pytest.mark.parametrize("num_kv_heads", [4, 2])
def test_reference_forward_matches_transformers(num_kv_heads):
    """The pinned float64 forward computes the prior's model: its code logits at every step equal the
    ``transformers`` forward's (which runs RMSNorm and RoPE in float32, hence the tolerance)."""
    torch.manual_seed(0)
    prior = spread(
        CodePrior(
            16, [4, 4], num_classes=3, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=num_kv_heads
        )
    )
    seq = torch.cat(
        [prior.prefix([0, 2], 2), torch.randint(0, 16, (2, 15), generator=torch.Generator().manual_seed(2))],
        1,
    )
    with torch.no_grad():
        full = prior.model(input_ids=seq).logits[..., :16].double()
    assert full.std() > 0.5
    decoder = ReferenceDecoder(prior, 2, seq.shape[1])
    got = [decoder(seq[:, :3])] + [decoder(seq[:, t : t + 1]) for t in range(3, seq.shape[1])]
    assert got[0].dtype == torch.float64
    torch.testing.assert_close(torch.stack(got, 1), full[:, 2:], atol=1e-4, rtol=1e-4)


def test_reference_forward_sums_the_tokens_of_a_multi_stream_step():
    torch.manual_seed(0)
    prior = spread(
        CodePrior(8, [2, 4], num_classes=3, layout="delay", hidden_size=32, num_layers=2, num_heads=4)
    )
    tokens = prior.layout.flatten(torch.randint(0, 8, (2, 2, 4), generator=torch.Generator().manual_seed(3)))
    prefix = prior.prefix([1, 2], 2)
    with torch.no_grad():
        full = prior.model(inputs_embeds=prior.step_embeddings(prefix, tokens[:, :-2])).logits
    decoder = ReferenceDecoder(prior, 2, prior.seq_len - 1)
    got = [decoder(step_ids(prefix, tokens[:, :2], 2))]
    got += [
        decoder(step_ids(None, tokens[:, 2 * s : 2 * s + 2], 2)) for s in range(1, prior.layout.steps - 1)
    ]
    n = prior.num_code_tokens
    torch.testing.assert_close(torch.stack(got, 1), full[:, 2:, :n].double(), atol=1e-4, rtol=1e-4)


_COMPRESS = textwrap.dedent(
    """
    import sys, torch
    from vqgen.compression import compress
    from vqgen.pipelines.loading import load_pipeline

    folder, name = sys.argv[1], sys.argv[2]
    pipe = load_pipeline(folder + "/pipe")
    x = torch.load(folder + "/x.pt")
    with open(f"{folder}/{name}.vqz", "wb") as f:
        f.write(compress(pipe, x, class_labels=[0, 1, 2, 0]))
    torch.save(pipe.tokenizer.encode(x), f"{folder}/{name}-codes.pt")
    print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())
    """
)


def test_files_decode_under_another_cpu_kernel_set_and_thread_count(tmp_path):
    """Compress in subprocesses under ``ATEN_CPU_CAPABILITY=avx2`` with 2 threads and ``default`` (the scalar
    kernels) with 1; decompress both here, under the machine's own kernel set with 2 threads: the decoded codes
    equal the encoded ones (and where both encoded the same codes, the files are the same bytes)."""
    from vqgen.pipelines.loading import load_pipeline

    ImagePipeline(make_tokenizer(), make_prior()).save_pretrained(tmp_path / "pipe")
    torch.save(pixels(4), tmp_path / "x.pt")
    root = Path(__file__).resolve().parent.parent
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")}
    base["PYTHONPATH"] = os.pathsep.join([str(root), base.get("PYTHONPATH", "")])
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _COMPRESS, str(tmp_path), name],
            env={**base, "ATEN_CPU_CAPABILITY": name, "OMP_NUM_THREADS": str(threads)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, threads in (("avx2", 2), ("default", 1))
    }
    pipe = load_pipeline(tmp_path / "pipe")  # meanwhile
    for name, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        assert out.split() == [name.upper(), "2" if name == "avx2" else "1"]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        encoded = {name: torch.load(tmp_path / f"{name}-codes.pt") for name in runs}
        for name, codes in encoded.items():
            decoded, labels = decompress_codes(pipe, (tmp_path / f"{name}.vqz").read_bytes())
            assert torch.equal(decoded, codes) and labels == [0, 1, 2, 0]
    finally:
        torch.set_num_threads(threads)
    if torch.equal(encoded["avx2"], encoded["default"]):  # the tokenizer's encode is not pinned
        assert (tmp_path / "avx2.vqz").read_bytes() == (tmp_path / "default.vqz").read_bytes()
