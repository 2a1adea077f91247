"""Erasure speed on ML-1M: a forget costs at most 1% of a retrain (P7 "Erasure"), exactly.

Slow (fits every model several times on 1M ratings): excluded from CI by the ``slow`` marker;
run with ``pytest -m slow tests/privacy/test_erasure_speed.py``. It repeats, on 20 users, the
protocol of ``benchmarks/bench_erasure.py`` (which measures 100 and writes the JSON): one
thread, numba compiled before timing, the retrain time the median of three fits. MostPopular
is left out: its retrain is a 2 ms bincount, so 1% of it is below the cost of copying the
event matrix without the user's row (see docs/privacy.md).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lumenrec.datasets import load
from lumenrec.models.als import ImplicitALS
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN

pytestmark = pytest.mark.slow

MODELS = {
    "ease": lambda: EASE(regularization=500.0),
    "itemknn": lambda: ItemKNN(n_neighbors=100, keep_gram=True),
    "als": lambda: ImplicitALS(random_state=0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forget_costs_at_most_one_percent_of_a_retrain(shared_datasets, name):
    import numba

    x = load("ml-1m-processed", data_dir=shared_datasets).matrix
    make = MODELS[name]
    order = np.random.default_rng(0).choice(x.shape[0], 20, replace=False)
    numba.set_num_threads(1)
    with threadpool_limits(1):
        make().fit(x[:300]).forget_users([0, 1])  # compile the kernels
        fits = []
        for _ in range(3):
            start = time.perf_counter()
            model = make().fit(x)
            fits.append(time.perf_counter() - start)
        if hasattr(model, "prepare_unlearning"):
            model.prepare_unlearning()  # once per model version; reported apart
        ids, times = np.arange(x.shape[0]), []
        for user in order:
            pos = int(np.flatnonzero(ids == user)[0])
            ids = np.delete(ids, pos)
            start = time.perf_counter()
            model.forget_users([pos])
            times.append(time.perf_counter() - start)
    ratio = float(np.mean(times)) / float(np.median(fits))
    assert ratio <= 0.01, f"{name}: a forget took {ratio:.2%} of a retrain"
    keep = np.ones(x.shape[0], bool)
    keep[order] = False
    users = np.arange(int(keep.sum()))
    after = model.score(users[:500])
    if name == "als":  # the warm retrain: the exact item half-step, same remaining users
        ref = model.user_factors_[:500] @ model.item_halfstep().T
    else:
        ref = make().fit(x[keep]).score(users[:500])
    np.testing.assert_allclose(after, ref, atol=1e-5, rtol=0)
