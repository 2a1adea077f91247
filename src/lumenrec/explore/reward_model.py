"""Reward models q(x, a, k) for the model-based OPE estimators, fitted with cross-fitting.

:class:`PositionLogisticRewardModel` with its defaults is the P6 reference model, a re-implementation
of obp 0.5.7's ``RegressionModel(base_model=LogisticRegression(C=100, max_iter=10000,
random_state=12345))`` with ``fit_predict(n_folds=3, random_state=12345)``: one logistic
regression per position on ``[context, action_context[a]]``; KFold (shuffled) cross-fitting, so
each row's q is predicted by models that never saw it.

``"calibrated"`` (:func:`make_reward_model`) is our variant for click logs with few positives:
the inverse regularisation C is chosen per fold from :data:`C_GRID` by inner 3-fold
cross-validated log-loss on the training rows (the logged clicks only, never a ground truth),
and one model is shared by all positions with position indicators as features, so each fit
sees every click.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._ope_log import BanditLog

__all__ = ["C_GRID", "PositionLogisticRewardModel", "make_reward_model"]

#: Candidates of the inverse regularisation strength for ``select_c=True``.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def _expit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.special import expit

    return np.asarray(expit(x), dtype=np.float64)


@dataclass
class PositionLogisticRewardModel:
    """Logistic-regression reward model with cross-fitting.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength (ignored when ``select_c``).
    per_position : bool
        One model per position (obp) or one shared model with position one-hot features.
    select_c : bool
        Choose C from ``c_grid`` by inner cross-validated log-loss on each training fold.
    c_grid : tuple of float
        Candidates for ``select_c``.
    n_folds : int
        Cross-fitting folds (1 = fit and predict on all rows).
    max_iter : int
        lbfgs iterations.
    random_state : int
        Seed of the fold split (KFold shuffle) and of the logistic regressions.
    """

    C: float = 100.0
    per_position: bool = True
    select_c: bool = False
    c_grid: tuple[float, ...] = C_GRID
    n_folds: int = 3
    max_iter: int = 10000
    random_state: int = 12345

    def __post_init__(self) -> None:
        """Validate the settings."""
        if self.C <= 0 or self.n_folds < 1 or self.max_iter < 1 or not self.c_grid:
            msg = "C > 0, n_folds >= 1, max_iter >= 1 and a non-empty c_grid needed"
            raise ConfigError(msg)

    def _features(self, log: BanditLog) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ctx = log.context if log.context is not None else np.zeros((log.n, 0))
        act = log.action_context if log.action_context is not None else np.eye(log.n_actions)
        return ctx, act

    def _new(self, c: float) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=self.max_iter, random_state=self.random_state)

    def _choose_c(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
        from sklearn.metrics import log_loss
        from sklearn.model_selection import StratifiedKFold

        if not self.select_c:
            return self.C
        k = int(min(3, np.bincount(y.astype(int), minlength=2).min()))
        if k < 2:
            return min(self.c_grid)
        folds = list(StratifiedKFold(k, shuffle=True, random_state=self.random_state).split(x, y))
        losses = []
        for c in self.c_grid:
            loss = 0.0
            for tr, te in folds:
                p = self._new(c).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
                loss += log_loss(y[te], p, labels=[0, 1]) * len(te)
            losses.append(loss)
        return float(self.c_grid[int(np.argmin(losses))])

    def _fit_predict_fold(
        self, log: BanditLog, train: NDArray[np.int64], test: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], list[float]]:
        ctx, act = self._features(log)
        n_pos, n_act = log.n_positions, log.n_actions
        y = log.reward
        if not np.isin(y, (0.0, 1.0)).all():
            msg = "the logistic reward model needs 0/1 rewards; pass q_hat= instead"
            raise DataError(msg)
        out = np.empty((len(test), n_act, n_pos))
        chosen = []
        groups = range(n_pos) if self.per_position else [None]
        for pos in groups:
            rows = train if pos is None else train[log.position[train] == pos]
            if rows.size == 0:
                msg = f"no training rows at position {pos} in a cross-fitting fold"
                raise DataError(msg)
            x = np.c_[ctx[rows], act[log.action[rows]]]
            if pos is None:
                x = np.c_[x, np.eye(n_pos)[log.position[rows]]]
            labels = y[rows]
            if np.unique(labels).size < 2:  # a constant model: its rate
                for k in range(n_pos) if pos is None else [pos]:
                    out[:, :, k] = labels[0]
                chosen.append(float("nan"))
                continue
            c = self._choose_c(x, labels)
            chosen.append(c)
            model = self._new(c).fit(x, labels)
            coef = model.coef_[0]
            d_ctx, d_act = ctx.shape[1], act.shape[1]
            base = ctx[test] @ coef[:d_ctx] + model.intercept_[0]
            arm = act @ coef[d_ctx : d_ctx + d_act]
            logit = base[:, None] + arm[None, :]
            for k in range(n_pos) if pos is None else [pos]:
                shift = coef[d_ctx + d_act + k] if pos is None else 0.0
                out[:, :, k] = _expit(logit + shift)
        return out, chosen

    def fit_predict(self, log: BanditLog) -> NDArray[np.float64]:
        """Cross-fitted q_hat of shape (n, n_actions, n_positions), float64.

        The KFold split (``shuffle=True, random_state``) is obp's, so with the defaults row i's
        prediction comes from the same training rows as in obp.
        """
        from sklearn.model_selection import KFold

        q_hat = np.zeros((log.n, log.n_actions, log.n_positions))
        rows = np.arange(log.n)
        self.chosen_c_: list[list[float]] = []
        if self.n_folds == 1:
            splits = [(rows, rows)]
        else:
            if log.n < self.n_folds:
                msg = f"{log.n} rows cannot be split into {self.n_folds} folds"
                raise DataError(msg)
            kf = KFold(n_splits=self.n_folds, shuffle=True, random_state=self.random_state)
            splits = list(kf.split(rows))
        for train, test in splits:
            q_hat[test], chosen = self._fit_predict_fold(log, train, test)
            self.chosen_c_.append(chosen)
        return q_hat


def make_reward_model(spec: Any = "reference") -> Any:
    """``"reference"`` (obp's P6 model), ``"calibrated"`` (ours) or an object with ``fit_predict``."""
    if hasattr(spec, "fit_predict"):
        return spec
    if spec == "reference":
        return PositionLogisticRewardModel()
    if spec == "calibrated":
        return PositionLogisticRewardModel(per_position=False, select_c=True)
    msg = (
        f"unknown reward model {spec!r}; valid: 'reference', 'calibrated' or an "
        f"object with fit_predict(log)"
    )
    raise ConfigError(msg)
