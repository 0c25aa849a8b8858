"""Beam search, vectorised over the batch, with the same bookkeeping as HF ``generate``.

Each step keeps the ``keep = max(2, 1 + n_eos) * num_beams`` best continuations of all beams,
so that at least ``num_beams`` of them do not end; the running beams are the best
non-ending ones, and ending ones compete for the ``num_beams`` finished slots with score
``sum_logp / length ** length_penalty``. ``early_stopping`` follows HF: ``True`` stops a row
once it has ``num_beams`` finished hypotheses, ``False`` stops when the best running beam
(scored at the current length) cannot beat the worst finished one, ``"never"`` uses the best
possible length for that bound when ``length_penalty > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import DecodingConfig, DecodingOutput
from .protocol import StepModel
from .rows import LiveRows
from .search import ProcessorFactory

__all__ = ["beam_search"]

_NEG = -1.0e9  # "impossible", as in HF (finite, so arithmetic stays exact)


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select along dim 1 of ``x`` (B, K, ...) with ``idx`` (B, J)."""
    while idx.dim() < x.dim():
        idx = idx.unsqueeze(-1)
    return torch.take_along_dim(x, idx, dim=1)


@dataclass
class _Finished:
    """The ``num_beams`` best finished hypotheses of every row (B, K, ...)."""

    sequences: torch.Tensor  # (B, K, T_max)
    scores: torch.Tensor  # (B, K) length-penalised score, _NEG where empty
    sum_logp: torch.Tensor  # (B, K)
    lengths: torch.Tensor  # (B, K) generated tokens
    done: torch.Tensor  # (B, K) bool: slot holds a hypothesis

    @classmethod
    def empty(cls, running: torch.Tensor) -> _Finished:
        b, k = running.shape[:2]
        zeros = torch.zeros(b, k, device=running.device)
        return cls(running.clone(), torch.full_like(zeros, _NEG), zeros, zeros.long(), zeros.bool())

    def add(
        self,
        cand: torch.Tensor,
        top_scores: torch.Tensor,
        ok: torch.Tensor,
        unsatisfied: torch.Tensor,
        gen_len: int,
        config: DecodingConfig,
    ) -> _Finished:
        """Let the ending candidates ``ok`` (B, keep) compete for the ``num_beams`` slots."""
        scores = top_scores / (gen_len**config.length_penalty)
        full_rows = self.done.all(dim=1, keepdim=True) & (config.early_stopping is True)
        # Added one by one (not OR-ed), like HF, so that ties among blocked entries break alike.
        for blocked in (full_rows, ~unsatisfied, ~ok):
            scores = scores + blocked.float() * _NEG
        merged = torch.cat([self.scores, scores], dim=1)
        best = torch.topk(merged, k=self.scores.shape[1], dim=1).indices
        parts = [
            (self.sequences, cand),
            (self.scores, scores),
            (self.sum_logp, top_scores),
            (self.lengths, torch.full_like(self.lengths[:, :1], gen_len).expand_as(ok)),
            (self.done, ok),
        ]
        return _Finished(*(_gather(torch.cat(p, dim=1), best) for p in parts))


def _can_improve(
    unsatisfied: torch.Tensor,
    running_scores: torch.Tensor,
    fin: _Finished,
    gen_len: int,
    max_new: int,
    config: DecodingConfig,
) -> torch.Tensor:
    """(B, 1) whether a row's running beams may still beat its worst finished hypothesis."""
    lp = config.length_penalty
    best_len = max_new if (config.early_stopping == "never" and lp > 0.0) else gen_len
    best_running = running_scores[:, :1] / (best_len**lp)
    worst = torch.where(fin.done, fin.scores.min(dim=1, keepdim=True).values, _NEG)
    return unsatisfied & (best_running > worst).any(dim=-1, keepdim=True)


def beam_search(
    model: StepModel,
    sequences: torch.LongTensor,
    state: object,
    config: DecodingConfig,
    make_processors: ProcessorFactory,
) -> DecodingOutput:
    """Beam search over ``N = B * num_beams`` rows (each input row already repeated).

    Processors act on log-probabilities (as in HF). Returns the ``num_return_sequences``
    best finished hypotheses of every input row, best first.
    """
    k, max_new = config.num_beams, config.max_new_tokens
    n, prompt_len = sequences.shape
    b, device = n // k, sequences.device
    eos = torch.tensor(config.eos_token_ids, dtype=torch.long, device=device)
    keep = max(2, 1 + eos.numel()) * k  # enough that k continuations never end
    top_k_mask = torch.arange(keep, device=device) < k  # only the k best may finish
    batch_offset = torch.arange(b, device=device)[:, None] * k

    running = torch.full(
        (b, k, prompt_len + max_new), config.pad_id, dtype=torch.long, device=device
    )
    running[:, :, :prompt_len] = sequences.view(b, k, prompt_len)
    running_scores = torch.zeros(b, k, device=device)
    running_scores[:, 1:] = _NEG  # all beams start equal: expand from beam 0 only
    fin = _Finished.empty(running)
    unsatisfied = torch.ones(b, 1, dtype=torch.bool, device=device)
    processors = None
    for step in range(max_new):
        cur = prompt_len + step
        flat = running[:, :, :cur].reshape(n, cur)
        logits, state = model.step(flat, state)
        if processors is None:
            processors = make_processors(logits.shape[-1])
        log_probs = processors(flat, logits.float().log_softmax(dim=-1))
        vocab = log_probs.shape[-1]
        total = (log_probs.view(b, k, vocab) + running_scores[:, :, None]).view(b, k * vocab)
        top_scores, top_idx = torch.topk(total, k=keep, dim=1)  # (B, keep)
        src_beam, tokens = top_idx // vocab, top_idx % vocab
        cand = _gather(running, src_beam)
        cand[:, :, cur] = tokens
        hits = (tokens[..., None] == eos).any(-1) | (step + 1 >= max_new)

        # Running beams: the k best continuations that do not end here.
        run_scores = top_scores + hits.float() * _NEG
        nxt = torch.topk(run_scores, k=k, dim=1).indices
        running, running_scores = _gather(cand, nxt), _gather(run_scores, nxt)
        beam_idx = (_gather(src_beam, nxt) + batch_offset).view(-1)

        fin = fin.add(cand, top_scores, hits & top_k_mask, unsatisfied, step + 1, config)
        unsatisfied = _can_improve(unsatisfied, running_scores, fin, step + 1, max_new, config)
        stop = ~unsatisfied.any() | (fin.done.all() & (config.early_stopping is True)) | hits.all()
        if bool(stop):
            break
        if isinstance(model, LiveRows):  # beams of finished inputs leave the batch
            alive = unsatisfied.expand(b, k).reshape(-1)
            state = model.reorder(state, beam_idx, alive)
        else:
            state = model.reorder(state, beam_idx)
    return _collect(fin, prompt_len, config)


def _collect(fin: _Finished, prompt_len: int, config: DecodingConfig) -> DecodingOutput:
    """The ``num_return_sequences`` best hypotheses per row, flattened and trimmed."""
    r = config.num_return_sequences
    lengths = fin.lengths[:, :r].reshape(-1)
    seqs = fin.sequences[:, :r].reshape(lengths.shape[0], -1)
    seqs = seqs[:, : prompt_len + int(lengths.max())]
    sum_logp = fin.sum_logp[:, :r].reshape(-1)
    last = seqs.gather(1, (prompt_len + lengths - 1).clamp(min=0)[:, None]).squeeze(1)
    eos = torch.tensor(config.eos_token_ids, dtype=torch.long, device=seqs.device)
    finished = (last[:, None] == eos).any(-1)  # False everywhere without an end token
    return DecodingOutput(
        sequences=seqs,
        scores=sum_logp,
        normalized_scores=sum_logp / lengths.clamp(min=1),
        lengths=lengths,
        finished=finished,
    )
