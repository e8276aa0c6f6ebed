"""Sampling codes from a ``CodePrior``: KV cache, temperature, top-k, top-p, classifier-free guidance, prompts.

The decode loop does not go through ``LlamaForCausalLM.forward``. ``KVDecoder`` runs the same Llama blocks
from the model's own weights (fused q/k/v and gate/up projections with the norm weights folded in, a
preallocated KV cache, no attention masks, ``lm_head`` on the code rows of the last position only).
``transformers`` rebuilds masks, cache objects and logits processors on every step and grows its cache by
concatenation. On a CPU the products run on weights packed once per call for oneDNN, and a large cache is kept
in pages (see ``KVDecoder``); on a GPU the step is one CUDA graph.
Speed against ``generate()``: ``benchmarks/sampling.py`` and ``benchmarks/RESULTS.md``. The tests check the
decoder against a full, cache-free forward of the ``transformers`` model at every step.

Randomness: every random draw is uniform noise from ``generator`` turned into Gumbel noise, and the token is
``argmax(logits / temperature + gumbel)`` over the kept candidates (the Gumbel-max trick), which samples
exactly from the softmax over those candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vqgen.checks import whole_number
from vqgen.errors import ConfigError, ShapeError
from vqgen.priors.sampling_config import SamplingConfig

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

    from vqgen.priors.prior import ClassLabels, CodePrior

__all__ = ["sample_codes", "sample_from_logits", "gumbel_noise", "check_call", "KVDecoder"]


#: One generator for the whole batch, or one per item (each item's draws then depend on its generator only).
Generators = torch.Generator | list[torch.Generator] | None

#: Positions per KV-cache page of a paged (large, eager, CPU) cache; see ``KVDecoder``.
PAGE_SIZE = 32
#: The smallest cache per layer (keys alone) that an eager CPU decoder pages: 1 MiB.
PAGED_FROM_BYTES = 1 << 20


def gumbel_noise(shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise float32 ``shape`` on ``device``, drawn from ``generator`` on its own device.

    With a list of ``G`` generators, ``shape[0]`` must be a multiple of ``G``: item ``i`` owns the
    ``shape[0] // G`` consecutive rows starting at ``i * shape[0] // G`` and draws them from ``generator[i]``.
    """
    if isinstance(generator, list):
        rows = shape[0] // len(generator)
        if rows * len(generator) != shape[0]:
            raise ShapeError(f"{len(generator)} generators cannot share {shape[0]} rows of noise")
        uniform = torch.cat(
            [torch.rand((rows, *shape[1:]), generator=g, device=g.device).to(device) for g in generator]
        )
    else:
        noise_device = generator.device if generator is not None else device
        uniform = torch.rand(shape, generator=generator, device=noise_device, dtype=torch.float32)
    # uniform == 0 gives -inf: that candidate is never picked, which is the right limit. (In place: -log(-log u).)
    return uniform.log_().neg_().log_().neg_().to(device)


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """Pick one index per row of ``logits [B, n]``; returns LongTensor ``[B]`` in ``[0, n)``.

    Order of filters: temperature, then top-k, then top-p (the smallest set of candidates whose probability
    reaches ``top_p``). ``temperature == 0`` is greedy (argmax) and draws no noise.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits.float() if temperature == 1 else logits.float() / temperature
    index = None
    if top_k is not None and top_k < scores.shape[-1]:
        # Only top-p needs the kept candidates in order (and unsorted is about 2x faster on a CPU).
        ordered = top_p is not None and top_p < 1.0
        scores, index = torch.topk(scores, top_k, dim=-1, sorted=ordered)
    elif top_p is not None and top_p < 1.0:
        scores, index = torch.sort(scores, dim=-1, descending=True)
    if top_p is not None and top_p < 1.0:
        probs = scores.softmax(dim=-1)
        # Mass strictly before each candidate; the first candidate always survives.
        before = probs.cumsum(dim=-1) - probs
        scores = scores.masked_fill(before >= top_p, float("-inf"))
    choice = (scores + gumbel_noise(tuple(scores.shape), generator, scores.device)).argmax(dim=-1)
    return choice if index is None else index.gather(-1, choice.unsqueeze(-1)).squeeze(-1)


def check_call(batch_size: int, generator: Generators) -> None:
    """Raise ConfigError (one line) for a batch size or generator ``sample_codes`` cannot honour."""
    whole_number("batch_size", batch_size, 1)
    if isinstance(generator, list):
        if len(generator) != batch_size or not all(isinstance(g, torch.Generator) for g in generator):
            raise ConfigError(
                f"a list of generators must hold one torch.Generator per item ({batch_size}), got {len(generator)}"
            )
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


class KVDecoder:
    """A lean, KV-cached forward of a ``LlamaForCausalLM`` that returns code logits of the last position.

    Built per sampling call from the model's current weights; the cache holds ``max_len`` positions for
    ``batch`` rows. Call it with the prefill ids ``[batch, T]`` once, then with one id ``[batch, 1]`` per step;
    or, for multi-stream layouts, with input vectors ``embeds=[batch, T, H]`` instead of ids (from
    ``CodePrior.step_embeddings``).

    ``static``: one-token steps attend over the whole preallocated cache with a mask on the positions not yet
    written, so every step has the same shapes and no host-side position in them. On a CUDA device (the
    default there) that step is captured once as a CUDA graph and replayed: a small prior's step is a few
    hundred tiny kernels, and launching them one by one from Python costs far more than running them. On a
    CPU the static step runs eagerly (slower than the default there, ``_step``, which attends over the filled
    part only; the tests use it to check the graph's arithmetic).

    The cache is ``[layers, pages, batch * kv_heads, page_size, head_dim]``: positions ``[j * page_size,
    (j + 1) * page_size)`` of every row and head lie in page ``j``, so the filled part of the cache is one
    contiguous block. With a single page (``page_size = max_len``) each row's positions follow each other and
    the filled part is a slice with a gap after every row's positions; read that way, a cache of several MB
    (one that does not stay in the CPU's caches) streams from memory at half the rate of a contiguous
    block, and the whole step at batch 16-64 takes 1.1-1.2x as long on the AVX-512 CPU measured
    (``benchmarks/RESULTS.md``). ``page_size=None`` picks pages of ``PAGE_SIZE`` positions for an eager
    decoder on a CPU whose cache holds at least ``PAGED_FROM_BYTES`` per layer, else one page (a small cache
    stays in the caches, and paging costs a few small copies per layer). Static decoders keep one page.
    """

    def __init__(
        self,
        model: LlamaForCausalLM,
        batch: int,
        max_len: int,
        num_code_tokens: int,
        static: bool | None = None,
        page_size: int | None = None,
    ) -> None:
        cfg = model.config
        inner = model.model
        weight = inner.embed_tokens.weight
        self.dtype, self.device = weight.dtype, weight.device
        self.embed = weight
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.eps = cfg.rms_norm_eps
        self.eps_tensor = torch.tensor(self.eps, dtype=self.dtype, device=self.device)
        # Each RMSNorm's weight is folded into the projection it feeds, and the attention scale into the query
        # rows (RoPE is linear, so scaling before it is the same): fewer small ops per step.
        layers = inner.layers[: cfg.num_hidden_layers]
        plan = []  # (linears, norm, scales, rows) of each fused weight: 4 per layer, then the head
        for layer in layers:
            attn, mlp = layer.self_attn, layer.mlp
            plan += [
                (
                    (attn.q_proj, attn.k_proj, attn.v_proj),
                    layer.input_layernorm.weight,
                    (attn.scaling, 1.0, 1.0),
                    None,
                ),
                ((attn.o_proj,), None, None, None),
                ((mlp.gate_proj, mlp.up_proj), layer.post_attention_layernorm.weight, None, None),
                ((mlp.down_proj,), None, None, None),
            ]
        plan.append(((model.lm_head,), inner.norm.weight, None, num_code_tokens))
        fused = [
            _fused(*linears, norm=norm, scales=scales, rows=rows) for linears, norm, scales, rows in plan
        ]

        # The model's own rotary module gives the cos/sin table, so RoPE variants stay the model's business.
        positions = torch.arange(max_len, device=self.device)
        cos, sin = inner.rotary_emb(weight[:1].unsqueeze(0), position_ids=positions.unsqueeze(0))
        cos, sin, half = cos[0], sin[0], self.head_dim // 2
        self.positions = positions
        self.rotation = self.cos = self.sin_signed = None
        if _complex_rope(self.dtype, cos, sin):
            # RoPE turns the pair (x_i, x_{i + D/2}) of each head by one angle per position: with the query and
            # key rows of the projection reordered so that the pairs lie side by side, it is one complex product
            # instead of a flip, a product and an addcmul. Queries and keys are reordered alike, so their dot
            # products, and the attention, are unchanged.
            self.rotation = torch.complex(cos[:, :half], sin[:, :half])
            qk_rows = (self.num_heads + self.num_kv_heads) * self.head_dim
            for qkv in fused[: 4 * len(layers) : 4]:
                for t in (qkv.weight, qkv.bias):
                    if t is not None:
                        pairs = t[:qk_rows].unflatten(0, (-1, 2, half)).transpose(1, 2)
                        t[:qk_rows] = pairs.reshape(t[:qk_rows].shape)
        else:  # bfloat16/float16 (no complex type), or halves that differ: rotate_half(x) * sin
            self.cos = cos
            self.sin_signed = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)

        if _onednn_packing(self.device, self.dtype):
            for linear in fused:
                linear.pack(batch)
        self.layers = [
            # The functional SiLU skips an nn.Module call per layer and step.
            (
                *fused[4 * i : 4 * i + 4],
                F.silu if isinstance(layer.mlp.act_fn, torch.nn.SiLU) else layer.mlp.act_fn,
            )
            for i, layer in enumerate(layers)
        ]
        self.head = fused[-1]

        self.static = self.device.type == "cuda" if static is None else bool(static)
        self.graphed = self.static and self.device.type == "cuda"
        rows = batch * self.num_kv_heads
        if page_size is None:
            layer_bytes = rows * max_len * self.head_dim * self.dtype.itemsize
            paged = not self.static and self.device.type == "cpu" and layer_bytes >= PAGED_FROM_BYTES
            page_size = min(PAGE_SIZE, max_len) if paged else max_len
        elif isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= max_len:
            raise ConfigError(f"page_size must be an int in [1, max_len={max_len}], got {page_size!r}")
        elif self.static and page_size != max_len:
            raise ConfigError(f"a static decoder keeps one page (page_size={max_len}), got {page_size}")
        self.page_size = page_size
        shape = (len(self.layers), -(-max_len // page_size), rows, page_size, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.layer_keys, self.layer_values = self.keys.unbind(0), self.values.unbind(0)
        self.batch, self.max_len, self.length = batch, max_len, 0
        self._graph = None

    def _rms(self, x: torch.Tensor) -> torch.Tensor:
        """RMSNorm without its weight (folded into the next projection) over the last dimension."""
        if x.dtype == torch.float32:  # no casts, one fused reduction: half the time of pow/mean/add/rsqrt
            norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
            return x * torch.addcmul(self.eps_tensor, norm, norm, value=1 / x.shape[-1]).rsqrt_()
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def _rope_at(self, index: int | slice | torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rotation tables of positions ``index`` (a LongTensor on the device: without a host sync)."""
        tables = (self.rotation,) if self.rotation is not None else (self.cos, self.sin_signed)
        if isinstance(index, torch.Tensor):
            return tuple(t.index_select(0, index) for t in tables)
        return tuple(t[index] for t in tables)

    def _rope(self, x: torch.Tensor, tables: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Rotate ``x [..., D]`` (head features last); the tables (from ``_rope_at``) broadcast against it."""
        if self.rotation is not None:
            pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
            return torch.view_as_real(pairs * tables[0]).flatten(-2)
        cos, sin_signed = tables  # rotate_half(x) * sin == swap_halves(x) * [-sin_lo, sin_hi]
        swapped = x.unflatten(-1, (2, self.head_dim // 2)).flip(-2).flatten(-2)
        return torch.addcmul(x * cos, swapped, sin_signed)

    def _softmax(self, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        return probs if probs.dtype == self.dtype else probs.to(self.dtype)

    def _one_query_attention(
        self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, future: torch.Tensor | None
    ) -> torch.Tensor:
        """q ``[B, heads, D]`` against one page's keys/values ``[B * kv_heads, L, D]`` -> ``[B, heads * D]``.

        Plain matmuls beat SDPA's CPU kernel for one query; grouped heads share their key/value head without
        ``repeat_kv``. ``future [L]`` (bool) masks the cache slots not written yet."""
        batch, nh, d = q.shape[0], self.num_heads, self.head_dim
        scores = torch.bmm(q.reshape(keys.shape[0], nh // self.num_kv_heads, d), keys.transpose(1, 2))
        if future is not None:
            scores = scores.masked_fill(future, float("-inf"))
        return torch.bmm(self._softmax(scores), values).view(batch, nh * d)

    def _paged_attention(
        self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, end: int
    ) -> torch.Tensor:
        """q ``[B, heads, D]`` against the first ``end`` positions of paged keys/values ``[pages, B * kv_heads,
        page_size, D]`` (the pages that hold them) -> ``[B, heads * D]``."""
        pages, rows, size, d = keys.shape
        if pages == 1:
            return self._one_query_attention(q, keys[0, :, :end], values[0, :, :end], None)
        batch, nh = q.shape[0], self.num_heads
        group = nh // self.num_kv_heads
        # Every (page, row) pair is one bmm entry, so the query is repeated per page; the scores of a row's
        # pages then line up for one softmax, and the per-page products with the values add up.
        q = q.unflatten(1, (-1, group)).expand(pages, batch, -1, group, d).reshape(pages * rows, group, d)
        scores = torch.bmm(q, keys.flatten(0, 1).transpose(1, 2))
        scores = scores.view(pages, rows, group, size).permute(1, 2, 0, 3).reshape(rows, group, pages * size)
        if pages * size > end:
            scores[:, :, end:] = float("-inf")  # the last page's slots not written yet
        probs = self._softmax(scores).view(rows, group, pages, size).permute(2, 0, 1, 3)
        out = torch.bmm(probs.reshape(pages * rows, group, size), values.flatten(0, 1))
        return out.view(pages, rows, group * d).sum(0).view(batch, nh * d)

    def _mlp(self, x: torch.Tensor, gate_up, down, act) -> torch.Tensor:
        gate, up = gate_up(self._rms(x)).chunk(2, dim=-1)
        return down(act(gate).mul_(up), residual=x)

    def __call__(self, ids: torch.Tensor | None = None, embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids ``[batch, T]`` or input vectors ``embeds [batch, T, H]`` (the next ``T`` positions) -> code
        logits ``[batch, N]`` of the last one. With a CUDA graph the result is the graph's output buffer,
        overwritten by the next call: use it (or clone it) before calling again."""
        if (ids is None) == (embeds is None):
            raise ShapeError("pass exactly one of ids [batch, T] and embeds [batch, T, hidden]")
        if embeds is not None:
            if embeds.dim() != 3 or embeds.shape[-1] != self.embed.shape[1]:
                raise ShapeError(
                    f"embeds must have shape [batch, T, {self.embed.shape[1]}], got {list(embeds.shape)}"
                )
            batch, t = embeds.shape[:2]
        else:
            batch, t = ids.shape
        start, end = self.length, self.length + t
        if batch != self.batch or end > self.max_len:
            raise ShapeError(
                f"decoder holds {self.batch} rows x {self.max_len} positions, got {batch} x {end}"
            )
        if t > 1 and start != 0:
            raise ShapeError(
                f"only the first (prefill) call may pass several tokens, got {t} at position {start}"
            )
        x = F.embedding(ids, self.embed) if embeds is None else embeds.to(self.dtype)
        if t > 1:
            logits = self._prefill(x)
        elif not self.static:
            logits = self._step(x.reshape(batch, -1), start)
        elif self.graphed:
            logits = self._replay(x, start)
        else:
            logits = self._static_step(x, torch.tensor([start], device=self.device))
        self.length = end
        return logits

    def _prefill(self, x: torch.Tensor) -> torch.Tensor:
        """The first ``T`` positions ``x [batch, T, H]`` into an empty cache."""
        batch, t = x.shape[:2]
        nh, nkv, d, size = self.num_heads, self.num_kv_heads, self.head_dim, self.page_size
        rotation = tuple(table.unsqueeze(1) for table in self._rope_at(slice(0, t)))
        for i, (qkv_proj, o_proj, gate_up, down, act) in enumerate(self.layers):
            qkv = qkv_proj(self._rms(x)).view(batch, t, nh + 2 * nkv, d)
            qk = self._rope(qkv[:, :, : nh + nkv], rotation)
            keys, values = qk[:, :, nh:].transpose(1, 2), qkv[:, :, nh + nkv :].transpose(1, 2)
            for page, lo in enumerate(range(0, t, size)):
                hi = min(t, lo + size)
                self.keys[i, page, :, : hi - lo].view(batch, nkv, hi - lo, d).copy_(keys[:, :, lo:hi])
                self.values[i, page, :, : hi - lo].view(batch, nkv, hi - lo, d).copy_(values[:, :, lo:hi])
            q = qk[:, :, :nh].transpose(1, 2)
            attn = F.scaled_dot_product_attention(
                q, keys, values, is_causal=True, scale=1.0, enable_gqa=nh > nkv
            )
            x = self._mlp(
                o_proj(attn.transpose(1, 2).reshape(batch, t, nh * d), residual=x), gate_up, down, act
            )
        return self.head(self._rms(x[:, -1]))

    def _step(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """One position, its input vectors ``x [batch, H]``, at ``position`` over the filled part of the cache."""
        batch = x.shape[0]
        nh, nkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        end = position + 1
        page, slot = divmod(position, self.page_size)
        rotation = self._rope_at(position)
        for (qkv_proj, o_proj, gate_up, down, act), keys, values in zip(
            self.layers, self.layer_keys, self.layer_values
        ):
            qkv = qkv_proj(self._rms(x)).view(batch, nh + 2 * nkv, d)
            qk = self._rope(qkv[:, : nh + nkv], rotation)
            keys[page, :, slot].view(batch, nkv, d).copy_(qk[:, nh:])
            values[page, :, slot].view(batch, nkv, d).copy_(qkv[:, nh + nkv :])
            attn = self._paged_attention(qk[:, :nh], keys[: page + 1], values[: page + 1], end)
            x = self._mlp(o_proj(attn, residual=x), gate_up, down, act)
        return self.head(self._rms(x))

    def _static_step(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """One position ``x [batch, 1, H]`` at ``position`` (LongTensor ``[1]`` on the device), attending over
        the whole cache with the unwritten slots masked: the same shapes at every step."""
        batch = x.shape[0]
        nh, nkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        rotation = tuple(table.unsqueeze(1) for table in self._rope_at(position))
        future = self.positions > position
        for i, (qkv_proj, o_proj, gate_up, down, act) in enumerate(self.layers):
            qkv = qkv_proj(self._rms(x)).view(batch, 1, nh + 2 * nkv, d)
            qk = self._rope(qkv[:, :, : nh + nkv], rotation)
            keys, values = self.keys[i, 0], self.values[i, 0]  # the one page, [B * kv_heads, L, D]
            keys.view(batch, nkv, -1, d).index_copy_(2, position, qk[:, :, nh:].transpose(1, 2))
            values.view(batch, nkv, -1, d).index_copy_(2, position, qkv[:, :, nh + nkv :].transpose(1, 2))
            attn = self._one_query_attention(qk[:, 0, :nh], keys, values, future)
            x = self._mlp(o_proj(attn.unsqueeze(1), residual=x), gate_up, down, act)
        return self.head(self._rms(x[:, -1]))

    def _replay(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The static step through a CUDA graph, captured at the first call."""
        if self._graph is None:
            self._input = x.clone()
            self._position = torch.full((1,), start, dtype=torch.long, device=self.device)
            # Warm-up runs (required before capture) write cache slot ``start`` with this step's own values,
            # which the replay below writes again: nothing is left behind.
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._static_step(self._input, self._position)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._output = self._static_step(self._input, self._position)
        self._input.copy_(x)
        self._position.fill_(start)
        self._graph.replay()
        return self._output


def _complex_rope(dtype: torch.dtype, cos: torch.Tensor, sin: torch.Tensor) -> bool:
    """Whether ``KVDecoder`` rotates as complex products: a dtype with a complex counterpart, and rotary tables
    ``[L, D]`` whose two halves are equal (one angle per feature pair, as in every Llama RoPE variant)."""
    half = cos.shape[-1] // 2
    return dtype in (torch.float32, torch.float64) and all(
        torch.equal(t[:, :half], t[:, half:]) for t in (cos, sin)
    )


def _onednn_packing(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``KVDecoder`` packs its weights for oneDNN: float32 on a CPU with torch's oneDNN ops.

    A weight packed once into oneDNN's blocked layout for the decoder's batch makes the decode step's products
    1.4-1.5x faster on an AVX-512 CPU than MKL's ``W @ h`` on feature-major activations (this decoder's
    earlier form) and 1.8x faster than ``F.linear``: 4-10% of the whole step (``benchmarks/RESULTS.md``; on an
    AVX2 CPU, measured earlier, about as fast as ``W @ h``). ``_linear_pointwise`` is the op that
    ``torch.compile``'s CPU backend emits for the same purpose."""
    return (
        device.type == "cpu"
        and dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


class _FusedLinear:
    """Several ``nn.Linear`` with the same input, concatenated along the output dimension."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight, self.bias = weight, bias
        self.packed = None

    def pack(self, batch: int) -> None:
        """Keep the weight also in oneDNN's layout, tuned for ``batch`` input rows (see ``_onednn_packing``)."""
        self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, batch)

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``x [..., in]`` -> ``x @ W^T (+ bias) (+ residual)``, ``[..., out]``."""
        if self.packed is None:
            out = F.linear(x, self.weight, self.bias)
        else:
            out = torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        return out if residual is None else out.add_(residual)


def _fused(
    *linears: torch.nn.Linear,
    norm: torch.Tensor | None = None,
    scales: tuple[float, ...] | None = None,
    rows: int | None = None,
) -> _FusedLinear:
    """``linears`` stacked along the output dimension: each one's output times its entry of ``scales``, of an
    input first multiplied by ``norm [in]`` (an RMSNorm weight); only the first ``rows`` outputs when given."""
    scales = scales or (1.0,) * len(linears)
    weight = torch.cat([lin.weight.detach()[:rows] * scale for lin, scale in zip(linears, scales)])
    if norm is not None:
        weight.mul_(norm.detach())
    biases = [lin.bias for lin in linears]
    if all(b is None for b in biases):
        return _FusedLinear(weight, None)
    bias = torch.cat(
        [
            b.detach()[:rows] * scale if b is not None else weight.new_zeros(lin.weight[:rows].shape[0])
            for b, lin, scale in zip(biases, linears, scales)
        ]
    )
    return _FusedLinear(weight, bias)


def sample_codes(
    prior: CodePrior,
    batch_size: int,
    *,
    sampling: SamplingConfig | None = None,
    class_labels: ClassLabels = None,
    prompt: torch.Tensor | None = None,
    generator: Generators = None,
    progress: bool = False,
    time_steps: int | None = None,
) -> torch.Tensor:
    """Draw codes from ``prior``: LongTensor ``[batch_size, *grid]`` on the prior's device.

    One ``KVDecoder`` step per layout step: one token for single-stream layouts (``raster``, ``flatten``), all
    ``S`` level tokens of a step at once for ``delay`` (each over its own level range, with guidance, top-k
    and top-p per level; the pads of the pattern are kept, never drawn).

    Args:
        prior: a ``CodePrior``.
        batch_size: number of items.
        class_labels: None (null class: unconditional sampling), an int, a list or a LongTensor ``[B]``;
            one label broadcasts. Must be None for an unconditional prior.
        sampling: temperature, top-k, top-p and guidance (``SamplingConfig``; default: plain sampling at
            temperature 1). With guidance ``g != 1`` and labels, conditional and null-class rows run as one
            doubled batch and the code logits become ``null + g * (cond - null)`` (on logits or
            log-probabilities alike: they differ by a per-row constant, which cancels in the softmax).
        prompt: known leading codes kept as given: ``[B, P]`` in sequence order or a leading block of the
            grid (the top rows of an image ``[B, n, *grid[1:]]``; the first frames ``[B, K, n]`` of a
            ``flatten`` or ``delay`` grid); batch 1 broadcasts.
        generator: drives every random draw (on its own device; the noise moves to the prior's device).
            A list of ``batch_size`` generators gives each item its own stream: item ``i``'s codes then depend
            only on ``generator[i]``, not on which other items share the batch.
        progress: show a tqdm bar over the decode steps.
        time_steps: sample only the first ``time_steps`` steps of the layout's time axis
            (``layout.with_time_steps``); the codes' time axis is cut to that size. The steps drawn are those
            of the full-length sequence, so with the same ``generator`` the result equals the first
            ``time_steps`` steps of a full-length sample.
    """
    layout = prior.layout
    n_codes = layout.num_code_tokens
    sampling = sampling if sampling is not None else SamplingConfig()
    check_call(batch_size, generator)
    sampling.check_prior(n_codes, prior.is_conditional)
    guidance_scale, top_k = sampling.guidance, sampling.top_k
    clip = layout if time_steps is None else layout.with_time_steps(time_steps)
    labels = prior.labels_tensor(class_labels, batch_size)
    tokens, known = _forced_tokens(prior, clip, prompt, batch_size)
    clip_fixed = clip.fixed_tokens()
    needed = known if clip_fixed is None else known | (clip_fixed.to(known.device) >= 0)
    if bool(needed.all()):
        return clip.unflatten(tokens.clone())

    streams = layout.streams
    steps = clip.length // streams
    plans = _step_plans(layout, (tokens[0] < 0).cpu(), steps, n_codes, prior.device)
    first = next(s for s, plan in enumerate(plans) if plan is not None)

    condition = None
    if prior.is_conditional:
        null = torch.full((batch_size,), prior.null_class_id, dtype=torch.long, device=prior.device)
        condition = null if labels is None else labels + n_codes
    # Guidance between the null class and itself is a no-op, so unlabelled sampling skips the doubled batch.
    guided = labels is not None and guidance_scale != 1.0
    if guided:
        condition = torch.cat([condition, null])
    rows = 2 * batch_size if guided else batch_size
    copies = rows // batch_size

    with torch.inference_mode():
        decoder = KVDecoder(prior.model, rows, prior.num_prefix_tokens + steps - 1, n_codes)
        head = prior.prefix_ids(condition, rows)
        known_steps = tokens[:, : first * streams].repeat(copies, 1)
        if streams == 1:
            logits = decoder(torch.cat([head, known_steps], dim=1))
        else:
            logits = decoder(embeds=prior.step_embeddings(head, known_steps))
        for step in tqdm(range(first, steps), total=steps - first, disable=not progress, desc="sampling"):
            plan = plans[step]
            if plan is not None:
                if plan.index is None:
                    step_logits = logits[:, plan.lo : plan.lo + plan.width]
                else:
                    step_logits = logits[:, plan.index]
                    if plan.invalid is not None:
                        step_logits = step_logits.masked_fill(plan.invalid, float("-inf"))
                if guided:
                    cond_logits, null_logits = step_logits.float().chunk(2)
                    step_logits = null_logits + guidance_scale * (cond_logits - null_logits)
                k = None if top_k is None else min(top_k, plan.width)
                drawn = sample_from_logits(
                    step_logits.reshape(-1, plan.width), sampling.temperature, k, sampling.top_p, generator
                )
                tokens[:, plan.positions] = drawn.view(batch_size, -1).squeeze(1) + plan.lo
            if step + 1 < steps:
                if streams == 1:
                    token = tokens[:, step]
                    logits = decoder((token.repeat(2) if guided else token).unsqueeze(1))
                else:
                    feed = tokens[:, step * streams : (step + 1) * streams].repeat(copies, 1)
                    logits = decoder(embeds=prior.step_embeddings(None, feed))
    # A normal tensor, not an inference tensor, so callers may use it under autograd.
    return clip.unflatten(tokens.clone())


class _StepPlan(NamedTuple):
    """What one decode step draws: the free ``positions`` of the step and the logit columns of their ranges.

    One free position: ``positions`` and ``lo`` are ints and the logits are sliced ``[lo, lo + width)``.
    Several (one per stream): ``positions [F]``, ``lo [F]``, ``index [F, width]`` the logit columns of each
    range padded to the widest, ``invalid [F, width]`` the padding (None when all ranges are equally wide).
    """

    positions: int | torch.Tensor
    lo: int | torch.Tensor
    width: int
    index: torch.Tensor | None = None
    invalid: torch.Tensor | None = None


def _step_plans(layout, free: torch.Tensor, steps: int, n_codes: int, device: torch.device) -> list:
    """``_StepPlan`` per step of ``free [steps * streams]`` (None where nothing is drawn)."""
    streams = layout.streams
    uniform = layout.uniform_range()
    ranges = None if uniform is not None else layout.code_ranges()
    plans: list[_StepPlan | None] = []
    # The free flags as Python lists, so the common single-position step costs no tensor op.
    for step, row in enumerate(free[: steps * streams].view(steps, streams).tolist()):
        positions = [step * streams + j for j, is_free in enumerate(row) if is_free]
        if not positions:
            plans.append(None)
            continue
        if len(positions) == 1:
            lo, hi = uniform if uniform is not None else ranges[positions[0]].tolist()
            plans.append(_StepPlan(positions[0], lo, hi - lo))
            continue
        if uniform is not None:
            bounds = torch.tensor([uniform] * len(positions), dtype=torch.long)
        else:
            bounds = ranges[positions]
        lo, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        columns = torch.arange(int(width.max()))
        invalid = columns >= width[:, None]
        plans.append(
            _StepPlan(
                torch.tensor(positions, device=device),
                lo.to(device),
                len(columns),
                (lo[:, None] + columns).clamp(max=n_codes - 1).to(device),
                invalid.to(device) if bool(invalid.any()) else None,
            )
        )
    return plans


def _forced_tokens(
    prior: CodePrior, clip, prompt: torch.Tensor | None, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[batch_size, clip.length]`` fixed before sampling, -1 where a token is still to be drawn, and
    the mask ``[clip.length]`` of the positions the prompt gives.

    Fixed are the prior layout's fillers (delay pads) and the known prompt codes (read by ``clip``, so a prompt
    longer than the clip is refused); both are checked against the prior layout's ``code_range``.
    """
    layout = prior.layout
    length = clip.length
    tokens = torch.full((batch_size, length), -1, dtype=torch.long, device=prior.device)
    fixed = layout.fixed_tokens()
    if fixed is not None:
        tokens = torch.where(fixed[:length].to(prior.device) >= 0, fixed[:length].to(prior.device), tokens)
    if prompt is None:
        return tokens, torch.zeros(length, dtype=torch.bool, device=prior.device)
    known_tokens, known = clip.known_tokens(prompt)
    known_tokens, known = known_tokens.to(prior.device), known.to(prior.device)
    if known_tokens.shape[0] not in (1, batch_size):
        raise ShapeError(f"prompt batch must be 1 or batch_size={batch_size}, got {known_tokens.shape[0]}")
    if bool(known.any()):
        ranges = layout.code_ranges()[:length].to(prior.device)
        bad = known & ((known_tokens < ranges[:, 0]) | (known_tokens >= ranges[:, 1]))
        if bool(bad.any()):
            row, position = (int(i) for i in bad.nonzero()[0])
            lo, hi = (int(v) for v in ranges[position])
            raise ConfigError(
                f"prompt codes must lie in the layout's code range ([0, {layout.codebook_size}) for {layout.name}), "
                f"got token {int(known_tokens[row, position])} at sequence position {position} where "
                f"[{lo}, {hi}) is allowed"
            )
    return torch.where(known, known_tokens, tokens).contiguous(), known
