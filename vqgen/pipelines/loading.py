"""``load_pipeline``: a pipeline folder, or the name of a default shipped inside the package."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vqgen.errors import CheckpointError

__all__ = ["PRETRAINED_DIR", "SHIPPED_PIPELINES", "load_pipeline", "pipeline_class_for", "pipeline_folder"]

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: Short names of the defaults that ship inside the package -> their folder under ``vqgen/pretrained``.
SHIPPED_PIPELINES = {"image": "image-mnist", "video": "video-moving-mnist", "audio": "audio-spoken-digits"}


def _pipeline_classes() -> dict:
    from vqgen.pipelines.audio import AudioPipeline
    from vqgen.pipelines.image import ImagePipeline
    from vqgen.pipelines.video import VideoPipeline

    return {"ImagePipeline": ImagePipeline, "VideoPipeline": VideoPipeline, "AudioPipeline": AudioPipeline}


#: Tokenizer class name -> the pipeline class name that chains it with a prior.
PIPELINE_FOR_TOKENIZER = {
    "ImageTokenizer": "ImagePipeline",
    "VideoTokenizer": "VideoPipeline",
    "AudioTokenizer": "AudioPipeline",
}


def pipeline_class_for(tokenizer):
    """The pipeline class for a tokenizer (``ImageTokenizer`` -> ``ImagePipeline``, ...)."""
    name = PIPELINE_FOR_TOKENIZER.get(type(tokenizer).__name__)
    if name is None:
        raise CheckpointError(f"no pipeline takes a {type(tokenizer).__name__} yet")
    return _pipeline_classes()[name]


def pipeline_folder(name_or_path: str | Path) -> Path:
    """The folder a pipeline name or path stands for: a shipped default's folder for its name, else the path."""
    key = str(name_or_path)
    return PRETRAINED_DIR / SHIPPED_PIPELINES[key] if key in SHIPPED_PIPELINES else Path(name_or_path)


def load_pipeline(name_or_path: str | Path = "image", device: str | torch.device = "cpu"):
    """Load the pipeline class named in ``model_index.json`` from a folder, or a shipped default by name.

    Weights load from safetensors only and nothing is downloaded. Shipped defaults are stored in fp16 and
    run in float32.
    """
    key = str(name_or_path)
    folder = pipeline_folder(name_or_path)
    index = folder / "model_index.json"
    if key in SHIPPED_PIPELINES and not index.is_file():
        raise CheckpointError(
            f"the shipped default '{key}' pipeline is not installed ({folder} is missing): "
            "pass a pipeline folder instead"
        )
    if not index.is_file():
        hint = f" (shipped defaults: {', '.join(SHIPPED_PIPELINES)})"
        raise CheckpointError(f"'{folder}' is not a pipeline folder: no model_index.json{hint}")
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise CheckpointError(f"'{index}' is not a valid model_index.json") from None
    classes = _pipeline_classes()
    if class_name not in classes:
        raise CheckpointError(f"'{folder}' holds a {class_name!r}, expected one of {sorted(classes)}")
    pipe = classes[class_name].from_pretrained(folder, dtype=torch.float32)
    return pipe.to(device)
