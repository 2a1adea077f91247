"""Debiased matrix factorisation for missing-not-at-random feedback: naive, IPS, SNIPS, DR-JL.

Users rate what they choose to rate, so the observed ratings over-represent what they like
(or what was shown). :class:`DebiasedMF` learns from such a log and aims at the error over
*all* user-item pairs:

- ``naive``: the plain mean loss over observed pairs (biased).
- ``ips``: ``(1/|D|) Σ_obs e_ui / p_ui`` (Schnabel et al. 2016), unbiased when the
  propensities ``p_ui = P(o_ui = 1)`` are right; mini-batches estimate it by
  ``(n_obs/|D|) · mean_batch(e/p)``.
- ``snips``: self-normalised IPS, ``Σ_batch e/p / Σ_batch 1/p``.
- ``dr``: doubly robust joint learning (DR-JL, Wang et al. 2019). An imputation model
  predicts the error ``ê_ui`` of every pair; the prediction model minimises
  ``(1/|D|) [Σ_D ê_ui + Σ_obs (e_ui − ê_ui) / p_ui]`` (the direct part on uniformly sampled
  pairs of D), and the imputation model minimises ``Σ_obs (e_ui − ê_ui)² / p_ui``; one step
  of each per mini-batch, alternating.

Propensities (``propensity``): passed to :meth:`DebiasedMF.fit` (``propensities=``, e.g.
logged by the service), or Naive Bayes from a small MAR sample (``mar_sample=``), or item
popularity when neither exists; ``propensity_source_`` says which was used. Clipped below at
``propensity_clip``.

Backbone: ``x_ui = p_u · q_i (+ b_u + b_i + b)``; ``task="binary"`` reads labels ``rating ≥
threshold`` and uses the log loss on ``σ(x)``, ``task="rating"`` regresses the raw rating
with the squared error. Adam with coupled weight decay, as in the papers' code. The loss
steps are in :class:`~lumenrec.models._debias_train.DebiasedStepsMixin`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import expit

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec._progress import progress
from lumenrec._random import derive_seed
from lumenrec.errors import DataError
from lumenrec.models._debias_net import auc as _auc
from lumenrec.models._debias_net import cells as _cells
from lumenrec.models._debias_net import make_mf
from lumenrec.models._debias_train import DebiasedStepsMixin
from lumenrec.models._propensity import (
    feature_propensities,
    naive_bayes_propensities,
    popularity_propensities,
)
from lumenrec.models._torch_train import import_torch, resolve_device, seeded_init
from lumenrec.models.base import BaseRecommender
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = [
    "DebiasedMF",
    "feature_propensities",
    "naive_bayes_propensities",
    "popularity_propensities",
]

log = logging.getLogger(__name__)


class DebiasedMF(DebiasedStepsMixin, BaseRecommender):
    """MF trained on MNAR feedback with a naive, IPS, SNIPS or doubly robust (DR-JL) loss.

    Fit on a users x items matrix of ratings (stored value = rating; absent = not observed).
    Scores are logits (binary) or predicted ratings (rating); :meth:`predict` gives
    probabilities / ratings for (user, item) pairs.

    Stability: experimental.

    Parameters
    ----------
    method : {"naive", "ips", "snips", "dr"}, default "dr"
    task : {"binary", "rating"}, default "binary"
    threshold : float, default 3.0
        Binary label = ``rating >= threshold``.
    n_factors : int, default 4
    bias : bool, default True
        Add user, item and global biases to ``p_u · q_i``.
    learning_rate : float, default 0.01
    weight_decay : float, default 1e-4
        Adam's (coupled) L2 term, for the prediction and imputation models.
    batch_size : int, default 128
        Observed pairs per step (DR also draws ``unobserved_ratio * batch_size`` pairs of D).
    n_epochs : int, default 100
        Passes over the observed pairs.
    patience : int, default 10
        With ``valid`` given to :meth:`fit`: stop after this many epochs without a better
        validation score (AUC, or −MSE for ratings) and keep the best epoch's weights.
    propensity : {"auto", "given", "naive-bayes", "given-naive-bayes", "popularity"}, default "auto"
        "auto": the ``propensities`` passed to fit, else Naive Bayes when a ``mar_sample`` is
        passed, else popularity. "given-naive-bayes": the passed ``propensities`` are
        label-free observation rates ``g_ui = P(o=1 | u, i)`` (e.g.
        :func:`~lumenrec.models._propensity.feature_propensities`) and are multiplied by the
        Naive Bayes ratio ``P(y | o=1) / P(y)`` from the ``mar_sample`` (capped at 1), so the
        propensity varies per pair and per label. Unused by ``method="naive"``.
    propensity_clip : float, default 0.05
        Propensities below this are raised to it (bounds the weights at 1/clip).
    naive_bayes_on : {"label", "rating"}, default "label"
        What the Naive Bayes propensities condition on: the training label (binary task:
        two values) or the raw stored rating value (e.g. 1-5 stars, so that a 1-star and a
        2-star negative get different weights). The loss still uses the label.
    popularity_power : float, default 1.0
        Exponent of :func:`popularity_propensities`.
    imputation_learning_rate : float, optional
        DR's imputation model (default: ``learning_rate``).
    imputation_weight_decay : float, optional
        DR's imputation model (default: ``weight_decay``).
    unobserved_ratio : int, default 1
        DR: pairs of D drawn per observed pair in a step.
    device : str, default "cpu"
    random_state : int, Generator or None
    progress : bool or None

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of shape (n_users | n_items, n_factors), float32
    user_bias_, item_bias_ : ndarray of shape (n_users | n_items,), float32
    global_bias_ : ndarray of shape (1,), float32
    propensities_ : ndarray of shape (n_obs,), float32
        Clipped propensity of each training pair (CSR order); ones for ``naive``.
    loss_history_, valid_history_ : ndarray of shape (n_epochs_run,), float64
    propensity_source_ : str
        "none", "given", "naive-bayes", "given-naive-bayes" or "popularity".
    best_epoch_ : int
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        "method": Options(("naive", "ips", "snips", "dr")),
        "task": Options(("binary", "rating")),
        "threshold": Interval(float),
        "n_factors": Interval(int, 1),
        "bias": Options((True, False)),
        "learning_rate": Interval(float, 0.0, low_open=True),
        "weight_decay": Interval(float, 0.0),
        "batch_size": Interval(int, 1),
        "n_epochs": Interval(int, 1),
        "patience": Interval(int, 0),
        "propensity": Options(("auto", "given", "naive-bayes", "given-naive-bayes", "popularity")),
        "propensity_clip": Interval(float, 0.0, 1.0, low_open=True),
        "naive_bayes_on": Options(("label", "rating")),
        "popularity_power": Interval(float, 0.0, low_open=True),
        "imputation_learning_rate": (None, Interval(float, 0.0, low_open=True)),
        "imputation_weight_decay": (None, Interval(float, 0.0)),
        "unobserved_ratio": Interval(int, 1),
        "progress": (None, Options((True, False))),
    }
    _fitted_arrays = (
        "user_factors_", "item_factors_", "user_bias_", "item_bias_", "global_bias_",
        "propensities_", "loss_history_", "valid_history_",
    )  # fmt: skip

    def __init__(
        self,
        method: str = "dr",
        task: str = "binary",
        threshold: float = 3.0,
        n_factors: int = 4,
        bias: bool = True,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        n_epochs: int = 100,
        patience: int = 10,
        propensity: str = "auto",
        propensity_clip: float = 0.05,
        naive_bayes_on: str = "label",
        popularity_power: float = 1.0,
        imputation_learning_rate: float | None = None,
        imputation_weight_decay: float | None = None,
        unobserved_ratio: int = 1,
        device: str = "cpu",
        random_state: Seed = None,
        progress: bool | None = None,
    ) -> None:
        self.method = method
        self.task = task
        self.threshold = threshold
        self.n_factors = n_factors
        self.bias = bias
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.patience = patience
        self.propensity = propensity
        self.propensity_clip = propensity_clip
        self.naive_bayes_on = naive_bayes_on
        self.popularity_power = popularity_power
        self.imputation_learning_rate = imputation_learning_rate
        self.imputation_weight_decay = imputation_weight_decay
        self.unobserved_ratio = unobserved_ratio
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        data: Dataset | sp.spmatrix,
        *,
        propensities: Any = None,
        mar_sample: sp.spmatrix | None = None,
        valid: sp.spmatrix | None = None,
    ) -> Self:
        """Fit on observed ratings.

        Parameters
        ----------
        data : Dataset or sparse matrix of shape (n_users, n_items)
            Observed (MNAR) ratings; the stored value is the rating.
        propensities : array-like or sparse matrix of shape (n_users, n_items), optional
            Known ``P(o_ui = 1)``, read at the observed cells (e.g. logged by the service).
        mar_sample : sparse matrix of shape (n_users, n_items), optional
            Ratings of uniformly sampled pairs, for the Naive Bayes ``P(y)``.
        valid : sparse matrix of shape (n_users, n_items), optional
            Held-out ratings (ideally MAR) for early stopping; never trained on.

        Returns
        -------
        self
        """
        self._inputs = (propensities, mar_sample, valid)
        try:
            return super().fit(data)
        finally:
            del self._inputs

    def _labels(self, ratings: NDArray) -> NDArray[np.float32]:
        if self.task == "binary":
            return (ratings >= self.threshold).astype(np.float32)
        return ratings.astype(np.float32)

    def _propensities(
        self,
        users: NDArray,
        items: NDArray,
        ratings: NDArray,
        shape: tuple[int, int],
    ) -> tuple[NDArray[np.float64], str]:
        given = self._inputs[0]
        mar = self._inputs[1]
        if self.method == "naive":
            return np.ones(len(users)), "none"
        source = self.propensity
        if source == "auto":
            source = (
                "given" if given is not None else "naive-bayes" if mar is not None else "popularity"
            )
        if source in ("given", "given-naive-bayes"):
            if given is None:
                msg = f"propensity={source!r} needs fit(..., propensities=matrix)"
                raise DataError(msg)
            mat = given.tocsr() if sp.issparse(given) else np.asarray(given, np.float64)
            if mat.shape != shape:
                msg = f"propensities has shape {mat.shape}; expected {shape}"
                raise DataError(msg)
            p = np.asarray(mat[users, items], np.float64).ravel()
            if not (np.isfinite(p).all() and (p > 0).all() and (p <= 1).all()):
                msg = "propensities must lie in (0, 1] at every observed pair"
                raise DataError(msg)
            if source == "given":
                return p, "given"
            ratio = self._naive_bayes(ratings, shape) * (shape[0] * shape[1] / len(users))
            return np.minimum(p * ratio, 1.0), "given-naive-bayes"
        if source == "naive-bayes":
            return self._naive_bayes(ratings, shape), "naive-bayes"
        return popularity_propensities(items, *shape, self.popularity_power), "popularity"

    def _naive_bayes(self, ratings: NDArray, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Naive Bayes ``p(o=1 | y)`` of each training pair (``y`` per ``naive_bayes_on``)."""
        mar = self._inputs[1]
        if mar is None:
            msg = (
                f"propensity={self.propensity!r} needs fit(..., mar_sample=ratings of random "
                "pairs) for the Naive Bayes P(y)"
            )
            raise DataError(msg)
        mar_ratings = _cells(mar, shape, "mar_sample")[2]
        if self.naive_bayes_on == "rating":
            obs, sample = ratings, mar_ratings
        else:
            obs, sample = self._labels(ratings), self._labels(mar_ratings)
        p, _ = naive_bayes_propensities(obs, sample, shape[0] * shape[1])
        return p

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        torch = import_torch()
        device = resolve_device(self.device)
        shape = user_items.shape
        users, items, ratings = _cells(user_items, shape, "data")
        labels = self._labels(ratings)
        p, self.propensity_source_ = self._propensities(users, items, ratings, shape)
        p = np.maximum(p, self.propensity_clip)
        self.propensities_ = p.astype(np.float32)
        valid = self._inputs[2]
        vu, vi, vr = (None, None, None) if valid is None else _cells(valid, shape, "valid")
        seed = derive_seed(rng)
        with seeded_init(seed, device):
            pred = make_mf(torch, shape, self.n_factors, self.bias).to(device)
            imp = make_mf(torch, shape, self.n_factors, self.bias).to(device)
        opt = torch.optim.Adam(
            pred.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        imp_lr = self.imputation_learning_rate or self.learning_rate
        imp_wd = (
            self.weight_decay
            if self.imputation_weight_decay is None
            else self.imputation_weight_decay
        )
        opt_imp = torch.optim.Adam(imp.parameters(), lr=imp_lr, weight_decay=imp_wd)
        t = {
            "u": torch.from_numpy(users).to(device),
            "i": torch.from_numpy(items).to(device),
            "y": torch.from_numpy(labels).to(device),
            "w": torch.from_numpy((1.0 / p).astype(np.float32)).to(device),
        }
        losses: list[float] = []
        scores: list[float] = []
        best, best_state, bad = -np.inf, None, 0
        bar = progress(range(self.n_epochs), desc=f"MF-{self.method}", enabled=self.progress)
        for _epoch in bar:
            losses.append(self._epoch(torch, pred, imp, opt, opt_imp, t, rng, shape))
            if vu is None:
                continue
            with torch.no_grad():
                x = pred.logits(torch.from_numpy(vu).to(device), torch.from_numpy(vi).to(device))
            x = x.cpu().numpy().astype(np.float64)
            vy = self._labels(vr)
            score = _auc(vy, x) if self.task == "binary" else -float(np.mean((x - vy) ** 2))
            scores.append(score)
            if score > best:
                best, bad = score, 0
                best_state = {k: v.detach().clone() for k, v in pred.state_dict().items()}
            else:
                bad += 1
                if self.patience and bad >= self.patience:
                    break
        if best_state is not None:
            pred.load_state_dict(best_state)
        self.best_epoch_ = int(np.argmax(scores)) + 1 if scores else len(losses)
        self.loss_history_ = np.asarray(losses, np.float64)
        self.valid_history_ = np.asarray(scores, np.float64)
        arrays = {
            k: v.detach().cpu().numpy().astype(np.float32) for k, v in pred.state_dict().items()
        }
        self.user_factors_, self.item_factors_ = arrays["user_f"], arrays["item_f"]
        self.user_bias_, self.item_bias_ = arrays["user_b"], arrays["item_b"]
        self.global_bias_ = arrays["global_b"]

    # -- scoring ---------------------------------------------------------------------------
    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        it = slice(None) if items is None else items
        out = self.user_factors_[users] @ self.item_factors_[it].T
        out += self.user_bias_[users, None] + self.item_bias_[it][None, :] + self.global_bias_[0]
        return out

    def predict(self, users: IndexArray, items: IndexArray) -> NDArray[np.float32]:
        """Probability (binary) or rating (rating task) of each (user, item) pair.

        Parameters
        ----------
        users, items : array-like of shape (n,), int

        Returns
        -------
        ndarray of shape (n,), float32
        """
        check_is_fitted(self)
        u = self._check_indices(users, self.n_users_, "users")
        i = self._check_indices(items, self.n_items_, "items")
        if len(u) != len(i):
            msg = f"users and items must have the same length (got {len(u)} and {len(i)})"
            raise DataError(msg)
        x = np.einsum("nf,nf->n", self.user_factors_[u], self.item_factors_[i])
        x = x + self.user_bias_[u] + self.item_bias_[i] + self.global_bias_[0]
        if self.task == "binary":
            x = expit(x)
        return x.astype(np.float32)

    def _get_state(self) -> dict[str, Any]:
        return {"propensity_source_": self.propensity_source_, "best_epoch_": self.best_epoch_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.propensity_source_ = str(state.get("propensity_source_", "unknown"))
        self.best_epoch_ = int(state.get("best_epoch_", 0))
