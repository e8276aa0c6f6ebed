"""ImagePipeline: class-conditional or unconditional image generation from a code prior."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

from vqgen.errors import ShapeError
from vqgen.media.image import images_from_uint8, jitter_images, load_image, to_uint8_images
from vqgen.pipelines.base import TokenPipeline
from vqgen.priors.sampling_config import SamplingConfig

__all__ = ["ImagePipeline", "ImagePipelineOutput"]


@dataclass
class ImagePipelineOutput(BaseOutput):
    """``images``: a list of PIL images, uint8 ``np.ndarray [N, H, W, C]``, or float ``torch.Tensor [N, C, H, W]``
    in [-1, 1], by ``output_type``."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


class ImagePipeline(TokenPipeline):
    """``ImageTokenizer`` + ``CodePrior``: ``pipe(num_samples=8, class_labels=[3] * 8).images`` (or by name,
    ``class_labels="smileys-emotion"``, where the pipeline stores :attr:`condition_names`); an optional
    ``background`` prior (``vqgen fit-background``) adds likelihood-ratio anomaly scores to :meth:`score`."""

    medium = "image"

    def __call__(
        self,
        num_samples: int = 1,
        *,
        class_labels=None,
        conditions=None,
        sampling: SamplingConfig | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        prompt_codes: torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        batch_size: int = 64,
        progress: bool = False,
    ) -> ImagePipelineOutput:
        """Draw ``num_samples`` images.

        Args:
            class_labels: None (unconditional / null class), one label for all, or one per sample: an int (an
                index) or a value name of a single-field pipeline (:attr:`condition_names`).
            conditions: for a prior with named condition fields, ``{field: values}``: one value for all or
                one per sample (a list or a tensor ``[B]``), each a name (``"brass"``) or an int; an int is an
                index, except for a field whose names are all integers, where it is the value itself
                (``{"pitch": 60}`` means the pitch named ``"60"``). A missing field is that field's null
                (unconditional in it). See ``vqgen.pipelines.conditions``.
            sampling: how codes are drawn (``SamplingConfig``), default :attr:`default_sampling`; the keywords
                ``guidance_scale``, ``guidance_schedule``, ``temperature``, ``top_k``, ``top_p`` replace single
                fields. Guidance (1 = none) defaults to :attr:`default_guidance_scale` (3 unless the pipeline
                stores its own) when labels are given, else 1.
            prompt_codes: known leading codes ``[B, P]`` or top rows ``[B, n, w]`` to complete.
            generator: seeds every draw; the same seed gives the same images on the same machine.
            output_type: ``"pil"`` (list of images), ``"np"`` (uint8 ``[N, H, W, C]``) or ``"pt"``
                (float ``[N, C, H, W]`` in [-1, 1]).
        """
        self._check_call(num_samples, class_labels, output_type)
        sampling = self.sampling_config(
            sampling,
            guidance_scale=guidance_scale,
            guidance_schedule=guidance_schedule,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
        )
        images = self.generate_media(
            num_samples,
            sampling=sampling,
            class_labels=class_labels,
            conditions=conditions,
            prompt=prompt_codes,
            generator=generator,
            batch_size=batch_size,
            progress=progress,
        )
        if output_type == "pt":
            return ImagePipelineOutput(images=images)
        array = to_uint8_images(images)
        if output_type == "np":
            return ImagePipelineOutput(images=array)
        return ImagePipelineOutput(
            images=[PIL.Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]
        )

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A jittered view of images float ``[N, C, H, W]``: the small affine jitter of the prior's training
        codes (``vqgen encode --augment-copies``; ``vqgen.media.image.jitter_images``)."""
        return jitter_images(images, generator)

    def preprocess(self, images) -> torch.Tensor:
        """Images -> float ``[N, C, H, W]`` in [-1, 1] at the pipeline's size.

        Accepts a float tensor ``[N, C, H, W]`` / ``[C, H, W]`` in [-1, 1], a uint8 array ``[N, H, W, C]`` /
        ``[H, W, C]`` / ``[H, W]``, a PIL image, a file path, or a list of images or paths.
        """
        if isinstance(images, (list, tuple)):
            if not images:
                raise ShapeError("got an empty list of images")
            return torch.cat([self.preprocess(item) for item in images])
        channels, height, width = self.sample_shape
        if isinstance(images, (str, Path)):
            images = load_image(images, channels=channels)
        if isinstance(images, PIL.Image.Image):
            images = np.asarray(images.convert("L" if channels == 1 else "RGB"))
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8:
                raise ShapeError(f"image arrays must be uint8 [N, H, W, C] in 0..255, got {images.dtype}")
            array = images[..., None] if images.ndim == 2 else images
            array = array[None] if array.ndim == 3 else array
            if array.ndim != 4:
                raise ShapeError(f"image arrays must be [N, H, W, C], got shape {list(images.shape)}")
            images = images_from_uint8(array)
        if not isinstance(images, torch.Tensor):
            raise ShapeError(
                f"cannot use {type(images).__name__} as images: pass tensors, arrays, PIL images or paths"
            )
        images = images[None] if images.dim() == 3 else images
        if images.dim() != 4 or tuple(images.shape[1:]) != (channels, height, width):
            raise ShapeError(
                f"images must be [N, {channels}, {height}, {width}] for this pipeline, got {list(images.shape)}"
            )
        if not images.is_floating_point() or not torch.isfinite(images).all():
            raise ShapeError("image tensors must be finite floats in [-1, 1]")
        return images.float()
