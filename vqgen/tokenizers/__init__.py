"""Stage one: media <-> discrete codes."""

from vqgen.tokenizers.audio import AudioTokenizer
from vqgen.tokenizers.base import TokenizerOutput
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.tokenizers.quantizers import (
    FiniteScalarQuantizer,
    QuantizerOutput,
    ResidualQuantizer,
    VectorQuantizer,
    build_quantizer,
)
from vqgen.tokenizers.video import VideoTokenizer

__all__ = [
    "AudioTokenizer",
    "FiniteScalarQuantizer",
    "ImageTokenizer",
    "QuantizerOutput",
    "ResidualQuantizer",
    "TokenizerOutput",
    "VectorQuantizer",
    "VideoTokenizer",
    "build_quantizer",
]
