"""The small-label fine-tuning study of the `regularizers` (docs/regularization.md), run by
``scripts/regularization_study.py``: `study` holds ``RegularizationStudyConfig`` (data folder,
sizes), ``METHODS`` (the registry of the regularizer lists it compares), the TREC / SST-2
loaders, ``run_study``, ``summarize`` and ``write_report``.
"""
