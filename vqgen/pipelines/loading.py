"""``load_pipeline``: a pipeline folder, or the name of a default shipped inside the package."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vqgen.errors import CheckpointError, ConfigError

__all__ = [
    "PRETRAINED_DIR",
    "SHIPPED_PIPELINES",
    "load_pipeline",
    "pipeline_class_for",
    "pipeline_folder",
    "place_pipeline",
    "resolve_device",
]

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: Short names of the defaults that ship inside the package -> their folder under ``vqgen/pretrained``.
SHIPPED_PIPELINES = {
    "image": "image-mnist",
    "video": "video-moving-mnist",
    "audio": "audio-spoken-digits",
    "emoji": "image-emoji",
    "instruments": "audio-instruments",
}


def _pipeline_classes() -> dict:
    """Pipeline class name -> class, for every medium."""
    from vqgen.media import media

    classes = [medium.pipeline_class for medium in media()]
    return {cls.__name__: cls for cls in classes}


def pipeline_class_for(tokenizer):
    """The pipeline class of a tokenizer's medium (``ImageTokenizer`` -> ``ImagePipeline``, ...)."""
    from vqgen.media import medium_of

    try:
        return medium_of(tokenizer).pipeline_class
    except ConfigError:
        raise CheckpointError(f"no pipeline takes a {type(tokenizer).__name__} yet") from None


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


def resolve_device(device: str) -> torch.device:
    """A device name as a ``torch.device`` (``auto``: this process's accelerator under Accelerate, or the GPU
    when one is present, else the CPU); one clear line for a device this machine does not have."""
    from vqgen.pipelines.base import process_state

    if device == "auto":
        return process_state().device
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'") from None
    if target.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'")
    if target.type == "cuda" and (
        not torch.cuda.is_available() or (target.index or 0) >= torch.cuda.device_count()
    ):
        raise ConfigError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); use cpu or auto"
        )
    return target


def place_pipeline(pipe, device: torch.device, dtype: str = "float32"):
    """``pipe`` on ``device`` in ``dtype`` (a torch dtype name); as loaded, with no cast, for the CPU in float32."""
    from diffusers.utils import logging as diffusers_logging

    torch_dtype = getattr(torch, dtype)
    if device.type == "cpu" and torch_dtype == torch.float32:
        return pipe
    # diffusers 0.42 warns about "modules to keep in float32" on every cast, even when there are none.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return pipe.to(device, torch_dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
