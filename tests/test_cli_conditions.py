"""Condition fields end to end on the command line, on tiny models:

* instrument notes (tests/fixtures/notes, laid out as the instrument-notes build: ``NN-family`` folders and a
  ``metadata.csv``): train-tokenizer -> encode --condition-fields family,pitch -> train-prior -> generate audio
  --condition family=brass --condition pitch=60;
* emoji (the emoji-test.txt fixture built with a fake renderer): train-tokenizer -> encode -> train-prior ->
  generate image --class-label smileys-emotion;

and their bad input, refused in one line that lists what is allowed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import soundfile
import torch
from test_emoji_data import FIXTURE as EMOJI_TEST
from test_emoji_data import fake_renderer

from vqgen.cli import main
from vqgen.data.emoji import EMOJI_GROUPS, build_emoji
from vqgen.data.instrument_notes import INSTRUMENT_FAMILIES, family_folder
from vqgen.data.shards import CodeShardDataset
from vqgen.pipelines import AudioPipeline, ImagePipeline, load_pipeline

NOTES = Path(__file__).parent / "fixtures" / "notes"
RATE = 8000
COMMON = ["--no-progress", "--log-every", "1", "--batch-size", "4", "--max-steps", "2", "--eval-every", "2"]
PRIOR = ["--hidden-size", "32", "--num-layers", "1", "--num-heads", "4"]
AUDIO = [
    "--strides", "2,4", "--base-channels", "4", "--latent-channels", "4", "--num-levels", "2",
    "--codebook-size", "16", "--no-kmeans-init", "--frontend", "waveform",
]  # fmt: skip
SEGMENT = ["--segment-seconds", "0.025"]
IMAGE = [
    "--base-channels",
    "8",
    "--latent-channels",
    "8",
    "--channel-multipliers",
    "1,2",
    "--codebook-size",
    "16",
]
TEST_PROGRAMS = (40, 65, 110)  # violin, alto sax, fiddle: the test split


def notes_folder(root: Path) -> Path:
    """The note fixtures as an instrument-notes build: ``{train,test}/NN-family/PPP-NNN-100.flac`` and a
    ``metadata.csv`` with the family and pitch of every file."""
    rows = ["file,family,family_id,program,pitch,velocity,split"]
    for path in sorted(NOTES.glob("*.flac")):
        program, pitch = int(path.name[:3]), int(re.search(r"-p(\d+)\.flac$", path.name).group(1))
        split = "test" if program in TEST_PROGRAMS else "train"
        file = f"{split}/{family_folder(program // 8)}/{program:03d}-{pitch:03d}-100.flac"
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / file)
        rows.append(
            f"{file},{INSTRUMENT_FAMILIES[program // 8]},{program // 8},{program},{pitch},100,{split}"
        )
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    """Tokenizer, shards with fields family and pitch, and a prior + pipeline trained on them."""
    root = tmp_path_factory.mktemp("cli-conditions")
    data = notes_folder(root / "notes")
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(data), "--sample-rate", str(RATE)]
    assert main([*argv, *SEGMENT, *AUDIO, *COMMON, "--output", str(root / "tok")]) == 0
    encode = ["encode", "--tokenizer", str(root / "tok"), "--data", str(data), *SEGMENT, "--no-progress"]
    assert main([*encode, "--condition-fields", "family,pitch", "--output", str(root / "shards")]) == 0
    split = [*encode, "--split", "test", "--condition-fields", "family,pitch", "--output", str(root / "val")]
    assert main(split) == 0
    argv = ["train-prior", "--shards", str(root / "shards"), "--val-shards", str(root / "val")]
    assert (
        main([*argv, "--tokenizer", str(root / "tok"), *PRIOR, *COMMON, "--output", str(root / "prior")]) == 0
    )
    return root


def test_notes_train_a_prior_on_family_and_pitch(notes, capsys):
    shards = CodeShardDataset(notes / "shards")
    families = sorted({INSTRUMENT_FAMILIES[int(p.name[:3]) // 8] for p in NOTES.glob("*.flac")})
    pitches = sorted({int(re.search(r"-p(\d+)", p.name).group(1)) for p in NOTES.glob("*.flac")}, key=int)
    assert shards.condition_names == {"family": families, "pitch": [str(p) for p in pitches]}
    assert len(shards) == 10 and shards.label_names[0] == "00-piano"  # folder classes kept too
    pipe = load_pipeline(notes / "prior" / "pipeline")
    assert isinstance(pipe, AudioPipeline)
    assert pipe.prior.condition_fields == {"family": len(families), "pitch": len(pitches)}
    assert pipe.condition_names == shards.condition_names
    config = json.loads((notes / "prior" / "pipeline" / "prior" / "config.json").read_text())
    assert config["condition_fields"] == {"family": len(families), "pitch": len(pitches)}
    assert main(["info", str(notes / "prior" / "pipeline")]) == 0
    out = capsys.readouterr().out
    assert f"condition fields family ({len(families)} values), pitch ({len(pitches)} values)" in out
    assert "family: bass, brass, chromatic-percussion" in out


def test_generate_audio_by_condition_names_and_numbers(notes, tmp_path, capsys):
    pipeline = ["generate", "audio", "--pipeline", str(notes / "prior" / "pipeline"), "--no-progress"]
    by_name = [*pipeline, "--condition", "family=brass", "--condition", "pitch=60"]
    assert main([*by_name, "--output", str(tmp_path / "note.wav")]) == 0
    info = soundfile.info(str(tmp_path / "note.wav"))
    assert info.samplerate == RATE and info.frames == 200
    brass = CodeShardDataset(notes / "shards").condition_names["family"].index("brass")
    by_number = [*pipeline, "--condition", f"family={brass}", "--condition", "pitch=60"]
    assert main([*by_number, "--output", str(tmp_path / "same.wav")]) == 0
    assert (tmp_path / "note.wav").read_bytes() == (tmp_path / "same.wav").read_bytes()
    # one field only: the other is left unconditional; and the default cycles through both fields
    assert main([*pipeline, "--condition", "pitch=84", "--output", str(tmp_path / "high.wav")]) == 0
    assert main([*pipeline, "--num-samples", "2", "--output", str(tmp_path / "all")]) == 0
    assert len(list((tmp_path / "all").glob("*.wav"))) == 2
    pipe = load_pipeline(notes / "prior" / "pipeline")
    out = pipe(2, conditions={"family": "brass", "pitch": [60, 84]}, output_type="pt")
    assert out.audios.shape == (2, 1, 200)


def _error(argv: list[str], capsys) -> str:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--condition", "velocity=100"], "unknown condition 'velocity': this pipeline's fields are family, pitch"),
        (["--condition", "pitch=100"], "pitch 100 is not a value this pipeline was trained on; pitch takes 35, 45, 47,"),
        (["--condition", "family=kazoo"], "unknown family 'kazoo'; family takes bass, brass, chromatic-percussion,"),
        (["--condition", "family"], "--condition takes FIELD=VALUE (this pipeline's fields: family, pitch), got 'family'"),
        (["--condition", "pitch=60", "--condition", "pitch=62"], "--condition gives 'pitch' twice"),
        (["--class-label", "brass", "--condition", "pitch=60"], "pass --class-label or --condition, not both"),
        (["--class-label", "3"], "class_labels need a prior with one condition field; this one has family, pitch"),
    ],
)  # fmt: skip
def test_bad_conditions_on_the_command_line(notes, tmp_path, capsys, flags, message):
    argv = ["generate", "audio", "--pipeline", str(notes / "prior" / "pipeline"), *flags]
    line = _error([*argv, "--output", str(tmp_path / "x.wav"), "--no-progress"], capsys)
    assert message in line, line


def test_bad_condition_fields_on_encode(notes, tmp_path, capsys):
    data = notes / "notes"
    encode = ["encode", "--tokenizer", str(notes / "tok"), "--data", str(data), *SEGMENT, "--no-progress"]
    line = _error([*encode, "--condition-fields", "family,timbre", "--output", str(tmp_path / "s")], capsys)
    assert "has no column 'timbre' for --condition-fields; its columns: file, family, family_id," in line
    line = _error([*encode, "--condition-fields", "family,,pitch", "--output", str(tmp_path / "s")], capsys)
    assert "--condition-fields takes distinct column names separated by commas" in line


def test_encode_keeps_the_first_levels_for_a_prior_over_them(notes, tmp_path, capsys):
    encode = ["encode", "--tokenizer", str(notes / "tok"), "--data", str(notes / "notes"), *SEGMENT]
    encode += ["--condition-fields", "family,pitch", "--no-progress"]
    assert main([*encode, "--levels", "1", "--output", str(tmp_path / "one")]) == 0
    assert CodeShardDataset(tmp_path / "one").code_grid[0] == 1
    train = [
        "train-prior",
        "--shards",
        str(tmp_path / "one"),
        "--tokenizer",
        str(notes / "tok"),
        *PRIOR,
        *COMMON,
    ]
    assert main([*train, "--output", str(tmp_path / "prior")]) == 0
    generate = ["generate", "audio", "--pipeline", str(tmp_path / "prior" / "pipeline"), "--no-progress"]
    generate += ["--condition", f"family={INSTRUMENT_FAMILIES[0]}", "--output", str(tmp_path / "x.wav")]
    assert main(generate) == 0 and (tmp_path / "x.wav").is_file()
    line = _error([*encode, "--levels", "3", "--output", str(tmp_path / "s")], capsys)
    assert line == "error: num_levels must be in [1, 2] (the tokenizer's levels), got 3"
    # jittered copies without a speed change (gain and shift only): the pitch stays on its label
    jitter = ["--augment-copies", "1", "--jitter-speed", "0", "--output", str(tmp_path / "jittered")]
    assert main([*encode, *jitter]) == 0
    manifest = json.loads((tmp_path / "jittered" / "manifest.json").read_text())
    assert manifest["augment_options"] == {"speed": 0.0} and manifest["num_items"] == 2 * len(
        CodeShardDataset(tmp_path / "one")
    )


def test_warm_start_adds_the_program_and_the_pipeline_draws_it(notes, tmp_path, capsys):
    """--init-from a family + pitch prior onto shards with the program too; --draw-fields program stores the
    training table, so a note asked by family and pitch gets one of the family's training programs."""
    encode = ["encode", "--tokenizer", str(notes / "tok"), "--data", str(notes / "notes"), *SEGMENT]
    fields = ["--condition-fields", "family,pitch,program", "--no-progress"]
    assert main([*encode, *fields, "--output", str(tmp_path / "shards")]) == 0
    train = ["train-prior", "--shards", str(tmp_path / "shards"), "--tokenizer", str(notes / "tok"), *COMMON]
    warm = [*train, "--init-from", str(notes / "prior" / "pipeline"), "--draw-fields", "program"]
    assert main([*warm, "--output", str(tmp_path / "prior")]) == 0
    pipe = load_pipeline(tmp_path / "prior" / "pipeline")
    assert list(pipe.prior.condition_fields) == ["family", "pitch", "program"]
    table = pipe.condition_draws["table"]
    shards = CodeShardDataset(tmp_path / "shards")
    assert pipe.condition_draws["fields"] == ["program"] and sum(row[-1] for row in table) == len(shards)
    programs = shards.condition_names["program"]
    brass = pipe.condition_names["family"].index("brass")
    brass_programs = {programs[row[2]] for row in table if row[0] == brass}
    assert brass_programs and all(56 <= int(p) < 64 for p in brass_programs)
    generate = ["generate", "audio", "--pipeline", str(tmp_path / "prior" / "pipeline"), "--no-progress"]
    generate += [
        "--condition",
        "family=brass",
        "--condition",
        "pitch=60",
        "--output",
        str(tmp_path / "b.wav"),
    ]
    assert main(generate) == 0 and (tmp_path / "b.wav").is_file()
    capsys.readouterr()
    assert main(["info", str(tmp_path / "prior" / "pipeline")]) == 0
    assert (
        f"draws program when a call leaves it out, from {len(table)} value combinations"
        in capsys.readouterr().out
    )
    line = _error([*train, "--draw-fields", "timbre", "--output", str(tmp_path / "bad")], capsys)
    assert line == "error: condition_draws draws ['timbre']; the prior's fields are family, pitch, program"


def test_jitter_speed_is_an_audio_flag(emoji, tmp_path, capsys):
    encode = [
        "encode",
        "--tokenizer",
        str(emoji / "tok"),
        "--data",
        str(emoji / "emoji"),
        "--resolution",
        "16",
    ]
    line = _error([*encode, "--jitter-speed", "0", "--output", str(tmp_path / "s"), "--no-progress"], capsys)
    assert line == "error: --jitter-speed works with audio tokenizers only"


@pytest.fixture(scope="module")
def emoji(tmp_path_factory) -> Path:
    """The emoji fixture built at 16 px, a tokenizer, shards and a prior + pipeline with the group names."""
    root = tmp_path_factory.mktemp("cli-emoji")
    build_emoji(
        root / "emoji", resolution=16, progress=False, emoji_test_path=EMOJI_TEST, renderer=fake_renderer()
    )
    data = ["--data", str(root / "emoji"), "--resolution", "16"]
    argv = ["train-tokenizer", *data, "--channels", "3", *IMAGE, *COMMON, "--output", str(root / "tok")]
    assert main(argv) == 0
    argv = [
        "encode",
        "--tokenizer",
        str(root / "tok"),
        *data,
        "--output",
        str(root / "shards"),
        "--no-progress",
    ]
    assert main(argv) == 0
    argv = [
        "train-prior",
        "--shards",
        str(root / "shards"),
        "--tokenizer",
        str(root / "tok"),
        *PRIOR,
        *COMMON,
    ]
    assert main([*argv, "--output", str(root / "prior")]) == 0
    return root


def test_generate_image_by_class_name(emoji, tmp_path, capsys):
    pipe = load_pipeline(emoji / "prior" / "pipeline")
    assert isinstance(pipe, ImagePipeline) and pipe.prior.config.num_classes == len(EMOJI_GROUPS)
    assert pipe.condition_names == {"class": list(EMOJI_GROUPS)}
    generate = ["generate", "image", "--pipeline", str(emoji / "prior" / "pipeline"), "--num-samples", "2"]
    generate += ["--no-progress"]
    assert main([*generate, "--class-label", "smileys-emotion", "--output", str(tmp_path / "a.png")]) == 0
    index = str(EMOJI_GROUPS.index("smileys-emotion"))
    assert main([*generate, "--class-label", index, "--output", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    line = _error([*generate, "--class-label", "smileys", "--output", str(tmp_path / "c.png")], capsys)
    assert line == f"error: unknown class label 'smileys'; class takes {', '.join(EMOJI_GROUPS)}"
    line = _error([*generate, "--class-label", "99", "--output", str(tmp_path / "c.png")], capsys)
    assert f"class_labels must lie in [0, {len(EMOJI_GROUPS)}), got values in [99, 99]" in line


def _prior_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def test_train_prior_warm_starts_from_a_saved_pipeline(emoji, tmp_path):
    """--init-from takes the saved prior's weights and size: at a vanishing learning rate the weights it saves
    are the ones it started from (a fresh prior from --seed would be far from them)."""
    argv = ["train-prior", "--shards", str(emoji / "shards"), "--tokenizer", str(emoji / "tok"), *COMMON]
    argv += ["--learning-rate", "1e-12", "--weight-decay", "0", "--seed", "7"]
    assert (
        main([*argv, "--init-from", str(emoji / "prior" / "pipeline"), "--output", str(tmp_path / "w")]) == 0
    )
    start, warm = _prior_weights(emoji / "prior"), _prior_weights(tmp_path / "w")
    assert start.keys() == warm.keys()
    assert all(torch.allclose(start[k], warm[k], atol=1e-6) for k in start)
    assert main([*argv, *PRIOR, "--output", str(tmp_path / "cold")]) == 0
    cold = _prior_weights(tmp_path / "cold")
    assert not all(torch.allclose(start[k], cold[k], atol=1e-3) for k in start)
    pipe = load_pipeline(tmp_path / "w" / "pipeline")
    assert pipe.prior.config.hidden_size == 32 and pipe.condition_names == {"class": list(EMOJI_GROUPS)}
    manifest = json.loads((tmp_path / "w" / "pipeline" / "vqgen_manifest.json").read_text())
    assert manifest["provenance"]["init_from"] == str(emoji / "prior" / "pipeline")


def test_train_prior_init_from_refuses_another_size_conditioning_or_names(emoji, tmp_path, capsys):
    pipeline = emoji / "prior" / "pipeline"
    argv = ["train-prior", "--shards", str(emoji / "shards"), "--tokenizer", str(emoji / "tok"), *COMMON]
    argv += ["--output", str(tmp_path / "out")]
    line = _error([*argv, "--init-from", str(pipeline), "--hidden-size", "64"], capsys)
    assert line == f"error: --init-from '{pipeline}' has hidden_size 32; this run asks for 64"
    line = _error([*argv, "--init-from", str(pipeline), "--unconditional"], capsys)
    assert line.startswith(f"error: --init-from '{pipeline}' is conditioned on class (9); the shards in")
    assert line.endswith("give none")
    renamed = tmp_path / "renamed"
    shutil.copytree(pipeline, renamed)
    index = json.loads((renamed / "model_index.json").read_text())
    index["condition_names"]["class"] = list(reversed(EMOJI_GROUPS))
    (renamed / "model_index.json").write_text(json.dumps(index))
    line = _error([*argv, "--init-from", str(renamed)], capsys)
    first, last = EMOJI_GROUPS[0], EMOJI_GROUPS[-1]
    assert line == (
        f"error: --init-from '{renamed}' calls class value 0 '{last}'; the shards in '{emoji / 'shards'}' call it "
        f"'{first}' (the same number of values, another meaning)"
    )
    (renamed / "model_index.json").write_text("{not json")
    line = _error([*argv, "--init-from", str(renamed)], capsys)
    assert line.startswith(f"error: '{renamed / 'model_index.json'}' is not valid JSON")
    line = _error([*argv, "--init-from", str(tmp_path / "missing")], capsys)
    assert line == f"error: model folder '{tmp_path / 'missing'}' does not exist"
    assert not (tmp_path / "out").exists()
