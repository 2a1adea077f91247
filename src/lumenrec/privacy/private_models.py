"""Differentially private recommenders: DP-SGD models, and the registry of private variants.

Gradient models use DP-SGD through Opacus (:mod:`lumenrec.privacy._dp_sgd`):
:class:`PrivateMF` (user-level, ranking) and :class:`PrivateRatingMF` (event-level, ratings).
The count and closed-form models live in :mod:`lumenrec.privacy.private_counts`
(:class:`PrivatePopularity`, :class:`PrivateItemKNN`) and :mod:`lumenrec.privacy.private_ease`
(:class:`PrivateEASE`); they are re-exported here, and artifacts saved under
``lumenrec.privacy.private_models.<Class>`` still load.

What the guarantee covers: the learnt item-side parameters (counts, weights, item factors).
Every artifact also holds ``seen_``, each user's own training history, used to mask seen
items and to form that user's scores; it is that user's data, is not differentially private,
and must be served only to that user (see docs/privacy.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec.errors import ConfigError
from lumenrec.models.base import BaseRecommender
from lumenrec.privacy.dp import ACCOUNTANTS, SpendState, bounded_rows, check_budget
from lumenrec.privacy.private_counts import PrivateItemKNN, PrivatePopularity
from lumenrec.privacy.private_ease import PrivateEASE
from lumenrec.privacy.private_rating import BiasedRatingScores
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = [
    "PRIVATE_VARIANTS",
    "PrivateEASE",
    "PrivateItemKNN",
    "PrivateMF",
    "PrivatePopularity",
    "PrivateRatingMF",
    "make_private_model",
]

log = logging.getLogger(__name__)

_SGD_CONSTRAINTS: dict[str, Any] = {
    "epsilon": Interval(float, 0.0, None, low_open=True),
    "delta": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
    "n_factors": Interval(int, 1, None),
    "batch_size": Interval(int, 1, None),
    "n_epochs": Interval(int, 1, None),
    "max_grad_norm": Interval(float, 0.0, None, low_open=True),
    "learning_rate": Interval(float, 0.0, None, low_open=True),
    "accountant": Options(ACCOUNTANTS),
}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


class PrivateMF(SpendState, BaseRecommender):
    """Matrix factorisation trained with user-level DP-SGD (Opacus), only the item side learnt.

    ``score(u, ·) = tanh(x̃_u E) Dᵀ + b`` where ``x̃_u`` is the user's binary history divided by
    its L2 norm: the user factor is computed from the user's own history (at training and at
    serving time), so there is no per-user parameter to release. Each privacy unit is a user:
    users are Poisson-sampled (rate ``batch_size / n_users``), the gradient of a user's whole
    loss (multinomial log-likelihood of their history, input dropout as in Mult-DAE) is clipped
    to ``max_grad_norm``, Gaussian noise of ``σ · max_grad_norm`` is added to the sum, Adam
    steps. σ is calibrated to ``(epsilon, delta)`` for the exact number of steps.

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 8.0
    delta : float, default 1e-6
        Must be below 1 / n_users.
    n_factors : int, default 64
    dropout : float, default 0.5
        Input dropout on the history (denoising).
    batch_size : int, default 1024
        Expected users per step.
    n_epochs : int, default 30
    max_grad_norm : float, default 1.0
    learning_rate : float, default 1e-3
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None
        Seeds the initial weights, sampling, dropout and noise (not a secure generator).

    Attributes
    ----------
    encoder_ : ndarray of shape (n_items, n_factors), float32
    decoder_ : ndarray of shape (n_items, n_factors), float32
    item_bias_ : ndarray of shape (n_items,), float32
    loss_history_ : ndarray of shape (n_epochs,), float64
    privacy_ : dict
        ``level`` is "user".
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        **_SGD_CONSTRAINTS,
        "dropout": Interval(float, 0.0, 1.0, high_open=True),
    }
    _fitted_arrays = ("encoder_", "decoder_", "item_bias_", "loss_history_")

    def __init__(
        self,
        epsilon: float = 8.0,
        delta: float = 1e-6,
        n_factors: int = 64,
        dropout: float = 0.5,
        batch_size: int = 1024,
        n_epochs: int = 30,
        max_grad_norm: float = 1.0,
        learning_rate: float = 1e-3,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.n_factors = n_factors
        self.dropout = dropout
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.accountant = accountant
        self.random_state = random_state

    @staticmethod
    def _inputs(hist: sp.spmatrix) -> sp.csr_matrix:
        x = bounded_rows(hist, 1)  # binary rows scaled to unit L2 norm
        return x.astype(np.float32)

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        from lumenrec.models._torch_train import import_torch, seeded_init
        from lumenrec.privacy._dp_sgd import (
            DPSettings,
            history_module,
            multinomial_criterion,
            train_private,
        )

        torch = import_torch()
        n_users, n_items = user_items.shape
        check_budget(float(self.epsilon), float(self.delta), n_users, unit="users")
        inputs = self._inputs(user_items)
        target = sp.csr_matrix(inputs, copy=True)
        target.data[:] = 1.0
        seed = _seed(rng)
        with seeded_init(seed):
            module = history_module(n_items, int(self.n_factors), float(self.dropout))

        def make_batch(batch: tuple[Any, ...]) -> tuple[Any, Any]:
            rows = batch[0].numpy()
            return (
                torch.from_numpy(inputs[rows].toarray()),
                torch.from_numpy(target[rows].toarray()),
            )

        settings = DPSettings(
            float(self.epsilon),
            float(self.delta),
            "user",
            int(self.batch_size),
            int(self.n_epochs),
            float(self.max_grad_norm),
            float(self.learning_rate),
            self.accountant,
        )
        users = torch.arange(n_users, dtype=torch.int64)
        spend, losses = train_private(
            module, multinomial_criterion(), (users,), make_batch, settings, seed
        )
        self.encoder_ = module.encode.weight.detach().numpy().T.astype(np.float32).copy()
        self.decoder_ = module.decode.weight.detach().numpy().astype(np.float32).copy()
        self.item_bias_ = module.decode.bias.detach().numpy().astype(np.float32).copy()
        self.loss_history_ = np.asarray(losses, np.float64)
        self.privacy_ = spend.as_dict()

    def _user_vectors(self, hist: sp.spmatrix) -> NDArray[np.float32]:
        return np.tanh(self._inputs(hist) @ self.encoder_).astype(np.float32)

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        return self._dot_scores(
            self._user_vectors(self.seen_[users]), self.decoder_, items, self.item_bias_
        )

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Scores from histories alone: the user factor is a function of the history.

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_)
        items : array-like of shape (m,), int, optional

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
        """
        check_is_fitted(self)
        hist = sp.csr_matrix(histories)
        return self._dot_scores(self._user_vectors(hist), self.decoder_, items, self.item_bias_)


class PrivateRatingMF(BiasedRatingScores, SpendState, BaseRecommender):
    """Biased MF rating regressor trained with event-level DP-SGD (Opacus): one rating is the
    privacy unit (the TF Privacy MovieLens setting; Bu et al. 2020).

    ``r̂(u, i) = offset + b_u + b_i + p_u · q_i``, clipped to ``[min_rating, max_rating]`` (the
    public rating scale; ``offset`` is a public constant, not the data's mean). Ratings are
    Poisson-sampled, each rating's gradient clipped to ``max_grad_norm``, Gaussian noise added to
    every parameter (user and item factors alike, so all of them are covered by ε).

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 8.0
    delta : float, default 1e-6
        Must be below 1 / n_ratings.
    n_factors : int, default 32
    batch_size : int, default 10000
    n_epochs : int, default 20
    max_grad_norm : float, default 1.0
    learning_rate : float, default 1e-2
    regularization : float, default 0.0
        Adam weight decay (applied after the noise: post-processing).
    offset : float, default 3.5
    min_rating, max_rating : float, default 1.0, 5.0
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of shape (n, n_factors), float32
    user_bias_, item_bias_ : ndarray of shape (n,), float32
    loss_history_ : ndarray of shape (n_epochs,), float64
    privacy_ : dict
        ``level`` is "event".
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        **_SGD_CONSTRAINTS,
        "regularization": Interval(float, 0.0, None),
        "offset": Interval(float),
        "min_rating": Interval(float),
        "max_rating": Interval(float),
    }
    _fitted_arrays = (
        "user_factors_",
        "item_factors_",
        "user_bias_",
        "item_bias_",
        "loss_history_",
    )

    def __init__(
        self,
        epsilon: float = 8.0,
        delta: float = 1e-6,
        n_factors: int = 32,
        batch_size: int = 10000,
        n_epochs: int = 20,
        max_grad_norm: float = 1.0,
        learning_rate: float = 1e-2,
        regularization: float = 0.0,
        offset: float = 3.5,
        min_rating: float = 1.0,
        max_rating: float = 5.0,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.n_factors = n_factors
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.offset = offset
        self.min_rating = min_rating
        self.max_rating = max_rating
        self.accountant = accountant
        self.random_state = random_state

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        from lumenrec.models._torch_train import import_torch, seeded_init
        from lumenrec.privacy._dp_sgd import DPSettings, rating_module, train_private

        torch = import_torch()
        x = sp.csr_matrix(user_items, dtype=np.float32)
        x.eliminate_zeros()
        n_users, n_items = x.shape
        check_budget(float(self.epsilon), float(self.delta), x.nnz, unit="ratings")
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(x.indptr))
        pairs = torch.from_numpy(np.stack([users, x.indices.astype(np.int64)], axis=1))
        ratings = torch.from_numpy(x.data.astype(np.float32))
        seed = _seed(rng)
        with seeded_init(seed):
            module = rating_module(n_users, n_items, int(self.n_factors), float(self.offset))
        settings = DPSettings(
            float(self.epsilon),
            float(self.delta),
            "event",
            int(self.batch_size),
            int(self.n_epochs),
            float(self.max_grad_norm),
            float(self.learning_rate),
            self.accountant,
        )
        criterion = torch.nn.MSELoss()
        spend, losses = train_private(
            module,
            criterion,
            (pairs, ratings),
            lambda batch: (batch[0], batch[1]),
            settings,
            seed,
            weight_decay=float(self.regularization),
        )
        self.user_factors_ = module.user.weight.detach().numpy().astype(np.float32).copy()
        self.item_factors_ = module.item.weight.detach().numpy().astype(np.float32).copy()
        self.user_bias_ = module.user_bias.weight.detach().numpy()[:, 0].astype(np.float32)
        self.item_bias_ = module.item_bias.weight.detach().numpy()[:, 0].astype(np.float32)
        self.loss_history_ = np.asarray(losses, np.float64)
        self.privacy_ = spend.as_dict()

    def _rating_offset(self) -> float:
        return float(self.offset)


#: CLI model name → its private variant (``lumenrec train --epsilon``).
PRIVATE_VARIANTS: dict[str, type[BaseRecommender]] = {
    "pop": PrivatePopularity,
    "itemknn": PrivateItemKNN,
    "ease": PrivateEASE,
    "bpr": PrivateMF,
    "mf": PrivateMF,
}


def make_private_model(
    name: str, epsilon: float, delta: float, params: dict[str, Any] | None = None
) -> BaseRecommender:
    """The private variant of CLI model ``name`` at (ε, δ) with extra constructor ``params``.

    Raises
    ------
    ConfigError
        ``name`` has no private variant, or ``params`` names an unknown parameter.
    """

    cls = PRIVATE_VARIANTS.get(name)
    if cls is None:
        msg = (
            f"model {name!r} has no differentially private variant; --epsilon works with "
            f"{sorted(PRIVATE_VARIANTS)}"
        )
        raise ConfigError(msg)
    model = cls(epsilon=epsilon, delta=delta)
    return model.set_params(**(params or {}))
