"""Learned compression: a tokenizer's codes range-coded under the prior's next-code probabilities.

File layout (``.vqz``, little-endian): the magic ``VQZ1``, format version, 8-byte pipeline checksum, media
shape, item count and optional class labels, then the range coder's uint32 words, then a CRC-32 of all the
bytes before it (a flipped bit anywhere is refused instead of decoding to other media).

Decoding must rebuild exactly the probabilities the encoder used, so both sides run the same computation:
the prior's KV-cached decoder step by step on the CPU in float32 with one thread (thread count can change
the order of floating-point sums), probabilities in float64, quantised to integers by ``constriction``'s
deterministic categorical model. The tokenizer's encode and decode run as the caller configured them, so the
decoded media equal ``tokenizer.decode(tokenizer.encode(x))`` computed the same way. Files decode on the machine kind that wrote them; a different pipeline is
refused by its checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import torch

from vqgen.errors import ConfigError, DataError, MismatchError

__all__ = ["FORMAT_VERSION", "MAGIC", "compress", "decompress", "pipeline_checksum"]

MAGIC = b"VQZ1"
# 3: the KV-cached decoder's arithmetic changed (folded norm weights, feature-major products), so its
# probabilities, and with them version-2 files, differ in the last bits; those are refused, not misdecoded.
# 4: again (products on oneDNN-packed weights), so version-3 files are refused the same way.
FORMAT_VERSION = 4


def pipeline_checksum(pipe) -> str:
    """A short hash of both components' configs and weights: equal checksums code identically."""
    from vqgen.data.shards import tokenizer_fingerprint

    digest = hashlib.sha256(tokenizer_fingerprint(pipe.tokenizer).encode())
    # Keys such as ``_name_or_path`` say where the prior was loaded from, not how it codes.
    config = {k: v for k, v in dict(pipe.prior.config).items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(pipe.prior.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _deterministic_cpu(pipe) -> Iterator[None]:
    """Run the block with one torch thread and float32 components on the CPU; restore everything after."""
    threads = torch.get_num_threads()
    device, dtype = pipe.prior.device, pipe.prior.dtype
    moved = device.type != "cpu" or dtype != torch.float32
    torch.set_num_threads(1)
    if moved:
        pipe.to(device="cpu", dtype=torch.float32)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if moved:
            pipe.to(device=device, dtype=dtype)


def _walk_layout(pipe, num_items: int, labels: torch.Tensor | None, code_position) -> torch.Tensor:
    """Run the prior's KV-cached decoder over the layout step by step; returns tokens ``[rows, length]``.

    At every coded position ``code_position(position, lo, probabilities)`` gets float64 probabilities
    ``[rows, hi - lo]`` over the position's code range ``[lo, hi)`` (``layout.code_range``; the same numbers
    on both sides) and returns the chosen codes ``[rows]`` relative to ``lo``: the encoder looks them up and codes
    them, the decoder decodes them. Positions the layout fixes (delay pads) are not coded.
    """
    from vqgen.priors.sampling import KVDecoder

    prior = pipe.prior
    layout = prior.layout
    streams = layout.streams
    steps = layout.length // streams
    fixed = layout.fixed_tokens()
    tokens = torch.full((num_items, layout.length), -1, dtype=torch.long)
    if fixed is not None:
        tokens[:, fixed >= 0] = fixed[fixed >= 0]
    condition = prior.condition_tokens(labels, num_items) if prior.is_conditional else None
    with torch.inference_mode():
        max_len = prior.num_prefix_tokens + steps - 1
        # One page whatever the item count: the probabilities, and so the files, must not depend on how
        # ``KVDecoder`` would lay out a cache of that size for speed.
        decoder = KVDecoder(prior.model, num_items, max_len, layout.num_code_tokens, page_size=max_len)
        head = prior.prefix_ids(condition, num_items)
        logits = decoder(head) if streams == 1 else decoder(embeds=prior.step_embeddings(head, tokens[:, :0]))
        for step in range(steps):
            for position in range(step * streams, (step + 1) * streams):
                if fixed is not None and fixed[position] >= 0:
                    continue
                lo, hi = layout.code_range(position)
                probabilities = torch.softmax(logits[:, lo:hi].double(), dim=-1).numpy()
                tokens[:, position] = torch.as_tensor(code_position(position, lo, probabilities)) + lo
            if step + 1 < steps:
                feed = tokens[:, step * streams : (step + 1) * streams]
                logits = decoder(feed) if streams == 1 else decoder(embeds=prior.step_embeddings(None, feed))
    return tokens


def _labels(pipe, class_labels, num_items: int) -> torch.Tensor | None:
    if class_labels is None or not pipe.prior.is_conditional:
        if class_labels is not None:
            raise ConfigError("class_labels were given but the pipeline's prior is unconditional")
        return None
    return pipe.prior.labels_tensor(class_labels, num_items).cpu()


def compress(pipe, media, class_labels=None) -> bytes:
    """Encode ``media`` (any form ``pipe.preprocess`` accepts) to bytes; see :func:`decompress`."""
    import constriction

    # The tokenizer runs as the caller set it up (its reconstruction is what decompress must give back);
    # only the prior's probabilities need the deterministic mode.
    x = pipe.preprocess(media).to(device=pipe.tokenizer.device, dtype=pipe.tokenizer.dtype)
    tokens = pipe.prior.layout.flatten(pipe.tokenizer.encode(x).cpu()).numpy()
    with _deterministic_cpu(pipe):
        num_items = tokens.shape[0]
        labels = _labels(pipe, class_labels, num_items)
        encoder = constriction.stream.queue.RangeEncoder()

        def encode_position(position: int, lo: int, probabilities: np.ndarray) -> np.ndarray:
            symbols = tokens[:, position] - lo
            for row in range(num_items):
                model = constriction.stream.model.Categorical(probabilities[row], perfect=False)
                encoder.encode(int(symbols[row]), model)
            return symbols

        _walk_layout(pipe, num_items, labels, encode_position)
        words = encoder.get_compressed()
        header = _pack_header(pipeline_checksum(pipe), pipe.sample_shape, num_items, labels)
    payload = header + words.astype("<u4").tobytes()
    return payload + struct.pack("<I", zlib.crc32(payload))


def _pack_header(checksum: str, shape, num_items: int, labels: torch.Tensor | None) -> bytes:
    """Binary header: magic, version, 8-byte pipeline checksum, media shape, item count, optional labels."""
    parts = [MAGIC, struct.pack("<B8sB", FORMAT_VERSION, bytes.fromhex(checksum), len(shape))]
    parts += [struct.pack(f"<{len(shape)}HIB", *shape, num_items, labels is not None)]
    if labels is not None:
        parts.append(struct.pack(f"<{num_items}H", *labels.tolist()))
    return b"".join(parts)


def read_header(data: bytes) -> tuple[dict, np.ndarray]:
    """Split a ``.vqz`` payload into its header fields and the range coder's words."""
    if not isinstance(data, (bytes, bytearray)) or data[:4] != MAGIC or len(data) < 14:
        raise DataError("not a vqgen compressed file (expected the VQZ1 magic bytes)")
    try:
        version, checksum, ndim = struct.unpack_from("<B8sB", data, 4)
        if version != FORMAT_VERSION:
            raise DataError(f"unsupported compressed format version {version}, expected {FORMAT_VERSION}")
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise DataError("the compressed file is corrupt or truncated (its CRC-32 does not match)")
        data = data[:-4]
        offset = 14
        *shape, num_items, has_labels = struct.unpack_from(f"<{ndim}HIB", data, offset)
        offset += struct.calcsize(f"<{ndim}HIB")
        labels = None
        if has_labels:
            labels = list(struct.unpack_from(f"<{num_items}H", data, offset))
            offset += 2 * num_items
    except struct.error:
        raise DataError("the compressed file is truncated") from None
    body = data[offset:]
    if len(body) % 4:
        raise DataError("the compressed file is truncated")
    header = {"pipeline": checksum.hex(), "sample_shape": shape, "items": num_items, "class_labels": labels}
    return header, np.frombuffer(body, dtype="<u4").astype(np.uint32)


def decompress(pipe, data: bytes) -> tuple[torch.Tensor, list[int] | None]:
    """Bytes from :func:`compress` -> (media ``[N, *sample_shape]`` in [-1, 1], class labels or None).

    The media equal ``tokenizer.decode(tokenizer.encode(original))`` exactly.
    """
    import constriction

    header, words = read_header(data)
    if header["pipeline"] != pipeline_checksum(pipe):
        raise MismatchError(
            f"this file was compressed with pipeline {header['pipeline']}, not with the given pipeline "
            f"{pipeline_checksum(pipe)}: decompress it with the pipeline that compressed it"
        )
    with _deterministic_cpu(pipe):
        num_items = int(header["items"])
        labels = None if header["class_labels"] is None else torch.tensor(header["class_labels"])
        decoder = constriction.stream.queue.RangeDecoder(words)

        def decode_position(position: int, lo: int, probabilities: np.ndarray) -> np.ndarray:
            symbols = np.zeros(num_items, dtype=np.int64)
            for row in range(num_items):
                model = constriction.stream.model.Categorical(probabilities[row], perfect=False)
                symbols[row] = decoder.decode(model)
            return symbols

        try:
            tokens = _walk_layout(pipe, num_items, labels, decode_position)
        except (ValueError, RuntimeError, AssertionError) as error:
            raise DataError(f"the compressed data is corrupt ({error})") from None
    codes = pipe.prior.layout.unflatten(tokens).to(pipe.tokenizer.device)
    with torch.no_grad():
        media = pipe.tokenizer.decode(codes).float().clamp(-1, 1).cpu()
    return media, None if labels is None else labels.tolist()
