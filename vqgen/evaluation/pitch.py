"""Fundamental frequency of single notes: a vectorised YIN estimator and the pitch-kept metric.

:func:`estimate_f0` follows YIN (de Cheveigné and Kawahara 2002): per frame the difference function
``d(τ) = Σ_j (x_j - x_{j+τ})²`` (computed with one FFT cross-correlation and running energies), its cumulative
mean normalised form ``d'(τ) = d(τ) τ / Σ_{k<=τ} d(k)``, the first dip of ``d'`` below an absolute threshold
(the global minimum when none is), and parabolic interpolation of ``d`` around the chosen lag. A note's f0 is
the median over the frames of its steady part: by default 0.1 s to 0.6 s from the start, past the attack.

Unvoiced and silent notes get ``NaN`` (never 0): a frame is silent below -60 dBFS RMS, unvoiced when its
best dip is above ``max_aperiodicity`` (0.3), and a note needs a quarter of its frames voiced. ``NaN``
propagates through :func:`cents_between` and makes :func:`pitch_kept` False, so filter with ``isfinite``.

Accuracy (see ``tests/test_pitch.py``): pure tones from 40 Hz to 1.5 kHz within 1 cent at 16 kHz; harmonic
tones with a weak or missing fundamental give the fundamental, not an octave above (an octave check after
YIN's dip choice); on the FluidR3 notes of ``demo:instrument-notes`` see ``benchmarks/instrument_notes_pitch.py``.
Speed (float64 throughout, 18 frames a note): 1,000 one-second 16 kHz notes in 2.5-5 s on one core of the
2-core reference machine; with torch's two threads on cores shared with other work it was slower, 8-10 s.
"""

from __future__ import annotations

import math

import torch

from vqgen.errors import ConfigError, DataError, ShapeError

__all__ = ["cents_between", "estimate_f0", "hz_to_midi", "midi_to_hz", "pitch_kept", "track_f0"]

_CHUNK = 64  # notes per FFT batch: bounds memory at about 50 MB for one-second 16 kHz clips
# Octave check (see _yin_frames): the dip near twice the chosen lag wins when it is below this share of the
# chosen dip, and the chosen dip is not already near-perfect (pure tones, where both are rounding noise).
# On the 3,778 FluidR3 notes of the 16 kHz instrument-notes build, 0.1 fixes 6 octave-up errors and makes 7
# octave-down ones (sample loops two periods long); 0.5 made 51.
_OCTAVE_RATIO = 0.1
_OCTAVE_FLOOR = 0.01


def midi_to_hz(pitch: float | torch.Tensor) -> float | torch.Tensor:
    """Equal-tempered frequency of MIDI note ``pitch`` (69 = A4 = 440 Hz); float or tensor like the input."""
    if isinstance(pitch, torch.Tensor):
        return 440.0 * torch.pow(2.0, (pitch.to(torch.float64) - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0)


def hz_to_midi(frequency: float | torch.Tensor) -> float | torch.Tensor:
    """Fractional MIDI note of ``frequency`` in Hz (NaN for non-positive or NaN frequencies)."""
    if isinstance(frequency, torch.Tensor):
        f = frequency.to(torch.float64)
        return torch.where(f > 0, 69.0 + 12.0 * torch.log2(f.clamp_min(1e-300) / 440.0), math.nan)
    f = float(frequency)
    return 69.0 + 12.0 * math.log2(f / 440.0) if f > 0 else math.nan


def cents_between(f_a: float | torch.Tensor, f_b: float | torch.Tensor) -> float | torch.Tensor:
    """``1200 log2(f_b / f_a)``: how many cents ``f_b`` lies above ``f_a`` (negative when below).

    Tensors broadcast; NaN where either frequency is NaN or not positive (an unvoiced estimate).
    """
    if isinstance(f_a, torch.Tensor) or isinstance(f_b, torch.Tensor):
        a = torch.as_tensor(f_a, dtype=torch.float64)
        b = torch.as_tensor(f_b, dtype=torch.float64, device=a.device)
        ok = (a > 0) & (b > 0)
        ratio = torch.where(ok, b / torch.where(ok, a, 1.0), math.nan)
        return 1200.0 * torch.log2(ratio)
    a, b = float(f_a), float(f_b)
    return 1200.0 * math.log2(b / a) if a > 0 and b > 0 else math.nan


def _audio_batch(audio: torch.Tensor, name: str = "audio") -> torch.Tensor:
    """``[B, S]`` float64 from ``[B, S]`` or ``[B, 1, S]``; one-line errors for anything else."""
    if not isinstance(audio, torch.Tensor):
        raise ShapeError(f"{name} must be a torch tensor [B, S] or [B, 1, S], got {type(audio).__name__}")
    if audio.dim() == 3:
        if audio.shape[1] != 1:
            raise ShapeError(f"{name} must be mono [B, 1, S], got shape {tuple(audio.shape)}")
        audio = audio[:, 0]
    if audio.dim() != 2:
        raise ShapeError(f"{name} must be [B, S] or [B, 1, S], got shape {tuple(audio.shape)}")
    if not audio.is_floating_point():
        raise ShapeError(f"{name} must be a float tensor, got {audio.dtype}")
    audio = audio.detach().to(torch.float64)
    if audio.numel() and not torch.isfinite(audio).all():
        bad = int((~torch.isfinite(audio)).any(dim=-1).sum())
        raise DataError(f"{name} holds NaN or infinite samples in {bad} of {audio.shape[0]} notes")
    return audio


def _parabola(values: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertex of the parabola through ``values`` at lags ``at - 1, at, at + 1``: (offset in [-1, 1], value)."""
    left = values.gather(-1, (at - 1).unsqueeze(-1)).squeeze(-1)
    mid = values.gather(-1, at.unsqueeze(-1)).squeeze(-1)
    right = values.gather(-1, (at + 1).unsqueeze(-1)).squeeze(-1)
    curvature = left - 2.0 * mid + right
    convex = curvature > 0
    shift = torch.where(convex, 0.5 * (left - right) / curvature.clamp_min(1e-300), 0.0).clamp(-1.0, 1.0)
    value = torch.where(convex, mid - 0.25 * (left - right) * shift, mid).clamp_min(0.0)
    return shift, torch.minimum(value, mid)


def _yin_frames(
    frames: torch.Tensor, window: int, lag_min: int, lag_max: int, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best lag (fractional samples) and its ``d'`` value for each frame of ``frames [..., window + lag_max + 1]``."""
    length = frames.shape[-1]
    n = 1 << (length - 1).bit_length()
    lags = lag_max + 2  # 0 .. lag_max + 1, so the parabola has a right neighbour at lag_max
    spectrum = torch.fft.rfft(frames, n)
    head = torch.fft.rfft(frames[..., :window], n)
    # r(τ) = Σ_{j<W} x_j x_{j+τ}; no wrap-around because n >= W + lag_max + 1.
    r = torch.fft.irfft(head.conj() * spectrum, n)[..., :lags]
    energy = torch.nn.functional.pad(torch.cumsum(frames * frames, dim=-1), (1, 0))
    taus = torch.arange(lags, device=frames.device)
    shifted = energy[..., taus + window] - energy[..., taus]  # Σ_{j<W} x_{j+τ}²
    d = (energy[..., window : window + 1] + shifted - 2.0 * r).clamp_min(0.0)
    d[..., 0] = 0.0
    running = torch.cumsum(d, dim=-1)
    cmnd = torch.where(running > 0, d * taus / running.clamp_min(1e-300), torch.ones_like(d))
    cmnd[..., 0] = 1.0

    search = cmnd[..., lag_min : lag_max + 1]
    index = torch.arange(search.shape[-1], device=frames.device)
    below = search < threshold
    # First dip under the threshold: from the first lag below it to the last lag of that run, its minimum.
    first = torch.where(below.any(-1), below.float().argmax(-1), search.shape[-1])
    after = (~below) & (index >= first.unsqueeze(-1))
    end = torch.where(after.any(-1), after.float().argmax(-1), search.shape[-1])
    in_dip = (index >= first.unsqueeze(-1)) & (index < end.unsqueeze(-1))
    dip = torch.where(in_dip, search, math.inf).argmin(-1)
    best = torch.where(below.any(-1), dip, search.argmin(-1)) + lag_min
    _, aperiodicity = _parabola(cmnd, best)

    # Octave check: a weak fundamental under strong even harmonics makes d' dip at half the period too. When
    # the dip near twice the lag is much deeper (a true period), take it; a real half period has about
    # equally deep dips at both lags. Dips are compared at their interpolated minima: between integer lags
    # a dip can look several times shallower than it is.
    if _OCTAVE_RATIO > 0:
        near = (2 * best).unsqueeze(-1) + torch.arange(-1, 2, device=frames.device)
        fits = near[..., -1] <= lag_max
        double = near.gather(-1, cmnd.gather(-1, near.clamp(max=lag_max)).argmin(-1, keepdim=True)).squeeze(
            -1
        )
        double = double.clamp(max=lag_max)
        _, deeper = _parabola(cmnd, double)
        twice = fits & (aperiodicity >= _OCTAVE_FLOOR) & (deeper < _OCTAVE_RATIO * aperiodicity)
        best = torch.where(twice, double, best)
        aperiodicity = torch.where(twice, deeper, aperiodicity)

    # The lag itself: a parabola through the raw difference function at τ-1, τ, τ+1 (YIN step 5).
    shift, _ = _parabola(d, best)
    return best + shift.clamp(-1.0, 1.0), aperiodicity


def _yin_lags(
    sample_rate: int, fmin: float, fmax: float, threshold: float, max_aperiodicity: float
) -> tuple[int, int, int]:
    """Check the YIN settings shared by :func:`estimate_f0` and :func:`track_f0` (one-line ``ConfigError``s)
    and return ``(rate, lag_min, lag_max)``: lags from ``sample_rate / fmax`` (at least 2) to ``sample_rate /
    fmin`` samples."""
    rate = int(sample_rate)
    if rate < 1000:
        raise ConfigError(f"sample_rate={sample_rate!r} is too low for pitch estimation")
    if not (0 < fmin < fmax <= rate / 2):
        raise ConfigError(f"need 0 < fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, {rate} Hz")
    if not (0 < threshold < 1 and threshold <= max_aperiodicity):
        raise ConfigError(
            f"need 0 < threshold < 1 and threshold <= max_aperiodicity, got {threshold}, {max_aperiodicity}"
        )
    return rate, max(2, math.floor(rate / fmax)), math.ceil(rate / fmin)


def _frame_f0(
    frames: torch.Tensor,
    rate: int,
    lag_min: int,
    lag_max: int,
    threshold: float,
    max_aperiodicity: float,
    floor: float,
) -> torch.Tensor:
    """f0 in Hz of each frame ``[..., 2 lag_max + 1]`` (window ``lag_max``): NaN where the frame's RMS is under
    ``floor`` or its best ``d'`` dip is above ``max_aperiodicity``."""
    lag, aperiodicity = _yin_frames(frames, lag_max, lag_min, lag_max, threshold)
    voiced = (frames.pow(2).mean(-1).sqrt() >= floor) & (aperiodicity <= max_aperiodicity)
    return torch.where(voiced, rate / lag, math.nan)


def estimate_f0(
    audio: torch.Tensor,
    sample_rate: int,
    fmin: float = 30.0,
    fmax: float = 2000.0,
    *,
    start_seconds: float = 0.1,
    stop_seconds: float = 0.6,
    hop_seconds: float = 0.025,
    threshold: float = 0.1,
    max_aperiodicity: float = 0.3,
    silence_db: float = -60.0,
) -> torch.Tensor:
    """Fundamental frequency in Hz of each note in ``audio`` (float ``[B, S]`` or ``[B, 1, S]``): ``[B]``.

    Frames of ``2 ceil(sample_rate / fmin) + 1`` samples (each integrates over one period of ``fmin`` and
    searches lags up to that period) start every ``hop_seconds`` between ``start_seconds`` and
    ``stop_seconds`` (shifted back so that at least one fits when the clip is short); the note's f0 is the
    median of the voiced frames' estimates. Lags shorter than ``sample_rate / fmax`` are not considered.

    ``NaN`` where the note is silent or unpitched: frames quieter than ``silence_db`` dBFS RMS or whose best
    ``d'`` dip exceeds ``max_aperiodicity`` are unvoiced, and a note with fewer than a quarter of its
    frames voiced gets NaN. ``threshold`` is YIN's absolute threshold on ``d'``.

    Raises ``ShapeError`` for a wrong rank, more than one channel, an integer dtype or a clip shorter than
    one frame, ``DataError`` for NaN/inf samples, ``ConfigError`` for impossible settings. Returns float32
    on ``audio``'s device.
    """
    x = _audio_batch(audio)
    if hop_seconds <= 0:
        raise ConfigError(f"need hop_seconds > 0, got {hop_seconds}")
    rate, lag_min, lag_max = _yin_lags(sample_rate, fmin, fmax, threshold, max_aperiodicity)
    window = lag_max
    length = window + lag_max + 1
    batch, samples = x.shape
    if samples < length:
        raise ShapeError(
            f"audio of {samples} samples is shorter than one analysis frame ({length} samples for "
            f"fmin={fmin} Hz at {rate} Hz)"
        )
    start = min(max(0, round(start_seconds * rate)), samples - length)
    stop = max(min(samples, round(stop_seconds * rate)), start + length)
    hop = max(1, round(hop_seconds * rate))
    out = torch.full((batch,), math.nan, dtype=torch.float64)
    floor = 10.0 ** (silence_db / 20.0)
    for first in range(0, batch, _CHUNK):
        frames = x[first : first + _CHUNK, start:stop].unfold(-1, length, hop)  # [b, F, length]
        f0 = _frame_f0(frames, rate, lag_min, lag_max, threshold, max_aperiodicity, floor)
        voiced = torch.isfinite(f0)
        estimate = f0.nanmedian(dim=-1).values
        enough = voiced.sum(-1) * 4 >= frames.shape[1]
        out[first : first + _CHUNK] = torch.where(enough, estimate, math.nan)
    return out.to(torch.float32).to(audio.device)


def track_f0(
    audio: torch.Tensor,
    sample_rate: int,
    hop: int,
    fmin: float = 30.0,
    fmax: float = 2000.0,
    *,
    threshold: float = 0.1,
    max_aperiodicity: float = 0.3,
    silence_db: float = -60.0,
) -> torch.Tensor:
    """Frame-wise fundamental frequency in Hz: audio ``[B, S]`` or ``[B, 1, S]`` -> float32 ``[B, ceil(S / hop)]``.

    Frame ``t`` is the YIN analysis window of :func:`estimate_f0` (``2 ceil(sample_rate / fmin) + 1`` samples)
    centred on sample ``t * hop``, the clip zero-padded at both ends; ``NaN`` where the frame is silent or
    unvoiced (same rules and settings as :func:`estimate_f0`, without the note-level median). Errors as
    :func:`estimate_f0`.
    """
    x = _audio_batch(audio)
    hop = int(hop)
    if hop < 1:
        raise ConfigError(f"need hop >= 1, got {hop}")
    rate, lag_min, lag_max = _yin_lags(sample_rate, fmin, fmax, threshold, max_aperiodicity)
    length = 2 * lag_max + 1
    frames_out = -(-x.shape[-1] // hop)
    left = length // 2
    right = max(0, (frames_out - 1) * hop + length - left - x.shape[-1])
    padded = torch.nn.functional.pad(x, (left, right))
    out = torch.full((x.shape[0], frames_out), math.nan, dtype=torch.float64, device=x.device)
    floor = 10.0 ** (silence_db / 20.0)
    for first in range(0, x.shape[0], _CHUNK):
        frames = padded[first : first + _CHUNK].unfold(-1, length, hop)[:, :frames_out]  # [b, T, length]
        out[first : first + _CHUNK] = _frame_f0(
            frames, rate, lag_min, lag_max, threshold, max_aperiodicity, floor
        )
    return out.to(torch.float32)


def pitch_kept(
    reference: torch.Tensor,
    reconstruction: torch.Tensor,
    sample_rate: int,
    tolerance_cents: float = 50.0,
    **f0_options,
) -> torch.Tensor:
    """Whether each reconstructed note keeps its pitch: ``|cents_between(f0_ref, f0_rec)| <= tolerance_cents``.

    ``reference``: the original notes (``[B, S]`` / ``[B, 1, S]``, their f0 estimated here) or known
    fundamental frequencies in Hz ``[B]`` (e.g. ``midi_to_hz(pitches)``). ``reconstruction``: ``[B, S]`` /
    ``[B, 1, S]``. ``f0_options`` go to :func:`estimate_f0`. Returns bool ``[B]``; the share of notes
    that kept their pitch is ``pitch_kept(...).float().mean()``. A note whose reference or reconstruction
    is unvoiced (NaN f0) counts as not kept: restrict to ``estimate_f0(reference).isfinite()`` notes first
    when the references include unpitched sounds.
    """
    if isinstance(reference, torch.Tensor) and reference.dim() == 1:
        reference_f0 = reference.detach().to(torch.float64)
    else:
        reference_f0 = estimate_f0(reference, sample_rate, **f0_options).to(torch.float64)
    reconstructed_f0 = estimate_f0(reconstruction, sample_rate, **f0_options).to(torch.float64)
    if reference_f0.shape != reconstructed_f0.shape:
        raise ShapeError(
            f"reference has {tuple(reference_f0.shape)[0]} notes but reconstruction {reconstructed_f0.shape[0]}"
        )
    cents = cents_between(reference_f0.cpu(), reconstructed_f0.cpu())
    return (cents.abs() <= float(tolerance_cents)).to(reconstruction.device)
