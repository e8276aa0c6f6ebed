"""ImageTokenizer: images ``[B, C, H, W]`` <-> codes ``[B, h, w]`` (or ``[B, L, h, w]`` for residual VQ)."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.base import TokenizerOutput, check_media
from vqgen.tokenizers.layers import ConvDecoder, ConvEncoder
from vqgen.tokenizers.quantizers import ResidualQuantizer, build_quantizer

DEFAULT_QUANTIZER = {"type": "vq", "codebook_size": 256}


class ImageTokenizer(ModelMixin, ConfigMixin):
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

    @property
    def codebook_size(self) -> int:
        return self.quantizer.num_codes

    @property
    def num_levels(self) -> int:
        """Residual levels per position (1 for plain VQ and FSQ)."""
        return self.quantizer.num_quantizers if isinstance(self.quantizer, ResidualQuantizer) else 1

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The decoder's output weight, for the adaptive GAN weight."""
        return self.decoder.conv_out.weight

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

    @property
    def _residual(self) -> bool:
        """Residual quantizers give codes a level axis, even with a single level."""
        return isinstance(self.quantizer, ResidualQuantizer)

    def _check_images(self, images: torch.Tensor) -> None:
        check_media(images, 4, self.config.in_channels, "images")
        self.code_grid(tuple(images.shape[1:]))

    def _quantize(self, images: torch.Tensor):
        self._check_images(images)
        return self.quantizer(self.encoder(images))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in [-1, 1] -> long codes ``[B, h, w]`` (``[B, L, h, w]`` for residual VQ)."""
        return self._quantize(images).codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Long codes from :meth:`encode` -> images ``[B, C, H, W]``."""
        expected = 4 if self._residual else 3
        if not isinstance(codes, torch.Tensor) or codes.dim() != expected:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ShapeError(f"codes must be a long tensor with {expected} dimensions, got {shape}")
        return self.decoder(self.quantizer.codes_to_vectors(codes.long()))

    def forward(self, images: torch.Tensor) -> TokenizerOutput:
        """Encode, quantize and decode ``images [B, C, H, W]``; losses hold quantizer loss, perplexity and usage."""
        q = self._quantize(images)
        reconstruction = self.decoder(q.quantized)
        losses = {"quantizer": q.loss, "perplexity": q.perplexity, "usage": q.usage}
        return TokenizerOutput(reconstruction=reconstruction, codes=q.codes, losses=losses)
