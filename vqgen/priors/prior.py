"""CodePrior: an autoregressive Llama over discrete codes, with condition fields for guidance.

Vocabulary (``N = layout.num_code_tokens``, ``C = num_classes``)::

    [0, N)          code tokens
    [N, N + C)      class tokens                      (only when C > 0)
    N + C           null class (unconditional / CFG)  (only when C > 0)
    last id         BOS

That is the single-field case of named condition fields (``condition_fields={"family": 16, "pitch": 22}``):
after the code tokens, each field's value tokens and then its own null token, fields in prefix order (sorted by
name); see ``vqgen.priors.conditions``.

Sequence: ``[BOS, condition_0, ..., condition_{F-1}, code_0, ..., code_{L-1}]`` (``F`` fields, one token each;
``F = 1`` for ``num_classes``, 0 for an unconditional prior). Code position ``i`` is predicted from the hidden
state at sequence index ``num_prefix_tokens - 1 + i`` (``num_prefix_tokens = 1 + F``), and only over the code
ids allowed there (``layout.code_range(i)``).

Layouts with ``S = layout.streams > 1`` (the ``delay`` pattern) group the code positions into steps of ``S``:
the transformer input of a step is the sum of its ``S`` token embeddings (BOS and the condition stay
single-token steps), and the hidden state at index ``num_prefix_tokens - 1 + s`` predicts all ``S`` positions
of step ``s``, each over its own range (the ``lm_head`` rows of its level). Filler positions
(``layout.fixed_tokens()``, the delay pads) are inputs only: they never count in the loss or the likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from transformers import LlamaConfig, LlamaForCausalLM

from vqgen.checks import whole_number
from vqgen.errors import ConfigError, MismatchError
from vqgen.priors.conditions import (
    Conditions,
    ConditionTokens,
    ConditionValues,
    check_condition_fields,
    value_tensor,
)
from vqgen.priors.layout import CodeLayout, build_layout
from vqgen.priors.sampling import sample_codes
from vqgen.priors.sampling_config import SamplingConfig

__all__ = ["CodePrior", "PriorOutput", "ClassLabels", "Conditions", "ConditionValues"]

#: What every ``class_labels`` argument accepts: None, an int, a list of ints or a LongTensor ``[B]``.
ClassLabels = int | Sequence[int] | torch.Tensor | None


@dataclass
class PriorOutput(BaseOutput):
    """Output of ``CodePrior.forward``.

    Attributes:
        loss: scalar, mean cross-entropy (nats) over all code positions of the batch (filler positions such
            as the delay pattern's pads excluded).
        logits: ``[B, length, N]`` next-code logits over the code ids only (``-inf`` outside
            ``layout.code_range(position)`` for layouts whose ranges vary by position).
    """

    loss: torch.Tensor
    # A default lets Accelerate rebuild the output from a dict (its fp32 conversion under mixed precision).
    logits: torch.Tensor | None = None


def _default_intermediate_size(hidden_size: int) -> int:
    # SwiGLU keeps the parameter count of a 4x MLP with 2/3 of the width; round up to a multiple of 64.
    return 64 * -(-(8 * hidden_size // 3) // 64)


class CodePrior(ModelMixin, ConfigMixin):
    """Autoregressive prior over a tokenizer's codes: a ``transformers`` ``LlamaForCausalLM`` plus a layout.

    Args:
        codebook_size: number of codes of the tokenizer (codes lie in ``[0, codebook_size)``).
        code_grid: the tokenizer's ``code_grid(input_shape)``, e.g. ``[7, 7]``.
        num_classes: number of class labels (the single field ``"class"``); 0 and no ``condition_fields`` make
            an unconditional prior.
        layout: name of the code layout (see ``vqgen.priors.layout.LAYOUTS``): ``"raster"`` (one shared
            vocabulary, row-major), ``"flatten"`` (residual grid ``[K, T]``, frame by frame, one vocabulary
            range per level) or ``"delay"`` (residual grid ``[K, T]``, MusicGen's delay pattern: ``T + K - 1``
            steps of ``K`` summed level tokens).
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size: Llama shape
            (``num_kv_heads`` < ``num_heads`` gives grouped-query attention; ``intermediate_size`` defaults to
            about 8/3 of ``hidden_size``).
        class_dropout: probability, in training mode, of replacing a label by the null class (teaches the
            unconditional model that classifier-free guidance needs); each condition field is dropped on its
            own, so all fields are null together with probability ``class_dropout ** F``.
        rope_theta: RoPE base.
        dropout: attention-probability dropout inside the Llama blocks (training mode only).
        condition_fields: named condition fields ``{name: number of values}``, e.g. ``{"family": 16, "pitch":
            22}``, instead of ``num_classes``: one prefix token per field (sorted by name), each field with its
            own null token.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        codebook_size: int,
        code_grid: list[int],
        num_classes: int = 0,
        layout: str = "raster",
        hidden_size: int = 256,
        num_layers: int = 6,
        num_heads: int = 8,
        num_kv_heads: int | None = None,
        intermediate_size: int | None = None,
        class_dropout: float = 0.1,
        rope_theta: float = 10000.0,
        dropout: float = 0.0,
        condition_fields: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.layout: CodeLayout = build_layout(layout, list(code_grid), codebook_size)
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        _check_shape(num_classes, hidden_size, num_layers, num_heads, kv_heads, intermediate_size)
        fields = check_condition_fields(num_classes, condition_fields)
        if not 0.0 <= class_dropout <= 1.0:
            raise ConfigError(f"class_dropout must be in [0, 1], got {class_dropout}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if not rope_theta > 0:
            raise ConfigError(f"rope_theta must be > 0, got {rope_theta}")

        self.num_code_tokens = self.layout.num_code_tokens
        self.condition_tokens = ConditionTokens(fields, self.num_code_tokens)
        #: The fields ``{name: number of values}`` in prefix order (``{"class": C}`` for ``num_classes=C``).
        self.condition_fields: dict[str, int] = dict(fields)
        #: Values of the one field of a single-field prior (``class_labels`` index them); 0 for an
        #: unconditional prior and for one with several fields (those take ``conditions``).
        self.num_classes = next(iter(fields.values())) if len(fields) == 1 else 0
        self.num_prefix_tokens = 1 + len(fields)
        self.vocab_size = self.num_code_tokens + self.condition_tokens.num_tokens + 1
        self.seq_len = self.num_prefix_tokens + self.layout.steps
        llama_config = LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size or _default_intermediate_size(hidden_size),
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=self.seq_len,
            rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta)},
            attention_dropout=float(dropout),
            bos_token_id=self.bos_id,
            eos_token_id=None,
            pad_token_id=None,
            tie_word_embeddings=False,
        )
        self.model = LlamaForCausalLM(llama_config)

        code_range = self.layout.uniform_range()
        if code_range == (0, self.num_code_tokens):
            self._code_mask: torch.Tensor | None = None
        else:
            ranges = self.layout.code_ranges()
            ids = torch.arange(self.num_code_tokens)
            mask = (ids[None] >= ranges[:, :1]) & (ids[None] < ranges[:, 1:])
            self.register_buffer("_code_mask", mask, persistent=False)
        # Positions grouped by their code range: scoring a position needs only its range's lm_head rows, which
        # for level-ranged layouts (flatten, delay) is K times fewer than the whole code vocabulary.
        ranges = self.layout.code_ranges() if self._code_mask is not None else None
        self._range_groups: list[tuple[int, int, torch.Tensor]] = []
        if ranges is not None:
            for lo, hi in torch.unique(ranges, dim=0).tolist():
                positions = ((ranges[:, 0] == lo) & (ranges[:, 1] == hi)).nonzero().flatten()
                self._range_groups.append((int(lo), int(hi), positions))
        fixed = self.layout.fixed_tokens()
        # Filler positions (delay pads): True where the token is an input only, never a prediction target.
        if fixed is not None and bool((fixed >= 0).any()):
            self.register_buffer("_filler", fixed >= 0, persistent=False)
        else:
            self._filler: torch.Tensor | None = None

    # ------------------------------------------------------------------ vocabulary

    @property
    def bos_id(self) -> int:
        """Token id of BOS (the last id of the vocabulary)."""
        return self.vocab_size - 1

    @property
    def null_class_id(self) -> int | None:
        """Token id of the null class of a single-field prior (unconditional), else None."""
        return self.condition_tokens.null_ids[0] if len(self.condition_tokens) == 1 else None

    @property
    def is_conditional(self) -> bool:
        """True when the prior has condition fields (``num_classes`` > 0 or ``condition_fields``)."""
        return len(self.condition_tokens) > 0

    def _single_field(self, what: str) -> None:
        if not self.is_conditional:
            raise ConfigError(f"{what} were given to an unconditional prior (num_classes=0); pass None")
        if len(self.condition_tokens) > 1:
            raise ConfigError(
                f"{what} need a prior with one condition field; this one has {', '.join(self.condition_fields)}: "
                "pass conditions={field: values} instead"
            )

    def class_token(self, labels: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Class labels in ``[0, num_classes)`` -> their token ids (LongTensor, same shape as ``labels``)."""
        self._single_field("class labels")
        labels = torch.as_tensor(labels, device=self.device)
        if labels.numel():
            value_tensor("class_labels", labels.reshape(-1), self.num_classes, labels.numel(), self.device)
        return labels.long() + self.condition_tokens.offsets[0]

    def labels_tensor(self, class_labels: ClassLabels, batch_size: int) -> torch.Tensor | None:
        """Normalise labels of a single-field prior to LongTensor ``[batch_size]`` on the prior's device (None
        stays None).

        Accepts an int, a list, or a tensor ``[]``, ``[1]`` (broadcast) or ``[batch_size]``.
        """
        if class_labels is None:
            return None
        self._single_field("class_labels")
        return value_tensor("class_labels", class_labels, self.num_classes, batch_size, self.device)

    def condition_indices(
        self, class_labels: ClassLabels, batch_size: int, conditions: Conditions = None
    ) -> torch.Tensor | None:
        """Class labels or conditions -> value indices LongTensor ``[batch_size, F]`` on the prior's device, in
        prefix order, ``-1`` where a field is null; None when neither names a value (every field null).

        ``class_labels`` (single-field priors): see :meth:`labels_tensor`. ``conditions``: ``{field: values}``,
        each an int, a list of ints or a LongTensor ``[B]`` (``-1``: that item's null; a missing field is null),
        or indices LongTensor ``[B, F]``; see ``vqgen.priors.conditions``. Give one of the two, not both.
        """
        if class_labels is not None and conditions is not None:
            raise ConfigError("pass class_labels or conditions, not both")
        if class_labels is not None:
            return self.labels_tensor(class_labels, batch_size)[:, None]
        if conditions is not None and not self.is_conditional:
            raise ConfigError(
                "conditions were given to an unconditional prior (no condition fields); pass None"
            )
        return self.condition_tokens.indices(conditions, batch_size, self.device)

    def prefix(
        self,
        class_labels: ClassLabels,
        batch_size: int,
        *,
        conditions: Conditions = None,
        guided: bool = False,
        class_dropout: bool = False,
    ) -> torch.Tensor:
        """The tokens that open every sequence: LongTensor ``[rows, num_prefix_tokens]``.

        The one place they are built (training, likelihood, sampling and compression all call it): BOS, then for
        a conditional prior one token per field, in prefix order: the field's value token, or its null token
        where the field is not given (``class_labels=None`` and ``conditions=None``: every field null).

        Args:
            class_labels: see :meth:`labels_tensor`; None for an unconditional prior or with ``conditions``.
            batch_size: ``B``.
            conditions: see :meth:`condition_indices` (value indices ``[B, F]`` pass through).
            guided: classifier-free guidance's doubled batch: ``rows = 2 * B``, the ``B`` conditional rows, then
                ``B`` rows with every field null (conditional priors only).
            class_dropout: replace each field's token by its null with probability ``config.class_dropout``,
                field by field (training; torch's global RNG, so Accelerate's seeding reproduces it).
        """
        indices = self.condition_indices(class_labels, batch_size, conditions)
        rows = 2 * batch_size if guided else batch_size
        bos = torch.full((rows, 1), self.bos_id, dtype=torch.long, device=self.device)
        if not self.is_conditional:
            if guided:
                raise ConfigError("guidance needs a class-conditional prior; this prior has num_classes=0")
            return bos
        null = self.condition_tokens.null_tokens(batch_size, self.device)
        condition = self.condition_tokens.tokens(indices, batch_size, self.device)
        if class_dropout and self.config.class_dropout > 0:
            drop = (
                torch.rand(batch_size, len(self.condition_tokens), device=self.device)
                < self.config.class_dropout
            )
            condition = torch.where(drop, null, condition)
        if guided:
            condition = torch.cat([condition, null])
        return torch.cat([bos, condition], dim=1)

    # ------------------------------------------------------------------ model

    def code_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Validate codes ``[B, *grid]`` and flatten them to token ids ``[B, length]``."""
        self.layout.check_codes(codes)
        self.layout.check_code_values(codes)
        return self.layout.flatten(codes.to(self.device))

    def code_logits(self, hidden: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Hidden states ``[B, T, H]`` predicting steps ``start .. start+T-1`` -> logits ``[B, T * S, N]``.

        ``S = layout.streams`` (1 except for multi-stream layouts, where a step is ``S`` positions predicted
        from one hidden state). Only the code rows of ``lm_head`` are applied, so non-code ids never get
        probability mass; ids outside each position's ``layout.code_range`` are ``-inf``.
        """
        head = self.model.get_output_embeddings()
        n = self.num_code_tokens
        bias = head.bias[:n] if getattr(head, "bias", None) is not None else None
        logits = F.linear(hidden, head.weight[:n], bias)
        streams = self.layout.streams
        if streams > 1:
            batch, steps = logits.shape[:2]
            logits = logits.unsqueeze(2).expand(batch, steps, streams, n).reshape(batch, steps * streams, n)
            start *= streams
        if self._code_mask is not None:
            mask = self._code_mask[start : start + logits.shape[1]]
            logits = logits.masked_fill(~mask, float("-inf"))
        return logits

    def step_embeddings(self, prefix: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer inputs ``[B, P + n, H]`` of a multi-stream layout (teacher forcing).

        Args:
            prefix: ``[B, P]`` single-token steps (BOS, condition), embedded one each; or None (``P = 0``).
            tokens: ``[B, n * S]`` code tokens of ``n`` whole steps; each step's ``S`` embeddings are summed.
        """
        embed = self.model.get_input_embeddings()
        batch = tokens.shape[0]
        steps = embed(tokens.reshape(batch, -1, self.layout.streams)).sum(dim=2)
        return steps if prefix is None else torch.cat([embed(prefix), steps], dim=1)

    def _hidden(
        self, tokens: torch.Tensor, class_labels: ClassLabels, conditions: Conditions = None
    ) -> torch.Tensor:
        """Teacher-forced hidden states ``[B, steps, H]``, one per layout step (the step's prediction)."""
        batch = tokens.shape[0]
        prefix = self.prefix(class_labels, batch, conditions=conditions, class_dropout=self.training)
        streams = self.layout.streams
        if streams == 1:
            inputs = torch.cat([prefix, tokens[:, :-1]], dim=1)
            hidden = self.model.base_model(input_ids=inputs, use_cache=False).last_hidden_state
        else:
            embeds = self.step_embeddings(prefix, tokens[:, :-streams])
            hidden = self.model.base_model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        return hidden[:, self.num_prefix_tokens - 1 :]

    def _token_log_probs(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``log p(token)`` (nats, float32) at every position ``[B, length]``, 0 at filler positions.

        Each position is scored over its own code range only (the same numbers as a softmax over
        :meth:`code_logits`, whose other ids are ``-inf``), group by group of positions sharing a range.
        """
        head = self.model.get_output_embeddings()
        bias = getattr(head, "bias", None)
        if self.layout.streams > 1:
            hidden = hidden.repeat_interleave(self.layout.streams, dim=1)
        logp = hidden.new_zeros(tokens.shape, dtype=torch.float32)
        for lo, hi, positions in self._range_groups:
            positions = positions.to(hidden.device)
            logits = F.linear(hidden[:, positions], head.weight[lo:hi], None if bias is None else bias[lo:hi])
            picked = (tokens[:, positions] - lo).clamp(0, hi - lo - 1).unsqueeze(-1)
            logp[:, positions] = torch.log_softmax(logits.float(), dim=-1).gather(-1, picked).squeeze(-1)
        if self._filler is not None:
            logp = logp.masked_fill(self._filler, 0.0)
        return logp

    def forward(
        self,
        codes: torch.Tensor,
        class_labels: ClassLabels = None,
        return_logits: bool = True,
        conditions: Conditions = None,
    ) -> PriorOutput:
        """Teacher-forced next-code prediction.

        Args:
            codes: LongTensor ``[B, *grid]`` in ``[0, codebook_size)``.
            class_labels: None (null class / unconditional) or labels ``[B]`` in ``[0, num_classes)``.
            return_logits: False skips the ``[B, length, N]`` logits (training needs only the loss; for
                level-ranged layouts the loss is then computed per range, K times cheaper).
            conditions: instead of ``class_labels``, ``{field: values [B] (int, list or LongTensor; -1: null)}``
                with missing fields null, or indices ``[B, F]`` (see :meth:`condition_indices`).

        Returns:
            ``PriorOutput(loss=scalar, logits=[B, length, N] or None)``.
        """
        tokens = self.code_tokens(codes)
        hidden = self._hidden(tokens, class_labels, conditions)
        if self._range_groups and not return_logits:
            logp = self._token_log_probs(hidden, tokens)
            count = tokens.numel() - (
                0 if self._filler is None else int(self._filler.sum()) * tokens.shape[0]
            )
            return PriorOutput(loss=-logp.sum() / count, logits=None)
        logits = self.code_logits(hidden)
        targets = tokens if self._filler is None else tokens.masked_fill(self._filler, -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return PriorOutput(loss=loss, logits=logits if return_logits else None)

    def log_likelihood(
        self, codes: torch.Tensor, class_labels: ClassLabels = None, conditions: Conditions = None
    ) -> torch.Tensor:
        """Sum over code positions of ``log p(code)`` in nats, per item: float32 ``[B]`` (eval mode, no grad).

        ``codes`` LongTensor ``[B, *grid]``; ``class_labels`` or ``conditions`` as in :meth:`forward`. Filler
        positions (delay pads) are not codes and add nothing.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                tokens = self.code_tokens(codes)
                if self._range_groups:
                    logp = self._token_log_probs(self._hidden(tokens, class_labels, conditions), tokens)
                else:
                    logits = self(codes, class_labels, conditions=conditions).logits.float()
                    logp = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        finally:
            self.train(was_training)
        return logp.sum(dim=1)

    def sample(
        self,
        batch_size: int,
        *,
        sampling: SamplingConfig | None = None,
        class_labels: ClassLabels = None,
        conditions: Conditions = None,
        prompt: torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        progress: bool = False,
        time_steps: int | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
    ) -> torch.Tensor:
        """Draw codes ``[batch_size, *grid]`` (time axis cut to ``time_steps`` when given); see
        ``vqgen.priors.sampling.sample_codes``. ``guidance_scale``, ``guidance_schedule``, ``temperature``,
        ``top_k`` and ``top_p`` are shortcuts: those given replace the fields of ``sampling``."""
        sampling = SamplingConfig.from_arguments(
            sampling,
            guidance_scale=guidance_scale,
            guidance_schedule=guidance_schedule,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
        )
        return sample_codes(
            self,
            batch_size,
            sampling=sampling,
            class_labels=class_labels,
            conditions=conditions,
            prompt=prompt,
            generator=generator,
            progress=progress,
            time_steps=time_steps,
        )

    def load_with_new_fields(self, saved: CodePrior) -> None:
        """Load ``saved``'s weights into this prior, which has its architecture and code vocabulary and every
        one of its condition fields (same sizes) plus new ones (a warm start that adds a field, e.g. the
        program beside family and pitch). The token embedding and output rows of the codes, of each saved
        field's values and null, and of BOS move to this vocabulary's ids (fields sit in name order, so a
        new field can shift the others'); the new fields' rows keep their fresh initialisation. Anything else
        that differs: a one-line ``MismatchError``."""
        new_fields = [name for name in self.condition_fields if name not in saved.condition_fields]
        if (
            self.num_code_tokens != saved.num_code_tokens
            or any(self.condition_fields.get(k) != n for k, n in saved.condition_fields.items())
            or not new_fields
        ):
            raise MismatchError(
                f"a warm start that adds condition fields needs the saved prior's codes and fields: saved "
                f"{saved.condition_tokens.describe() or 'no fields'}, {saved.num_code_tokens} code tokens; "
                f"this prior {self.condition_tokens.describe()}, {self.num_code_tokens} code tokens"
            )
        ids = torch.arange(saved.vocab_size)  # saved id -> this prior's id
        mine = list(self.condition_fields)
        for f, (name, size) in enumerate(saved.condition_fields.items()):
            g = mine.index(name)
            old, new = saved.condition_tokens.offsets[f], self.condition_tokens.offsets[g]
            ids[old : old + size + 1] = torch.arange(new, new + size + 1)  # values, then the null
        ids[saved.bos_id] = self.bos_id
        tables = [
            (self.model.get_input_embeddings().weight, saved.model.get_input_embeddings().weight),
            (self.model.get_output_embeddings().weight, saved.model.get_output_embeddings().weight),
        ]
        moved = {id(table) for pair in tables for table in pair}
        theirs = {n for n, p in saved.named_parameters() if id(p) in moved}
        rest = {n: t for n, t in saved.state_dict().items() if n not in theirs}
        missing, unexpected = self.load_state_dict(rest, strict=False)
        left = set(missing) - {n for n, p in self.named_parameters() if id(p) in moved}
        if left or unexpected:
            raise MismatchError(f"a warm start cannot place these weights: {sorted(left) + list(unexpected)}")
        with torch.no_grad():
            for target, source in tables:
                target[ids] = source.to(target.dtype)

    def non_embedding_parameters(self) -> int:
        """Parameters that cost a multiply-add per token (all but the input embedding table)."""
        return sum(p.numel() for p in self.parameters()) - self.model.get_input_embeddings().weight.numel()


def _check_shape(
    num_classes: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    kv_heads: int,
    intermediate_size: int | None,
) -> None:
    """One-line ``ConfigError`` for a Llama shape ``CodePrior`` cannot build."""
    whole_number("num_classes", num_classes, 0)
    whole_number("hidden_size", hidden_size, 1)
    whole_number("num_layers", num_layers, 1)
    whole_number("num_heads", num_heads, 1)
    if hidden_size % num_heads:
        raise ConfigError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    if (hidden_size // num_heads) % 2:
        raise ConfigError(f"hidden_size / num_heads must be even for RoPE, got {hidden_size // num_heads}")
    whole_number("num_kv_heads", kv_heads, 1)
    if num_heads % kv_heads:
        raise ConfigError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({kv_heads})")
    if intermediate_size is not None:
        whole_number("intermediate_size", intermediate_size, 1)
