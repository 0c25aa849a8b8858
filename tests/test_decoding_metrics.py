"""`decoding.metrics` on hand-made continuations (eos = 9, pad = 0)."""

import pytest
import torch

from decoding import metrics

EOS, PAD = 9, 0


@pytest.mark.parametrize("as_tensor", [False, True])
def test_non_termination_ratio(as_tensor):
    seqs = [[5, 6, 9, 0], [5, 5, 5, 5], [1, 2, 3, 9], [7, 0, 0, 0]]
    if as_tensor:
        seqs = torch.tensor(seqs)
    # row 1 hits the cap without eos; row 3 is shorter than the cap once its padding is dropped
    assert metrics.non_termination_ratio(seqs, EOS, 4, pad_token_id=PAD) == 0.25
    # without pad handling the padded row looks like a 4-token continuation
    assert metrics.non_termination_ratio(seqs, EOS, 4) == 0.5


def test_eos_after_the_cap_does_not_count_and_eos_lists_work():
    assert metrics.non_termination_ratio([[1, 2, 3, 9]], EOS, 3) == 1.0
    assert metrics.non_termination_ratio([[1, 2, 8], [1, 9, 0]], [8, 9], 3) == 0.0


def test_pad_equal_to_eos_is_handled():
    # decode pads finished rows with the end token by default
    assert (
        metrics.non_termination_ratio([[1, 9, 9, 9], [1, 2, 3, 4]], EOS, 4, pad_token_id=EOS) == 0.5
    )
    assert metrics.mean_length([[1, 9, 9, 9], [1, 2, 3, 4]], EOS, pad_token_id=EOS) == 3.0


def test_repetition_rate():
    loop = [1, 2, 1, 2, 1, 2]  # bigrams 12 21 12 21 12: 2 unique of 5
    fresh = [1, 2, 3, 4, 9, 1, 1]  # read up to eos: bigrams 12 23 34, none repeated
    assert metrics.repetition_rate([loop], 2) == pytest.approx(1 - 2 / 5)
    assert metrics.repetition_rate([fresh], 2, EOS) == 0.0
    assert metrics.repetition_rate([loop, fresh], 2, EOS) == pytest.approx((0.6 + 0.0) / 2)
    assert metrics.repetition_rate([[1]], 2) == 0.0  # no n-gram at all


def test_distinct_n_is_corpus_level():
    seqs = [[1, 2, 3, 9], [1, 2, 4, 9]]  # bigrams 12 23 12 24: 3 distinct of 4
    assert metrics.distinct_n(seqs, 2, EOS) == 0.75
    assert metrics.distinct_n(seqs, 1, EOS) == pytest.approx(4 / 6)
    assert metrics.distinct_n([], 2) == 0.0


def test_mean_length_counts_the_end_token():
    assert metrics.mean_length([[1, 2, 9, 0], [3, 3, 3, 3]], EOS, PAD) == 3.5


def test_bad_values_raise():
    with pytest.raises(ValueError, match="max_length"):
        metrics.non_termination_ratio([[1]], EOS, 0)
    with pytest.raises(ValueError, match="n must be"):
        metrics.repetition_rate([[1]], 0)
    with pytest.raises(ValueError, match="2-D"):
        metrics.distinct_n(torch.tensor([1, 2]), 1)
