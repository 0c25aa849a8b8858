"""Decoding demo: greedy vs sampling vs consistent sampling on a random tiny GPT-2.

The end token is made unlikely (its logit is pushed down), so plain top-k / nucleus
sampling filter it out and rarely stop, while the consistent variants keep it in the
candidate set and end. Prints, per decoder, how many rows ended and one sample row.

    python scripts/decode_demo.py
    python scripts/decode_demo.py --num_rows 4 --max_new_tokens 16   # smoke run
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import GPT2Config, GPT2LMHeadModel, HfArgumentParser, set_seed

from decoding import DecodingConfig, decode


@dataclass
class DemoArguments:
    num_rows: int = field(default=32, metadata={"help": "prompts decoded per decoder"})
    max_new_tokens: int = field(default=64, metadata={"help": "cap on generated tokens"})
    eos_token_id: int = field(default=2, metadata={"help": "end token id of the toy vocabulary"})
    eos_bias: float = field(default=-1.0, metadata={"help": "added to the end token's logit"})
    sharpness: float = field(
        default=3.0, metadata={"help": "scale of the LM head (peaked distributions)"}
    )
    seed: int = field(default=0, metadata={"help": "seed for the model and the samplers"})


DECODERS = {
    "greedy": {"strategy": "greedy"},
    "beam-4": {"strategy": "beam", "num_beams": 4},
    "top-k=2": {"strategy": "sample", "top_k": 2},
    "consistent top-k=2": {"strategy": "sample", "top_k": 2, "consistent": True},
    "nucleus=0.4": {"strategy": "sample", "top_p": 0.4},
    "consistent nucleus=0.4": {"strategy": "sample", "top_p": 0.4, "consistent": True},
}


def toy_model(args: DemoArguments) -> GPT2LMHeadModel:
    """A random 2-layer GPT-2 (vocabulary 64) whose end token is unlikely but never impossible."""
    cfg = GPT2Config(
        vocab_size=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=256,
        bos_token_id=0,
        eos_token_id=2,
    )
    model = GPT2LMHeadModel(cfg).eval()
    head = torch.nn.Linear(cfg.n_embd, cfg.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.copy_(
            model.lm_head.weight * args.sharpness
        )  # peaked distributions: truncation matters
        head.bias.zero_()
        head.bias[args.eos_token_id] = args.eos_bias
    model.lm_head = head
    return model


def run_demo(args: DemoArguments) -> dict[str, float]:
    """Decode ``num_rows`` random prompts with every decoder; return the share that ended."""
    model = toy_model(args)
    prompts = torch.randint(3, 64, (args.num_rows, 4))
    shares = {}
    for name, overrides in DECODERS.items():
        cfg = DecodingConfig(
            max_new_tokens=args.max_new_tokens,
            eos_token_id=args.eos_token_id,
            seed=args.seed,
            **overrides,
        )
        out = decode(model, prompts, cfg)
        shares[name] = out.finished.float().mean().item()
        print(
            f"{name:>24}: {int(out.finished.sum()):3d}/{args.num_rows} ended, "
            f"mean length {out.lengths.float().mean():5.1f}, row 0: {out.sequences[0, 4:14].tolist()}"
        )
    return shares


def main(argv: list[str] | None = None) -> dict[str, float]:
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    set_seed(args.seed)
    torch.set_num_threads(1)
    return run_demo(args)


if __name__ == "__main__":
    main()
