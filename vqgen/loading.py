"""Loading saved models by folder: the class comes from ``config.json``, weights only from safetensors."""

from __future__ import annotations

import json
from pathlib import Path

from vqgen.errors import CheckpointError

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def read_config(folder: str | Path, name: str = "config.json") -> dict:
    """Parse ``folder/name`` (plain JSON, no code runs: a model's ``config.json``, a pipeline's
    ``model_index.json``) with a clear error when it is missing or bad."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model folder '{folder}' does not exist")
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"'{folder}' has no {name}: not a saved vqgen model")
    try:
        config = json.loads(path.read_text())
    except OSError as error:
        raise CheckpointError(f"cannot read '{path}': {error.strerror or type(error).__name__}") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, or a number too long to parse
        text = " ".join(str(error).split())[:200]
        raise CheckpointError(f"'{path}' is not valid JSON ({text})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"'{path}' must hold a JSON object")
    return config


def load_model(folder: str | Path, classes: dict, what: str):
    """Instantiate the class named by ``config.json`` (one of ``classes``) from ``folder`` via ``from_pretrained``."""
    folder = Path(folder)
    config = read_config(folder)
    name = config.get("_class_name")
    if not isinstance(name, str) or name not in classes:
        shown = repr(name)[:80] if name else "unknown model"
        raise CheckpointError(f"'{folder}' holds a {shown}, expected a {what} ({', '.join(classes)})")
    if not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"'{folder}' has no weights file {WEIGHTS_NAME} (weights load from safetensors only)"
        )
    try:
        model = classes[name].from_pretrained(str(folder), use_safetensors=True)
    except Exception as error:  # noqa: BLE001 - any load failure means an unusable folder
        message = " ".join(str(error).split())[:300] or type(error).__name__
        raise CheckpointError(f"cannot load {what} from '{folder}': {message}") from None
    return model.eval()


def load_tokenizer(folder: str | Path):
    """Load any vqgen tokenizer saved with ``save_pretrained``."""
    from vqgen.tokenizers.audio import AudioTokenizer
    from vqgen.tokenizers.image import ImageTokenizer
    from vqgen.tokenizers.video import VideoTokenizer

    classes = {
        "ImageTokenizer": ImageTokenizer,
        "AudioTokenizer": AudioTokenizer,
        "VideoTokenizer": VideoTokenizer,
    }
    return load_model(folder, classes, "tokenizer")


def load_prior(folder: str | Path):
    """Load a saved ``CodePrior``: its own folder, or a pipeline folder holding one in ``prior/``."""
    from vqgen.priors.prior import CodePrior

    folder = Path(folder)
    if not (folder / "config.json").is_file() and (folder / "prior" / "config.json").is_file():
        folder = folder / "prior"
    return load_model(folder, {"CodePrior": CodePrior}, "prior")
