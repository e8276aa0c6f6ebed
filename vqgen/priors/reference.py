"""The pinned reference forward of a ``CodePrior``: the probabilities ``.vqz`` files are coded under.

PINNED: speed work must never touch this module. Every ``.vqz`` file depends on the numbers it computes (up to
the robustness margin ``vqgen.compression`` documents); a change here that moves them by more than float64
rounding changes which files decode. Sampling has its own decoder (``vqgen.priors.decoder``), free to change.

What it computes: the Llama of ``prior.model`` (read from ``model.config`` and the parameters by their
checkpoint names), step by step with a KV cache, written for clarity, every operation in float64 on the CPU:
RMSNorm, q/k/v, RoPE with tables computed in float64 from ``rope_theta``, causal softmax attention (grouped
heads repeated), SwiGLU, ``lm_head`` on the code rows. ``transformers``' own forward cannot serve: in float64 it
still casts to float32 for RMSNorm and the rotary tables, so its logits carry float32 steps; where a kernel set
rounds one of them differently (a reduction over 16 AVX-512 lanes instead of 8, say) they move by about 1e-7,
far beyond float64 rounding. (Between the ``default`` and ``avx2`` kernels of the AVX2 machine they happened to
agree; this forward's differed by 2e-14 there.)
The tests check this forward against the ``transformers`` forward (to float32 precision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vqgen.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from vqgen.priors.prior import CodePrior

__all__ = ["ReferenceDecoder"]

DTYPE = torch.float64


class ReferenceDecoder:
    """float64 KV-cached forward of ``prior``'s Llama for ``rows`` sequences of up to ``max_len`` positions.

    ``decoder(ids)``: ``ids [rows, T]`` (one token per position) or ``[rows, T, S]`` (the embeddings of a step's
    ``S`` tokens summed, ``-1`` for none) -> float64 code logits ``[rows, N]`` of the last position. The weights
    are copied to float64 on the CPU when it is built; the prior is left as it is.
    """

    def __init__(self, prior: CodePrior, rows: int, max_len: int) -> None:
        model, config = prior.model, prior.model.config
        rope = getattr(config, "rope_parameters", None) or {
            "rope_type": "default",
            "rope_theta": config.rope_theta,
        }
        if rope.get("rope_type", "default") != "default":
            raise ConfigError(
                f"the reference forward supports rope_type 'default', got {rope['rope_type']!r}"
            )

        def weight(name: str) -> torch.Tensor:
            return model.get_parameter(name).detach().to("cpu", DTYPE)

        def linear(name: str, bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            return weight(f"{name}.weight"), weight(f"{name}.bias") if bias else None

        self.embed = model.get_input_embeddings().weight.detach().to("cpu", DTYPE)
        self.layers = []
        for i in range(config.num_hidden_layers):
            p = f"model.layers.{i}"
            projections = [f"{p}.self_attn.{n}_proj" for n in "qkvo"] + [
                f"{p}.mlp.{n}_proj" for n in ("gate", "up", "down")
            ]
            biases = [config.attention_bias] * 4 + [config.mlp_bias] * 3
            self.layers.append(
                (
                    weight(f"{p}.input_layernorm.weight"),
                    weight(f"{p}.post_attention_layernorm.weight"),
                    *(linear(name, bias) for name, bias in zip(projections, biases)),
                )
            )
        self.norm = weight("model.norm.weight")
        head = model.get_output_embeddings()
        n = prior.num_code_tokens
        self.head = (
            head.weight.detach()[:n].to("cpu", DTYPE),
            None if head.bias is None else head.bias.detach()[:n].to("cpu", DTYPE),
        )
        self.act = F.silu if config.hidden_act in ("silu", "swish") else None
        if self.act is None:
            raise ConfigError(
                f"the reference forward supports the SiLU MLP, got hidden_act={config.hidden_act!r}"
            )
        self.eps = float(config.rms_norm_eps)
        self.num_heads, self.num_kv_heads, self.head_dim = (
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        )
        d = self.head_dim
        inv_freq = 1.0 / (float(rope["rope_theta"]) ** (torch.arange(0, d, 2, dtype=DTYPE) / d))
        angles = torch.arange(max_len, dtype=DTYPE)[:, None] * inv_freq
        self.cos, self.sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
        shape = (config.num_hidden_layers, rows, self.num_kv_heads, max_len, d)
        self.keys, self.values = torch.zeros(shape, dtype=DTYPE), torch.zeros(shape, dtype=DTYPE)
        self.rows, self.max_len, self.length = rows, max_len, 0

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def _rope(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """``x [B, heads, T, D]`` at positions ``start ..``: ``x * cos + rotate_half(x) * sin``."""
        t, half = x.shape[2], self.head_dim // 2
        cos, sin = self.cos[start : start + t], self.sin[start : start + t]
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def _attention(self, x: torch.Tensor, layer: int, weights, start: int) -> torch.Tensor:
        """Self-attention of ``x [B, T, H]`` (normed) at positions ``start ..`` over the cache and itself."""
        (wq, bq), (wk, bk), (wv, bv), (wo, bo) = weights
        batch, t, _ = x.shape
        nh, nkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        q = F.linear(x, wq, bq).view(batch, t, nh, d).transpose(1, 2)
        k = F.linear(x, wk, bk).view(batch, t, nkv, d).transpose(1, 2)
        v = F.linear(x, wv, bv).view(batch, t, nkv, d).transpose(1, 2)
        end = start + t
        self.keys[layer, :, :, start:end] = self._rope(k, start)
        self.values[layer, :, :, start:end] = v
        keys = self.keys[layer, :, :, :end].repeat_interleave(nh // nkv, dim=1)
        values = self.values[layer, :, :, :end].repeat_interleave(nh // nkv, dim=1)
        scores = self._rope(q, start) @ keys.transpose(-1, -2) * d**-0.5  # [B, nh, T, end]
        future = torch.arange(end)[None, :] > torch.arange(start, end)[:, None]
        probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        return F.linear((probs @ values).transpose(1, 2).reshape(batch, t, nh * d), wo, bo)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids of the next ``T`` positions, ``[rows, T]`` or ``[rows, T, S]`` -> float64 logits ``[rows, N]``."""
        batch, t = ids.shape[:2]
        start, end = self.length, self.length + t
        if batch != self.rows or end > self.max_len:
            raise ShapeError(
                f"decoder holds {self.rows} rows x {self.max_len} positions, got {batch} x {end}"
            )
        ids = ids.cpu()
        if ids.dim() == 2:
            x = self.embed[ids]
        else:
            x = (self.embed[ids.clamp(min=0)] * (ids >= 0).unsqueeze(-1)).sum(2)
        for layer, (norm_in, norm_post, *attn, gate, up, down) in enumerate(self.layers):
            x = x + self._attention(self._rms(x, norm_in), layer, attn, start)
            h = self._rms(x, norm_post)
            x = x + F.linear(self.act(F.linear(h, *gate)) * F.linear(h, *up), *down)
        self.length = end
        return F.linear(self._rms(x[:, -1], self.norm), *self.head)
