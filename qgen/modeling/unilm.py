"""BERT + UniLM seq2seq mask: one encoder that reads a source segment and writes a target segment.

The sequence is ``[CLS] source [SEP] target ...`` with ``token_type_ids`` 0 on the source and 1
on the target. The UniLM mask (bert4keras ``unilm_mask``) lets query ``i`` attend to key ``j``
iff ``cumsum(token_type_ids)[j] <= cumsum(token_type_ids)[i]``: the source is bidirectional over
itself, each target token sees the whole source and the earlier target tokens, and the source
never sees the target. Padding keys (``attention_mask == 0``) are masked on top.

The loss is next-token cross-entropy on the target only (position ``t - 1`` predicts token
``t`` where ``t`` is a target token), and the MLM head -- BERT's ``BertOnlyMLMHead`` with its
decoder tied to the word embeddings -- runs only at those predicting positions.

**Packed rows** (training): several targets share one copy of their source,
``[CLS] source [SEP] | target_1 | target_2 | ...``, marked by ``target_segment_ids`` (0 on the
source, ``k`` on the ``k``-th target). Target ``k`` attends to the source and to the earlier
tokens of target ``k`` only, its position ids restart where the source ends, and its first token
is predicted from the source's last token. The source never sees a target, so each target's
hidden states, logits, loss and gradients are exactly those of the unpacked example
``[CLS] source [SEP] | target_k``; only the source is encoded once instead of ``n`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel
from transformers.utils import ModelOutput

__all__ = [
    "UniLMConfig",
    "UniLMForQAGeneration",
    "UniLMOutput",
    "unilm_attention_mask",
    "packed_attention_mask",
    "packed_position_ids",
    "prediction_mask",
]


class UniLMConfig(BertConfig):
    """A `BertConfig` under its own ``model_type`` so the Auto classes find `UniLMForQAGeneration`.

    Any BERT ``config.json`` loads into it (``UniLMConfig.from_pretrained(bert_dir)``).
    """

    model_type = "qgen-unilm"

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        # A plain BERT config.json says model_type "bert": read it as ours, so that a saved model
        # says "qgen-unilm" and the Auto classes reload it as `UniLMForQAGeneration`.
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == BertConfig.model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


def unilm_attention_mask(
    token_type_ids: torch.Tensor, attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The additive UniLM seq2seq mask.

    Args:
        token_type_ids: ``(B, L)`` 0 on the source, 1 on the target.
        attention_mask: ``(B, L)`` 1 on real tokens, 0 on padding.
        dtype: float dtype of the result (the hidden states' dtype).

    Returns:
        ``(B, 1, L, L)`` float: 0 where query ``i`` may attend to key ``j``, the dtype's minimum
        elsewhere. The form that BERT's eager and SDPA attention both accept as a prepared 4-D mask.
    """
    # Padding does not advance the target count, so padding may sit anywhere (with explicit
    # position ids), e.g. between a padded source and the target during generation.
    idx = torch.cumsum(token_type_ids.long() * attention_mask.long(), dim=1)  # (B, L)
    allowed = idx[:, None, :] <= idx[:, :, None]  # (B, Lq, Lk): key idx <= query idx
    allowed = allowed & attention_mask.bool()[:, None, :]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=token_type_ids.device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[:, None]  # (B, 1, L, L)


def packed_attention_mask(
    target_segment_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The additive mask of packed rows: every target sees the source and its own earlier tokens.

    Args:
        target_segment_ids: ``(B, L)`` 0 on the source (and padding), ``k >= 1`` on the tokens of
            the ``k``-th target packed after it.
        attention_mask: ``(B, L)`` 1 on real tokens, 0 on padding.
        dtype: float dtype of the result.

    Returns:
        ``(B, 1, L, L)`` float, 0 where query ``i`` may attend to key ``j``: ``j`` is a real token
        and either a source token, or a token of the same target as ``i`` with ``j <= i``. With a
        single target this is `unilm_attention_mask`.
    """
    seg = target_segment_ids
    length = seg.shape[1]
    pos = torch.arange(length, device=seg.device)
    causal = pos[None, :] <= pos[:, None]  # (Lq, Lk): key j <= query i
    same_target = seg[:, None, :] == seg[:, :, None]  # (B, Lq, Lk)
    allowed = (seg[:, None, :] == 0) | (same_target & causal)
    allowed = allowed & attention_mask.bool()[:, None, :]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=seg.device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[:, None]  # (B, 1, L, L)


def packed_position_ids(target_segment_ids: torch.Tensor) -> torch.Tensor:
    """Position ids of packed rows: ``0 .. S-1`` on the source, and every target restarts at ``S``.

    Args:
        target_segment_ids: ``(B, L)`` as in `packed_attention_mask`; the source is a prefix of
            each row, and each target a contiguous run of its id.

    Returns:
        ``(B, L)`` long: the position each token has in its unpacked example
        ``[CLS] source [SEP] target_k`` (padding gets small positions; it is masked anyway).
    """
    seg = target_segment_ids
    length = seg.shape[1]
    pos = torch.arange(length, device=seg.device).expand_as(seg)
    source_len = (seg == 0).long().cumprod(dim=1).sum(dim=1, keepdim=True)  # (B, 1)
    starts = torch.ones_like(seg, dtype=torch.bool)
    starts[:, 1:] = seg[:, 1:] != seg[:, :-1]  # the first token of each run
    run_start = torch.where(starts, pos, torch.zeros_like(pos)).cummax(dim=1).values
    return torch.where(seg == 0, pos, source_len + pos - run_start)


def _packed_predictors(
    target_segment_ids: torch.Tensor, is_target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every target token of packed rows: ``(row, column, predicting column)``, row-major.

    A target token is predicted by the token before it in the same target; the first token of a
    target by the source's last token (``[SEP]``), as in the unpacked example.
    """
    seg = target_segment_ids
    rows, cols = is_target.nonzero(as_tuple=True)  # (M,), (M,)
    source_len = (seg == 0).long().cumprod(dim=1).sum(dim=1)  # (B,)
    continues = seg[rows, cols - 1] == seg[rows, cols]
    return rows, cols, torch.where(continues, cols - 1, source_len[rows] - 1)


def prediction_mask(
    token_type_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Positions whose hidden state predicts the next token, i.e. ``t - 1`` for every target ``t``.

    Args:
        token_type_ids: ``(B, L)``.
        attention_mask: ``(B, L)``.
        labels: optional ``(B, L)`` unshifted labels with -100 on non-targets; when given they
            decide which tokens are targets.

    Returns:
        ``(B, L)`` bool; the last column is always False.
    """
    if labels is not None:
        is_target = labels[:, 1:] != -100
    else:
        is_target = (token_type_ids[:, 1:] == 1) & attention_mask[:, 1:].bool()
    pad = torch.zeros_like(is_target[:, :1])
    return torch.cat([is_target, pad], dim=1)


@dataclass
class UniLMOutput(ModelOutput):
    """Output of `UniLMForQAGeneration`.

    Attributes:
        loss: scalar mean next-token cross-entropy over target tokens (when ``labels`` are given).
        logits: ``(M, V)`` logits at the ``M`` predicting positions, in row-major order of
            ``prediction_mask`` (``full_logits=False``), or ``(B, L, V)`` over the whole sequence
            (``full_logits=True``).
        prediction_mask: ``(B, L)`` bool, the predicting positions (position ``t - 1`` of each
            target token ``t``); None for packed rows.
        hidden_states, attentions: as in BERT, when requested.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    prediction_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class UniLMForQAGeneration(BertPreTrainedModel):
    """BERT encoder + UniLM mask + tied MLM head, trained as a seq2seq LM on the target segment.

    ``from_pretrained`` accepts any BERT checkpoint directory (a plain ``BertModel`` such as
    all-MiniLM-L6-v2 has no MLM head: its transform and bias are initialised, the decoder is tied
    to the word embeddings).
    """

    config_class = UniLMConfig
    config: UniLMConfig
    # The 4-D additive mask needs an attention kernel that takes arbitrary masks.
    _supports_flash_attn = False
    _supports_flex_attn = False
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"cls\.seq_relationship"]
    # forward normalises by the Trainer's `num_items_in_batch` (exact gradient accumulation).
    accepts_loss_kwargs = True

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def lm_head(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Apply the MLM head: ``(..., H) -> (..., V)``."""
        return self.cls(hidden_states)

    def mask_dtype(self, device: torch.device) -> torch.dtype:
        """The dtype of the attention scores: the autocast dtype under mixed precision (SDPA
        wants the mask in the query's dtype), else the weights' dtype."""
        if torch.is_autocast_enabled(device.type):
            return torch.get_autocast_dtype(device.type)
        return self.bert.embeddings.word_embeddings.weight.dtype

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        target_segment_ids: torch.Tensor | None = None,
        **kwargs,
    ):
        """Run the BERT encoder under the UniLM mask (the packed mask when ``target_segment_ids``
        is given); returns BERT's output (``last_hidden_state`` ...)."""
        if token_type_ids is None:
            raise ValueError(
                "token_type_ids is required: it marks the source (0) and the target (1) segments"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        dtype = self.mask_dtype(input_ids.device)
        if target_segment_ids is None:
            mask = unilm_attention_mask(token_type_ids, attention_mask, dtype=dtype)
        else:
            mask = packed_attention_mask(target_segment_ids, attention_mask, dtype=dtype)
            if position_ids is None:
                position_ids = packed_position_ids(target_segment_ids)
        return self.bert(
            input_ids,
            attention_mask=mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            return_dict=True,
            **kwargs,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        full_logits: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
        target_segment_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> UniLMOutput:
        r"""
        Args:
            input_ids: ``(B, L)`` ``[CLS] source [SEP] target``, right-padded.
            attention_mask: ``(B, L)`` 1 on tokens, 0 on padding (default: all ones).
            token_type_ids: ``(B, L)`` 0 on the source, 1 on the target (required).
            position_ids: optional ``(B, L)``; default ``0 .. L-1``.
            labels: optional ``(B, L)`` *unshifted* target ids (``input_ids`` with -100 on every
                non-target token, as `qgen.modeling.inputs.UniLMCollator` builds them). The model shifts:
                the hidden state at ``t - 1`` predicts ``labels[t]``. When given, the loss is
                returned and the labels decide the target positions; otherwise the targets are
                the non-padding tokens with ``token_type_ids == 1``.
            full_logits: apply the head over the whole sequence (``(B, L, V)`` logits) instead of
                only at the predicting positions (``(M, V)``). Same loss either way.
            num_items_in_batch: total target tokens over the accumulated batches (passed by the
                HF Trainer); the loss is then ``sum / num_items_in_batch``.
            target_segment_ids: optional ``(B, L)`` for packed rows (see the module docstring):
                0 on the source, ``k`` on the ``k``-th target. Position ids then default to
                `packed_position_ids`, ``logits`` are ``(M, V)`` in row-major order of the target
                tokens (or ``(B, L, V)`` with ``full_logits``, which cannot show the shared
                predictor of the targets' first tokens), and ``prediction_mask`` is None.

        Returns:
            `UniLMOutput`.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        outputs = self.encode(
            input_ids, attention_mask, token_type_ids, position_ids, target_segment_ids, **kwargs
        )
        hidden = outputs.last_hidden_state  # (B, L, H)

        if target_segment_ids is not None:
            if labels is not None:
                is_target = labels != -100
            else:
                is_target = (target_segment_ids > 0) & attention_mask.bool()
            rows, cols, predictors = _packed_predictors(target_segment_ids, is_target)
            pred_mask = None
            if full_logits:
                logits = self.lm_head(hidden)  # (B, L, V)
                target_logits = logits[rows, predictors]  # (M, V)
            else:
                logits = target_logits = self.lm_head(hidden[rows, predictors])  # (M, V)
            next_tokens = labels[rows, cols] if labels is not None else None
        else:
            pred_mask = prediction_mask(token_type_ids, attention_mask, labels)  # (B, L)
            if full_logits:
                logits = self.lm_head(hidden)  # (B, L, V)
                target_logits = logits[pred_mask]  # (M, V)
            else:
                logits = target_logits = self.lm_head(hidden[pred_mask])  # (M, V)
            next_tokens = labels[:, 1:][pred_mask[:, :-1]] if labels is not None else None  # (M,)

        loss = None
        if labels is not None:
            reduction = "sum" if num_items_in_batch is not None else "mean"
            loss = F.cross_entropy(target_logits.float(), next_tokens, reduction=reduction)
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        return UniLMOutput(
            loss=loss,
            logits=logits,
            prediction_mask=pred_mask,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
