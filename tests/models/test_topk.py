"""The top-k kernel agrees with its slow reference, ties and padding included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lumenrec.models._kernels.topk import topk, topk_reference


@settings(max_examples=200, deadline=None)
@given(
    scores=arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 25)),
        elements=st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0, 3.5]),
    ),
    k=st.integers(1, 30),
)
def test_topk_matches_reference(scores, k):
    pos, val = topk(scores, k)
    ref_pos, ref_val = topk_reference(scores, k)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(val, ref_val)


def test_topk_random_large(rng):
    scores = rng.standard_normal((50, 300)).astype(np.float32)
    pos, val = topk(scores, 10)
    ref_pos, _ = topk_reference(scores, 10)
    np.testing.assert_array_equal(pos, ref_pos)
    assert np.all(np.diff(val, axis=1) <= 0)
