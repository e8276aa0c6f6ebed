"""Checksums of a saved pipeline: written by ``save_pretrained``, verified by ``from_pretrained`` and ``vqgen info``.

The manifest ``vqgen_manifest.json`` sits at the top of a pipeline folder and records, for every weight and
config file below it, its size and SHA-256, plus free-form training provenance (what produced the weights).
A folder without a manifest (written by an older vqgen or by hand) still loads; a folder whose files do not
match their manifest does not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vqgen.errors import CheckpointError
from vqgen.io import atomic_write_bytes

__all__ = ["MANIFEST_NAME", "file_digest", "write_manifest", "read_manifest", "verify_manifest"]

MANIFEST_NAME = "vqgen_manifest.json"
MANIFEST_FORMAT = "vqgen-pipeline-manifest"
#: What the manifest covers: weights and the JSON that says how to build the modules around them.
_COVERED_SUFFIXES = (".safetensors", ".json")


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _covered_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in _COVERED_SUFFIXES and p.name != MANIFEST_NAME
    )


def write_manifest(folder: str | Path, provenance: dict | None = None) -> dict:
    """Record size and SHA-256 of every ``.safetensors`` / ``.json`` file under ``folder``; returns the manifest."""
    from vqgen import __version__

    folder = Path(folder)
    files = {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
        for p in _covered_files(folder)
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "vqgen_version": __version__,
        "files": files,
        "provenance": provenance or {},
    }
    atomic_write_bytes(folder / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of ``folder``, or None when it has none; CheckpointError when it is unreadable."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
        raise CheckpointError(f"'{path}' is not a readable JSON manifest ({error})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise CheckpointError(f"'{path}' is not a vqgen pipeline manifest")
    return manifest


def verify_manifest(folder: str | Path) -> dict | None:
    """Check every file the manifest lists; returns the manifest (None when there is none).

    Raises CheckpointError naming the first file that is missing, has another size or another SHA-256, and
    any weight file the manifest does not list (a file slipped in after saving).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    for name, entry in manifest["files"].items():
        path = folder / name
        if not isinstance(entry, dict) or not path.is_file():
            raise CheckpointError(f"'{path}' is listed in {MANIFEST_NAME} but missing")
        if path.stat().st_size != entry.get("bytes"):
            raise CheckpointError(
                f"'{path}' has {path.stat().st_size} bytes, {MANIFEST_NAME} records {entry.get('bytes')}: "
                "the file changed after saving"
            )
        if file_digest(path) != entry.get("sha256"):
            raise CheckpointError(
                f"'{path}' does not match its SHA-256 in {MANIFEST_NAME}: the file changed after saving"
            )
    for path in _covered_files(folder):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".safetensors" and name not in manifest["files"]:
            raise CheckpointError(f"'{path}' is not listed in {MANIFEST_NAME}: it was added after saving")
    return manifest


def describe_pipeline(folder: str | Path) -> dict:
    """What ``vqgen info`` prints about a pipeline folder: components and their sizes, code grid, vocabulary,
    provenance, and the checksum verdict (CheckpointError when the files do not match the manifest)."""
    from vqgen.loading import read_config

    folder = Path(folder)
    manifest = verify_manifest(folder)
    index = json.loads((folder / "model_index.json").read_text())
    components = {}
    # The optional background prior (likelihood-ratio scores) is listed where the index names one.
    names = ["tokenizer", "prior"] + (["background"] if (index.get("background") or [None])[0] else [])
    for name in names:
        config = read_config(folder / name)
        size = sum(p.stat().st_size for p in (folder / name).glob("*.safetensors"))
        components[name] = {"class": config.get("_class_name"), "weight_bytes": size, "config": config}
    prior = components["prior"]["config"]
    return {
        "pipeline": index.get("_class_name"),
        "components": components,
        "code_grid": prior.get("code_grid"),
        "codebook_size": prior.get("codebook_size"),
        "layout": prior.get("layout"),
        "num_classes": prior.get("num_classes"),
        "condition_fields": prior.get("condition_fields"),
        "condition_names": index.get("condition_names"),
        "condition_draws": index.get("condition_draws"),
        "default_sampling": index.get("default_sampling"),
        "default_guidance_scale": index.get("default_guidance_scale"),
        "checksums": "no manifest (not verified)"
        if manifest is None
        else f"{len(manifest['files'])} files verified",
        "provenance": {} if manifest is None else manifest.get("provenance", {}),
    }
