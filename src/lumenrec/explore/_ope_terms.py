"""Per-row terms of the position-wise OPE estimators and SLOPE (internal to :mod:`.ope`).

Written in obp 0.5.7's operation order (``_estimate_round_rewards`` and
``_tune_hyperparam_with_slope``), so that values agree with obp bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_LAMBDAS", "influence", "round_terms", "shrunk", "slope_select"]

#: SLOPE candidates for Switch-DR and DR-os (obp's OBD example).
DEFAULT_LAMBDAS = (10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, math.inf)
_SLOPE_DELTA = 0.1


def shrunk(name: str, w: NDArray[np.float64], lam: float) -> NDArray[np.float64]:
    if name == "switch-dr":
        return w * np.array(w <= lam, dtype=int)
    if lam < np.inf:  # dr-os
        return (lam * w) / (w**2 + lam)
    return w


def round_terms(
    name: str,
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    qf: NDArray[np.float64] | None,
    qpi: NDArray[np.float64] | None,
    lam: float = math.inf,
) -> NDArray[np.float64]:
    """obp's ``_estimate_round_rewards``: the value is the mean of these terms."""
    if name == "ips":
        return r * w
    if name == "snips":
        return r * w / w.mean()
    assert qf is not None and qpi is not None
    out = qpi.copy()
    if name == "dm":
        return out
    if name == "dr":
        out += w * (r - qf)
    elif name == "sndr":
        out += w * (r - qf) / w.mean()
    else:
        out += shrunk(name, w, lam) * (r - qf)
    return out


def influence(
    name: str,
    terms: NDArray[np.float64],
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    qf: NDArray[np.float64] | None,
    qpi: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """Per-row terms whose std / sqrt(n) is the (linearised) standard error."""
    if name == "snips":
        return w * (r - terms.mean()) / w.mean()
    if name == "sndr":
        assert qf is not None and qpi is not None
        resid = w * (r - qf)
        return qpi + (resid - w * resid.sum() / w.sum()) / w.mean()
    return terms


def slope_select(
    name: str,
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    qf: NDArray[np.float64],
    qpi: NDArray[np.float64],
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    delta: float = _SLOPE_DELTA,
) -> float:
    """SLOPE choice of lambda for ``switch-dr`` / ``dr-os`` (obp 0.5.7, ``tuning_method="slope"``).

    Candidates are ordered as obp orders them (descending for Switch-DR, ascending for DR-os),
    then ranked by their Student-t confidence width; the first whose estimate leaves the
    intersection of the wider intervals stops the search.
    """
    from scipy import stats

    lams = sorted((float(x) for x in lambdas), reverse=name == "switch-dr")
    n = r.shape[0]
    thetas, widths = [], []
    for lam in lams:
        x = round_terms(name, r, w, qf, qpi, lam)
        thetas.append(x.mean())
        ci = math.sqrt(np.var(x) / (n - 1)) * stats.t(n - 1).ppf(1.0 - delta)
        cnf = x.mean()
        cnf -= x.mean() - ci
        widths.append(cnf)
    c = math.sqrt(6) - 1
    order = np.argsort(widths)[::-1]
    kept_t: list[float] = []
    kept_c: list[float] = []
    for i, idx in enumerate(order):
        if (
            kept_t
            and not (
                np.abs(np.array(kept_t) - thetas[idx]) <= widths[idx] + c * np.array(kept_c)
            ).all()
        ):
            return lams[order[i - 1]]
        kept_t.append(thetas[idx])
        kept_c.append(widths[idx])
    return lams[order[-1]]
