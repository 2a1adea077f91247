"""Protocol P5: debiasing on Coat, biased (MNAR) training and randomly assigned (MAR) test.

As ``docs/BENCHMARKS.md`` P5 fixes it (design repo):

- Every nonzero cell is an example (row = user, column = item). Binary labels: ``rating >=
  threshold`` (3 is the main protocol, 4 a labelled variant); ``task="rating"`` keeps the raw
  1-5 ratings (Schnabel et al. 2016) and reports MSE / MAE.
- Per seed ``s``, a seeded 10% of the MAR test pairs (``default_rng([s, 5])``) is held out of
  the reported test: its first half (5% of the test) is the sample that gives ``P(y)`` for
  the Naive Bayes propensities, and the whole 10% is the **validation** set (early stopping
  and hyper-parameter choice). Nothing is tuned on the reported test (the other 90%).
- Propensities: ``mf-ips-nb`` / ``mf-snips-nb`` / ``mf-dr-nb`` use the protocol's main
  variant (Naive Bayes on the binary label, two values). ``mf-ips`` / ``mf-snips`` /
  ``mf-dr`` use a per-pair variant: a logistic observation model on Coat's user x item
  features fitted on the training log's observed-vs-unobserved cells (no labels), times the
  Naive Bayes ratio P(r | o=1) / P(r) on the 1-5 rating value from the same 5% MAR sample;
  without feature files they fall back to Naive Bayes on the label.
- Training uses only ``train.ascii`` (the MNAR log); the held-out MAR labels are never
  trained on.
- Metrics on the reported test: AUC = one ROC-AUC over all pooled pairs (ties averaged);
  NDCG@k and Recall@k per user over only that user's own test items, Recall@k = hits /
  min(k, #positives), a user with no positive test item scores 1 on both (the reference
  code's convention); mean over users; mean ± std (ddof 1) over seeds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from lumenrec._progress import progress as progress_bar
from lumenrec.errors import ConfigError, DataError
from lumenrec.types import PathLike

__all__ = [
    "ANCHORS",
    "DEFAULT_PARAMS",
    "MODELS",
    "P5Split",
    "evaluate_p5_model",
    "make_p5_model",
    "p5_binary_metrics",
    "p5_rating_metrics",
    "roc_auc",
    "run_p5",
    "split_p5",
]

log = logging.getLogger(__name__)

#: Model name -> DebiasedMF method.
MODELS = {
    "mf": "naive",
    "mf-ips": "ips",
    "mf-snips": "snips",
    "mf-dr": "dr",
    "mf-ips-nb": "ips",
    "mf-snips-nb": "snips",
    "mf-dr-nb": "dr",
}

_BACKBONE = {"bias": True, "learning_rate": 0.005, "weight_decay": 1e-3}
#: Per-pair propensities: feature observation model x Naive Bayes on the rating value.
_FEATURES = {"propensity_model": "features", "naive_bayes_on": "rating"}

#: Hyper-parameters chosen on the validation part by ``benchmarks/bench_p5_coat.py``
#: (mean validation AUC over seeds 0-4; see benchmarks/results/p5_coat.json).
#: ``propensity_model`` ("naive-bayes" or "features") is read by :func:`evaluate_p5_model`.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "mf": _BACKBONE,
    "mf-ips": {**_BACKBONE, **_FEATURES},
    "mf-snips": {**_BACKBONE, **_FEATURES},
    "mf-dr": {**_BACKBONE, **_FEATURES, "weight_decay": 3e-3, "imputation_weight_decay": 1e-4},
    "mf-ips-nb": _BACKBONE,
    "mf-snips-nb": _BACKBONE,
    "mf-dr-nb": _BACKBONE,
}
_COMMON = {"n_factors": 4, "n_epochs": 300, "patience": 20, "batch_size": 128}

#: Published numbers on Coat (labels >= 3, K = 5; design doc BENCHMARKS.md, P5).
ANCHORS: dict[str, Any] = {
    "binary": {
        "mf": {"auc": [0.703, 0.705], "ndcg@5": [0.603, 0.605]},
        "mf-ips": {"auc": [0.714, 0.717], "ndcg@5": [0.617, 0.617]},
        "mf-dr": {"auc": [0.723, 0.729], "ndcg@5": [0.627, 0.629], "paper": "DR-JL"},
        "literature": {
            "MRDR": {"auc": [0.727, 0.732], "ndcg@5": [0.627, 0.632]},
            "StableDR": {"auc": 0.735, "ndcg@5": 0.640},
            "UPO (AAAI 2026)": {"auc": 0.749, "ndcg@5": 0.691},
            "DR-BIAS+CDR": {"auc": 0.751, "recall@5": 0.668},
        },
        "goal": "IPS and DR above naive on every metric; best model AUC >= 0.75, NDCG@5 >= 0.69",
    },
    "rating": {"mf": {"mse": 1.202}, "mf-ips": {"mse": 1.093}},
}


@dataclass(frozen=True)
class P5Split:
    """One seed's P5 parts, all users x items CSR float32 ratings of the same shape.

    Attributes
    ----------
    train : MNAR training ratings (all of train.ascii).
    propensity_sample : the 5% of MAR test pairs giving P(y) (inside ``valid``).
    valid : the held-out 10% of MAR test pairs (validation).
    test : the reported 90% of the MAR test pairs.
    seed : int
    user_features, item_features : ndarray of shape (n_users | n_items, d), optional
        Side features (Coat's one-hot user/item attributes) for the feature propensities.
    """

    train: sp.csr_matrix
    propensity_sample: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    seed: int
    user_features: NDArray | None = None
    item_features: NDArray | None = None


def split_p5(
    train: sp.spmatrix,
    test: sp.spmatrix,
    seed: int,
    propensity_fraction: float = 0.05,
    valid_fraction: float = 0.10,
    user_features: ArrayLike | None = None,
    item_features: ArrayLike | None = None,
) -> P5Split:
    """Hold a seeded ``valid_fraction`` of the MAR test out (its first
    ``propensity_fraction`` of the test is the P(y) sample); see the module docstring.
    ``user_features`` / ``item_features`` ride along for the feature propensities."""
    if not 0 < propensity_fraction <= valid_fraction < 1:
        msg = "need 0 < propensity_fraction <= valid_fraction < 1"
        raise ConfigError(msg)
    coo = sp.csr_matrix(test, dtype=np.float32).tocoo()
    perm = np.random.default_rng([int(seed), 5]).permutation(coo.nnz)
    n_valid = round(valid_fraction * coo.nnz)
    n_prop = round(propensity_fraction * coo.nnz)

    def part(idx: NDArray[np.int64]) -> sp.csr_matrix:
        idx = np.sort(idx)
        out = sp.csr_matrix((coo.data[idx], (coo.row[idx], coo.col[idx])), shape=coo.shape)
        out.sort_indices()
        return out

    return P5Split(
        sp.csr_matrix(train, dtype=np.float32),
        part(perm[:n_prop]),
        part(perm[:n_valid]),
        part(perm[n_valid:]),
        int(seed),
        None if user_features is None else np.asarray(user_features, np.float64),
        None if item_features is None else np.asarray(item_features, np.float64),
    )


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC-AUC (Mann-Whitney, ties count one half) of ``scores`` for binary ``labels``.

    Parameters
    ----------
    labels : array-like of shape (n,), {0, 1} or bool
    scores : array-like of shape (n,), float

    Returns
    -------
    float
        NaN when only one class is present.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def p5_binary_metrics(
    users: ArrayLike, labels: ArrayLike, scores: ArrayLike, k: int = 5
) -> dict[str, float]:
    """P5 metrics of pooled (user, label, score) test triples.

    Parameters
    ----------
    users : array-like of shape (n,), int
    labels : array-like of shape (n,), {0, 1}
    scores : array-like of shape (n,), float
    k : int

    Returns
    -------
    dict
        ``auc`` (pooled), ``ndcg@k`` and ``recall@k`` (mean over users; a user with no
        positive scores 1 on both), ``n_users``, ``n_pairs``.
    """
    u = np.asarray(users, np.int64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if not len(u) == len(y) == len(s) or len(u) == 0:
        msg = f"users, labels, scores must be non-empty and equally long ({len(u)}, {len(y)}, {len(s)})"
        raise DataError(msg)
    order = np.lexsort((-s, u))  # by user, then score descending (stable for ties)
    u, y = u[order], y[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    counts = np.diff(np.r_[starts, len(u)])
    rank = np.arange(len(u)) - np.repeat(starts, counts)
    discount = 1.0 / np.log2(rank + 2.0)
    top = rank < k
    dcg = np.add.reduceat(np.where(top, y * discount, 0.0), starts)
    hits = np.add.reduceat(np.where(top, y, 0.0), starts)
    n_pos = np.add.reduceat(y, starts)
    ideal_disc = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
    n_ideal = np.minimum(n_pos, np.minimum(counts, k)).astype(np.int64)
    has = n_ideal > 0
    ndcg = np.ones(len(starts))
    recall = np.ones(len(starts))
    ndcg[has] = dcg[has] / ideal_disc[n_ideal[has] - 1]
    recall[has] = hits[has] / np.minimum(k, n_pos[has])
    return {
        "auc": roc_auc(y, s[order]),
        f"ndcg@{k}": float(ndcg.mean()),
        f"recall@{k}": float(recall.mean()),
        "n_users": int(len(starts)),
        "n_pairs": int(len(u)),
    }


def p5_rating_metrics(ratings: ArrayLike, predictions: ArrayLike) -> dict[str, float]:
    """MSE and MAE of predicted ratings (rating variant).

    Parameters
    ----------
    ratings, predictions : array-like of shape (n,), float
    """
    r = np.asarray(ratings, np.float64).ravel()
    p = np.asarray(predictions, np.float64).ravel()
    return {"mse": float(np.mean((p - r) ** 2)), "mae": float(np.mean(np.abs(p - r)))}


def make_p5_model(
    name: str, seed: int, *, threshold: float = 3, task: str = "binary", **params: Any
) -> Any:
    """The :class:`~lumenrec.models.debiased.DebiasedMF` behind model ``name`` (P5 defaults
    from :data:`DEFAULT_PARAMS`, overridden by ``params``; ``propensity_model`` is dropped:
    :func:`evaluate_p5_model` builds the feature propensities)."""
    from lumenrec.models.debiased import DebiasedMF

    if name not in MODELS:
        msg = f"unknown P5 model {name!r}; valid: {', '.join(MODELS)}"
        raise ConfigError(msg)
    merged = {**_COMMON, **DEFAULT_PARAMS.get(name, {}), **params}
    merged.pop("propensity_model", None)  # read by evaluate_p5_model
    return DebiasedMF(
        method=MODELS[name],
        task=task,
        threshold=float(threshold),
        random_state=int(seed),
        progress=False,
        **merged,
    )


def _pairs(mat: sp.csr_matrix) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray]:
    coo = mat.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data


def evaluate_p5_model(
    name: str,
    split: P5Split,
    *,
    threshold: float = 3,
    task: str = "binary",
    k: int = 5,
    on: str = "test",
    **params: Any,
) -> dict[str, Any]:
    """Fit model ``name`` on ``split.train`` and score it on ``split.test`` (or ``valid``).

    Returns
    -------
    dict
        The metrics (binary: ``auc``, ``ndcg@k``, ``recall@k``; rating: ``mse``, ``mae``)
        plus ``valid_score`` (best validation AUC or -MSE), ``best_epoch``,
        ``propensity_source`` and ``fit_time``.
    """
    params = {**DEFAULT_PARAMS.get(name, {}), **params}
    prop_model = params.pop("propensity_model", "naive-bayes")
    if prop_model not in ("naive-bayes", "features"):
        msg = f"propensity_model must be 'naive-bayes' or 'features' (got {prop_model!r})"
        raise ConfigError(msg)
    given = None
    start = time.perf_counter()
    if prop_model == "features" and MODELS[name] != "naive":
        if split.user_features is None or split.item_features is None:
            log.info("P5 %s: no user/item features; Naive Bayes on the label instead", name)
            params["naive_bayes_on"] = "label"
        else:
            from lumenrec.models._propensity import feature_propensities

            given = feature_propensities(split.train, split.user_features, split.item_features)
            params["propensity"] = "given-naive-bayes"
    model = make_p5_model(name, split.seed, threshold=threshold, task=task, **params)
    model.fit(
        split.train, propensities=given, mar_sample=split.propensity_sample, valid=split.valid
    )
    fit_time = time.perf_counter() - start
    users, items, ratings = _pairs(split.test if on == "test" else split.valid)
    if task == "binary":
        scores = model.predict(users, items)
        out: dict[str, Any] = p5_binary_metrics(users, ratings >= threshold, scores, k)
    else:
        out = p5_rating_metrics(ratings, model.predict(users, items))
    out.update(
        valid_score=float(model.valid_history_.max()) if model.valid_history_.size else None,
        best_epoch=int(model.best_epoch_),
        propensity_source=model.propensity_source_,
        fit_time=fit_time,
    )
    return out


def _summary(values: list[float]) -> dict[str, float | None]:
    arr = np.asarray(values, np.float64)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
    }


def run_p5(
    models: Sequence[str],
    seeds: Sequence[int],
    data_dir: PathLike | None = None,
    threshold: float = 3,
    progress: bool = True,
    *,
    task: str = "binary",
    params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run protocol P5 on Coat for ``models`` over ``seeds``; a JSON-ready result.

    Parameters
    ----------
    models : sequence of str
        Names from :data:`MODELS` (``mf``, ``mf-ips``, ``mf-snips``, ``mf-dr`` and the
        Naive-Bayes-only ``mf-ips-nb``, ``mf-snips-nb``, ``mf-dr-nb``).
    seeds : sequence of int
        Each seed draws its held-out MAR part and the model initialisation (>= 5 for the
        published comparison).
    data_dir : str or PathLike, optional
        As for :func:`lumenrec.datasets.coat.load_coat`.
    threshold : float
        Binary label = rating >= threshold (3 = main protocol, 4 = variant).
    progress : bool
        A progress bar over (model, seed) fits.
    task : {"binary", "rating"}
    params : dict, optional
        ``{model: {param: value}}`` overriding :data:`DEFAULT_PARAMS`.

    Returns
    -------
    dict
        ``protocol``, ``description``, ``dataset`` (sizes, sha256), ``seeds``, ``threshold``,
        ``task``, ``k``, ``params``, ``per_seed`` ({model: [metrics per seed]}),
        ``aggregate`` ({model: {metric: {mean, std}}}), ``anchors``.
    """
    from lumenrec.datasets.coat import load_coat

    names = [m.strip().lower() for m in models]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        msg = f"unknown P5 models {unknown}; valid: {', '.join(MODELS)}"
        raise ConfigError(msg)
    if task not in ("binary", "rating"):
        msg = f"task must be 'binary' or 'rating' (got {task!r})"
        raise ConfigError(msg)
    seeds = [int(s) for s in seeds]
    if not seeds:
        msg = "give at least one seed (5 or more for the published comparison)"
        raise ConfigError(msg)
    data = load_coat(data_dir, side_files=True)
    params = params or {}
    k = 5
    feats = {"user_features": data.user_features, "item_features": data.item_features}
    splits = {s: split_p5(data.train, data.test, s, **feats) for s in seeds}
    per_seed: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    jobs = [(n, s) for n in names for s in seeds]
    for name, seed in progress_bar(jobs, desc="P5", enabled=progress):
        res = evaluate_p5_model(
            name, splits[seed], threshold=threshold, task=task, k=k, **params.get(name, {})
        )
        per_seed[name].append({"seed": seed, **res})
        log.info("P5 %s seed %d: %s", name, seed, res)
    metrics = ("auc", f"ndcg@{k}", f"recall@{k}") if task == "binary" else ("mse", "mae")
    aggregate = {
        n: {m: _summary([r[m] for r in rows]) for m in (*metrics, "fit_time")}
        for n, rows in per_seed.items()
    }
    first = splits[seeds[0]]
    anchors = ANCHORS[task] if task == "rating" or threshold == 3 else {}
    return {
        "protocol": "p5",
        "description": __doc__.split("\n\n", 1)[1].strip(),
        "dataset": {
            "name": "coat",
            "n_users": data.shape[0],
            "n_items": data.shape[1],
            "n_train": int(data.train.nnz),
            "n_test_mar": int(data.test.nnz),
            "n_test_reported": int(first.test.nnz),
            "n_valid_heldout": int(first.valid.nnz),
            "n_propensity_sample": int(first.propensity_sample.nnz),
            "sha256": data.sha256,
        },
        "task": task,
        "threshold": threshold,
        "k": k,
        "seeds": seeds,
        "metrics": list(metrics),
        "params": {n: {**_COMMON, **DEFAULT_PARAMS.get(n, {}), **params.get(n, {})} for n in names},
        "per_seed": per_seed,
        "aggregate": aggregate,
        "anchors": anchors,
    }
