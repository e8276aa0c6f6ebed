"""VideoTokenizer: video ``[B, C, T, H, W]`` <-> codes ``[B, t, h, w]`` (``[B, L, t, h, w]`` for residual VQ).

Causal in time (MAGVIT-v2 / Cosmos layout): convolutions pad time on the past side only and norms work per
frame, so latent frame ``j`` depends on input frames ``<= j * temporal_factor``. The first frame is kept
alone: a clip of ``1 + n * temporal_factor`` frames becomes ``1 + n`` latent frames, and a single image
is a one-frame video.
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.base import QuantizedTokenizerMixin, check_media
from vqgen.tokenizers.image import DEFAULT_QUANTIZER, grid_tuple
from vqgen.tokenizers.layers import CausalConvDecoder3d, CausalConvEncoder3d, inflate_state_dict
from vqgen.tokenizers.quantizers import build_quantizer

TEMPORAL_FACTORS = (1, 2, 4)


class VideoTokenizer(QuantizedTokenizerMixin, ModelMixin, ConfigMixin):
    """Causal 3-D convolutional VQ tokenizer for video.

    Args:
        in_channels: video channels (1 grey, 3 RGB).
        base_channels: width of the first encoder level.
        channel_multipliers: width multiplier per level; frames are downsampled in space by
            ``2 ** (len(channel_multipliers) - 1)``.
        num_res_blocks: residual blocks per level.
        latent_channels: channels of the encoder output fed to the quantizer.
        temporal_factor: 1, 2 or 4; ``T = 1 + n * temporal_factor`` frames -> ``1 + n`` latent frames.
        quantizer_config: quantizer config, ``{"type": "vq" | "fsq" | "rvq", ...}`` (see ``build_quantizer``).
        dropout: dropout inside residual blocks.
    """

    medium = "video"  # its home in vqgen.media
    config_name = "config.json"
    grid_dims = 3

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 64,
        channel_multipliers: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        latent_channels: int = 64,
        temporal_factor: int = 4,
        quantizer_config: dict | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if in_channels < 1 or base_channels < 1 or latent_channels < 1:
            raise ConfigError("in_channels, base_channels and latent_channels must be positive")
        if not channel_multipliers:
            raise ConfigError("channel_multipliers must name at least one level")
        if temporal_factor not in TEMPORAL_FACTORS:
            raise ConfigError(f"temporal_factor must be one of {TEMPORAL_FACTORS}, got {temporal_factor}")
        quantizer_config = dict(quantizer_config or DEFAULT_QUANTIZER)
        halvings = int(math.log2(temporal_factor))
        shared = (
            base_channels,
            tuple(channel_multipliers),
            num_res_blocks,
            latent_channels,
            halvings,
            dropout,
        )
        self.encoder = CausalConvEncoder3d(in_channels, *shared)
        self.quantizer = build_quantizer(latent_channels, quantizer_config)
        self.decoder = CausalConvDecoder3d(in_channels, *shared)

    @property
    def downsample_factor(self) -> int:
        """Spatial downsampling factor (height and width)."""
        return 2 ** (len(self.config.channel_multipliers) - 1)

    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame after the first: ``T = 1 + (t - 1) * temporal_factor``."""
        return int(self.config.temporal_factor)

    def pixel_frames(self, latent_frames: int) -> int:
        """Frames decoded from ``latent_frames`` latent frames."""
        return 1 + (latent_frames - 1) * self.temporal_factor

    def code_grid(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Codes for one clip of ``input_shape = (C, T, H, W)``: ``(t, h, w)`` or ``(L, t, h, w)``."""
        if len(input_shape) != 4:
            raise ShapeError(f"input_shape must be (C, T, H, W), got {tuple(input_shape)}")
        channels, frames, height, width = (int(v) for v in input_shape)
        if channels != self.config.in_channels:
            raise ShapeError(
                f"videos have {channels} channels, the tokenizer expects {self.config.in_channels}"
            )
        k = self.temporal_factor
        if frames < 1 or (frames - 1) % k:
            raise ShapeError(
                f"video has {frames} frames, the tokenizer needs 1 + n * {k} frames (temporal factor {k}), "
                f"e.g. {1 + max(frames - 1, 0) // k * k} or {1 + (max(frames - 1, 0) // k + 1) * k}"
            )
        f = self.downsample_factor
        if height % f or width % f:
            raise ShapeError(
                f"frame size {height}x{width} is not divisible by the tokenizer's downsampling factor {f}"
            )
        grid = (1 + (frames - 1) // k, height // f, width // f)
        return (self.num_levels, *grid) if self._residual else grid

    def media_shape(self, code_grid: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The inverse of :meth:`code_grid`: ``(t, h, w)`` or ``(L, t, h, w)`` -> clip shape
        ``(C, 1 + (t - 1) * temporal_factor, h * f, w * f)``."""
        form = "(L, t, h, w)" if self._residual else "(t, h, w)"
        grid = grid_tuple(code_grid, 4 if self._residual else 3, form)
        f = self.downsample_factor
        return (int(self.config.in_channels), self.pixel_frames(grid[-3]), grid[-2] * f, grid[-1] * f)

    def _check_input(self, video: torch.Tensor) -> None:
        check_media(video, 5, self.config.in_channels, "video")
        self.code_grid(tuple(video.shape[1:]))

    @classmethod
    def from_image_tokenizer(cls, image_tokenizer, temporal_factor: int = 4) -> VideoTokenizer:
        """A video tokenizer initialised from a trained ``ImageTokenizer`` of the same widths.

        Each 2-D kernel is placed on the last (current-frame) time tap of its 3-D kernel, the other taps are
        zero, and the quantizer is copied, so a one-frame video initially gets exactly the image tokenizer's
        codes (and every frame of a clip is, at first, tokenized like an image).
        """
        config = image_tokenizer.config
        video = cls(
            in_channels=config.in_channels,
            base_channels=config.base_channels,
            channel_multipliers=tuple(config.channel_multipliers),
            num_res_blocks=config.num_res_blocks,
            latent_channels=config.latent_channels,
            temporal_factor=temporal_factor,
            quantizer_config=dict(config.quantizer_config or DEFAULT_QUANTIZER),
            dropout=config.dropout,
        )
        try:
            inflate_state_dict(image_tokenizer.state_dict(), video)
        except ValueError as error:
            raise ConfigError(f"cannot inflate the image tokenizer: {error}") from None
        return video.to(image_tokenizer.device).train(image_tokenizer.training)
