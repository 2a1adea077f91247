"""Accounting and calibration equal Opacus's accountants; bad budgets are clear errors."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("opacus")

from opacus.accountants import PRVAccountant, RDPAccountant  # noqa: E402
from opacus.accountants.utils import get_noise_multiplier  # noqa: E402

from lumenrec.errors import ConfigError  # noqa: E402
from lumenrec.privacy.dp import (  # noqa: E402
    bounded_rows,
    check_budget,
    epsilon_spent,
    gaussian_noise_multiplier,
    gram_sensitivity,
    noise_multiplier_for,
    symmetric_gaussian,
)


def _opacus_eps(cls: type, sigma: float, q: float, steps: int, delta: float) -> float:
    acc = cls()
    for _ in range(steps):  # exactly as PrivacyEngine's optimizer hook does
        acc.step(noise_multiplier=sigma, sample_rate=q)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        with np.errstate(divide="ignore"):
            return float(acc.get_epsilon(delta=delta))


@pytest.mark.parametrize(
    ("name", "cls", "sigma", "q", "steps"),
    [
        ("rdp", RDPAccountant, 1.1, 0.01, 300),
        ("rdp", RDPAccountant, 0.7, 1.0, 1),
        ("prv", PRVAccountant, 1.1, 0.01, 300),
        ("prv", PRVAccountant, 2.0, 0.1, 50),
    ],
)
def test_epsilon_equals_opacus_accountant(name, cls, sigma, q, steps):
    ours = epsilon_spent(sigma, q, steps, 1e-6, accountant=name)
    assert ours == pytest.approx(_opacus_eps(cls, sigma, q, steps, 1e-6), abs=1e-6)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_noise_multiplier_inverse(accountant):
    sigma = noise_multiplier_for(4.0, 1e-6, 0.02, 100, accountant, tolerance=0.01)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        expected = get_noise_multiplier(
            target_epsilon=4.0,
            target_delta=1e-6,
            sample_rate=0.02,
            steps=100,
            accountant=accountant,
            epsilon_tolerance=0.01,
        )
    assert sigma == pytest.approx(expected, rel=1e-12)
    eps = epsilon_spent(sigma, 0.02, 100, 1e-6, accountant)
    assert 4.0 - 0.01 <= eps <= 4.0


def test_gaussian_release_is_a_single_full_batch_step():
    sigma = gaussian_noise_multiplier(2.0, 1e-6, accountant="rdp")
    assert _opacus_eps(RDPAccountant, sigma, 1.0, 1, 1e-6) == pytest.approx(
        epsilon_spent(sigma, 1.0, 1, 1e-6, "rdp"), abs=1e-6
    )
    # more releases need more noise; a smaller epsilon too
    assert gaussian_noise_multiplier(2.0, 1e-6, 3, "rdp") > sigma
    assert gaussian_noise_multiplier(1.0, 1e-6, 1, "rdp") > sigma


@pytest.mark.parametrize("eps", [0.0, -1.0, math.inf, math.nan, True, "1"])
def test_bad_epsilon(eps):
    with pytest.raises(ConfigError, match="epsilon must be"):
        check_budget(eps, 1e-6, 100)


@pytest.mark.parametrize("delta", [0.01, 1 / 943, 0.0, -1e-9, 1.0])
def test_delta_below_one_over_n(delta):
    with pytest.raises(ConfigError, match="n = 943 users"):
        check_budget(1.0, delta, 943)
    check_budget(1.0, 1e-6, 943)


def test_bad_accountant_and_arguments():
    with pytest.raises(ConfigError, match="accountant"):
        epsilon_spent(1.0, 0.1, 10, 1e-6, accountant="gdp")
    with pytest.raises(ConfigError):
        epsilon_spent(1.0, 1.5, 10, 1e-6)
    with pytest.raises(ConfigError):
        noise_multiplier_for(0.0, 1e-6, 0.1, 10)


def test_gram_sensitivity_bounds_every_row():
    c = 4
    bound = gram_sensitivity(c)
    worst = 0.0
    for n_u in range(1, 8):
        for items in itertools.combinations(range(8), n_u):
            row = np.zeros((1, 8))
            row[0, list(items)] = 1.0
            x = bounded_rows(sp.csr_matrix(row), c).toarray()[0]
            upper = np.triu(np.outer(x, x))
            worst = max(worst, float(np.linalg.norm(upper)))
        assert worst <= bound + 1e-12
    assert worst == pytest.approx(bound)  # reached at n_u = c


def test_bounded_rows_norms():
    x = sp.random(50, 40, density=0.4, format="csr", random_state=0)
    b = bounded_rows(x, 5)
    sq = np.asarray(b.multiply(b).sum(axis=1)).ravel()
    n_u = np.diff(x.indptr)
    assert np.all(sq <= 5 + 1e-9)
    np.testing.assert_allclose(sq[n_u <= 5], n_u[n_u <= 5])


def test_symmetric_gaussian_is_symmetric_and_seeded():
    a = symmetric_gaussian(6, 2.0, np.random.default_rng(1))
    b = symmetric_gaussian(6, 2.0, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, a.T)
