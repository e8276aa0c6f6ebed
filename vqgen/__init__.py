"""vqgen: generative media with discrete tokens.

Stage one (``vqgen.tokenizers``) turns media into codes and back; stage two (``vqgen.priors``) models the
codes autoregressively; ``vqgen.pipelines`` chain the two; ``vqgen.media`` holds what differs between images,
video and audio (``get_medium("video")``, ``medium_of(pipe)``). Heavy submodules load on first use, so
``import vqgen`` (and the command line's ``--help``) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ImageTokenizer": "vqgen.tokenizers.image",
    "VideoTokenizer": "vqgen.tokenizers.video",
    "AudioTokenizer": "vqgen.tokenizers.audio",
    "VectorQuantizer": "vqgen.tokenizers.quantizers",
    "FiniteScalarQuantizer": "vqgen.tokenizers.quantizers",
    "ResidualQuantizer": "vqgen.tokenizers.quantizers",
    "CodePrior": "vqgen.priors.prior",
    "sample_codes": "vqgen.priors.sampling",
    "ImagePipeline": "vqgen.pipelines.image",
    "ImagePipelineOutput": "vqgen.pipelines.image",
    "VideoPipeline": "vqgen.pipelines.video",
    "VideoPipelineOutput": "vqgen.pipelines.video",
    "AudioPipeline": "vqgen.pipelines.audio",
    "AudioPipelineOutput": "vqgen.pipelines.audio",
    "load_pipeline": "vqgen.pipelines.loading",
    "load_tokenizer": "vqgen.loading",
    "get_medium": "vqgen.media",
    "medium_of": "vqgen.media",
    "VqgenError": "vqgen.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vqgen' has no attribute {name!r}")
