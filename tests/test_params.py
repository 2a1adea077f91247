"""Declarative parameter constraints and estimator plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from lumenrec._params import Interval, Options, check_is_fitted, validate_params
from lumenrec._random import check_random_state
from lumenrec.errors import ConfigError, NotFittedError


class _Est:
    def __init__(self, alpha=1.0, n=3, mode="a", opt=None):
        self.alpha, self.n, self.mode, self.opt = alpha, n, mode, opt


RULES = {
    "alpha": Interval(float, 0, None, low_open=True),
    "n": Interval(int, 1),
    "mode": Options({"a", "b"}),
    "opt": (None, Interval(int, 0)),
}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": 0.0}, "alpha must be a number > 0"),
        ({"alpha": float("nan")}, "alpha must be"),
        ({"n": 2.5}, "n must be an int >= 1"),
        ({"n": True}, "n must be an int"),
        ({"mode": "c"}, r"mode must be one of \['a', 'b'\]"),
        ({"opt": -1}, "opt must be an int >= 0"),
    ],
)
def test_invalid_params_name_the_parameter(params, match):
    with pytest.raises(ConfigError, match=match):
        validate_params(_Est(**params), RULES)


def test_valid_params_pass():
    validate_params(_Est(alpha=2, n=5, mode="b", opt=None), RULES)
    validate_params(_Est(opt=4), RULES)


def test_check_is_fitted_and_random_state():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        check_is_fitted(_Est())
    g = np.random.default_rng(1)
    assert check_random_state(g) is g
    assert check_random_state(5).integers(100) == np.random.default_rng(5).integers(100)
    with pytest.raises(ConfigError, match="random_state"):
        check_random_state("seed")
