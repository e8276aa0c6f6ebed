"""ImageTokenizer: images ``[B, C, H, W]`` <-> codes ``[B, h, w]`` (or ``[B, L, h, w]`` for residual VQ)."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.base import QuantizedTokenizerMixin, check_media
from vqgen.tokenizers.layers import ConvDecoder, ConvEncoder
from vqgen.tokenizers.quantizers import build_quantizer

DEFAULT_QUANTIZER = {"type": "vq", "codebook_size": 256}


def grid_tuple(code_grid, rank: int, form: str) -> tuple[int, ...]:
    """``code_grid`` as a tuple of ``rank`` positive ints, or a ShapeError naming the expected ``form``."""
    try:
        grid = tuple(int(g) for g in code_grid)
    except (TypeError, ValueError):
        grid = ()
    if len(grid) != rank or min(grid) < 1:
        raise ShapeError(f"code grid must be {form} of positive ints, got {code_grid!r}")
    return grid


class ImageTokenizer(QuantizedTokenizerMixin, ModelMixin, ConfigMixin):
    """Convolutional VQ tokenizer for images.

    Args:
        in_channels: image channels (1 grey, 3 RGB).
        base_channels: width of the first encoder level.
        channel_multipliers: width multiplier per level; the image is downsampled by
            ``2 ** (len(channel_multipliers) - 1)``.
        num_res_blocks: residual blocks per level.
        latent_channels: channels of the encoder output fed to the quantizer.
        quantizer_config: quantizer config, ``{"type": "vq" | "fsq" | "rvq", ...}`` (see ``build_quantizer``).
        dropout: dropout inside residual blocks.
    """

    medium = "image"  # its home in vqgen.media
    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 64,
        channel_multipliers: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        latent_channels: int = 64,
        quantizer_config: dict | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if in_channels < 1 or base_channels < 1 or latent_channels < 1:
            raise ConfigError("in_channels, base_channels and latent_channels must be positive")
        if not channel_multipliers:
            raise ConfigError("channel_multipliers must name at least one level")
        quantizer_config = dict(quantizer_config or DEFAULT_QUANTIZER)
        args = (
            2,
            in_channels,
            base_channels,
            tuple(channel_multipliers),
            num_res_blocks,
            latent_channels,
            dropout,
        )
        self.encoder = ConvEncoder(*args)
        self.quantizer = build_quantizer(latent_channels, quantizer_config)
        self.decoder = ConvDecoder(*args)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.channel_multipliers) - 1)

    def code_grid(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the codes for one image of ``input_shape = (C, H, W)``: ``(h, w)`` or ``(L, h, w)``."""
        if len(input_shape) != 3:
            raise ShapeError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        channels, height, width = input_shape
        if channels != self.config.in_channels:
            raise ShapeError(
                f"images have {channels} channels, the tokenizer expects {self.config.in_channels}"
            )
        f = self.downsample_factor
        if height % f or width % f:
            raise ShapeError(
                f"image size {height}x{width} is not divisible by the tokenizer's downsampling factor {f}"
            )
        grid = (height // f, width // f)
        return (self.num_levels, *grid) if self._residual else grid

    def media_shape(self, code_grid: tuple[int, ...]) -> tuple[int, int, int]:
        """The inverse of :meth:`code_grid`: ``(h, w)`` or ``(L, h, w)`` -> image shape ``(C, h * f, w * f)``."""
        grid = grid_tuple(code_grid, 3 if self._residual else 2, "(L, h, w)" if self._residual else "(h, w)")
        f = self.downsample_factor
        return (int(self.config.in_channels), grid[-2] * f, grid[-1] * f)

    def _check_input(self, images: torch.Tensor) -> None:
        check_media(images, 4, self.config.in_channels, "images")
        self.code_grid(tuple(images.shape[1:]))
