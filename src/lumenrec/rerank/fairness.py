"""Exposure fairness re-rankers: provider shares, popularity-bucket targets, FA*IR.

Exposure is position-weighted as in DCG: rank ``r`` (1-based) gives ``w_r = 1/log2(r + 1)``;
a group's share of a top-``k`` list is its summed ``w_r`` over ``W_k = Σ_{r≤k} w_r``.

:class:`ProviderExposure` and :class:`PopularityExposure` build the top ``k`` greedily,
each position taking the candidate that maximises ``(1 - λ) · rel(i) - λ · Δviolation(i)``:

- a **cap** ``max_share`` gives every provider the budget ``max_share · W_k``; the violation
  an item adds is how far it pushes its provider over budget;
- a **minimum share** for a group (tail providers, a popularity bucket) is violated at
  position ``r`` only by the part of the target the positions left can no longer make up,
  so at λ = 1 the group's items go in as late as the target allows (least relevance lost).

Violations are measured in units of the current position's exposure ``w_r``, so they sit
on the same 0..1-per-pick scale as ``rel``.

λ = 0 returns the input order; λ = 1 meets every reachable target. ``feasible`` is False only
when the targets cannot be met with these candidates at all (checked by the λ = 1 greedy),
with a note saying why.

:class:`FAIR` is FA*IR (Zehlike et al., CIKM 2017): a binary protected attribute, target
proportion ``p`` and significance ``α``; every prefix ``i`` of the top ``k`` holds at least
``m(i)`` protected items, ``m`` from the binomial quantile with the adjusted ``α_c``
(:mod:`lumenrec.rerank._mtable`). It gives the same top-``k`` lists as LensKit 2025.8's
``lenskit.reranking.FAIRReranker`` (``n = k``) on the same input; the tests compare the two
on stored LensKit outputs and, when ``lenskit`` is importable, on fresh random inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.rerank._mtable import adjusted_alpha, mtable
from lumenrec.rerank._util import (
    assemble,
    check_fraction,
    check_k,
    check_lambda,
    exposure_weights,
    minmax,
    pick,
    unchanged,
)
from lumenrec.rerank.base import Candidates, ItemFeatures, Reranked

__all__ = ["FAIR", "BUCKETS", "PopularityExposure", "ProviderExposure", "popularity_buckets"]

#: Popularity bucket names :class:`PopularityExposure` targets accept.
BUCKETS = ("head", "mid", "tail", "long_tail")


def popularity_buckets(
    popularity: ArrayLike, head_share: float = 0.2, tail_share: float = 0.2
) -> NDArray[np.int8]:
    """Head (0) / mid (1) / tail (2) bucket of every item by interaction share.

    Items sorted by popularity (descending, ties by index): the head is the most popular
    items that together hold the first ``head_share`` of all interactions, the tail the least
    popular ones holding the last ``tail_share`` (items never interacted with are tail), the
    mid the rest. "Long tail" = mid ∪ tail.

    Returns
    -------
    ndarray of shape (n_items,), int8
    """
    pop = np.asarray(popularity, dtype=np.float64)
    order = np.argsort(-pop, kind="stable")
    total = pop.sum()
    out = np.full(pop.shape, 2, dtype=np.int8)
    if total <= 0:
        return out
    before = (np.cumsum(pop[order]) - pop[order]) / total  # share held by more popular items
    out[order[before < head_share]] = 0
    out[order[(before >= head_share) & (before < 1.0 - tail_share)]] = 1
    out[pop == 0] = 2
    return out


def _exposure_greedy(
    rel: NDArray[np.float64],
    lam: float,
    k: int,
    cap_groups: NDArray[np.intp] | None,
    max_share: float | None,
    members: NDArray[np.bool_] | None,
    min_shares: NDArray[np.float64] | None,
) -> tuple[list[int], float]:
    """Greedy picks and the total violation of the final list (see the module docstring)."""
    n = rel.shape[0]
    weights = exposure_weights(k)
    total_w = weights.sum()
    later = total_w - np.cumsum(weights)  # exposure still to come after each position
    available = np.ones(n, dtype=bool)
    chosen: list[int] = []
    use_cap = cap_groups is not None and max_share is not None
    budget = (max_share or 0.0) * total_w
    spent = np.zeros(int(cap_groups.max()) + 2 if use_cap else 1)  # last slot: unknown
    reached = None if members is None else np.zeros(members.shape[1])
    violation = 0.0
    for r in range(k):
        w = weights[r]
        over = np.zeros(n)
        if use_cap:
            before = spent[cap_groups]
            over = np.maximum(before + w - budget, 0.0) - np.maximum(before - budget, 0.0)
            over = np.where(cap_groups >= 0, over, 0.0)
        penalty = over.copy()
        if reached is not None:
            gained = reached[None, :] + w * members
            need = min_shares[None, :] * total_w - gained - later[r]
            penalty += np.maximum(need, 0.0).sum(axis=1)
        # in units of this position's exposure, so it is on the scale of rel (0..1 per pick)
        best = pick((1.0 - lam) * rel - lam * penalty / w, available)
        chosen.append(best)
        available[best] = False
        violation += over[best] / total_w
        if use_cap:
            spent[cap_groups[best]] += w
        if reached is not None:
            reached += w * members[best]
    if reached is not None:
        violation += float(np.maximum(min_shares * total_w - reached, 0.0).sum()) / total_w
    return chosen, float(violation)


class _ExposureStage:
    """Shared rerank loop of the two exposure stages (subclasses set up the groups)."""

    name = "exposure"
    lam: float

    def _groups(
        self, candidates: Candidates, features: ItemFeatures, notes: list[str]
    ) -> tuple[NDArray[np.intp] | None, float | None, NDArray[np.bool_] | None, NDArray | None]:
        raise NotImplementedError

    def _unreachable(self, candidates: Candidates, k: int, members: NDArray | None) -> str:
        return "targets not reachable with these candidates"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder ``candidates`` so the first ``min(k, n)`` trade relevance and exposure."""
        k = check_k(k)
        n = len(candidates)
        if self.lam == 0.0 or n <= 1:
            return unchanged(candidates)
        notes: list[str] = []
        cap_groups, cap, members, shares = self._groups(candidates, features, notes)
        if cap is None and members is None:
            return unchanged(candidates, tuple(notes))
        k_eff = min(k, n)
        rel = minmax(candidates.scores)
        chosen, violation = _exposure_greedy(rel, self.lam, k_eff, cap_groups, cap, members, shares)
        feasible = True
        if violation > 1e-9:
            best = chosen
            if self.lam < 1.0:
                best, violation = _exposure_greedy(
                    rel, 1.0, k_eff, cap_groups, cap, members, shares
                )
            if violation > 1e-9:
                feasible = False
                notes.append(self._unreachable(candidates, k_eff, members))
                chosen = best
        return assemble(candidates, chosen, feasible, notes)


class ProviderExposure(_ExposureStage):
    """Cap each provider's exposure share and/or guarantee tail providers a minimum share.

    Parameters
    ----------
    lam : float in [0, 1], default 0.5
        Weight on the exposure targets (0 = input order, 1 = meet them whenever reachable).
    max_share : float in (0, 1] or None, default 0.3
        Most position-weighted exposure one provider may get in the top ``k``. Items of an
        unknown provider (code -1) are not capped.
    min_share : float in [0, 1] or None, default None
        Least exposure share for items of protected providers.
    protected_providers : sequence of int, optional
        Provider codes that ``min_share`` protects. Default: the tail providers, i.e. all
        known providers outside the head, the most popular providers (by summed item
        popularity) that together hold ``head_share`` of the interactions.
    head_share : float, default 0.5
    """

    name = "provider"

    def __init__(
        self,
        lam: float = 0.5,
        max_share: float | None = 0.3,
        min_share: float | None = None,
        protected_providers: Sequence[int] | None = None,
        head_share: float = 0.5,
    ) -> None:
        self.lam = check_lambda(lam, "provider λ")
        self.max_share = (
            None if max_share is None else check_fraction(max_share, "max_share", open_low=True)
        )
        self.min_share = None if min_share is None else check_fraction(min_share, "min_share")
        self.protected_providers = (
            None if protected_providers is None else np.asarray(protected_providers, dtype=np.int64)
        )
        self.head_share = check_fraction(head_share, "head_share")

    def __repr__(self) -> str:
        return (
            f"ProviderExposure(lam={self.lam}, max_share={self.max_share}, "
            f"min_share={self.min_share})"
        )

    def _groups(self, candidates, features, notes):  # type: ignore[no-untyped-def]
        if features.providers is None:
            notes.append("no item providers: order kept")
            return None, None, None, None
        prov = features.providers[candidates.items]
        members = shares = None
        if self.min_share:
            if self.protected_providers is not None:
                protected = np.isin(prov, self.protected_providers)
            else:
                known = features.providers >= 0
                totals = np.bincount(
                    features.providers[known],
                    weights=features.popularity[known],
                    minlength=len(features.provider_names) or 0,
                )
                head = popularity_buckets(totals, self.head_share, 0.0) == 0
                protected = (prov >= 0) & ~head[np.maximum(prov, 0)]
            members = protected[:, None]
            shares = np.array([self.min_share])
        return prov.astype(np.intp), self.max_share, members, shares

    def _unreachable(self, candidates: Candidates, k: int, members: NDArray | None) -> str:
        parts = []
        if self.max_share is not None:
            parts.append(f"provider max share {self.max_share:g}")
        if members is not None:
            n_prot = int(members[:, 0].sum())
            parts.append(
                f"provider min share {self.min_share:g} (only {n_prot} of {len(candidates)} "
                "candidates from protected providers)"
            )
        return " / ".join(parts) + " not reachable with these candidates; best list returned"


class PopularityExposure(_ExposureStage):
    """Minimum exposure shares for popularity buckets (e.g. the long tail).

    Parameters
    ----------
    lam : float in [0, 1], default 0.5
        Weight on the targets (0 = input order).
    targets : mapping of str to float, default {"long_tail": 0.3}
        Least position-weighted exposure share per bucket, buckets from
        :func:`popularity_buckets`: ``"head"``, ``"mid"``, ``"tail"``, ``"long_tail"``.
    head_share, tail_share : float, default 0.2
        Bucket boundaries (share of interactions held by the head / the tail).
    """

    name = "popularity"

    def __init__(
        self,
        lam: float = 0.5,
        targets: dict[str, float] | None = None,
        head_share: float = 0.2,
        tail_share: float = 0.2,
    ) -> None:
        self.lam = check_lambda(lam, "popularity λ")
        raw = {"long_tail": 0.3} if targets is None else dict(targets)
        bad = sorted(set(raw) - set(BUCKETS))
        if bad:
            msg = f"unknown popularity bucket(s) {bad}; known: {list(BUCKETS)}"
            raise ConfigError(msg)
        self.targets = {b: check_fraction(v, f"popularity target {b!r}") for b, v in raw.items()}
        self.head_share = check_fraction(head_share, "head_share")
        self.tail_share = check_fraction(tail_share, "tail_share")

    def __repr__(self) -> str:
        return f"PopularityExposure(lam={self.lam}, targets={self.targets})"

    def _groups(self, candidates, features, notes):  # type: ignore[no-untyped-def]
        if not self.targets:
            return None, None, None, None
        bucket = popularity_buckets(features.popularity, self.head_share, self.tail_share)
        b = bucket[candidates.items]
        masks = {"head": b == 0, "mid": b == 1, "tail": b == 2, "long_tail": b >= 1}
        members = np.stack([masks[name] for name in self.targets], axis=1)
        return None, None, members, np.array(list(self.targets.values()))

    def _unreachable(self, candidates: Candidates, k: int, members: NDArray | None) -> str:
        counts = (
            {} if members is None else dict(zip(self.targets, members.sum(axis=0), strict=True))
        )
        have = ", ".join(f"{b} {int(c)}" for b, c in counts.items())
        return (
            f"popularity targets {self.targets} not reachable: candidates per bucket {have} "
            f"of {len(candidates)}; best list returned"
        )


class FAIR:
    """FA*IR top-k re-ranking (Zehlike et al., CIKM 2017) with the adjusted significance.

    Walks the top ``k`` positions: when the prefix would hold fewer protected items than
    ``m(i)``, the best remaining protected candidate goes next; otherwise the better of the
    best protected and best non-protected candidates (by input position, i.e. score).
    Same lists as LensKit's ``FAIRReranker(n=k, p, alpha)`` (see the module docstring).

    Parameters
    ----------
    p : float in [0, 1), default 0.5
        Target proportion of protected items (0 = no constraint: input order).
    alpha : float in (0, 1), default 0.1
        Significance of the ranked group fairness test (family-wise over the k prefixes).
    protected : array-like of shape (n_items,), bool, or "long_tail", default "long_tail"
        Which items are protected; ``"long_tail"`` = outside the popularity head
        (:func:`popularity_buckets` with ``head_share``).
    head_share : float, default 0.2
    """

    name = "fair"

    def __init__(
        self,
        p: float = 0.5,
        alpha: float = 0.1,
        protected: ArrayLike | str = "long_tail",
        head_share: float = 0.2,
    ) -> None:
        self.p = check_lambda(p, "fair p")
        self.alpha = check_lambda(alpha, "fair alpha")
        if self.p >= 1.0 or not 0.0 < self.alpha < 1.0:
            msg = f"FA*IR needs p in [0, 1) and alpha in (0, 1) (got p={p!r}, alpha={alpha!r})"
            raise ConfigError(msg)
        if isinstance(protected, str):
            if protected != "long_tail":
                msg = f"protected must be a boolean item array or 'long_tail' (got {protected!r})"
                raise ConfigError(msg)
            self.protected: NDArray[np.bool_] | str = protected
        else:
            self.protected = np.asarray(protected, dtype=bool).reshape(-1)
        self.head_share = check_fraction(head_share, "head_share")
        self._tables: dict[int, NDArray[np.int64]] = {}

    def __repr__(self) -> str:
        return f"FAIR(p={self.p}, alpha={self.alpha})"

    def table(self, k: int) -> NDArray[np.int64]:
        """The adjusted m-table for lists of length ``k`` (computed once per k)."""
        if k not in self._tables:
            self._tables[k] = mtable(k, self.p, adjusted_alpha(k, self.p, self.alpha))
        return self._tables[k]

    def _flags(self, items: NDArray[np.int32], features: ItemFeatures) -> NDArray[np.bool_]:
        if isinstance(self.protected, str):
            return popularity_buckets(features.popularity, self.head_share, 0.0)[items] != 0
        if self.protected.shape[0] != features.n_items:
            msg = f"protected has {self.protected.shape[0]} flags for {features.n_items} items"
            raise DataError(msg)
        return self.protected[items]

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder ``candidates`` so every prefix of the top ``min(k, n)`` passes the test."""
        k = check_k(k)
        n = len(candidates)
        if self.p == 0.0 or n == 0:
            return unchanged(candidates)
        k_eff = min(k, n)
        table = self.table(k)  # the test is for k positions even if fewer candidates
        flags = self._flags(candidates.items, features)
        prot = np.flatnonzero(flags).tolist()
        other = np.flatnonzero(~flags).tolist()
        ip = io = count = 0
        chosen: list[int] = []
        short_at = None
        for i in range(k_eff):
            if count < table[i] and ip < len(prot):
                take_protected = True
            elif ip < len(prot) and io < len(other):
                take_protected = prot[ip] < other[io]
            else:
                take_protected = io >= len(other)
            if take_protected:
                chosen.append(prot[ip])
                ip += 1
                count += 1
            else:
                chosen.append(other[io])
                io += 1
            if count < table[i] and short_at is None:
                short_at = i
        if short_at is None:
            return assemble(candidates, chosen)
        note = (
            f"FA*IR p={self.p:g} alpha={self.alpha:g} not reachable: the top {short_at + 1} need "
            f"{int(table[short_at])} protected items but only {len(prot)} of {n} candidates "
            "are protected"
        )
        return assemble(candidates, chosen, False, (note,))
