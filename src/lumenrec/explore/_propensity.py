"""Position propensities of slate policies: exact forms and Monte-Carlo estimates.

Every function returns an ``(n_candidates, k)`` float64 matrix ``P`` with ``P[c, j]`` the
marginal probability that candidate ``c`` is shown at position ``j``; each column sums to 1
(when ``k <= n``) and each row to at most 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "epsilon_greedy_marginals",
    "greedy_order",
    "one_hot_marginals",
    "plackett_luce_first_two",
    "simulate_marginals",
    "top_k_rows",
]


def greedy_order(scores: NDArray[np.floating]) -> NDArray[np.intp]:
    """Candidate positions by descending score; ties keep input order (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def one_hot_marginals(order: NDArray[np.integer], n: int, k: int) -> NDArray[np.float64]:
    """Propensities of a deterministic slate: 1 where ``order[j]`` sits at position ``j``."""
    out = np.zeros((n, k), dtype=np.float64)
    out[np.asarray(order[:k]), np.arange(k)] = 1.0
    return out


def epsilon_greedy_marginals(n: int, k: int, epsilon: float) -> NDArray[np.float64]:
    """Exact marginals of per-position ε-greedy slates, in *score-rank* order.

    At each position the policy shows, with probability ``1 - epsilon``, the best remaining
    candidate and otherwise a uniformly random remaining one (which may be the best).

    Derivation: let the *pointer* ``p`` be the best-ranked candidate still available after
    ``j`` positions. All ranks below ``p`` are gone and ``j - p`` ranks above it were taken by
    uniform draws; because a uniform draw never distinguishes among ranks above the pointer,
    those ``j - p`` ranks are a uniformly random subset of the ``n - 1 - p`` ranks above ``p``.
    So ``(j, p)`` is a Markov state (``p <= j``). From it, rank ``p`` is shown with probability
    ``1 - ε + ε / (n - j)`` and any particular rank ``r > p`` with probability
    ``(n - 1 - j) / (n - 1 - p) · ε / (n - j)`` (still available × drawn). After a pointer pick
    the next pointer skips the ``g`` ranks right above ``p`` that are already taken, with
    ``P(g) = Π_{i<g} (m - i) / (M - i) · (M - m) / (M - g)``, ``M = n - 1 - p``, ``m = j - p``.
    Cost ``O(k³ + n·k)``.

    Parameters
    ----------
    n : int
        Number of candidates.
    k : int
        Slate length (``k <= n``).
    epsilon : float
        Exploration probability in [0, 1].

    Returns
    -------
    ndarray of shape (n, k), float64
        Row ``r`` is the candidate with score rank ``r`` (0 = best).
    """
    out = np.zeros((n, k), dtype=np.float64)
    prob = np.zeros(k + 1, dtype=np.float64)  # prob[p] = P(pointer == p) before position j
    prob[0] = 1.0
    for j in range(k):
        remaining = n - j
        ptr = (1.0 - epsilon) + epsilon / remaining
        other = epsilon / remaining
        spread = np.zeros(n + 1, dtype=np.float64)
        nxt = np.zeros(k + 1, dtype=np.float64)
        for p in range(min(j, n - 1) + 1):
            q = prob[p]
            if q == 0.0:
                continue
            out[p, j] += q * ptr
            big_m, m = n - 1 - p, j - p
            if big_m > 0:
                spread[p + 1] += q * other * (big_m - m) / big_m
            if j + 1 >= k:
                continue
            nxt[p] += q * other * (remaining - 1)  # a non-pointer pick leaves the pointer
            if big_m - m == 0:
                continue
            taken = 1.0  # P(the first g ranks above p are all taken)
            for g in range(m + 1):
                nxt[p + 1 + g] += q * ptr * taken * (big_m - m) / (big_m - g)
                taken *= (m - g) / (big_m - g)
        out[:, j] += np.cumsum(spread)[:n]
        prob = nxt
    return out


def plackett_luce_first_two(weights: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Exact Plackett–Luce marginals for positions 0 and 1 (``min(k, 2)`` columns).

    ``P(c, 0) = w_c / W`` and ``P(c, 1) = w_c · (S − P(c, 0) / (W − w_c))`` with
    ``S = Σ_a P(a, 0) / (W − w_a)``; ``O(n)``.
    """
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    first = w / total
    cols = [first]
    if k > 1 and w.size > 1:
        rest = total - w
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(rest > 0, first / np.where(rest > 0, rest, 1.0), 0.0)
        second = w * (ratio.sum() - ratio)
        cols.append(second / second.sum())  # renormalise away rounding only
    return np.stack(cols, axis=1)


def top_k_rows(values: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Column indices of each row's ``k`` largest values, largest first (ties: lower index)."""
    n = values.shape[1]
    if k < n // 4:
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
        sub = np.take_along_axis(values, part, axis=1)
        order = np.lexsort((part, -sub), axis=1)
        return np.take_along_axis(part, order, axis=1)
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


def simulate_marginals(
    sample_values: Callable[[np.random.Generator, int], NDArray[np.floating]],
    n: int,
    k: int,
    n_samples: int,
    rng: np.random.Generator,
    *,
    batch: int = 2_000,
) -> tuple[NDArray[np.float64], float]:
    """Monte-Carlo position marginals of a policy that ranks by random values.

    Parameters
    ----------
    sample_values : callable ``(rng, size) -> ndarray of shape (size, n)``
        Draws the random ranking values; each row's top ``k`` is one slate.
    n, k : int
        Candidates and slate length.
    n_samples : int
        Number of simulated slates.
    rng : numpy.random.Generator
    batch : int
        Slates simulated per vectorised batch (bounds memory).

    Returns
    -------
    marginals : ndarray of shape (n, k), float64
    standard_error : float
        The largest binomial standard error ``sqrt(p (1 - p) / n_samples)`` over all cells.
    """
    counts = np.zeros((n, k), dtype=np.int64)
    done = 0
    while done < n_samples:
        size = min(batch, n_samples - done)
        top = top_k_rows(np.asarray(sample_values(rng, size)), k)
        for j in range(k):
            counts[:, j] += np.bincount(top[:, j], minlength=n)
        done += size
    p = counts / float(n_samples)
    se = float(np.sqrt(p * (1.0 - p) / n_samples).max()) if p.size else 0.0
    return p, se
