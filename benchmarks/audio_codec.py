"""An audio tokenizer's reconstructions beside Opus at the same bitrates, on the spoken-digits test split.

Command (a trained tokenizer; the whole unseen-voice test split, 640 one-second clips)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_codec.py --tokenizer runs/audio-tok/final

Smoke run: ``--max-clips 40`` (clips spread evenly over the split) and ``--output-name audio_codec_smoke``.

1. Data: the spoken-digits test split (``vqgen data build spoken-digits``; ``--data`` for another build),
   read with ``AudioFolderDataset(train=False)`` at the tokenizer's sample rate and channel count, 1.0 s each.
2. Tokenizer (``vqgen.loading.load_tokenizer``, an ``AudioTokenizer``): for each target bitrate (``--targets``,
   default 1.5 3 6 kbps) the number of residual levels ``L`` whose nominal bitrate
   ``tokenizer.bitrate(L) = frame_rate * L * log2(codebook_size)`` is nearest on a log scale (duplicates
   dropped; the table shows the real figure). Reconstruction: ``decode(encode(x, num_levels=L))`` cropped to
   the input length and clamped to [-1, 1], i.e. exactly what a file written from the codes would hold.
3. Opus at the tokenizer's bitrate of each row (at least 500 b/s, libopus's floor): libopus through PyAV
   (``av.codec.codecs_available`` must hold ``libopus``), else the ``opusenc``/``opusdec`` programs of
   ``opus-tools``; ``--opus-backend`` forces one. Settings: constant bitrate (``vbr=off`` / ``--hard-cbr``, so
   it spends a fixed rate as the tokenizer does), ``application=voip``, 20 ms frames, mono input at 16 kHz
   (other tokenizer rates are resampled to 16 kHz for Opus and back), decoded output resampled to the
   tokenizer's rate; the Ogg pre-skip is honoured by the decoder so outputs stay sample-aligned. The
   reported Opus bitrate is the measured payload (packet bytes, no Ogg framing) per second of audio. Opus is
   documented from 6 kb/s up: rows below that are outside its design range.
4. Metrics per clip (``vqgen.evaluation.audio``, defaults), then mean and standard error over clips: log-mel
   L1 distance (80 mels, 1024-point FFT, hop 256), multi-resolution STFT distance (spectral convergence +
   log-magnitude L1 at FFT sizes 512, 1024, 2048) and SI-SDR in dB. Both log spectra are floored 80 dB below
   the clip's loudest bin, so noise far below the word, in the digital silence around it, does not dominate. Note that SI-SDR rewards waveform
   matching, which low-rate parametric coding (Opus's SILK mode, or a GAN-trained decoder) does not attempt:
   the mel distance is the more telling figure at these rates.

Output: a table on stdout and ``benchmarks/out/<--output-name>.json`` (default ``audio_codec``).

The instrument notes (pitch kept, family accuracy) are ``benchmarks/notes_codec.py``, which reuses this
script's Opus round trip, level choice and metrics.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from vqgen.evaluation.audio import mel_distance, si_sdr, stft_distance  # noqa: E402

OPUS_RATE = 16000
OPUS_FRAME_MS = 20
OPUS_MIN_BITRATE = 500


# ---------------------------------------------------------------------------------------------------------
# Opus round trips: [S] float32 at 16 kHz -> ([S] float32 at 16 kHz, payload bytes)
# ---------------------------------------------------------------------------------------------------------


def pyav_has_libopus() -> bool:
    import av

    return "libopus" in av.codec.codecs_available


def opus_pyav(wave: np.ndarray, bitrate: int) -> tuple[np.ndarray, int]:
    """Encode mono ``wave [S]`` at 16 kHz with libopus in an in-memory Ogg, decode it: (audio ``[S]``, payload bytes)."""
    import av
    import torchaudio

    buffer = io.BytesIO()
    payload = 0
    with av.open(buffer, "w", format="ogg") as container:
        options = {"vbr": "off", "application": "voip", "frame_duration": str(OPUS_FRAME_MS)}
        stream = container.add_stream("libopus", rate=OPUS_RATE, options=options)
        stream.bit_rate = int(bitrate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(wave[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = OPUS_RATE, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            payload += packet.size
            container.mux(packet)
    chunks, rate = [], OPUS_RATE
    with av.open(io.BytesIO(buffer.getvalue()), "r") as container:
        for decoded in container.decode(container.streams.audio[0]):
            chunks.append(decoded.to_ndarray().reshape(-1))
            rate = decoded.sample_rate
    out = torch.from_numpy(np.concatenate(chunks).astype(np.float32))
    if rate != OPUS_RATE:
        out = torchaudio.functional.resample(out, rate, OPUS_RATE)
    return out.numpy(), payload


def _ogg_payload_bytes(path: Path) -> int:
    """Bytes of the Opus packets in an Ogg Opus file, without the two header packets or Ogg framing."""
    data = path.read_bytes()
    position, packets, current = 0, [], 0
    while position + 27 <= len(data) and data[position : position + 4] == b"OggS":
        count = data[position + 26]
        lacing = data[position + 27 : position + 27 + count]
        for value in lacing:
            current += value
            if value < 255:
                packets.append(current)
                current = 0
        position += 27 + count + sum(lacing)
    return sum(packets[2:])  # OpusHead and OpusTags come first


def opus_tools(wave: np.ndarray, bitrate: int) -> tuple[np.ndarray, int]:
    """The same round trip through ``opusenc`` / ``opusdec`` (Debian ``opus-tools``) in a temporary folder."""
    import soundfile

    with tempfile.TemporaryDirectory() as folder:
        source, encoded, decoded = (Path(folder) / name for name in ("in.wav", "x.opus", "out.wav"))
        soundfile.write(str(source), wave, OPUS_RATE, subtype="FLOAT")
        subprocess.run(
            [
                "opusenc",
                "--quiet",
                "--hard-cbr",
                "--bitrate",
                f"{bitrate / 1000:.3f}",
                "--framesize",
                str(OPUS_FRAME_MS),
                str(source),
                str(encoded),
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["opusdec", "--quiet", "--rate", str(OPUS_RATE), "--float", str(encoded), str(decoded)],
            check=True,
            capture_output=True,
        )
        out, _ = soundfile.read(str(decoded), dtype="float32", always_2d=True)
        return out.mean(axis=1), _ogg_payload_bytes(encoded)


def choose_opus_backend(requested: str) -> str:
    """``"pyav"`` or ``"opus-tools"``: the requested one, or for ``"auto"`` PyAV when it has libopus."""
    if requested in ("auto", "pyav") and pyav_has_libopus():
        return "pyav"
    if requested == "pyav":
        raise SystemExit(
            "PyAV here has no libopus encoder (av.codec.codecs_available); try --opus-backend opus-tools"
        )
    if shutil.which("opusenc") and shutil.which("opusdec"):
        return "opus-tools"
    raise SystemExit(
        "no Opus encoder: PyAV lacks libopus and opusenc/opusdec are missing (apt-get install opus-tools)"
    )


def opus_roundtrip(
    audio: torch.Tensor, sample_rate: int, bitrate: int, backend: str
) -> tuple[torch.Tensor, int]:
    """Audio ``[N, C, S]`` at ``sample_rate`` through Opus channel by channel -> (same shape, payload bytes)."""
    import torchaudio

    run = opus_pyav if backend == "pyav" else opus_tools
    n, c, s = audio.shape
    flat = audio.reshape(n * c, s).float()
    if sample_rate != OPUS_RATE:
        flat = torchaudio.functional.resample(flat, sample_rate, OPUS_RATE)
    outputs, payload = [], 0
    for wave in flat.numpy():
        decoded, size = run(np.ascontiguousarray(wave), bitrate)
        payload += size
        decoded = decoded[: wave.shape[0]]
        outputs.append(np.pad(decoded, (0, wave.shape[0] - decoded.shape[0])))
    out = torch.from_numpy(np.stack(outputs))
    if sample_rate != OPUS_RATE:
        out = torchaudio.functional.resample(out, OPUS_RATE, sample_rate)
    out = out[:, :s]
    out = torch.nn.functional.pad(out, (0, s - out.shape[-1]))
    return out.reshape(n, c, s).clamp(-1.0, 1.0), payload


# ---------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------


def choose_levels(tokenizer, targets_kbps: list[float]) -> list[tuple[float, int]]:
    """``[(target kbps, levels)]``: for each target the level count with the nearest bitrate (log scale),
    without repeating a level count (the first target to claim it keeps it)."""
    chosen, seen = [], set()
    levels = range(1, tokenizer.num_levels + 1)
    for target in targets_kbps:
        best = min(levels, key=lambda k: abs(math.log(tokenizer.bitrate(k) / (1000 * target))))
        if best not in seen:
            seen.add(best)
            chosen.append((target, best))
    return chosen


def tokenizer_roundtrip(
    tokenizer, audio: torch.Tensor, levels: int, batch_size: int = 32, device: str = "cpu"
) -> torch.Tensor:
    """``decode(encode(x, num_levels=levels))`` of audio ``[N, C, S]`` in batches, cropped to ``S`` and clamped to
    [-1, 1] (what a file written from the codes would hold): float ``[N, C, S]`` on the CPU."""
    parts = []
    with torch.no_grad():
        for i in range(0, len(audio), batch_size):
            x = audio[i : i + batch_size].to(device)
            codes = tokenizer.encode(x, num_levels=levels)
            parts.append(tokenizer.decode(codes)[..., : x.shape[-1]].clamp(-1.0, 1.0).float().cpu())
    return torch.cat(parts)


def mean_sem(scores: dict[str, float], digits: int = 3) -> str:
    """``"mean ± sem"`` of a :func:`summary`."""
    return f"{scores['mean']:.{digits}f} ± {scores['sem']:.{digits}f}"


def metrics(reconstruction: torch.Tensor, target: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
    """Per-clip ``{"mel", "stft", "si_sdr"}`` ``[N]`` for audio ``[N, C, S]``."""
    return {
        "mel": mel_distance(reconstruction, target, sample_rate),
        "stft": stft_distance(reconstruction, target),
        "si_sdr": si_sdr(reconstruction, target),
    }


def summary(values: torch.Tensor) -> dict[str, float]:
    values = values.double()
    sem = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return {"mean": float(values.mean()), "sem": sem}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", required=True, help="an AudioTokenizer folder (save_pretrained)")
    parser.add_argument("--data", default=None, help="a spoken-digits build (default: spoken_digits_root())")
    parser.add_argument(
        "--targets", type=float, nargs="+", default=[1.5, 3.0, 6.0], help="kbps (default 1.5 3 6)"
    )
    parser.add_argument("--max-clips", type=int, default=None, help="use this many test clips, spread evenly")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--opus-backend", choices=["auto", "pyav", "opus-tools"], default="auto")
    parser.add_argument("--output-name", default="audio_codec", help="JSON name under benchmarks/out")
    args = parser.parse_args()

    from vqgen.data.audio import AudioFolderDataset
    from vqgen.data.spoken_digits import spoken_digits_root
    from vqgen.loading import load_tokenizer
    from vqgen.tokenizers.audio import AudioTokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    if not isinstance(tokenizer, AudioTokenizer):
        raise SystemExit(f"'{args.tokenizer}' holds a {type(tokenizer).__name__}, expected an AudioTokenizer")
    tokenizer = tokenizer.to(args.device).eval()
    rate, channels = int(tokenizer.config.sample_rate), int(tokenizer.config.in_channels)
    root = Path(args.data) if args.data else spoken_digits_root()
    dataset = AudioFolderDataset(root / "test", rate, channels=channels, segment_seconds=1.0, train=False)
    indices = list(range(len(dataset)))
    if args.max_clips is not None and args.max_clips < len(indices):
        indices = np.linspace(0, len(dataset) - 1, args.max_clips).round().astype(int).tolist()
    audio = torch.stack([dataset[i]["audio"] for i in indices])
    seconds_of_audio = audio.shape[0] * audio.shape[-1] / rate
    backend = choose_opus_backend(args.opus_backend)
    print(
        f"{len(indices)} test clips from {root / 'test'} at {rate} Hz; tokenizer {args.tokenizer} "
        f"({tokenizer.num_levels} levels, codebook {tokenizer.codebook_size}, {tokenizer.frame_rate:g} frames/s); "
        f"Opus via {backend}",
        flush=True,
    )

    rows, results = [], []
    for target, levels in choose_levels(tokenizer, args.targets):
        kbps = tokenizer.bitrate(levels) / 1000
        start = time.perf_counter()
        reconstruction = tokenizer_roundtrip(tokenizer, audio, levels, args.batch_size, args.device)
        tok_seconds = time.perf_counter() - start
        tok = {k: summary(v) for k, v in metrics(reconstruction, audio, rate).items()}

        opus_bitrate = max(OPUS_MIN_BITRATE, round(tokenizer.bitrate(levels)))
        start = time.perf_counter()
        decoded, payload = opus_roundtrip(audio, rate, opus_bitrate, backend)
        opus_seconds = time.perf_counter() - start
        opus_kbps = payload * 8 / seconds_of_audio / channels / 1000
        opus = {k: summary(v) for k, v in metrics(decoded, audio, rate).items()}

        for name, setting, actual, scores in (
            ("tokenizer", f"{levels} levels", kbps, tok),
            ("Opus", f"CBR {opus_bitrate / 1000:g} kb/s", opus_kbps, opus),
        ):
            rows.append(
                [
                    f"{target:g}",
                    name,
                    setting,
                    f"{actual:.3f}",
                    mean_sem(scores["mel"]),
                    mean_sem(scores["stft"]),
                    mean_sem(scores["si_sdr"], 2),
                ]
            )
        results.append(
            {
                "target_kbps": target,
                "tokenizer": {"levels": levels, "kbps": kbps, "seconds": tok_seconds, **tok},
                "opus": {
                    "requested_bps": opus_bitrate,
                    "payload_kbps": opus_kbps,
                    "seconds": opus_seconds,
                    **opus,
                },
            }
        )
        print(
            f"  target {target:g} kbps done ({tok_seconds:.1f} s tokenizer, {opus_seconds:.1f} s Opus)",
            flush=True,
        )

    print_table(
        f"Audio codec on spoken-digits test ({len(indices)} clips, {rate} Hz; mean ± s.e.)",
        ["target kbps", "codec", "setting", "kbps", "mel dist ↓", "STFT dist ↓", "SI-SDR dB ↑"],
        rows,
    )
    write_json(
        args.output_name,
        {
            "tokenizer": str(args.tokenizer),
            "tokenizer_config": {k: v for k, v in dict(tokenizer.config).items() if not k.startswith("_")},
            "data": str(root / "test"),
            "clips": len(indices),
            "clip_indices": indices if args.max_clips is not None else "all",
            "sample_rate": rate,
            "opus": {
                "backend": backend,
                "settings": {
                    "mode": "CBR",
                    "application": "voip",
                    "frame_ms": OPUS_FRAME_MS,
                    "rate": OPUS_RATE,
                },
            },
            "metrics": {
                "mel": "mel_distance: L1 of natural-log magnitude mel spectrograms (80 mels, n_fft 1024, hop 256), "
                "floored 80 dB below the target's peak",
                "stft": "stft_distance: spectral convergence + log-magnitude L1, FFT 512/1024/2048, hop n/4, "
                "log floor 80 dB below the target's peak",
                "si_sdr": "si_sdr in dB",
            },
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
