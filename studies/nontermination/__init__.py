"""The non-termination study (Welleck et al. 2020 on our data; docs/nontermination.md), run by
``scripts/nontermination_study.py``.

* `config`: ``NonterminationConfig`` (data path, sizes; ``quick`` for CI), the decoder registry
  ``DECODERS`` and the special token ids;
* `corpus`: SQuAD sentences, tokenisation, the word ``Vocab``, batches;
* `lm`: the LSTM and GPT-2 language models, vanilla or self-terminating, and ``LMStepModel``
  that drives them through `decoding.decode`;
* `training`: building, training and the perplexity of those models;
* `report`: the markdown tables and the r_L plot;
* `study`: decoding, the invariant checker and ``run_study``.
"""
