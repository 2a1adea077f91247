"""Published anchors and protocol descriptions, keyed by (dataset, protocol).

A copy of the numbers in the design notes' BENCHMARKS.md, kept in the package so that a
report never reads that file at run time. Metric keys follow the results JSON
(``ndcg@10``, ``precision@10``, ``recall@10``, ``map@10``, ``hr@10``, ``auc``, ...).
A value is a float, or a ``(low, high)`` range where the literature reports several.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ANCHORS",
    "DATASET_ALIASES",
    "GOALS",
    "PROTOCOLS",
    "anchors_for",
    "describe_protocol",
    "goal_for",
]

Anchor = dict[str, float | tuple[float, float]]

#: One-paragraph description of each protocol (what the split is, what counts as relevant).
PROTOCOLS: dict[str, str] = {
    "p1": "ML-100K, each user's ratings split at random 75% train / 25% test (per user, "
    "seeded; the Microsoft Recommenders protocol). Every rating is a positive; training "
    "items are masked; full ranking; k = 10.",
    "p1-item": "ML-100K, the item-stratified 75/25 split the Microsoft Recommenders notebook "
    "ran; every rating is a positive; full ranking.",
    "p2": "Leave-one-out in time order (S3-Rec / eSASRec): last item test, second-to-last "
    "validation; the target is ranked against every item with the user's earlier items "
    "masked. HR@10 = Recall@10 (one target per user).",
    "p3": "Cold items: 10% of items removed from training; test users are those whose P2 "
    "target is a cold item; ranked against all items.",
    "p3-users": "Cold users: 10% of users keep only their first interaction; P2 targets.",
    "p4": "RecBole general protocol on ML-1M: ratings >= 3, 10-core, each user's "
    "interactions shuffled and split 80/10/10, selected on validation NDCG@10; full ranking.",
    "p5": "Coat debiasing: biased (MNAR) training ratings, randomly assigned (MAR) test "
    "ratings; labels rating >= 3; AUC pooled, NDCG@5 / Recall@5 per user over own test items.",
    "p6": "Off-policy evaluation on the Open Bandit Dataset sample (campaign 'all'): estimate "
    "one logging policy's click rate from the other's logs; error = |V_hat - V| / V, "
    "30 bootstrap resamples.",
    "p7": "Privacy-utility: NDCG@10 / Recall@10 at epsilon in {1, 2, 4, 8, inf}, "
    "delta = 1e-6 (ML-1M on P4, ML-100K on P1).",
    "p8": "Re-ranking trade-offs: each re-ranker swept over lambda in {0, 0.1, ..., 1} on top "
    "of the best base model, NDCG@10 against diversity, calibration (C_KL) or provider "
    "exposure (Gini).",
    "p9": "Explanation faithfulness (deletion test): remove the top-m cited history items, "
    "re-score, PN@10 = share of items that leave the top 10; vs m random items.",
    "temporal": "Global time cut: the last 20% of events by time are the test part.",
}

#: Names under which the same data appears in results files.
DATASET_ALIASES: dict[str, str] = {
    "ml-1m-processed": "ml-1m",
    "movielens-100k": "ml-100k",
    "movielens-1m": "ml-1m",
}

_MS = "MS Recommenders"
#: Published numbers: (dataset, protocol) → {source name: {metric: value}}.
ANCHORS: dict[tuple[str, str], dict[str, Anchor]] = {
    ("ml-100k", "p1"): {
        f"BiVAE ({_MS})": {
            "ndcg@10": 0.4751,
            "precision@10": 0.4118,
            "recall@10": 0.2191,
            "map@10": 0.1461,
        },
        f"BPR ({_MS})": {"ndcg@10": 0.4420, "precision@10": 0.3882, "recall@10": 0.2125},
        f"LightGCN ({_MS})": {"ndcg@10": 0.4198, "precision@10": 0.3796, "recall@10": 0.1443},
        f"SAR ({_MS})": {"ndcg@10": 0.3825, "precision@10": 0.3308, "recall@10": 0.1764},
    },
    ("amazon-beauty", "p2"): {
        "SASRec + sampled softmax (independent)": {"ndcg@10": 0.0531, "hr@10": 0.0921},
        "BSARec (reported)": {"ndcg@10": 0.0611, "hr@10": 0.1008},
        "SASRec BCE (original)": {"ndcg@10": 0.0318, "hr@10": 0.0605},
        "TIGER (reported)": {"ndcg@10": 0.0384, "hr@10": 0.0648},
    },
    ("amazon-toys", "p2"): {
        "SASRec + sampled softmax (independent)": {"ndcg@10": 0.0580, "hr@10": 0.0970},
    },
    ("amazon-sports", "p2"): {
        "SASRec + sampled softmax (independent)": {"ndcg@10": 0.0314, "hr@10": 0.0569},
        "BSARec (reported)": {"hr@10": 0.0612},
    },
    ("ml-1m", "p4"): {
        "ADMM-SLIM (RecBole)": {"ndcg@10": 0.2904, "recall@10": 0.2134},
        "EASE (RecBole)": {"ndcg@10": 0.2865, "recall@10": 0.2139},
        "RecVAE (RecBole)": {"ndcg@10": 0.2795},
        "LightGCN (RecBole)": {"ndcg@10": 0.2476},
        "BPR (RecBole)": {"ndcg@10": 0.2407},
    },
    ("coat", "p5"): {
        "naive MF": {"auc": (0.703, 0.705), "ndcg@5": (0.603, 0.605), "mse": 1.202},
        "MF-IPS": {"auc": (0.714, 0.717), "ndcg@5": 0.617, "mse": 1.093},
        "DR-JL": {"auc": (0.723, 0.729), "ndcg@5": (0.627, 0.629)},
        "MRDR": {"auc": (0.727, 0.732), "ndcg@5": (0.627, 0.632)},
        "StableDR": {"auc": 0.735, "ndcg@5": 0.640},
        "UPO (AAAI 2026)": {"auc": 0.749, "ndcg@5": 0.691},
        "DR-BIAS+CDR": {"auc": 0.751, "recall@5": 0.668},
    },
    # P6: obp 0.5.7 bootstrap relative errors (lower is better).
    ("open-bandit", "p6:bts_from_random"): {
        "obp": {
            "dm": 0.157,
            "ips": 0.311,
            "snips": 0.312,
            "dr": 0.292,
            "switch-dr": 0.258,
            "dr-os": 0.160,
            "mips-slope": 0.155,
        }
    },
    ("open-bandit", "p6:random_from_bts"): {
        "obp": {"dm": 0.437, "ips": 0.391, "dr": 0.293, "dr-os": 0.332},
    },
    # P8 diversity anchor (MS Recommenders diversity notebook, ML-100K 75/25).
    ("ml-100k", "p8:diversity"): {
        f"ALS ({_MS})": {"ndcg@10": 0.0407, "diversity_cooccurrence": 0.891},
        f"random ({_MS})": {"diversity_cooccurrence": 0.923},
    },
}

#: The project's goal per (dataset, protocol), as a sentence.
GOALS: dict[tuple[str, str], str] = {
    ("ml-100k", "p1"): "NDCG@10 >= 0.49, P@10 >= 0.42, R@10 >= 0.23 with the best model "
    "(mean over 5 seeds).",
    ("amazon-beauty", "p2"): "NDCG@10 >= 0.062 and HR@10 >= 0.102 with a text-fused "
    "sequential model.",
    ("ml-1m", "p4"): "NDCG@10 >= 0.295.",
    ("coat", "p5"): "IPS and DR above naive on every metric; best model AUC >= 0.75, "
    "NDCG@5 >= 0.69.",
    ("open-bandit", "p6"): "Best estimator's bootstrap error <= 0.14 (BTS from Random) and "
    "<= 0.27 (Random from BTS), better than every obp estimator.",
    ("ml-1m", "p7"): ">= 90% of the non-private NDCG@10 at epsilon = 8 and >= 75% at epsilon = 2.",
}


def _key(dataset: str | None, protocol: str | None) -> tuple[str, str]:
    name = (dataset or "").strip().lower()
    return DATASET_ALIASES.get(name, name), (protocol or "").strip().lower()


def anchors_for(dataset: str | None, protocol: str | None) -> dict[str, Anchor]:
    """Published anchors for a dataset and protocol (empty when none are known)."""
    return dict(ANCHORS.get(_key(dataset, protocol), {}))


def goal_for(dataset: str | None, protocol: str | None) -> str | None:
    """The project's goal sentence for a dataset and protocol, if any."""
    return GOALS.get(_key(dataset, protocol))


def describe_protocol(protocol: str | None) -> str | None:
    """The package's description of a protocol name (``p1`` ... ``p9``), if known."""
    key: Any = (protocol or "").strip().lower()
    return PROTOCOLS.get(key)
