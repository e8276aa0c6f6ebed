"""vqgen.evaluation.pitch: YIN f0 on pure and harmonic tones, silence and noise, real FluidR3 notes, bad input,
and the pitch-kept metric."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.evaluation.pitch import cents_between, estimate_f0, hz_to_midi, midi_to_hz, pitch_kept, track_f0

FIXTURES = Path(__file__).parent / "fixtures" / "notes"
#: Real notes (tests/fixtures/notes/make_notes.py) that have a clear pitch. Left out: seashore (program
#: 122, noise: checked to be unvoiced below); of the build's families, percussive and sound effects.
PITCHED = sorted(p for p in FIXTURES.glob("*.flac") if "seashore" not in p.name)


def tones(frequencies, rate=16000, seconds=1.0, harmonics=(1.0,), phase=0.3):
    """``[B, S]`` float32: for each frequency, the sum of ``harmonics[k] sin(2 pi (k + 1) f t + k + phase)``."""
    t = torch.arange(round(rate * seconds), dtype=torch.float64) / rate
    f = torch.as_tensor(frequencies, dtype=torch.float64)[:, None]
    wave = sum(a * torch.sin(2 * math.pi * (k + 1) * f * t + k + phase) for k, a in enumerate(harmonics))
    return (0.5 * wave / max(sum(harmonics), 1e-9)).float()


def test_pure_tones_from_40_hz_to_1500_hz_within_a_few_cents():
    frequencies = [
        40.0,
        55.0,
        82.4,
        110.0,
        196.0,
        261.63,
        330.0,
        440.0,
        523.25,
        777.0,
        1000.0,
        1234.5,
        1500.0,
    ]
    for rate in (16000, 22050):
        f0 = estimate_f0(tones(frequencies, rate), rate)
        cents = cents_between(torch.tensor(frequencies, dtype=torch.float64), f0.double())
        assert cents.abs().max() < 3, (rate, cents)
    quiet = estimate_f0(tones([220.0]) * 0.003, 16000)  # -56 dBFS peak: still above the silence floor
    assert abs(cents_between(220.0, float(quiet))) < 3


@pytest.mark.parametrize(
    "harmonics",
    [
        (0.1, 1.0, 0.8, 0.5, 0.3),  # fundamental 20 dB below the 2nd harmonic
        (0.0, 1.0, 1.0, 1.0, 1.0),  # missing fundamental: the period is still the fundamental's
        (0.05, 1.0, 0.3, 0.6, 0.2, 0.3),
        (0.2, 1.0, 0.1, 0.5),  # strong even harmonics: plain YIN dips at half the period (an octave up)
    ],
)
def test_harmonic_tones_with_a_weak_fundamental_give_the_fundamental_not_an_octave(harmonics):
    frequencies = [50.0, 100.0, 200.0, 330.0, 600.0]
    f0 = estimate_f0(tones(frequencies, harmonics=harmonics), 16000)
    cents = cents_between(torch.tensor(frequencies, dtype=torch.float64), f0.double())
    assert cents.abs().max() < 5, cents


def test_silence_and_noise_are_nan_and_batches_keep_their_shape():
    rate = 16000
    generator = torch.Generator().manual_seed(0)
    batch = torch.stack(
        [
            tones([220.0])[0],
            torch.zeros(rate),
            0.3 * torch.randn(rate, generator=generator),
            tones([880.0])[0] * 1e-5,  # -106 dBFS: silent
        ]
    )
    f0 = estimate_f0(batch, rate)
    assert f0.shape == (4,) and f0.dtype == torch.float32
    assert abs(cents_between(220.0, float(f0[0]))) < 3 and torch.isnan(f0[1:]).all()
    again = estimate_f0(batch[:, None], rate)  # [B, 1, S] is the same
    torch.testing.assert_close(again, f0, equal_nan=True)
    assert estimate_f0(torch.zeros(0, rate), rate).shape == (0,)
    # A note that stops after its attack: a quarter of the analysed frames must be voiced.
    short = tones([440.0])[0].clone()
    short[2400:] = 0
    assert torch.isnan(estimate_f0(short[None], rate)).all()
    # Many notes: split into FFT chunks, same answers.
    many = tones(torch.linspace(60, 900, 150).tolist())
    f0 = estimate_f0(many, rate)
    assert cents_between(torch.linspace(60, 900, 150).double(), f0.double()).abs().max() < 3


def test_short_clips_and_the_analysis_window():
    rate = 16000
    f0 = estimate_f0(tones([300.0], seconds=0.2), rate)  # shorter than 0.6 s: the window shifts back
    assert abs(cents_between(300.0, float(f0))) < 3
    # The attack is skipped: a loud other pitch in the first 0.1 s does not matter.
    note = tones([300.0])[0].clone()
    note[:1600] = tones([1000.0])[0, :1600] * 2
    assert abs(cents_between(300.0, float(estimate_f0(note[None], rate)))) < 3
    with pytest.raises(ShapeError, match="shorter than one analysis frame"):
        estimate_f0(torch.zeros(1, 1000), rate)  # fmin 30 Hz needs 1,069 samples at 16 kHz
    assert estimate_f0(tones([300.0], seconds=0.05), rate, fmin=100.0).isfinite().all()


def test_bad_input_is_one_line_errors():
    rate = 16000
    cases = [
        (torch.zeros(rate), ShapeError, r"\[B, S\] or \[B, 1, S\], got shape \(16000,\)"),
        (torch.zeros(2, 2, rate), ShapeError, "must be mono"),
        (torch.zeros(1, 1, 1, rate), ShapeError, "got shape"),
        (torch.zeros(2, rate, dtype=torch.int16), ShapeError, "float tensor"),
        (np.zeros((2, rate), dtype=np.float32), ShapeError, "torch tensor"),
    ]
    nan = torch.zeros(3, rate)
    nan[1, 5] = math.nan
    nan[2, 7] = math.inf
    cases.append((nan, DataError, "NaN or infinite samples in 2 of 3 notes"))
    for audio, kind, match in cases:
        with pytest.raises(kind, match=match) as error:
            estimate_f0(audio, rate)
        assert "\n" not in str(error.value)
    for kwargs in (
        {"fmin": 500.0, "fmax": 100.0},
        {"fmax": 9000.0},
        {"threshold": 0.5, "max_aperiodicity": 0.2},
    ):
        with pytest.raises(ConfigError):
            estimate_f0(torch.zeros(1, rate), rate, **kwargs)
    with pytest.raises(ConfigError, match="sample_rate"):
        estimate_f0(torch.zeros(1, rate), 100)


def test_midi_hz_and_cents():
    assert midi_to_hz(69) == 440.0 and midi_to_hz(60) == pytest.approx(261.6256, abs=1e-4)
    assert hz_to_midi(880.0) == pytest.approx(81.0) and math.isnan(hz_to_midi(0.0))
    pitches = torch.arange(21, 109, dtype=torch.float64)
    torch.testing.assert_close(hz_to_midi(midi_to_hz(pitches)), pitches)
    assert cents_between(440.0, 880.0) == pytest.approx(1200.0)
    assert cents_between(440.0, 440.0 * 2 ** (-30 / 1200)) == pytest.approx(-30.0)
    assert math.isnan(cents_between(0.0, 440.0))
    both = cents_between(torch.tensor([440.0, math.nan, 100.0]), torch.tensor([220.0, 440.0, -1.0]))
    assert both[0] == pytest.approx(-1200.0) and torch.isnan(both[1:]).all()


def test_pitch_kept():
    rate = 16000
    reference = tones([220.0, 220.0, 500.0, 300.0])
    reconstruction = tones([220.0 * 2 ** (30 / 1200), 220.0 * 2 ** (80 / 1200), 500.0, 150.0])
    reconstruction[2] = 0  # a silent reconstruction never keeps its pitch
    kept = pitch_kept(reference, reconstruction, rate)
    assert kept.tolist() == [True, False, False, False] and kept.dtype == torch.bool
    assert pitch_kept(reference, reconstruction, rate, tolerance_cents=100).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert pitch_kept(reference[:, None], reconstruction[:, None], rate).float().mean() == 0.25
    # Known pitches as the reference: [B] in Hz.
    labels = midi_to_hz(torch.tensor([57.0, 57.0, 71.0, 62.0]))
    assert pitch_kept(labels, reference, rate).tolist() == [True, True, True, True]  # 500 Hz is B4 + 14 cents
    with pytest.raises(ShapeError, match="4 notes but reconstruction 2"):
        pitch_kept(reference, reconstruction[:2], rate)


@pytest.mark.skipif(not PITCHED, reason="the note fixtures are missing")
def test_real_rendered_notes_within_50_cents_of_their_midi_pitch():
    audio, rates, pitches = [], set(), []
    for path in PITCHED:
        wave, rate = soundfile.read(str(path), dtype="float32")
        audio.append(torch.from_numpy(wave))
        rates.add(rate)
        pitches.append(int(re.search(r"-p(\d+)\.flac$", path.name).group(1)))
    assert len(PITCHED) == 12 and rates == {16000}
    f0 = estimate_f0(torch.stack(audio), 16000)
    cents = cents_between(midi_to_hz(torch.tensor(pitches, dtype=torch.float64)), f0.double())
    assert cents.abs().max() <= 50, dict(zip([p.name for p in PITCHED], cents.tolist()))
    noise, _ = soundfile.read(str(FIXTURES / "122-seashore-p60.flac"), dtype="float32")
    assert torch.isnan(estimate_f0(torch.from_numpy(noise)[None], 16000)).all()
    assert pitch_kept(torch.stack(audio), torch.stack(audio), 16000).all()


def test_track_f0_gives_each_frame_its_pitch_and_nan_where_silent():
    """Frame t is centred on sample t * hop: a 220 Hz tone in the first half and a 330 Hz one in the second give
    those pitches on frames well inside each half, NaN on the silent tail, and ceil(S / hop) frames."""
    rate, hop = 16000, 320
    t = torch.arange(20000) / rate
    audio = torch.where(t < 0.5, torch.sin(2 * math.pi * 220 * t), torch.sin(2 * math.pi * 330 * t)) * 0.3
    audio[16000:] = 0
    f0 = track_f0(audio.view(1, 1, -1), rate, hop)
    assert f0.shape == (1, math.ceil(20000 / hop)) and f0.dtype == torch.float32
    assert cents_between(f0[0, 3:22], 220.0).abs().max() < 2
    assert cents_between(f0[0, 28:47], 330.0).abs().max() < 2
    assert torch.isnan(f0[0, 53:]).all()
    with pytest.raises(ConfigError, match="fmin"):
        track_f0(audio.view(1, -1), rate, hop, fmin=0.0)
