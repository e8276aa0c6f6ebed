"""Stage one: media <-> discrete codes."""

from vqgen.tokenizers.base import TokenizerOutput
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.tokenizers.quantizers import (
    FiniteScalarQuantizer,
    QuantizerOutput,
    ResidualQuantizer,
    VectorQuantizer,
    build_quantizer,
)

__all__ = [
    "FiniteScalarQuantizer",
    "ImageTokenizer",
    "QuantizerOutput",
    "ResidualQuantizer",
    "TokenizerOutput",
    "VectorQuantizer",
    "build_quantizer",
]
