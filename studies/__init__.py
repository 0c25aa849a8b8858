"""Research code of the repository: the studies and experiments behind docs/nontermination.md,
docs/regularization.md and docs/generative.md.

Not part of the installed library (``pip install`` ships `qgen`, `decoding`, `regularizers` and
`generative` only; setup.cfg lists just those four). The studies import the library, never the
other way round (tests/test_layout.py checks it). Run them from a checkout through the scripts,
which put the repository root on ``sys.path``:

* `studies.nontermination`: ``scripts/nontermination_study.py``
* `studies.regularization`: ``scripts/regularization_study.py``
* `studies.generative`: ``scripts/generative_experiments.py``

Data paths are arguments; a missing one is an error that names the path and the flag to pass.
"""
