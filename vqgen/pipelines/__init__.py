"""Stage one + two chained: sample codes with the prior, decode them with the tokenizer."""

from vqgen.pipelines.base import ScoreOutput, TokenPipeline
from vqgen.pipelines.image import ImagePipeline, ImagePipelineOutput
from vqgen.pipelines.loading import load_pipeline

__all__ = ["ImagePipeline", "ImagePipelineOutput", "ScoreOutput", "TokenPipeline", "load_pipeline"]
