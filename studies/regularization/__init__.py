"""The small-label fine-tuning study of the `regularizers` (docs/regularization.md), run by
``scripts/regularization_study.py``: `study` holds ``StudyConfig`` (data folder, sizes),
``METHODS``, the TREC / SST-2 loaders, ``run_study``, ``summarize`` and ``write_report``.
"""
