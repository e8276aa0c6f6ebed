"""Learned compression: a tokenizer's codes range-coded under the prior's next-code probabilities.

File layout (``.vqz``, little-endian): the magic ``VQZ1``, format version, 8-byte pipeline checksum, media
shape, item count and optional class labels, a CRC-32 of the coded tokens, then the range coder's uint32 words,
then a CRC-32 of all the bytes before it (a flipped bit anywhere is refused instead of decoding to other media).
The labels are a count ``F`` (uint8: 0 none, 1 a class label per item as always, more for a prior with several
condition fields) and ``F * items`` uint16 value indices, field by field (65535: the field's null).

The reference path. Decoding must rebuild the probabilities the encoder used, so both sides compute them on ONE
pinned path that no sampler change touches: ``vqgen.priors.reference.ReferenceDecoder``, the prior's Llama
written plainly in float64 on the CPU with one thread, walked step by step (``vqgen.priors.walk``), each
position's softmax over its code range quantised by :func:`frequencies` to integer counts. Speed work must
never touch ``reference.py`` or :func:`frequencies`; the sampler's decoder (``vqgen.priors.decoder``) is free to
change without moving a file's bits, and ``FORMAT_VERSION`` changes only when the format does.

Why it is robust. Two machines, kernel sets (``ATEN_CPU_CAPABILITY``), BLAS builds or thread counts may sum the
float64 logits in another order, so they differ in the last bits: by at most 2e-14 of a logit measured between
the ``default`` and ``avx2`` kernel sets on a 4.9M-parameter prior, 0 between 1 and 2 threads
(``benchmarks/RESULTS.md``). The counts ``f_i = 1 + floor(p_i * (Q - n))`` (``Q = 2^16``, more for alphabets
over 2^14 codes) change only where some ``p_i * (Q - n)`` lies within that difference of an integer: the expected
number of changed counts per position is ``(Q - n) * sum_i |dp_i| <= 2 * (Q - n) * max |d logit|``, at most
2.6e-9 at 2e-14 and 2e-10 as measured. A file of a million coded positions then decodes elsewhere with a chance
of failure near 2e-4 (through float32 instead, the sampler's decoder differed by 1e-5 per logit between kernel
sets: a failure in most files). Coarse counts cost little: 2e-5 bits per code measured at ``n = 256`` (at most
``n / Q`` of the probability mass moves). The integer counts reach ``constriction`` as exact floats, so its own
quantisation sees identical inputs on both sides. A mismatch is never silent: the tokens' CRC-32 in the header
fails and decompression says so.

The tokenizer's encode and decode run as the caller configured them, so the decoded media equal
``tokenizer.decode(tokenizer.encode(x))`` computed the same way. A different pipeline is refused by its checksum.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from vqgen.errors import ConfigError, DataError, MismatchError
from vqgen.fingerprints import LATER_PRIOR_KEYS, config_eras, iter_tokenizer_fingerprints, model_digest
from vqgen.priors.reference import ReferenceDecoder
from vqgen.priors.walk import walk

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "compress",
    "decompress",
    "decompress_codes",
    "frequencies",
    "iter_pipeline_checksums",
    "pipeline_checksum",
    "read_header",
]

MAGIC = b"VQZ1"
#: 5: probabilities from the pinned float64 reference path (``vqgen.priors.reference``), quantised to integer
#: counts, and a CRC-32 of the coded tokens. Versions 2-4 followed the sampler's decoder; they are refused.
FORMAT_VERSION = 5
#: ``log2 Q``: every position's counts sum to at most ``Q`` (see the module docstring).
FREQUENCY_BITS = 16


#: A field's null in the header's uint16 value indices.
_NULL_VALUE = 0xFFFF


def iter_pipeline_checksums(pipe) -> Iterator[str]:
    """Every checksum ``pipe`` answers to, the one new files store first, computed as they are asked for: the
    tokenizer's fingerprints (``vqgen.fingerprints``: the current one, then those earlier releases wrote), each
    followed by the prior's config and weights. The prior's config is hashed as format 5 first wrote it, without
    keys added later at their neutral values (``LATER_PRIOR_KEYS``), then as later releases may have."""
    prior_eras = config_eras(pipe.prior.config, LATER_PRIOR_KEYS)[::-1]
    for fingerprint in iter_tokenizer_fingerprints(pipe.tokenizer):
        for era in prior_eras:
            yield model_digest(era, pipe.prior, prefix=fingerprint.encode())


def pipeline_checksum(pipe) -> str:
    """A short hash of both components' configs and weights: equal checksums code identically."""
    return next(iter_pipeline_checksums(pipe))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def frequencies(logits: torch.Tensor) -> np.ndarray:
    """Integer counts ``[rows, n]`` (int64, each >= 1) of the softmax of float64 ``logits [rows, n]``.

    ``f_i = 1 + floor(p_i * (Q - n))`` with ``Q = 2^FREQUENCY_BITS`` (``2^(bits(n) + 2)`` for larger ``n``), so
    the counts sum to at most ``Q``. Part of the pinned reference path: see the module docstring.
    """
    n = logits.shape[-1]
    total = 1 << max(FREQUENCY_BITS, n.bit_length() + 2)
    probabilities = torch.softmax(logits.to(torch.float64), dim=-1)
    return (1 + torch.floor(probabilities * (total - n))).to(torch.int64).numpy()


def _walk_layout(pipe, num_items: int, labels: torch.Tensor | None, code: Callable) -> torch.Tensor:
    """Walk the prior's layout on the reference path under condition indices ``labels`` ``[num_items, F]``
    (None: every field null); returns tokens ``[num_items, length]`` (CPU).

    At every coded position ``code(position, counts)`` gets the integer counts ``[num_items, hi - lo]`` over the
    position's code range ``[lo, hi)`` (``frequencies``; the same numbers on both sides) and returns the chosen
    codes ``[num_items]`` relative to ``lo``: the encoder looks them up and codes them, the decoder decodes them.
    Positions the layout fixes (delay pads) are not coded.
    """
    prior = pipe.prior
    layout = prior.layout
    streams = layout.streams
    fixed = layout.fixed_tokens()
    tokens = torch.full((num_items, layout.length), -1, dtype=torch.long)
    if fixed is not None:
        tokens[:, fixed >= 0] = fixed[fixed >= 0]

    def pick(step: int, logits: torch.Tensor) -> torch.Tensor:
        out = tokens[:, step * streams : (step + 1) * streams].clone()
        for column in range(streams):
            position = step * streams + column
            if fixed is None or fixed[position] < 0:
                lo, hi = layout.code_range(position)
                out[:, column] = (
                    torch.as_tensor(code(position, frequencies(logits[:, lo:hi])), dtype=torch.long) + lo
                )
        return out

    with _one_thread(), torch.inference_mode():
        prefix = prior.prefix(None, num_items, conditions=labels).cpu()
        decoder = ReferenceDecoder(prior, num_items, prior.num_prefix_tokens + layout.steps - 1)
        walk(decoder, prefix, tokens, pick, streams=streams)
    return tokens


def _tokens_crc(tokens: torch.Tensor) -> int:
    return zlib.crc32(tokens.to(torch.int32).numpy().astype("<i4").tobytes())


def _labels(pipe, class_labels, num_items: int, conditions=None) -> torch.Tensor | None:
    """Condition indices ``[num_items, F]`` on the CPU (``CodePrior.condition_indices``), or None."""
    if not pipe.prior.is_conditional:
        for name, given in (("class_labels", class_labels), ("conditions", conditions)):
            if given is not None:
                raise ConfigError(f"{name} were given but the pipeline's prior is unconditional")
        return None
    indices = pipe.prior.condition_indices(class_labels, num_items, conditions)
    return None if indices is None else indices.cpu()


def compress(pipe, media, class_labels=None, conditions=None) -> bytes:
    """Encode ``media`` (any form ``pipe.preprocess`` accepts) to bytes under value indices (``class_labels``
    or ``conditions``, as ``CodePrior.condition_indices`` takes them; names are the pipeline's to resolve, see
    ``TokenPipeline.compress``); see :func:`decompress`."""
    import constriction

    # The tokenizer runs as the caller set it up (its reconstruction is what decompress must give back);
    # only the prior's probabilities run on the pinned reference path.
    x = pipe.preprocess(media).to(device=pipe.tokenizer.device, dtype=pipe.tokenizer.dtype)
    with torch.no_grad():
        tokens = pipe.prior.layout.flatten(pipe.encode_codes(x).cpu())
    num_items = tokens.shape[0]
    labels = _labels(pipe, class_labels, num_items, conditions)
    encoder = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    symbols_of = tokens.numpy()

    def encode_position(position: int, counts: np.ndarray) -> np.ndarray:
        lo = pipe.prior.layout.code_range(position)[0]
        symbols = symbols_of[:, position] - lo
        encoder.encode(symbols.astype(np.int32), family, counts.astype(np.float64))
        return symbols

    _walk_layout(pipe, num_items, labels, encode_position)
    header = _pack_header(pipeline_checksum(pipe), pipe.sample_shape, num_items, labels, _tokens_crc(tokens))
    payload = header + encoder.get_compressed().astype("<u4").tobytes()
    return payload + struct.pack("<I", zlib.crc32(payload))


def _pack_header(checksum: str, shape, num_items: int, labels: torch.Tensor | None, tokens_crc: int) -> bytes:
    """Binary header: magic, version, 8-byte pipeline checksum, media shape, item count, optional labels
    ``[num_items, F]`` (field by field, null as 65535), and the CRC-32 of the coded tokens."""
    fields = 0 if labels is None else labels.shape[1]
    parts = [MAGIC, struct.pack("<B8sB", FORMAT_VERSION, bytes.fromhex(checksum), len(shape))]
    parts += [struct.pack(f"<{len(shape)}HIB", *shape, num_items, fields)]
    if labels is not None:
        values = labels.T.reshape(-1)
        values = torch.where(values < 0, _NULL_VALUE, values)
        parts.append(struct.pack(f"<{num_items * fields}H", *values.tolist()))
    parts.append(struct.pack("<I", tokens_crc))
    return b"".join(parts)


def read_header(data: bytes) -> tuple[dict, np.ndarray]:
    """Split a ``.vqz`` payload into its header fields and the range coder's words.

    Refuses (one-line ``DataError``) a file of another format version, naming both versions.
    """
    if not isinstance(data, (bytes, bytearray)) or data[:4] != MAGIC or len(data) < 14:
        raise DataError("not a vqgen compressed file (expected the VQZ1 magic bytes)")
    try:
        version, checksum, ndim = struct.unpack_from("<B8sB", data, 4)
        if version != FORMAT_VERSION:
            advice = "compress the source again" if version < FORMAT_VERSION else "read it with a newer vqgen"
            raise DataError(
                f"this .vqz file is format {version}; this vqgen reads format {FORMAT_VERSION}: {advice}"
            )
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise DataError("the compressed file is corrupt or truncated (its CRC-32 does not match)")
        data = data[:-4]
        offset = 14
        *shape, num_items, fields = struct.unpack_from(f"<{ndim}HIB", data, offset)
        offset += struct.calcsize(f"<{ndim}HIB")
        labels = None
        if fields:
            values = struct.unpack_from(f"<{num_items * fields}H", data, offset)
            labels = [
                [-1 if v == _NULL_VALUE else v for v in values[f * num_items : (f + 1) * num_items]]
                for f in range(fields)
            ]
            offset += 2 * num_items * fields
        (tokens_crc,) = struct.unpack_from("<I", data, offset)
        offset += 4
    except struct.error:
        raise DataError("the compressed file is truncated") from None
    body = data[offset:]
    if len(body) % 4:
        raise DataError("the compressed file is truncated")
    header = {
        "pipeline": checksum.hex(),
        "sample_shape": shape,
        "items": num_items,
        "class_labels": labels[0] if labels is not None and fields == 1 else None,
        "conditions": labels,
        "tokens_crc": tokens_crc,
    }
    return header, np.frombuffer(body, dtype="<u4").astype(np.uint32)


def decompress_codes(pipe, data: bytes) -> tuple[torch.Tensor, list[int] | dict[str, list[int]] | None]:
    """Bytes from :func:`compress` -> (codes ``[N, *grid]`` on the CPU, its labels: None, the class labels
    (a list), or for a prior with several fields ``{field: indices}`` (-1: null))."""
    import constriction

    header, words = read_header(data)
    if not any(checksum == header["pipeline"] for checksum in iter_pipeline_checksums(pipe)):
        raise MismatchError(
            f"this file was compressed with pipeline {header['pipeline']}, not with the given pipeline "
            f"{pipeline_checksum(pipe)}: decompress it with the pipeline that compressed it"
        )
    num_items = int(header["items"])
    labels = None if header["conditions"] is None else torch.tensor(header["conditions"]).T
    decoder = constriction.stream.queue.RangeDecoder(words)
    family = constriction.stream.model.Categorical(perfect=False)

    def decode_position(position: int, counts: np.ndarray) -> np.ndarray:
        return decoder.decode(family, counts.astype(np.float64))

    try:
        tokens = _walk_layout(pipe, num_items, labels, decode_position)
    except (ValueError, RuntimeError, AssertionError) as error:
        raise DataError(f"the compressed data is corrupt ({error})") from None
    if _tokens_crc(tokens) != header["tokens_crc"]:
        raise DataError(
            "the decoded codes fail the file's CRC-32: this machine computed other probabilities than the one "
            "that compressed it (see vqgen.compression)"
        )
    return pipe.prior.layout.unflatten(tokens), _label_lists(pipe, labels)


def _label_lists(pipe, labels: torch.Tensor | None) -> list[int] | dict[str, list[int]] | None:
    if labels is None:
        return None
    if labels.shape[1] == 1:
        return labels[:, 0].tolist()
    return {name: labels[:, f].tolist() for f, name in enumerate(pipe.prior.condition_fields)}


def decompress(pipe, data: bytes) -> tuple[torch.Tensor, list[int] | dict[str, list[int]] | None]:
    """Bytes from :func:`compress` -> (media ``[N, *sample_shape]`` in [-1, 1], labels as
    :func:`decompress_codes` returns them).

    The media equal ``tokenizer.decode(tokenizer.encode(original))`` exactly.
    """
    codes, labels = decompress_codes(pipe, data)
    with torch.no_grad():
        media = pipe.tokenizer.decode(codes.to(pipe.tokenizer.device)).float().clamp(-1, 1).cpu()
    return media, labels
