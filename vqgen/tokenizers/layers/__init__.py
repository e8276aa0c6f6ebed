"""Convolutional building blocks shared by every medium.

Each block takes ``dims`` (1 for audio ``[B, C, S]``, 2 for images ``[B, C, H, W]``, 3 for video
``[B, C, T, H, W]``) so image, audio and video tokenizers are assembled from the same pieces: ``blocks`` (any
``dims``), ``codec1d`` (the audio codec's strided 1-D stacks), ``stft1d`` (its STFT front and back end),
``harmonic`` (its pitch level and harmonic-plus-noise decoder), ``parametric`` (a measured harmonic
analysis, its synthesis and the phase levels, no weights), ``causal3d`` (the video tokenizer's causal 3-D stacks).
"""

from vqgen.tokenizers.layers.blocks import (
    ConvDecoder,
    ConvEncoder,
    Downsample,
    ResidualBlock,
    Upsample,
    conv_nd,
    group_norm,
)
from vqgen.tokenizers.layers.causal3d import (
    CausalConv3d,
    CausalConvDecoder3d,
    CausalConvEncoder3d,
    CausalDownsample3d,
    CausalResidualBlock3d,
    CausalUpsample3d,
    FrameGroupNorm,
    inflate_state_dict,
    temporal_schedule,
)
from vqgen.tokenizers.layers.codec1d import (
    AUDIO_ACTIVATIONS,
    AUDIO_NORMS,
    NormActivation1d,
    PaddedConv1d,
    ResidualUnit1d,
    Snake1d,
    StridedConvDecoder1d,
    StridedConvEncoder1d,
    StridedDownsample1d,
    StridedUpsample1d,
    conv1d,
    strided_widths,
)
from vqgen.tokenizers.layers.harmonic import HarmonicDecoder1d, PitchCoder
from vqgen.tokenizers.layers.parametric import HarmonicAnalysis1d, HarmonicSynthesis1d, PhaseCoder
from vqgen.tokenizers.layers.stft1d import FrameNetwork1d, STFTDecoder1d, STFTEncoder1d, stft_sizes

__all__ = [
    "AUDIO_ACTIVATIONS",
    "AUDIO_NORMS",
    "CausalConv3d",
    "CausalConvDecoder3d",
    "CausalConvEncoder3d",
    "CausalDownsample3d",
    "CausalResidualBlock3d",
    "CausalUpsample3d",
    "ConvDecoder",
    "ConvEncoder",
    "Downsample",
    "FrameGroupNorm",
    "FrameNetwork1d",
    "HarmonicAnalysis1d",
    "HarmonicDecoder1d",
    "HarmonicSynthesis1d",
    "NormActivation1d",
    "PaddedConv1d",
    "PhaseCoder",
    "PitchCoder",
    "ResidualBlock",
    "ResidualUnit1d",
    "STFTDecoder1d",
    "STFTEncoder1d",
    "Snake1d",
    "StridedConvDecoder1d",
    "StridedConvEncoder1d",
    "StridedDownsample1d",
    "StridedUpsample1d",
    "Upsample",
    "conv1d",
    "conv_nd",
    "group_norm",
    "inflate_state_dict",
    "stft_sizes",
    "strided_widths",
    "temporal_schedule",
]
