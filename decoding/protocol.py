"""The contract between `decoding.decode` and the models it drives.

`decode` runs any of three kinds of model:

* an HF causal LM (``GPT2LMHeadModel`` and friends): it uses the model's own KV cache;
* an HF encoder-decoder (``BartForConditionalGeneration`` ...): it encodes once and caches;
* anything else that implements :class:`StepModel` -- for example the UniLM question
  generator (`qgen`), an LSTM LM, or a model with a self-terminating output layer.

A step model is a small object with three methods. ``decode`` calls ``start`` once on the
*unexpanded* batch, expands rows for beams / ``num_return_sequences`` with ``reorder``
(expansion is just a reorder with repeated indices), and then calls ``step`` once per new
token. Between steps, beam search calls ``reorder`` to follow the surviving beams.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["StepModel", "select_rows"]


def select_rows(x: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    """Rows ``index`` of a state tensor (dim 0), or None for an absent one: the building block
    of ``reorder`` (expansion repeats rows, beam search follows the surviving beams)."""
    return None if x is None else x.index_select(0, index.to(x.device))


@runtime_checkable
class StepModel(Protocol):
    """A model that `decoding.decode` can drive one token at a time.

    The state is opaque to ``decode`` (a tensor, a tuple, a dataclass, an HF ``Cache`` ...);
    only the step model reads it.
    """

    def start(self, input_ids: torch.LongTensor, **model_kwargs: Any) -> Any:
        """Build the initial state for a batch.

        Args:
            input_ids: ``(B, T0)`` prompt ids, left-padded where rows differ in length.
            **model_kwargs: whatever the model needs besides the ids (``attention_mask``,
                ``token_type_ids`` ...), each with batch dimension ``B``.

        Returns:
            The state for the ``B`` rows, before any new token.
        """
        ...

    def step(self, input_ids: torch.LongTensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Score the next token of every row.

        Args:
            input_ids: ``(N, T)`` the whole sequence so far (prompt + tokens generated so far).
                A cached model reads only the tokens it has not seen yet.
            state: the state returned by ``start`` / the previous ``step`` / ``reorder``.

        Returns:
            ``(scores, state)``: ``scores`` is ``(N, V)`` float logits *or* normalised
            log-probabilities (``decode`` applies ``log_softmax``, which leaves normalised
            log-probabilities unchanged), and the state after reading ``input_ids``.
        """
        ...

    def reorder(self, state: Any, index: torch.LongTensor) -> Any:
        """Select rows of the state: row ``i`` of the result is row ``index[i]`` of ``state``.

        Used both to expand a batch (``index = arange(B).repeat_interleave(k)``) and to follow
        beams. ``index`` may repeat rows and may be shorter or longer than the batch.
        """
        ...
