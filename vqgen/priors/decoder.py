"""The fast KV-cached decoder that sampling runs, derived from a ``CodePrior``'s ``transformers`` Llama.

:func:`decoder_for` is the one place that turns the prior's model into a :class:`KVDecoder`: it reads only
public routes (``model.config``, the parameters by their checkpoint names, ``get_input_embeddings`` and
``get_output_embeddings``) and builds the decoder's weights from them: the q/k/v and the gate/up projections
concatenated into one product each, every RMSNorm weight folded into the projection it feeds and the attention
scale into the query rows, ``lm_head`` cut to the code rows. RoPE tables are computed from the config's
``rope_theta`` (float64, rounded to the model's dtype). The tests check the decoder against the ``transformers``
forward at every step, for every path below.

``KVDecoder`` runs the Llama block in ONE eager implementation (:meth:`KVDecoder._forward`) that serves the
prefill (several positions into an empty cache, causal SDPA), the one-token step (attention over the filled
part of the cache) and the fixed-shape step that a CUDA graph captures (attention over the whole cache with the
unwritten slots masked, the position a tensor; :meth:`KVDecoder._replay`). Nothing here touches ``.vqz`` files:
compression runs its own pinned path (``vqgen.priors.reference``).

The one CPU lever kept: activations are feature-major, ``h [H, rows]``, from the embedding to the head, so every
product is ``W @ h`` (the step's products take 0.66x / 0.85x the time of ``F.linear``'s ``x @ W^T`` at batch
16 / 64 on the 2-core AVX2 machine, and the residual adds ride in ``addmm``); only the cache writes and the
attention see batch-major views. The sampler took 0.85x / 0.89x the time of the batch-major block. Measured and
not kept (``benchmarks/RESULTS.md``, "one decode walk"): oneDNN-packed products (private ops), a paged KV cache
and RoPE as complex products (each within 3% of the plain form there, inside its run-to-run noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from vqgen.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from vqgen.priors.prior import CodePrior

__all__ = ["KVDecoder", "decoder_for", "derive_weights", "rope_tables"]


class Linear(NamedTuple):
    """One product ``weight @ h (+ bias)`` on feature-major activations; several ``nn.Linear`` with the same
    input stacked along ``out``."""

    weight: torch.Tensor  # [out, in]
    bias: torch.Tensor | None  # [out, 1]

    def __call__(self, h: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``h [in, R]`` -> ``[out, R]``, plus ``residual [out, R]`` when given."""
        if residual is not None:
            out = torch.addmm(residual, self.weight, h)
            return out if self.bias is None else out.add_(self.bias)
        return torch.mm(self.weight, h) if self.bias is None else torch.addmm(self.bias, self.weight, h)


class Block(NamedTuple):
    """The four products of one Llama layer, norms folded in: ``qkv`` (q rows scaled), ``o``, ``gate_up``, ``down``."""

    qkv: Linear
    o: Linear
    gate_up: Linear
    down: Linear


class DecoderWeights(NamedTuple):
    """What :func:`decoder_for` derives from the model, laid out for feature-major activations. ``cos,
    sin_signed [D, max_len]`` rotate every position: ``rotate_half(x) * sin == swap_halves(x) * sin_signed``
    with ``sin_signed = [-sin_lo, sin_hi]``."""

    embed: torch.Tensor  # [H, vocab]: column i is token i's vector
    blocks: list[Block]
    head: Linear  # norm folded in, code rows only: [N, H]
    act: Callable[[torch.Tensor], torch.Tensor]
    eps: float
    num_heads: int
    num_kv_heads: int
    head_dim: int
    cos: torch.Tensor
    sin_signed: torch.Tensor


def _parameter(model, name: str) -> torch.Tensor:
    try:
        return model.get_parameter(name).detach()
    except AttributeError:
        raise ConfigError(
            f"the prior's model has no parameter {name!r}: not a Llama checkpoint layout"
        ) from None


def _stacked(model, names: list[str], scales: list[float], norm: torch.Tensor | None, bias: bool) -> Linear:
    """The ``nn.Linear`` parameters ``names`` stacked along ``out``, each scaled, the input-side ``norm [in]``
    (an RMSNorm weight) folded in: ``W x_normed * norm == (W * norm) x_normed``."""
    weight = torch.cat([_parameter(model, f"{n}.weight") * s for n, s in zip(names, scales)])
    if norm is not None:
        weight = weight * norm
    if not bias:
        return Linear(weight, None)
    bias = torch.cat([_parameter(model, f"{n}.bias") * s for n, s in zip(names, scales)])
    return Linear(weight, bias.unsqueeze(1))


def rope_tables(
    config, length: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos, sin [length, head_dim]`` of Llama's default RoPE from the config's ``rope_theta``, in float64
    rounded to ``dtype`` (the two halves of each row are equal: one angle per feature pair)."""
    rope = getattr(config, "rope_parameters", None) or {
        "rope_type": "default",
        "rope_theta": config.rope_theta,
    }
    if rope.get("rope_type", "default") != "default":
        raise ConfigError(
            f"the decoder supports rope_type 'default', the prior's model has {rope['rope_type']!r}"
        )
    dim = config.head_dim
    inv_freq = 1.0 / (float(rope["rope_theta"]) ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(device, dtype), angles.sin().to(device, dtype)


def derive_weights(prior: CodePrior, max_len: int) -> DecoderWeights:
    """The decoder's weights from ``prior.model`` (see the module docstring): copies, the prior is untouched."""
    model, config = prior.model, prior.model.config
    embed = model.get_input_embeddings().weight.detach()
    nh, nkv, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    blocks = []
    for i in range(config.num_hidden_layers):
        layer = f"model.layers.{i}"
        attn, mlp = f"{layer}.self_attn", f"{layer}.mlp"
        in_norm = _parameter(model, f"{layer}.input_layernorm.weight")
        post_norm = _parameter(model, f"{layer}.post_attention_layernorm.weight")
        qkv_names = [f"{attn}.{p}_proj" for p in "qkv"]
        qkv = _stacked(model, qkv_names, [d**-0.5, 1.0, 1.0], in_norm, config.attention_bias)
        o = _stacked(model, [f"{attn}.o_proj"], [1.0], None, config.attention_bias)
        gate_up_names = [f"{mlp}.gate_proj", f"{mlp}.up_proj"]
        gate_up = _stacked(model, gate_up_names, [1.0, 1.0], post_norm, config.mlp_bias)
        down = _stacked(model, [f"{mlp}.down_proj"], [1.0], None, config.mlp_bias)
        blocks.append(Block(qkv, o, gate_up, down))
    lm_head = model.get_output_embeddings()
    n = prior.num_code_tokens
    head_bias = None if lm_head.bias is None else lm_head.bias.detach()[:n].unsqueeze(1)
    head = Linear(lm_head.weight.detach()[:n] * _parameter(model, "model.norm.weight"), head_bias)
    cos, sin = rope_tables(config, max_len, embed.dtype, embed.device)
    sin_signed = torch.cat([-sin[:, : d // 2], sin[:, d // 2 :]], dim=-1)
    act = F.silu if config.hidden_act in ("silu", "swish") else _activation(config.hidden_act)
    tables = cos.t().contiguous(), sin_signed.t().contiguous()
    return DecoderWeights(embed.t().contiguous(), blocks, head, act, config.rms_norm_eps, nh, nkv, d, *tables)


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    from transformers.activations import ACT2FN

    return ACT2FN[name]


def decoder_for(prior: CodePrior, rows: int, max_len: int, *, static: bool | None = None) -> KVDecoder:
    """The KV-cached decoder of ``prior`` for ``rows`` sequences of up to ``max_len`` positions.

    Args:
        prior: a ``CodePrior`` (its ``model`` and ``num_code_tokens`` are read; the weights are copied as they are
            now, so build a decoder per sampling call).
        rows: sequences decoded together (the doubled batch under guidance).
        max_len: positions the cache holds (prefix, known steps and every fed step).
        static: the fixed-shape step (default: on CUDA, where it is captured as a CUDA graph; on a CPU it runs
            eagerly, only to test the graph's arithmetic).
    """
    return KVDecoder(derive_weights(prior, max_len), rows, max_len, static=static)


class KVDecoder:
    """A KV-cached forward of a Llama that returns the code logits of the last position fed.

    Call it with the prefill ids once, then with one step per call: ``ids [rows, T]`` (one token per position)
    or ``[rows, T, S]`` (``S`` tokens per position whose embeddings are summed, ``-1`` for none: the
    multi-stream layouts). Returns ``[rows, N]`` (``N = num_code_tokens``). Build it with :func:`decoder_for`.
    Activations are feature-major, ``[H, rows * T]`` (column ``r * T + t``); the cache is ``keys, values
    [layers, rows * kv_heads, max_len, head_dim]``.
    """

    def __init__(self, weights: DecoderWeights, rows: int, max_len: int, *, static: bool | None) -> None:
        self.w = weights
        self.dtype, self.device = weights.embed.dtype, weights.embed.device
        self.eps_tensor = torch.tensor(weights.eps, dtype=self.dtype, device=self.device)
        self.static = self.device.type == "cuda" if static is None else bool(static)
        self.graphed = self.static and self.device.type == "cuda"
        shape = (len(weights.blocks), rows * weights.num_kv_heads, max_len, weights.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.positions = torch.arange(max_len, device=self.device)
        self.rows, self.max_len, self.length = rows, max_len, 0
        self._graph = None

    def _rms(self, h: torch.Tensor) -> torch.Tensor:
        """RMSNorm of every column of ``h [H, R]``, without its weight (folded into the next product)."""
        if h.dtype == torch.float32:  # one fused reduction, no casts
            norm = torch.linalg.vector_norm(h, dim=0, keepdim=True)
            return h * torch.addcmul(self.eps_tensor, norm, norm, value=1 / h.shape[0]).rsqrt_()
        hf = h.float()
        return (hf * torch.rsqrt(hf.pow(2).mean(0, keepdim=True) + self.w.eps)).to(h.dtype)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids [rows, T]`` or ``[rows, T, S]`` (-1: no token) -> input vectors ``[H, rows * T]``."""
        if ids.dim() == 2:
            return self.w.embed.index_select(1, ids.reshape(-1))
        vectors = self.w.embed.index_select(1, ids.clamp(min=0).reshape(-1)).view(-1, *ids.shape)
        return vectors.mul_((ids >= 0).to(self.dtype)).sum(-1).view(vectors.shape[0], -1)

    def _attend_cache(self, q: torch.Tensor, layer: int, end: int, mask: torch.Tensor | None) -> torch.Tensor:
        """One query per row ``q [B, heads, 1, D]`` against the cached positions ``[0, end)`` of ``layer`` ->
        feature-major ``[heads * D, B]``; the static step reads the whole cache, ``mask [max_len]`` hiding
        unwritten slots. Plain ``bmm`` (faster than SDPA's CPU kernel for one query); grouped heads share their
        key/value head without ``repeat_kv``."""
        batch, nh, _, d = q.shape
        span = self.max_len if mask is not None else end
        keys, values = self.keys[layer, :, :span], self.values[layer, :, :span]
        scores = torch.bmm(q.reshape(keys.shape[0], nh // self.w.num_kv_heads, d), keys.transpose(1, 2))
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(self.dtype)
        return torch.bmm(probs, values).view(batch, nh * d).t()

    def _write(self, layer: int, start: int | torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store ``keys, values [B, kv_heads, T, D]`` at positions ``start ..`` (a LongTensor ``[1]``: the static
        step, written without a host-side position)."""
        batch, nkv, t, d = keys.shape
        for cache, new in ((self.keys[layer], keys), (self.values[layer], values)):
            if isinstance(start, torch.Tensor):
                cache.view(batch, nkv, -1, d).index_copy_(2, start, new)
            else:
                cache[:, start : start + t].view(batch, nkv, t, d).copy_(new)

    def _forward(self, h: torch.Tensor, batch: int, start: int | torch.Tensor) -> torch.Tensor:
        """Input vectors ``h [H, batch * T]`` at positions ``start ..`` -> code logits ``[batch, N]`` of the last.

        ``T > 1``: the prefill (``start == 0``), causal SDPA over the new positions. ``T == 1``: one step over the
        cache, its filled part for an int ``start``, the whole of it masked for a LongTensor ``start [1]`` (the
        static step: the same shapes at every position)."""
        w = self.w
        t = h.shape[1] // batch
        nh, nkv, d = w.num_heads, w.num_kv_heads, w.head_dim
        static = isinstance(start, torch.Tensor)
        # The rotation of each position, [1, D, 1, T] against q and k as [heads, D, B, T].
        if static:
            cos, sin = (table.index_select(1, start).view(1, d, 1, 1) for table in (w.cos, w.sin_signed))
        else:
            cos, sin = (table[:, start : start + t].reshape(1, d, 1, t) for table in (w.cos, w.sin_signed))
        mask = self.positions > start if static else None
        for i, block in enumerate(w.blocks):
            qkv = block.qkv(self._rms(h))  # [(nh + 2 nkv) D, B T]
            qk = qkv[: (nh + nkv) * d].view(nh + nkv, d, batch, t)
            # RoPE on q and k at once: x * cos + rotate_half(x) * sin, rotate_half as a swap of the halves
            swapped = qk.view(nh + nkv, 2, d // 2, batch, t).flip(1).view(qk.shape)
            qk = torch.addcmul(qk * cos, swapped, sin)
            q = qk[:nh].permute(2, 0, 3, 1)  # [B, heads, T, D] views
            keys = qk[nh:].permute(2, 0, 3, 1)
            values = qkv[(nh + nkv) * d :].view(nkv, d, batch, t).permute(2, 0, 3, 1)
            self._write(i, start, keys, values)
            if t > 1:
                attn = F.scaled_dot_product_attention(
                    q,
                    keys,
                    values,
                    is_causal=True,
                    scale=1.0,
                    enable_gqa=nh > nkv,  # scale: in the q rows
                )
                attn = attn.permute(1, 3, 0, 2).reshape(nh * d, batch * t)
            else:
                attn = self._attend_cache(q, i, 0 if static else start + 1, mask)
            h = block.o(attn, residual=h)
            gate, up = block.gate_up(self._rms(h)).chunk(2, dim=0)
            h = block.down(w.act(gate).mul_(up), residual=h)
        last = h.view(-1, batch, t)[:, :, -1]
        return w.head(self._rms(last)).t().contiguous()

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids of the next ``T`` positions, ``[rows, T]`` or ``[rows, T, S]`` -> code logits ``[rows, N]``
        of the last. Only the first call may pass ``T > 1``. With a CUDA graph the result is the graph's output
        buffer, overwritten by the next call: use it (or clone it) before calling again."""
        if not isinstance(ids, torch.Tensor) or ids.dim() not in (2, 3):
            shape = list(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ShapeError(f"ids must be a LongTensor [rows, T] or [rows, T, S], got {shape}")
        batch, t = ids.shape[:2]
        start, end = self.length, self.length + t
        if batch != self.rows or end > self.max_len:
            raise ShapeError(
                f"decoder holds {self.rows} rows x {self.max_len} positions, got {batch} x {end}"
            )
        if t > 1 and start != 0:
            raise ShapeError(f"only the first (prefill) call may pass several positions, got {t} at {start}")
        h = self._embed(ids)
        if t > 1 or not self.static:
            logits = self._forward(h, batch, start)
        elif self.graphed:
            logits = self._replay(h, start)
        else:
            logits = self._forward(h, batch, torch.tensor([start], device=self.device))
        self.length = end
        return logits

    def _replay(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """The static step (input ``h [H, rows]``) through a CUDA graph, captured at the first call."""
        if self._graph is None:
            self._input = h.clone()
            self._position = torch.full((1,), start, dtype=torch.long, device=self.device)
            # Warm-up runs (required before capture) write cache slot ``start`` with this step's own values,
            # which the replay below writes again: nothing is left behind.
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._forward(self._input, self.rows, self._position)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._output = self._forward(self._input, self.rows, self._position)
        self._input.copy_(h)
        self._position.fill_(start)
        self._graph.replay()
        return self._output
