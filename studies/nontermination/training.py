"""Training in the non-termination study (`studies.nontermination.study`): build a seeded LSTM
or GPT-2 language model of `.lm` (vanilla, or self-terminating with ``epsilon``), train it (a
plain loop for the LSTM, the HF ``Trainer`` for GPT-2), and measure its perplexity on the
continuation tokens.
"""

from __future__ import annotations

import math
import random

import torch

from .config import EOS, PAD, NonterminationConfig
from .corpus import _length_batches, pad_batch
from .lm import GPT2LanguageModel, LSTMLanguageModel, LSTMLMConfig, lm_nll

__all__ = ["build_model", "model_name", "perplexity", "train_gpt2", "train_lstm"]


def model_name(arch: str, epsilon: float | None) -> str:
    return arch if epsilon is None else f"{arch}-st-{epsilon:g}"


def build_model(
    arch: str, epsilon: float | None, vocab_size: int, cfg: NonterminationConfig
) -> torch.nn.Module:
    """A freshly initialised (seeded) LSTM or GPT-2 LM; ST when ``epsilon`` is set."""
    torch.manual_seed(cfg.seed)
    if arch == "lstm":
        lcfg = LSTMLMConfig(
            vocab_size,
            EOS,
            PAD,
            cfg.lstm_hidden,
            cfg.lstm_layers,
            cfg.lstm_dropout,
            epsilon,
            cfg.context_length,
        )
        return LSTMLanguageModel(lcfg)
    positions = max(cfg.max_sentence_tokens + 2, cfg.context_length + 1 + cfg.max_new_tokens)
    return GPT2LanguageModel.from_sizes(
        vocab_size,
        EOS,
        epsilon,
        n_layer=cfg.gpt_layers,
        n_embd=cfg.gpt_hidden,
        n_head=cfg.gpt_heads,
        n_positions=positions,
        pad_token_id=PAD,
        st_context_length=cfg.context_length,
    )


def _labels(ids: torch.Tensor) -> torch.Tensor:
    return ids.masked_fill(ids == PAD, -100)


def train_lstm(
    model: LSTMLanguageModel, train: list[list[int]], cfg: NonterminationConfig
) -> list[float]:
    """Plain loop (reference recipe): Adam, NLL on every next token, grad-norm clip 1.0,
    length-bucketed batches. Returns the loss of every 50th step."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lstm_lr)
    rng = random.Random(cfg.seed)
    model.train()
    losses = []
    for _ in range(cfg.epochs):
        for step, batch in enumerate(_length_batches(train, cfg.batch_size, rng)):
            ids, _ = pad_batch(batch)
            nll, n = lm_nll(model(ids), _labels(ids))
            loss = nll / n
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0:
                losses.append(round(loss.item(), 4))
    return losses


def _collate(features: list[dict]) -> dict[str, torch.Tensor]:
    ids, mask = pad_batch([f["input_ids"] for f in features])
    return {"input_ids": ids, "attention_mask": mask, "labels": _labels(ids)}


def train_gpt2(
    model: GPT2LanguageModel, train: list[list[int]], cfg: NonterminationConfig, out_dir: str
) -> list[float]:
    """HF ``Trainer``: AdamW, linear schedule with 5% warm-up, weight decay 0.01, clip 1.0,
    length-grouped batches. Returns the logged training losses."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    steps = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
    args = TrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.gpt_lr,
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        warmup_steps=max(1, steps // 20),
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=cfg.seed,
        train_sampling_strategy="group_by_length",
    )
    ds = Dataset.from_dict({"input_ids": train})
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_collate)
    trainer.train()
    return [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]


@torch.no_grad()
def perplexity(model: torch.nn.Module, seqs: list[list[int]], context_length: int) -> float:
    """Perplexity of the continuation tokens (words after the first ``context_length``, and
    ``<eos>``), the tokens the reference scores (its loss masks the context)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs), 64):
        ids, mask = pad_batch(seqs[i : i + 64])
        labels = _labels(ids)
        labels[:, : context_length + 1] = -100  # <bos> and the context words
        lp = (
            model(ids)
            if isinstance(model, LSTMLanguageModel)
            else model(ids, attention_mask=mask).logits
        )
        nll, n = lm_nll(lp, labels)
        total, count = total + nll.item(), count + n.item()
    return math.exp(total / count)
