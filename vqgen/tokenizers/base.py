"""What every tokenizer shares: the output dataclass and encode/decode around one quantizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput

from vqgen.errors import ShapeError


@dataclass
class TokenizerOutput(BaseOutput):
    """Result of ``tokenizer(x)``.

    Attributes:
        reconstruction: same shape as the input media, float in about [-1, 1].
        codes: long ``[B, *grid]``.
        losses: scalar tensors: ``quantizer`` (commitment/codebook), ``perplexity``, ``usage``.
    """

    reconstruction: torch.Tensor
    # Defaults let Accelerate rebuild the output from a dict (its fp32 conversion under mixed precision).
    codes: torch.Tensor | None = None
    losses: dict | None = None


def check_media(x: torch.Tensor, expected_dims: int, channels: int, what: str) -> None:
    """Refuse a media tensor of the wrong rank, channel count, dtype or with non-finite values."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != expected_dims:
        raise ShapeError(f"{what} must have {expected_dims} dimensions, got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ShapeError(f"{what} has {x.shape[1]} channels, the tokenizer expects {channels}")
    if not x.is_floating_point():
        raise ShapeError(f"{what} must be a float tensor in [-1, 1], got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ShapeError(f"{what} contains NaN or infinite values")


class QuantizedTokenizerMixin:
    """encode / decode / forward around ``self.encoder``, ``self.quantizer`` and ``self.decoder``.

    A tokenizer class mixes this in before ``ModelMixin`` and defines ``grid_dims`` (axes of one code grid
    without the level axis: 2 for images ``(h, w)``, 3 for video ``(t, h, w)``) and ``_check_input(x)``,
    which raises ``ShapeError`` for media the tokenizer cannot take.
    """

    grid_dims: int = 2

    def _check_input(self, x: torch.Tensor) -> None:  # pragma: no cover - defined by each tokenizer
        raise NotImplementedError

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def _residual(self) -> bool:
        """Residual quantizers give codes a level axis, even with a single level."""
        from vqgen.tokenizers.quantizers import ResidualQuantizer

        return isinstance(self.quantizer, ResidualQuantizer)

    @property
    def num_levels(self) -> int:
        """Residual levels per position (1 for plain VQ and FSQ)."""
        return self.quantizer.num_quantizers if self._residual else 1

    @property
    def trains_by_gradient(self) -> bool:
        """Whether any weight learns by gradient: False for a tokenizer whose encoder and decoder have no
        weights and whose codebooks are fitted by k-means (``AudioTokenizer(frontend="parametric-harmonic")``,
        :func:`vqgen.training.codebooks.fit_codebooks`)."""
        return any(p.requires_grad for p in self.parameters())

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The decoder's output weight, for the adaptive GAN weight."""
        return self.decoder.conv_out.weight

    def _quantize(self, x: torch.Tensor):
        self._check_input(x)
        return self.quantizer(self.encoder(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Media in [-1, 1] -> long codes ``[B, *grid]`` (``[B, L, *grid]`` for residual quantizers)."""
        return self._quantize(x).codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Long codes from :meth:`encode` -> media ``[B, C, *size]``."""
        expected = 1 + self.grid_dims + (1 if self._residual else 0)
        if not isinstance(codes, torch.Tensor) or codes.dim() != expected:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ShapeError(f"codes must be a long tensor with {expected} dimensions, got {shape}")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ShapeError(f"codes must be an integer tensor (long), got {codes.dtype}")
        return self.decoder(self._in_decoder_dtype(self.quantizer.codes_to_vectors(codes.long())))

    def _in_decoder_dtype(self, vectors: torch.Tensor) -> torch.Tensor:
        """``vectors`` in the decoder's dtype: the quantizer looks codes up in float32, and a decoder cast to
        bf16 / fp16 takes its own (a decoder without parameters, the parametric synthesiser, keeps theirs)."""
        dtype = next((p.dtype for p in self.decoder.parameters()), vectors.dtype)
        return vectors.to(dtype)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Encode, quantize and decode ``x``; losses hold quantizer loss, perplexity and usage."""
        q = self._quantize(x)
        reconstruction = self.decoder(q.quantized)
        losses = {"quantizer": q.loss, "perplexity": q.perplexity, "usage": q.usage}
        return TokenizerOutput(reconstruction=reconstruction, codes=q.codes, losses=losses)
