"""Quantizers: continuous encoder outputs -> discrete codes -> vectors.

Every quantizer takes channels-first input ``[B, D, *spatial]`` and returns one :class:`QuantizerOutput`.
They run in float32 even under autocast: distances, EMA statistics and k-means are precision-sensitive
(bf16 rounding is a known cause of codebook collapse and NaNs).

Multi-process training: every collective is entered by every rank on every training step, in the same
order, so EMA statistics, k-means initialisation and dead-code restarts leave identical codebooks on all
ranks. Nothing is synchronised in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from diffusers.utils import BaseOutput
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError


@dataclass
class QuantizerOutput(BaseOutput):
    """Result of a quantizer call.

    Attributes:
        quantized: ``[B, D, *spatial]``, same shape as the input; straight-through gradient to the input.
        codes: long ``[B, *spatial]`` (residual quantizers: ``[B, L, *spatial]``).
        loss: scalar commitment (and, for gradient-learned codebooks, codebook) loss.
        perplexity: scalar, exp of the entropy of code use in the batch.
        usage: scalar, fraction of the codebook used in the batch.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    if _distributed():
        dist.broadcast(t, src)
    return t


def _channels_last_flat(x: torch.Tensor) -> torch.Tensor:
    """``[B, D, *spatial] -> [B * prod(spatial), D]``."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _channels_first(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_channels_last_flat` for a tensor shaped like ``like`` but with ``flat.shape[-1]`` channels."""
    spatial = like.shape[2:]
    return flat.reshape(like.shape[0], *spatial, flat.shape[-1]).movedim(-1, 1)


def code_statistics(
    codes: torch.Tensor, codebook_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts ``[K]``, perplexity and usage of a batch of codes (summed over ranks in training)."""
    counts = torch.bincount(codes.reshape(-1), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1.0)
    perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
    usage = (counts > 0).float().mean()
    return counts, perplexity, usage


@torch.no_grad()
def _kmeans_plus_plus_seeds(flat: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: ``k`` rows of ``flat [N, d]``, each drawn with probability proportional to its
    squared distance to the nearest seed so far. Uniform seeds often put two seeds in one cluster and
    none in another, which Lloyd iterations cannot undo."""
    n = flat.shape[0]
    squared_norms = flat.pow(2).sum(1)

    def squared_distances(seed: torch.Tensor) -> torch.Tensor:
        return (squared_norms - 2 * (flat @ seed) + seed.pow(2).sum()).clamp_min(0)

    seeds = flat.new_empty(k, flat.shape[1])
    seeds[0] = flat[torch.randint(0, n, (), generator=generator, device=flat.device)]
    nearest = squared_distances(seeds[0])
    for i in range(1, k):
        # Inverse-CDF draw (much cheaper than torch.multinomial); stays on the device, no host sync.
        cumulative = nearest.cumsum(0)
        target = torch.rand(1, generator=generator, device=flat.device) * cumulative[-1]
        pick = torch.searchsorted(cumulative, target).clamp_max(n - 1)[0]
        seeds[i] = flat[pick]
        nearest = torch.minimum(nearest, squared_distances(seeds[i]))
    return seeds


def rotate_onto(z: torch.Tensor, e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The rotation trick: rows of ``z [N, d]`` rotated and rescaled onto the rows of ``e [N, d]``.

    The value is ``e`` (up to rounding); the gradient reaches ``z`` through the fixed linear map
    ``s R`` (``R`` the rotation in the plane of ``z`` and ``e`` that takes ``z``'s direction to ``e``'s,
    ``s = |e| / |z|``), never ``e``. With ``u = z / |z|``, ``q = e / |e|`` and ``w = (u + q) / |u + q|``,
    ``R x = x - 2 (x . w) w + 2 (x . u) q`` (Householder reflection through ``w``, then the one that
    takes ``u`` to ``q``), applied without forming a ``d x d`` matrix.
    """
    z_norm = z.norm(dim=-1, keepdim=True).clamp_min(eps)
    e_norm = e.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = (z / z_norm).detach()
    q = (e / e_norm).detach()
    w = F.normalize(u + q, dim=-1, eps=eps).detach()
    rotated = z - 2 * (z * w).sum(-1, keepdim=True) * w + 2 * (z * u).sum(-1, keepdim=True) * q
    return rotated * (e_norm / z_norm).detach()


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantizer (VQ-VAE) with the modern fixes.

    Args:
        dim: channels of the encoder output.
        codebook_size: number of codes ``K``.
        codebook_dim: dimension of the lookup space; when smaller than ``dim`` the input is projected
            down before lookup and back up after (ViT-VQGAN / LlamaGen low-dimensional codes).
        beta: commitment weight on the encoder term ``beta * ||z - sg(e)||^2``.
        ema: learn the codebook by exponential moving averages (default) instead of by gradient.
        decay: EMA decay.
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations for that initialisation.
        dead_code_threshold: a code unused for this many training steps is re-seeded from a random
            encoder output of the current batch (0 disables restarts).
        l2_normalize: look codes up by cosine similarity on the unit sphere.
        learned_code_norms: with ``l2_normalize``, codes are still chosen by direction but each code keeps
            its own length (the mean of the projected vectors it stands for), and that unnormalised vector is
            what the decoder gets and what the commitment term pulls towards (as in DAC). Without it every code
            has length 1, so in a residual quantizer a later level cannot add a small correction: it can only
            add a vector of fixed length.
        input_space_weight: with ``codebook_dim < dim``, the weight of a second VQ loss in the encoder's own
            space: ``||sg(z) - project_out(e)||^2`` (trains ``project_out`` to map each code back onto the
            vectors it stands for) plus ``beta * ||z - sg(project_out(e))||^2`` (commits ``z`` to that). The
            low-dimensional lookup alone never asks ``project_out(e)`` to approximate ``z``; in a residual
            quantizer it must, or the residual does not shrink and every level sees nearly the same input.
        rotation_trick: pass gradients through the quantizer by the rotation trick (Fifty et al. 2024)
            instead of the straight-through copy: the decoder's input is ``sg(s R) z`` where ``R`` rotates
            ``z`` onto its code ``e`` and ``s = |e| / |z|`` rescales it; its value is ``e``, and the encoder's
            gradient keeps the angle between ``z`` and ``e``, so codes far from their inputs push them harder.
            Reported to raise codebook use and lower reconstruction error at equal steps.
        simvq: SimVQ (Zhu et al. 2024): the code vectors are ``C W`` with ``C [K, d]`` a frozen random basis and
            ``W [d, d]`` a learned linear map trained by the gradient codebook loss. Every step moves all codes
            through ``W``, not only the selected ones, which keeps the whole codebook in use. Needs
            ``ema=False``; k-means initialisation and dead-code restarts do not apply (the basis is frozen).
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        beta: float = 0.25,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: int = 50,
        l2_normalize: bool = False,
        learned_code_norms: bool = False,
        input_space_weight: float = 0.0,
        rotation_trick: bool = False,
        simvq: bool = False,
    ):
        super().__init__()
        if simvq and ema:
            raise ConfigError("simvq learns its codes by gradient: use it with ema=False")
        if not input_space_weight >= 0:  # also refuses NaN
            raise ConfigError(f"input_space_weight must be >= 0, got {input_space_weight}")
        if learned_code_norms and not l2_normalize:
            raise ConfigError("learned_code_norms needs l2_normalize (codes chosen by cosine similarity)")
        if codebook_size < 2:
            raise ConfigError(f"codebook_size must be at least 2, got {codebook_size}")
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"decay must be in (0, 1), got {decay}")
        codebook_dim = codebook_dim or dim
        self.dim, self.codebook_size, self.codebook_dim = dim, codebook_size, codebook_dim
        self.beta, self.ema, self.decay, self.eps = beta, ema, decay, eps
        self.kmeans_iters, self.dead_code_threshold, self.l2_normalize = (
            kmeans_iters,
            dead_code_threshold,
            l2_normalize,
        )
        self.learned_code_norms = learned_code_norms
        self.rotation_trick, self.simvq = rotation_trick, simvq
        if simvq:
            kmeans_init, self.dead_code_threshold = False, 0
        self.input_space_weight = float(input_space_weight) if codebook_dim != dim else 0.0
        self.project_in = nn.Linear(dim, codebook_dim) if codebook_dim != dim else nn.Identity()
        self.project_out = nn.Linear(codebook_dim, dim) if codebook_dim != dim else nn.Identity()

        initial = torch.randn(codebook_size, codebook_dim)
        if self._unit_codes:
            initial = F.normalize(initial, dim=-1)
        if ema:
            self.register_buffer("codebook", initial)
            self.register_buffer("ema_cluster_size", torch.ones(codebook_size))
            self.register_buffer("ema_embed_sum", initial.clone())
        elif simvq:
            # The frozen basis C, drawn with std 1/sqrt(d) as SimVQ's reference does (codes of length about 1,
            # the scale of a normalised encoder's output); W starts as the identity. At std 1 (codes of length
            # sqrt(d), 8 for d = 64) the emoji tokenizer collapsed to 9 of 1,024 codes within 250 steps: with
            # no k-means init the few codes nearest the small encoder outputs took every vector.
            self.register_buffer("codebook", initial * codebook_dim**-0.5)
            self.code_transform = nn.Linear(codebook_dim, codebook_dim, bias=False)
            nn.init.eye_(self.code_transform.weight)
        else:
            self.codebook = nn.Parameter(initial)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.long))

    @property
    def _unit_codes(self) -> bool:
        """Codes (and what they are compared with) are unit vectors: ``l2_normalize`` without learned norms."""
        return self.l2_normalize and not self.learned_code_norms

    def _code_vectors(self) -> torch.Tensor:
        """The codebook ``[K, codebook_dim]``: the stored vectors, or SimVQ's ``C W``."""
        return self.code_transform(self.codebook) if self.simvq else self.codebook

    def _normalized_codebook(self) -> torch.Tensor:
        codes = self._code_vectors()
        return F.normalize(codes, dim=-1) if self.l2_normalize else codes

    def _output_codebook(self) -> torch.Tensor:
        """The code vectors the decoder gets: unit length with ``l2_normalize``, unless their norms are learned."""
        return self._code_vectors() if self.learned_code_norms else self._normalized_codebook()

    def _nearest(self, flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat [N, d]`` (cosine when l2-normalised: ``codebook``
        rows are unit vectors then, and the length of each ``flat`` row does not change its argmax)."""
        if self.l2_normalize:
            return (flat @ codebook.t()).argmax(dim=-1)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)[None]
        return distances.argmin(dim=-1)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Long ``[B, *spatial]`` -> ``[B, dim, *spatial]`` (the decoder's input)."""
        if codes.dtype != torch.long:
            raise ShapeError(f"codes must be int64, got {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ShapeError(
                f"codes must lie in [0, {self.codebook_size}), got values in [{int(codes.min())}, {int(codes.max())}]"
            )
        vectors = F.embedding(codes, self._output_codebook().float())
        vectors = self.project_out(vectors.to(self._projection_dtype()))
        return vectors.movedim(-1, 1)

    def _projection_dtype(self) -> torch.dtype:
        return self.project_out.weight.dtype if isinstance(self.project_out, nn.Linear) else torch.float32

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """The first training batch's k-means: :meth:`fit_kmeans` with its defaults (seed 0, ``kmeans_iters``)."""
        self.fit_kmeans(flat)

    @torch.no_grad()
    def fit_kmeans(
        self, flat: torch.Tensor, iterations: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        """Set the codebook to Lloyd k-means centroids of ``flat [N, codebook_dim]`` (vectors in the lookup
        space), k-means++ seeded, ``iterations`` (default ``kmeans_iters``) steps; a centroid that loses every
        vector keeps its place. Marks the quantizer initialised and resets the EMA statistics to the fit.

        Distributed: rank 0 seeds the centroids, sums and counts are all-reduced each iteration, so every
        rank ends with the same codebook. Used on the first training batch (``kmeans_init``) and by
        :func:`vqgen.training.codebooks.fit_codebooks`, which fits whole data sets.
        """
        iterations = self.kmeans_iters if iterations is None else int(iterations)
        generator = generator or torch.Generator(device=flat.device).manual_seed(0)
        flat = flat.float()
        n = flat.shape[0]
        if n >= self.codebook_size:
            seeds = _kmeans_plus_plus_seeds(flat, self.codebook_size, generator)
        else:
            idx = torch.randint(0, n, (self.codebook_size,), generator=generator, device=flat.device)
            seeds = flat[idx] + 1e-3 * torch.randn(
                self.codebook_size, flat.shape[1], generator=generator, device=flat.device
            )
        centroids = _broadcast(seeds.contiguous())
        if self._unit_codes:
            centroids = F.normalize(centroids, dim=-1)
        counts = torch.zeros(self.codebook_size, device=flat.device)
        for _ in range(iterations):
            search = F.normalize(centroids, dim=-1) if self.l2_normalize else centroids
            # in chunks: a whole data set's distance matrix to 1,024 codes would not fit
            assign = torch.cat([self._nearest(chunk, search) for chunk in flat.split(1 << 16)])
            sums = torch.zeros_like(centroids).index_add_(0, assign, flat)
            counts = torch.bincount(assign, minlength=self.codebook_size).float()
            _all_reduce_sum(sums)
            _all_reduce_sum(counts)
            updated = sums / counts.clamp_min(1.0)[:, None]
            if self._unit_codes:
                updated = F.normalize(updated, dim=-1)
            centroids = torch.where(counts[:, None] > 0, updated, centroids)
        self.codebook.data.copy_(centroids)
        if self.ema:
            self.ema_cluster_size.copy_(counts.clamp_min(1.0))
            self.ema_embed_sum.copy_(centroids * self.ema_cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros(self.codebook_size, self.codebook_dim, device=flat.device).index_add_(
            0, codes, flat
        )
        _all_reduce_sum(sums)
        self.ema_cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0.
        total = self.ema_cluster_size.sum()
        smoothed = (self.ema_cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        codebook = self.ema_embed_sum / smoothed[:, None]
        self.codebook.data.copy_(F.normalize(codebook, dim=-1) if self._unit_codes else codebook)

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor, counts: torch.Tensor) -> None:
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        dead = self.steps_unused >= self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0:
            return
        # Rank 0 picks the replacements; broadcasting them keeps every rank's codebook identical.
        pick = torch.randint(0, flat.shape[0], (num_dead,), device=flat.device)
        replacements = _broadcast(flat[pick].contiguous())
        self.codebook.data[dead] = replacements
        if self.ema:
            self.ema_cluster_size[dead] = 1.0
            self.ema_embed_sum[dead] = replacements
        self.steps_unused[dead] = 0

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z [B, dim, *spatial]``."""
        if z.dim() < 3 or z.shape[1] != self.dim:
            raise ShapeError(f"quantizer expects [B, {self.dim}, ...], got shape {tuple(z.shape)}")
        input_dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            z_flat = _channels_last_flat(z.float())
            z_low = self.project_in(z_flat)
            # What the codes stand for: unit directions, or the projected vectors themselves when the code
            # lengths are learned (the search is by direction either way).
            lookup = F.normalize(z_low, dim=-1) if self._unit_codes else z_low
            if self.training and not bool(self.initialized):
                self._kmeans_init(lookup.detach())
            codes = self._nearest(lookup.detach(), self._normalized_codebook().detach())
            selected = F.embedding(codes, self._output_codebook())

            commitment = F.mse_loss(lookup, selected.detach())
            loss = self.beta * commitment
            if not self.ema:
                loss = loss + F.mse_loss(selected, lookup.detach())
            if self.input_space_weight > 0:
                back = self.project_out(selected.detach())  # the gradient reaches project_out only
                loss = loss + self.input_space_weight * (
                    F.mse_loss(back, z_flat.detach()) + self.beta * F.mse_loss(z_flat, back.detach())
                )

            counts, perplexity, usage = code_statistics(codes, self.codebook_size)
            if self.training:
                _all_reduce_sum(counts)
                if self.ema:
                    self._ema_update(lookup.detach(), codes, counts)
                if self.dead_code_threshold > 0:
                    self._restart_dead_codes(lookup.detach(), counts)

            # Straight-through estimator (or the rotation trick) in the lookup space, then back to the
            # encoder's width.
            if self.rotation_trick:
                quantized_low = rotate_onto(lookup, selected)
            else:
                quantized_low = lookup + (selected - lookup).detach()
            quantized = _channels_first(self.project_out(quantized_low), z)
        codes = codes.reshape(z.shape[0], *z.shape[2:])
        return QuantizerOutput(quantized.to(input_dtype), codes, loss, perplexity, usage)


class FiniteScalarQuantizer(nn.Module):
    """Finite scalar quantization (FSQ): each of ``len(levels)`` channels is bounded and rounded.

    The implicit codebook has ``prod(levels)`` codes; there is nothing to learn, collapse or restart.
    ``dim`` is projected to ``len(levels)`` channels and back when they differ.
    """

    def __init__(self, dim: int, levels: Sequence[int]):
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or min(levels) < 2:
            raise ConfigError(f"FSQ levels must be integers >= 2, got {levels}")
        self.dim, self.levels = dim, levels
        self.codebook_size = math.prod(levels)
        self.project_in = nn.Linear(dim, len(levels)) if dim != len(levels) else nn.Identity()
        self.project_out = nn.Linear(len(levels), dim) if dim != len(levels) else nn.Identity()
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.long), dim=0)
        self.register_buffer("_basis", basis, persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash to ``(-(L-1)/2, (L-1)/2)`` per channel; even L gets a half-step offset so rounding gives L values."""
        half = (self._levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def _indices_to_scaled(self, digits: torch.Tensor) -> torch.Tensor:
        half_width = self._levels // 2
        return (digits.float() - half_width) / half_width

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Long ``[B, *spatial]`` -> ``[B, dim, *spatial]``."""
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ShapeError(
                f"codes must lie in [0, {self.codebook_size}), got values in [{int(codes.min())}, {int(codes.max())}]"
            )
        digits = (codes.unsqueeze(-1) // self._basis) % self._levels.long()
        vectors = self.project_out(self._indices_to_scaled(digits))
        return vectors.movedim(-1, 1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z [B, dim, *spatial]``."""
        if z.dim() < 3 or z.shape[1] != self.dim:
            raise ShapeError(f"quantizer expects [B, {self.dim}, ...], got shape {tuple(z.shape)}")
        input_dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            bounded = self._bound(self.project_in(_channels_last_flat(z)))
            rounded = bounded + (torch.round(bounded) - bounded).detach()
            half_width = self._levels // 2
            scaled = rounded / half_width
            digits = (torch.round(bounded) + half_width).long()
            codes = (digits * self._basis).sum(-1)
            _, perplexity, usage = code_statistics(codes, self.codebook_size)
            quantized = _channels_first(self.project_out(scaled), z)
        codes = codes.reshape(z.shape[0], *z.shape[2:])
        return QuantizerOutput(quantized.to(input_dtype), codes, z.new_zeros(()), perplexity, usage)


class ResidualQuantizer(nn.Module):
    """``num_quantizers`` vector quantizers applied in turn to what the previous ones left over.

    With ``quantizer_dropout`` > 0, each training item keeps only its first ``n`` levels (``n`` uniform in
    ``1..num_quantizers``) with that probability, so one model decodes at every bitrate (SoundStream).
    All levels still run on every rank and step, which keeps the collectives in step across ranks.
    Codes are ``[B, L, *spatial]``.
    """

    def __init__(
        self, dim: int, num_quantizers: int, codebook_size: int, quantizer_dropout: float = 0.0, **vq_kwargs
    ):
        super().__init__()
        if num_quantizers < 1:
            raise ConfigError(f"num_quantizers must be at least 1, got {num_quantizers}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ConfigError(f"quantizer_dropout must be in [0, 1], got {quantizer_dropout}")
        self.dim, self.num_quantizers, self.codebook_size = dim, num_quantizers, codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.levels = nn.ModuleList(
            VectorQuantizer(dim, codebook_size, **vq_kwargs) for _ in range(num_quantizers)
        )

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Long ``[B, L', *spatial]`` with ``L' <= num_quantizers`` -> ``[B, dim, *spatial]`` (sum of levels)."""
        if codes.dim() < 2 or not 1 <= codes.shape[1] <= self.num_quantizers:
            raise ShapeError(
                f"residual codes must be [B, L, ...] with 1 <= L <= {self.num_quantizers}, got shape {tuple(codes.shape)}"
            )
        return sum(self.levels[i].codes_to_vectors(codes[:, i]) for i in range(codes.shape[1]))

    @torch.no_grad()
    def fit_kmeans(
        self,
        flat: torch.Tensor,
        iterations: int | None = None,
        generator: torch.Generator | None = None,
        on_level=None,
    ) -> list[float]:
        """Fit every level in turn by k-means (:meth:`VectorQuantizer.fit_kmeans`) to what the levels before it
        leave of ``flat [N, dim]``: the classic residual VQ design (greedy, level by level). Needs plain
        levels (no projection, no SimVQ). Returns the RMS of the residual after each level;
        ``on_level(index, rms)`` is called after each (progress)."""
        if any(not isinstance(q.project_in, nn.Identity) or q.simvq for q in self.levels):
            raise ConfigError(
                "fit_kmeans needs levels without a projection or SimVQ basis (codebook_dim = dim)"
            )
        residual, rms = flat.float().clone(), []
        for level in self.levels:
            level.fit_kmeans(residual, iterations, generator)
            codebook = level._output_codebook()
            search = level._normalized_codebook()
            for chunk in residual.split(1 << 16):  # views: updated in place
                chunk -= codebook[level._nearest(chunk, search)]
            rms.append(float(residual.pow(2).mean().sqrt()))
            if on_level is not None:
                on_level(len(rms) - 1, rms[-1])
        return rms

    def forward(self, z: torch.Tensor, num_levels: int | None = None) -> QuantizerOutput:
        """Quantize ``z [B, dim, *spatial]`` with the first ``num_levels`` levels (all by default)."""
        num_levels = self.num_quantizers if num_levels is None else num_levels
        if not 1 <= num_levels <= self.num_quantizers:
            raise ConfigError(f"num_levels must be in [1, {self.num_quantizers}], got {num_levels}")
        input_dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            batch = z.shape[0]
            keep = torch.full((batch,), num_levels, device=z.device)
            if self.training and self.quantizer_dropout > 0:
                dropped = torch.rand(batch, device=z.device) < self.quantizer_dropout
                random_levels = torch.randint(1, num_levels + 1, (batch,), device=z.device)
                keep = torch.where(dropped, random_levels, keep)
            residual, quantized = z, torch.zeros_like(z)
            codes, losses, perplexities, usages = [], [], [], []
            levels_run = self.num_quantizers if self.training else num_levels
            for i in range(levels_run):
                out = self.levels[i](residual)
                mask = (keep > i).float().view(batch, *([1] * (z.dim() - 1)))
                quantized = quantized + out.quantized * mask
                # Not detached (as in DAC): the sum of the kept levels telescopes to ``z - residual``, so
                # its straight-through gradient to ``z`` is the identity, not ``num_levels`` times it.
                residual = residual - out.quantized
                if i < num_levels:
                    codes.append(out.codes)
                    losses.append(out.loss)
                    perplexities.append(out.perplexity)
                    usages.append(out.usage)
        return QuantizerOutput(
            quantized.to(input_dtype),
            torch.stack(codes, dim=1),
            torch.stack(losses).sum(),
            torch.stack(perplexities).mean(),
            torch.stack(usages).mean(),
        )


QUANTIZERS = {"vq": VectorQuantizer, "fsq": FiniteScalarQuantizer, "rvq": ResidualQuantizer}


def build_quantizer(dim: int, config: dict) -> nn.Module:
    """Build a quantizer from a JSON-able config: ``{"type": "vq" | "fsq" | "rvq", **kwargs}``."""
    config = dict(config)
    kind = config.pop("type", "vq")
    if kind not in QUANTIZERS:
        raise ConfigError(f"quantizer type '{kind}' is not one of {sorted(QUANTIZERS)}")
    try:
        return QUANTIZERS[kind](dim, **config)
    except TypeError as error:
        raise ConfigError(f"bad option for quantizer '{kind}': {error}") from None
