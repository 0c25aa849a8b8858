"""The experiments behind docs/generative.md (VAE, WGAN critics against the exact batch W1,
the mini-batch finding), run by ``scripts/generative_experiments.py``.

* `experiments`: ``ExperimentConfig``, ``W1TrackingCallback`` and the runner of every part;
* `metrics`: mode coverage and sample quality on the toys, the digit classifier, the mini-batch
  W1 comparison;
* `plots`: curves, sample grids, latent ellipses (matplotlib);
* `report`: the markdown tables of ``results.jsonl``.
"""
