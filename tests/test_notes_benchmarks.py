"""The instrument-notes benchmarks (benchmarks/notes_codec.py, benchmarks/notes_sample_quality.py): their quick
paths on the note fixtures laid out as an instrument-notes build, with a tiny untrained AudioTokenizer, a tiny
two-field (family, pitch) pipeline and a one-epoch family classifier; and their helpers: the pitch-kept count
with excluded notes, the choice of conditions, the classifier's cache key, the codec targets.

No timing is asserted; every run writes under a temporary folder (``common.OUT_DIR`` redirected)."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import common  # noqa: E402
import notes_codec  # noqa: E402
import notes_sample_quality  # noqa: E402
import notes_timbre  # noqa: E402
import pipeline_speed  # noqa: E402
from audio_codec import tokenizer_roundtrip  # noqa: E402
from notes_classifier import NoteClassifierSettings, load_or_train  # noqa: E402
from notes_common import count_pitch_kept, data_fingerprint, load_notes, notes_root, spread  # noqa: E402

from vqgen.data.instrument_notes import GM_PROGRAM_NAMES, INSTRUMENT_FAMILIES, family_folder  # noqa: E402
from vqgen.evaluation.pitch import estimate_f0, pitch_kept  # noqa: E402

NOTES = Path(__file__).parent / "fixtures" / "notes"
RATE = 16000
TEST_PROGRAMS = (40, 65, 110, 122)  # violin, alto sax, fiddle and seashore (unpitched): the test split
ONE_EPOCH = ["--classifier-epochs", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def out_dir(tmp_path, monkeypatch) -> Path:
    """benchmarks/out redirected to a temporary folder."""
    monkeypatch.setattr(common, "OUT_DIR", tmp_path / "out")
    return tmp_path / "out"


def fixture_rows() -> list[tuple[Path, int, int]]:
    return [
        (path, int(path.name[:3]), int(re.search(r"-p(\d+)\.flac$", path.name).group(1)))
        for path in sorted(NOTES.glob("*.flac"))
    ]


def build_from_fixtures(root: Path) -> Path:
    """The 13 half-second fixture notes as an instrument-notes build: ``{train,test}/NN-family/PPP-NNN-100.flac``,
    a full ``metadata.csv`` and a ``manifest.json``; 9 train and 4 test notes."""
    lines = ["file,family,family_id,program,program_name,pitch,velocity,split,gain_db"]
    for path, program, pitch in fixture_rows():
        split = "test" if program in TEST_PROGRAMS else "train"
        file = f"{split}/{family_folder(program // 8)}/{program:03d}-{pitch:03d}-100.flac"
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / file)
        name = GM_PROGRAM_NAMES[program].replace(",", " ")
        lines.append(
            f"{file},{INSTRUMENT_FAMILIES[program // 8]},{program // 8},{program},{name},{pitch},100,{split},0.0"
        )
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    (root / "manifest.json").write_text(json.dumps({"name": "instrument-notes", "fixture": True}) + "\n")
    return root


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    return build_from_fixtures(tmp_path_factory.mktemp("notes") / "build")


def tiny_tokenizer():
    """16 kHz mono, hop 320 (50 frames/s), 12 residual levels of 1,024 codes: 0.5 kbps a level, like the real
    codec, but 4-8 channels wide and untrained."""
    from vqgen.tokenizers.audio import AudioTokenizer

    torch.manual_seed(0)
    return AudioTokenizer(
        sample_rate=RATE,
        strides=(4, 4, 4, 5),
        base_channels=4,
        max_channels=8,
        latent_channels=4,
        quantizer_config={"type": "rvq", "num_quantizers": 12, "codebook_size": 1024, "kmeans_init": False},
    ).eval()


@pytest.fixture(scope="module")
def models(build, tmp_path_factory) -> dict[str, Path]:
    """The tiny tokenizer saved alone, and an AudioPipeline of it with a tiny delay-layout prior conditioned on
    family and pitch, named over every family and pitch of the fixtures."""
    from vqgen.pipelines import AudioPipeline
    from vqgen.priors.prior import CodePrior

    folder = tmp_path_factory.mktemp("models")
    tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(folder / "tok")
    families = sorted({INSTRUMENT_FAMILIES[program // 8] for _, program, _ in fixture_rows()})
    pitches = [str(p) for p in sorted({pitch for _, _, pitch in fixture_rows()})]
    torch.manual_seed(0)
    prior = CodePrior(
        codebook_size=1024,
        code_grid=[12, 25],  # half a second at 50 frames/s
        condition_fields={"family": len(families), "pitch": len(pitches)},
        layout="delay",
        hidden_size=32,
        num_layers=1,
        num_heads=4,
    ).eval()
    pipe = AudioPipeline(tokenizer, prior, condition_names={"family": families, "pitch": pitches})
    pipe.save_pretrained(folder / "pipe")
    return {"tokenizer": folder / "tok", "pipeline": folder / "pipe"}


# ---------------------------------------------------------------------------------------------------------
# Helpers


def test_count_pitch_kept_excludes_unpitched_and_undetectable_inputs():
    nan = math.nan
    reference = torch.tensor([440.0, 440.0, nan, 220.0, 300.0, 440.0, 100.0])
    output = torch.tensor(
        [440.0 * 2 ** (49 / 1200), 440.0 * 2 ** (51 / 1200), 440.0, nan, 300.0, 880.0, 100.0]
    )
    pitched = torch.tensor([True, True, True, True, True, True, False])
    figures = count_pitch_kept(reference, output, pitched)
    # note 2 (input f0 NaN) is excluded and counted apart; note 6 is unpitched: neither is in the share
    assert figures["pitched"] == 6 and figures["excluded_unvoiced_reference"] == 1 and figures["counted"] == 5
    # kept: 49 cents off and exact; lost: 51 cents off, an unvoiced output, an octave up
    assert (
        figures["kept"] == 2 and figures["unvoiced_output"] == 1 and figures["share"] == pytest.approx(2 / 5)
    )
    assert figures["kept_mask"].tolist() == [True, False, False, False, True, False, False]
    assert figures["counted_mask"].tolist() == [True, True, False, True, True, True, False]
    assert count_pitch_kept(reference, output, pitched, tolerance_cents=60)["kept"] == 3
    empty = count_pitch_kept(torch.tensor([nan]), torch.tensor([440.0]), torch.tensor([True]))
    assert empty["counted"] == 0 and math.isnan(empty["share"])
    with pytest.raises(ValueError, match=r"\[N\] alike"):
        count_pitch_kept(reference, output[:3], pitched)


def test_count_pitch_kept_agrees_with_vqgen_pitch_kept_on_tones():
    t = torch.arange(RATE // 2) / RATE
    reference = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0, 440.0)])
    shifted = torch.stack(
        [0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0 * 2 ** (20 / 1200), 350.0, 440.0)]
    )
    expected = pitch_kept(reference, shifted, RATE)
    figures = count_pitch_kept(
        estimate_f0(reference, RATE), estimate_f0(shifted, RATE), torch.ones(3, dtype=torch.bool)
    )
    assert figures["kept_mask"].tolist() == expected.tolist() == [True, False, True]


def test_conditions_cycle_over_known_test_pairs_or_spread_when_fewer():
    rows = [
        {"family": f, "pitch": p}
        for f, p in (("brass", 60), ("piano", 48), ("brass", 60), ("piano", 72), ("organ", 60))
    ]
    names = {"family": ["brass", "piano"], "pitch": ["48", "60", "84"]}
    known, missing = notes_sample_quality.condition_pairs(rows, names)
    assert known == [("piano", 48), ("brass", 60)]  # GM family order, then pitch; duplicates once
    assert missing == [("piano", 72), ("organ", 60)]
    assert notes_sample_quality.requested(known, 5) == [("piano", 48), ("brass", 60)] * 2 + [("piano", 48)]
    pairs = [("piano", p) for p in range(10)]
    assert [p for _, p in notes_sample_quality.requested(pairs, 4)] == [0, 3, 6, 9]
    with pytest.raises(SystemExit, match="no \\(family, pitch\\) pair"):
        notes_sample_quality.requested([], 4)
    assert spread(10, None) == list(range(10)) and spread(9, 3) == [0, 4, 8]


def test_notes_load_as_a_split_with_labels(build):
    test = load_notes(build, "test", 8000, max_notes=3)
    assert test.audio.shape == (3, 1, 4000) and test.sample_rate == 8000
    assert [r["program"] for r in test.rows] == [40, 110, 122] and test.indices == [0, 2, 3]
    assert test.families.tolist() == [5, 13, 15] and test.pitched.tolist() == [True, True, False]
    assert test.pitches.tolist() == [76, 69, 60]
    assert notes_root(str(build)) == build
    with pytest.raises(SystemExit, match="not an instrument-notes build"):
        notes_root(build / "test")


def test_classifier_cache_is_keyed_by_settings_and_build(build, tmp_path):
    settings = NoteClassifierSettings(epochs=1)
    path = tmp_path / "clf.safetensors"
    _, info = load_or_train(build, settings, path, log=lambda *_: None)
    assert not info["cached"] and path.is_file()
    model, info = load_or_train(build, settings, path, log=lambda *_: None)
    assert info["cached"] and model.head.out_features == len(INSTRUMENT_FAMILIES)
    other = build_from_fixtures(tmp_path / "other")
    (other / "manifest.json").write_text('{"name": "instrument-notes", "another": "build"}\n')
    assert data_fingerprint(other) != data_fingerprint(build)
    _, info = load_or_train(other, settings, path, log=lambda *_: None)
    assert not info["cached"]
    _, info = load_or_train(other, NoteClassifierSettings(epochs=1, seed=1), path, log=lambda *_: None)
    assert not info["cached"]


def test_codec_targets_read_the_6_kbps_row():
    def row(target, mel, si_sdr, kept):
        return {
            "target_kbps": target,
            "tokenizer": {"mel": {"mean": mel}, "si_sdr": {"mean": si_sdr}, "pitch_kept": {"share": kept}},
            "opus": {"mel": {"mean": 1.0}, "si_sdr": {"mean": 0.0}, "pitch_kept": {"share": 0.5}},
        }

    met = [m for _, _, m in notes_codec.targets([row(1.5, 2.0, -5.0, 0.1), row(6.0, 0.5, -1.0, 0.96)])]
    assert met == [True, False, True]
    assert [m for _, _, m in notes_codec.targets([row(6.0, 1.5, 2.0, math.nan)])] == [False, True, None]
    assert notes_codec.targets([row(3.0, 0.5, 1.0, 1.0)])[0][2] is None


def test_tokenizer_roundtrip_is_decode_of_encode_in_batches():
    tokenizer = tiny_tokenizer()
    audio = torch.rand(3, 1, 1000) * 2 - 1
    with torch.no_grad():
        direct = tokenizer.decode(tokenizer.encode(audio, num_levels=2))[..., :1000].clamp(-1, 1)
    torch.testing.assert_close(tokenizer_roundtrip(tokenizer, audio, 2, batch_size=2), direct)


# ---------------------------------------------------------------------------------------------------------
# Smoke runs of the quick paths


def test_notes_codec_quick_run(build, models, out_dir):
    report = notes_codec.main(
        ["--tokenizer", str(models["tokenizer"]), "--data", str(build), "--output-name", "codec", *ONE_EPOCH]
    )
    assert [(r["target_kbps"], r["tokenizer"]["levels"]) for r in report["results"]] == [
        (1.5, 3),
        (3.0, 6),
        (6.0, 12),
    ]
    assert report["clips"] == 4 and report["input_pitch"]["pitched"] == 3  # seashore left out
    assert report["input_pitch"]["counted"] + report["input_pitch"]["excluded_unvoiced_reference"] == 3
    for r in report["results"]:
        for codec in ("tokenizer", "opus"):
            figures = r[codec]
            assert set(figures) >= {"mel", "stft", "si_sdr", "pitch_kept", "family"}
            assert figures["pitch_kept"]["counted"] == report["input_pitch"]["counted"]
            assert 0.0 <= figures["family"]["accuracy"] <= 1.0 and len(figures["family"]["predictions"]) == 4
        assert r["opus"]["payload_kbps"] > 0
    assert 0.0 <= report["real_test"]["accuracy"] <= 1.0 and len(report["targets"]) == 3
    assert (out_dir / "notes_classifier.safetensors").is_file()
    written = json.loads((out_dir / "codec.json").read_text())
    assert written["results"][2]["tokenizer"]["kbps"] == pytest.approx(6.0)
    assert "pitch kept" in report["tables"][0] and "Per family at 6 kbps" in report["tables"][1]
    # a second run loads the cached classifier; --max-clips spreads the notes
    again = notes_codec.main(
        ["--tokenizer", str(models["tokenizer"]), "--data", str(build), "--max-clips", "2", "--targets", "6",
         "--output-name", "codec2", *ONE_EPOCH]
    )  # fmt: skip
    assert again["classifier"]["cached"] and again["clips"] == 2 and again["clip_indices"] == [0, 3]
    assert again["input_pitch"]["pitched"] == 1


def test_notes_timbre_quick_run(build, out_dir, tmp_path):
    from vqgen.tokenizers.audio import AudioTokenizer

    torch.manual_seed(0)
    harmonic = AudioTokenizer(
        sample_rate=RATE,
        strides=(320,),
        frontend="stft-harmonic",
        max_channels=8,
        latent_channels=4,
        # 1,024 pitch codes: 7-cent steps, so the oracle reads each harmonic at its own STFT bin
        quantizer_config={"type": "rvq", "num_quantizers": 2, "codebook_size": 1024, "kmeans_init": False},
    ).eval()
    harmonic.save_pretrained(tmp_path / "harmonic")
    argv = ["--tokenizer", str(tmp_path / "harmonic"), "--data", str(build), "--levels", "2", "9", *ONE_EPOCH]
    report = notes_timbre.main(argv)
    train, test = report["splits"]["train"], report["splits"]["test"]
    assert set(train["family_accuracy"]) == {"real", "oracle harmonics", "continuous", "2 levels"}  # 9 > 3
    assert train["notes"] + test["notes"] == 13
    assert all(0.0 <= share <= 1.0 for split in (train, test) for share in split["family_accuracy"].values())
    assert (out_dir / "notes_timbre.json").is_file()
    # the oracle resynthesis follows the note: a pure tone comes back near its own level
    tone = torch.sin(2 * math.pi * 220 * torch.arange(RATE // 2) / RATE).mul(0.5).view(1, 1, -1)
    synth = notes_timbre.oracle_harmonics(harmonic, tone)
    assert synth.shape == tone.shape
    assert synth[..., 1600:-1600].pow(2).mean().sqrt() == pytest.approx(0.5 / math.sqrt(2), rel=0.15)
    tiny_tokenizer().save_pretrained(tmp_path / "waveform")
    with pytest.raises(SystemExit, match="has no pitch level"):
        notes_timbre.main(["--tokenizer", str(tmp_path / "waveform"), "--data", str(build), *ONE_EPOCH])


def test_notes_sample_quality_quick_run(build, models, out_dir):
    report = notes_sample_quality.main(
        [
            "--pipeline",
            str(models["pipeline"]),
            "--data",
            str(build),
            "--num-samples",
            "6",
            "--output-name",
            "sq",
            *ONE_EPOCH,
        ]
    )
    assert report["pairs_known"] == 4 and report["pairs_missing_from_pipeline"] == []
    assert [p for p in report["requested"]][:4] == [
        ["strings", 76],
        ["reed", 58],
        ["ethnic", 69],
        ["sound-effects", 60],
    ]
    pitch = report["figures"]["pitch"]
    assert pitch["pitched"] == 5 and pitch["excluded_unvoiced_reference"] == 0 and pitch["counted"] == 5
    assert report["clip_seconds"] == pytest.approx(0.5) and report["sample_rate"] == RATE
    assert report["seconds_per_audio_second"] > 0 and report["guidance_scale"] == 3.0
    assert 0.0 <= report["figures"]["family_accuracy"] <= 1.0
    fd = report["figures"]["fd"]
    assert fd["floor_train_images"] == 6 and math.isfinite(fd["fd"]) and math.isfinite(fd["floor"])
    assert set(report["figures"]["precision_recall"]) >= {"precision", "recall"}
    assert report["real_pitch"]["pitched"] == 3 and len(report["figures"]["sample_f0_hz"]) == 6
    written = json.loads((out_dir / "sq.json").read_text())
    assert written["num_samples"] == 6 and len(written["targets"]) == 2
    assert "Per requested family" in report["tables"][1]


def test_notes_sample_quality_refuses_a_pipeline_without_the_two_fields(build, tmp_path, out_dir):
    from vqgen.pipelines import AudioPipeline
    from vqgen.priors.prior import CodePrior

    prior = CodePrior(
        codebook_size=1024,
        code_grid=[12, 25],
        num_classes=3,
        layout="delay",
        hidden_size=32,
        num_layers=1,
        num_heads=4,
    )
    AudioPipeline(tiny_tokenizer(), prior.eval()).save_pretrained(tmp_path / "pipe")
    with pytest.raises(SystemExit, match="expected family and pitch"):
        notes_sample_quality.main(["--pipeline", str(tmp_path / "pipe"), "--data", str(build), *ONE_EPOCH])


def test_pipeline_speed_quick_on_a_two_field_audio_pipeline(models, out_dir):
    result = pipeline_speed.main(
        ["--quick", "--pipeline", str(models["pipeline"]), "--dtypes", "float32", "bfloat16"]
    )
    assert [r["dtype"] for r in result["readings"]] == ["float32", "bfloat16"]
    for reading in result["readings"]:
        assert reading["clip_seconds"] == pytest.approx(0.5)
        assert reading["seconds_per_audio_second"] == pytest.approx(reading["seconds"] / (8 * 0.5))
    assert "x real time" in result["table"]
    # a field of numbers is asked for by name: an int would be read as a MIDI pitch, not an index
    pipe = notes_sample_quality.load_pipe(str(models["pipeline"]), "cpu")
    asked = pipeline_speed.condition_arguments(pipe, 6, 0)["conditions"]
    assert set(asked) == {"family", "pitch"}
    assert all(p in pipe.condition_names["pitch"] for p in asked["pitch"])
