"""Is generated data worth training on: readers trained on human, generated and filtered
generated pairs of TyDi QA, scored on its human dev questions (`study`)."""
