"""Pipeline manifests: checksums written on save, verified on load and by ``vqgen info``."""

import json

import pytest

from vqgen.errors import CheckpointError
from vqgen.integrity import MANIFEST_NAME, file_digest, read_manifest, verify_manifest, write_manifest


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "prior").mkdir()
    (tmp_path / "prior" / "model.safetensors").write_bytes(b"weights" * 100)
    (tmp_path / "prior" / "config.json").write_text('{"a": 1}')
    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "README.md").write_text("card")
    return tmp_path


def test_manifest_records_sha256_of_weights_and_configs(folder):
    import hashlib

    manifest = write_manifest(folder, provenance={"command": "test"})
    files = manifest["files"]
    assert sorted(files) == ["model_index.json", "prior/config.json", "prior/model.safetensors"]
    expected = hashlib.sha256(b"weights" * 100).hexdigest()
    assert files["prior/model.safetensors"] == {"bytes": 700, "sha256": expected}
    assert file_digest(folder / "prior" / "model.safetensors") == expected
    assert read_manifest(folder)["provenance"] == {"command": "test"}
    assert verify_manifest(folder) == manifest


def test_folder_without_manifest_verifies_as_none(folder):
    assert verify_manifest(folder) is None


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda f: (f / "prior" / "model.safetensors").write_bytes(b"weightz" * 100), "SHA-256"),
        (lambda f: (f / "prior" / "model.safetensors").write_bytes(b"short"), "bytes"),
        (lambda f: (f / "prior" / "config.json").unlink(), "missing"),
        (lambda f: (f / "prior" / "extra.safetensors").write_bytes(b"x"), "added after saving"),
        (lambda f: (f / MANIFEST_NAME).write_text("{not json"), "JSON"),
        (lambda f: (f / MANIFEST_NAME).write_text('{"format": "other"}'), "not a vqgen pipeline manifest"),
    ],
)
def test_tampered_folder_is_refused_with_one_line(folder, tamper, message):
    write_manifest(folder)
    tamper(folder)
    with pytest.raises(CheckpointError, match=message) as info:
        verify_manifest(folder)
    assert "\n" not in str(info.value)


def test_readme_changes_do_not_break_verification(folder):
    write_manifest(folder)
    (folder / "README.md").write_text("an edited model card")
    assert verify_manifest(folder) is not None
    assert json.loads((folder / MANIFEST_NAME).read_text())["format"] == "vqgen-pipeline-manifest"


def test_pipelines_save_checksums_and_vqgen_info_verifies_them(tmp_path, capsys):
    from conftest import make_prior, make_tokenizer

    from vqgen.cli import main
    from vqgen.pipelines import ImagePipeline
    from vqgen.priors.sampling_config import SamplingConfig

    folder = tmp_path / "pipe"
    ImagePipeline(make_tokenizer(), make_prior()).save_pretrained(folder, provenance={"command": "test"})
    manifest = read_manifest(folder)
    assert "prior/diffusion_pytorch_model.safetensors" in manifest["files"]
    assert manifest["provenance"] == {"command": "test"}
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "files verified" in out and "code grid [4, 4]" in out and '"command": "test"' in out
    assert "draws with temperature 1, guidance 3" in out  # the library's defaults
    pipe = ImagePipeline.from_pretrained(folder)
    pipe.set_default_sampling(SamplingConfig(temperature=0.8, top_k=5, guidance_scale=4))
    pipe.save_pretrained(tmp_path / "tuned")
    assert main(["info", str(tmp_path / "tuned")]) == 0
    assert "draws with temperature 0.8, top-k 5, guidance 4" in capsys.readouterr().out
    weights = folder / "prior" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert main(["info", str(folder)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SHA-256" in err[0]
    with pytest.raises(CheckpointError, match="SHA-256"):
        ImagePipeline.from_pretrained(folder)
