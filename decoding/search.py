"""The token-by-token loop shared by greedy search and sampling.

The two strategies differ only in how a token is chosen from the processed scores: argmax
for greedy, a multinomial draw (from a private ``torch.Generator`` when one is given) for
sampling -- as in HF ``generate``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from transformers import LogitsProcessorList

from .config import DecodingConfig, DecodingOutput
from .protocol import StepModel

__all__ = ["ProcessorFactory", "greedy_search", "sample_search", "token_loop"]

# Builds the processors once the vocabulary size is known (from the first scores).
ProcessorFactory = Callable[[int], LogitsProcessorList]


# A chooser returns the tokens (N,) and their log-probabilities (N,) under ``scores``; each
# reuses what it computed anyway rather than a full log_softmax over the vocabulary.
def _choose_argmax(
    scores: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = scores.argmax(dim=-1)
    logp = scores.gather(1, tokens[:, None]).squeeze(1) - scores.logsumexp(dim=-1)
    return tokens, logp


def _choose_multinomial(
    scores: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    probs = scores.softmax(dim=-1)
    tokens = torch.multinomial(probs, num_samples=1, generator=generator)
    return tokens.squeeze(1), probs.gather(1, tokens).squeeze(1).log()


@functools.cache
def _exponential_is_log_of_uniform() -> bool:
    """Whether this torch's CPU ``exponential_`` is ``-log1p(-u)`` of float64 ``uniform_``
    draws, one per element (checked once: values and generator state)."""
    a, b = torch.Generator().manual_seed(1234), torch.Generator().manual_seed(1234)
    expected = torch.empty(4096).exponential_(generator=a)
    u = torch.empty(4096, dtype=torch.float64).uniform_(generator=b)
    drawn = torch.log1p(-u).neg_().float()
    return torch.equal(expected, drawn) and torch.equal(a.get_state(), b.get_state())


def _choose_multinomial_fast(
    scores: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.multinomial(softmax(scores), 1)``'s tokens and generator state, 4x faster on CPU.

    For one sample torch computes ``argmax(p / q)`` with ``q = empty_like(p).exponential_()``
    (the exponential race), and its CPU ``exponential_`` is a scalar loop. Here ``q`` is
    ``-log1p(-u)`` of the same generator's float64 ``uniform_`` draws (checked once per process
    to be what ``exponential_`` gives; otherwise, or off the CPU, this is ``torch.multinomial``),
    and it is computed only where it can decide the race: as ``-log1p(-u) >= u``, ``p / u``
    bounds an entry's ``p / q`` from above (in float32, within 2**-21 of rounding), so only the
    entries whose bound reaches the race value of the best-bounded entry, less a 2**-20 margin,
    can win or tie. The race is run on those, ties going to the lowest index as in ``argmax``.
    """
    if scores.device.type != "cpu" or not _exponential_is_log_of_uniform():
        return _choose_multinomial(scores, generator)
    probs = scores.softmax(dim=-1)  # (N, V)
    u = torch.empty(probs.shape, dtype=torch.float64, device=probs.device).uniform_(
        generator=generator
    )
    bound = u.float()  # in place below: (N, V) p / u, >= the race value p / q up to rounding
    top, first = torch.div(probs, bound, out=bound).max(dim=-1)
    if not bool(torch.isfinite(top).all()):  # a NaN probability, or a draw of exactly 0
        if not bool(torch.isfinite(probs).all()):  # torch.multinomial raises on these
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        race = probs / _exponential(u)
        tokens = race.argmax(dim=-1, keepdim=True)
        return tokens.squeeze(1), probs.gather(1, tokens).squeeze(1).log()
    first = first[:, None]
    reached = probs.gather(1, first) / _exponential(u.gather(1, first))  # (N, 1) race values
    rows, cols = (bound >= reached * (1 - 2**-20)).nonzero(as_tuple=True)
    race = probs[rows, cols] / _exponential(u[rows, cols])  # the candidates' race values
    best = race.new_full((probs.shape[0],), -1.0).scatter_reduce_(0, rows, race, "amax")
    won = race == best[rows]
    tokens = cols.new_full((probs.shape[0],), probs.shape[1])
    tokens.scatter_reduce_(0, rows[won], cols[won], "amin")  # the first index of a tie
    return tokens, probs.gather(1, tokens[:, None]).squeeze(1).log()


def _exponential(u: torch.Tensor) -> torch.Tensor:
    """float32 ``exponential_`` values from its float64 uniform draws ``u``."""
    return torch.log1p(-u).neg_().float()


def token_loop(
    model: StepModel,
    sequences: torch.LongTensor,
    state: object,
    config: DecodingConfig,
    make_processors: ProcessorFactory,
    choose: Callable[[torch.Tensor, torch.Generator | None], tuple[torch.Tensor, torch.Tensor]],
    generator: torch.Generator | None = None,
) -> DecodingOutput:
    """Extend every row one token at a time until all rows end or ``max_new_tokens``.

    Args:
        model: the step model (already started and expanded to ``N`` rows).
        sequences: ``(N, T0)`` prompt ids.
        state: the model state for the ``N`` rows.
        config: decoding settings (eos, pad, lengths).
        make_processors: builds the processors given the vocabulary size.
        choose: picks ``(N,)`` token ids from ``(N, V)`` processed scores and returns them
            with their ``(N,)`` log-probabilities.
        generator: random generator passed to ``choose``.

    Returns:
        A `DecodingOutput`; rows that ended are padded with the pad id.
    """
    n, prompt_len = sequences.shape
    device = sequences.device
    eos = torch.tensor(config.eos_token_ids, dtype=torch.long, device=device)
    pad = config.pad_id
    # One buffer for the whole run: the model and processors see a growing view of it.
    buffer = torch.full(
        (n, prompt_len + config.max_new_tokens), pad, dtype=torch.long, device=device
    )
    buffer[:, :prompt_len] = sequences
    done = torch.zeros(n, dtype=torch.bool, device=device)
    sum_logp = torch.zeros(n, dtype=torch.float, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    processors: LogitsProcessorList | None = None
    drop = getattr(model, "drop", None)  # `LiveRows`: finished rows leave the batch
    steps = 0
    for steps in range(1, config.max_new_tokens + 1):
        cur = prompt_len + steps - 1
        view = buffer[:, :cur]
        logits, state = model.step(view, state)
        if processors is None:
            processors = make_processors(logits.shape[-1])
        scores = processors(view, logits.float())
        tokens, logp = choose(scores, generator)
        live = ~done
        tokens = torch.where(live, tokens, pad)
        sum_logp += torch.where(live, logp, 0.0)
        lengths += live.long()
        buffer[:, cur] = tokens
        if eos.numel():
            done = done | (live & (tokens[:, None] == eos).any(-1))
            if bool(done.all()):
                break
            if drop is not None:
                state = drop(state, ~done)
    return DecodingOutput(
        sequences=buffer[:, : prompt_len + steps],
        scores=sum_logp,
        normalized_scores=sum_logp / lengths.clamp(min=1),
        lengths=lengths,
        finished=done,
    )


def greedy_search(
    model: StepModel,
    sequences: torch.LongTensor,
    state: object,
    config: DecodingConfig,
    make_processors: ProcessorFactory,
) -> DecodingOutput:
    """Greedy decoding: the most likely token after the processors, every step."""
    return token_loop(model, sequences, state, config, make_processors, _choose_argmax)


def sample_search(
    model: StepModel,
    sequences: torch.LongTensor,
    state: object,
    config: DecodingConfig,
    make_processors: ProcessorFactory,
) -> DecodingOutput:
    """Ancestral sampling from the processed distribution (temperature, top-k, top-p).

    Uses ``config.generator``, else a private generator seeded with ``config.seed``, else
    torch's global generator.
    """
    generator = config.generator
    if generator is None and config.seed is not None:
        generator = torch.Generator(device=sequences.device).manual_seed(config.seed)
    choose = _choose_multinomial_fast if config.fast_sampling else _choose_multinomial
    return token_loop(model, sequences, state, config, make_processors, choose, generator)
