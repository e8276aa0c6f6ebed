"""Stage one + two chained: sample codes with the prior, decode them with the tokenizer."""

from vqgen.pipelines.audio import AudioPipeline, AudioPipelineOutput
from vqgen.pipelines.base import ScoreOutput, TokenPipeline
from vqgen.pipelines.image import ImagePipeline, ImagePipelineOutput
from vqgen.pipelines.loading import load_pipeline
from vqgen.pipelines.video import VideoPipeline, VideoPipelineOutput

__all__ = [
    "AudioPipeline",
    "AudioPipelineOutput",
    "ImagePipeline",
    "ImagePipelineOutput",
    "ScoreOutput",
    "TokenPipeline",
    "VideoPipeline",
    "VideoPipelineOutput",
    "load_pipeline",
]
