"""Exploration in the serving path: slate policies with logged propensities, simulation.

Policies act on the candidates a recommender produced (never replacing it) and log, for every
shown item, the probability of showing it at that position. See ``docs/exploration.md``.
"""

from lumenrec.explore._linear import LinearThompson, LinUCB
from lumenrec.explore.ope import (
    ESTIMATORS,
    BanditLog,
    Estimate,
    estimate,
    relative_error,
    support_report,
)
from lumenrec.explore.policies import (
    POLICY_NAMES,
    UCB,
    EpsilonGreedy,
    Greedy,
    Policy,
    PolicyContext,
    RandomPolicy,
    Slate,
    Softmax,
    Thompson,
    make_policy,
)

__all__ = [
    "ESTIMATORS",
    "POLICY_NAMES",
    "BanditLog",
    "Estimate",
    "UCB",
    "EpsilonGreedy",
    "Greedy",
    "LinUCB",
    "LinearThompson",
    "Policy",
    "PolicyContext",
    "RandomPolicy",
    "Slate",
    "Softmax",
    "Thompson",
    "estimate",
    "make_policy",
    "relative_error",
    "support_report",
]
