"""One federated MF/BPR client: the local user vector, the local interactions, the local math.

Pure numpy (no Flower): :mod:`lumenrec.privacy.federated` wraps :class:`LocalBPRClient` in a
``flwr.client.NumPyClient``. Nothing here is ever sent except what :meth:`LocalBPRClient.fit`
returns (the item table after one local item step) and the metrics of
:meth:`LocalBPRClient.evaluate` (a per-user NDCG and a count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.evaluation.metrics import ndcg_at_k

__all__ = ["LocalBPRClient", "LocalConfig"]


@dataclass(frozen=True)
class LocalConfig:
    """Hyper-parameters of a client's local training (sent by the server each round).

    Attributes
    ----------
    local_epochs : int
        Full-batch gradient steps on the user vector per round (items held fixed).
    user_lr : float
        Step size of those user-vector steps.
    item_lr : float
        Step size of the item-table update the client returns (its mean item gradient times
        ``item_lr``); FedAvg over clients weighted by their positives makes the aggregate a
        full-batch gradient step on the mean BPR loss of all users.
    regularization : float
        L2 weight on the factors and biases touched by a triple (as in ``lumenrec.models.BPR``).
    n_negatives : int
        Uniform negatives per positive, redrawn every local epoch.
    example_norm : float
        0: the returned step uses the client's mean gradient (FedAvg then weights it by the
        client's positives). > 0: the gradient sum divided by this public constant (the mean
        number of positives per client), for uniform weighting (what central DP needs).
    """

    local_epochs: int = 5
    user_lr: float = 1.0
    item_lr: float = 50.0
    regularization: float = 0.01
    n_negatives: int = 4
    example_norm: float = 0.0


class LocalBPRClient:
    """A user's device: their positives, their held-out items and their private user vector.

    Parameters
    ----------
    positives : ndarray of shape (n_pos,), int
        Item indices the user interacted with (training part); never leave the client.
    n_items : int
        Catalogue size.
    n_factors : int
        Length of the user vector.
    seed : int
        Seeds the user vector's initialisation and the negative sampling.
    held_out : ndarray of shape (n_held,), int, optional
        The user's held-out items, used only by :meth:`evaluate` on the client itself.
    """

    def __init__(
        self,
        positives: NDArray[np.integer],
        n_items: int,
        n_factors: int,
        seed: int,
        held_out: NDArray[np.integer] | None = None,
    ) -> None:
        self.positives = np.unique(np.asarray(positives, dtype=np.int64))
        self.n_items = int(n_items)
        self.held_out = (
            np.unique(np.asarray(held_out, dtype=np.int64)) if held_out is not None else None
        )
        self._rng = np.random.default_rng(seed)
        self.user_vector = (self._rng.standard_normal(n_factors) * 0.1).astype(np.float32)

    # -- training ------------------------------------------------------------------------
    def _negatives(self, n: int) -> NDArray[np.int64]:
        """Uniform items not among the positives, shape (n,)."""
        neg = self._rng.integers(0, self.n_items, size=n, dtype=np.int64)
        hit = np.isin(neg, self.positives, assume_unique=False)
        if hit.any():  # one redraw, as in lumenrec.models.bpr.sample_negatives
            neg[hit] = self._rng.integers(0, self.n_items, size=int(hit.sum()), dtype=np.int64)
        return neg

    def fit(
        self, item_factors: NDArray[np.float32], item_bias: NDArray[np.float32], cfg: LocalConfig
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """Train the user vector locally, then take one item step from the local gradient.

        Parameters
        ----------
        item_factors : ndarray of shape (n_items, n_factors), float32
            The global item factors of this round.
        item_bias : ndarray of shape (n_items,), float32
            The global item biases.
        cfg : LocalConfig

        Returns
        -------
        item_factors : ndarray of shape (n_items, n_factors), float32
            ``item_factors - item_lr * mean item-factor gradient`` of this user's triples.
        item_bias : ndarray of shape (n_items,), float32
            Likewise for the biases.
        loss : float
            Mean BPR loss of the last local epoch.
        """
        pos = np.repeat(self.positives, cfg.n_negatives)
        n = len(pos)
        grad_q = np.zeros_like(item_factors)
        grad_b = np.zeros_like(item_bias)
        reg = np.float32(cfg.regularization)
        p = self.user_vector
        loss = 0.0
        for _ in range(cfg.local_epochs):
            neg = self._negatives(n)
            qi, qj = item_factors[pos], item_factors[neg]
            x = (qi - qj) @ p + item_bias[pos] - item_bias[neg]
            g = -1.0 / (1.0 + np.exp(x))  # d(-log sigmoid(x))/dx, shape (n,)
            loss = float(np.mean(np.logaddexp(0.0, -x)))
            # item gradient at the current user vector, averaged over the local epochs
            outer = g[:, None].astype(np.float32) * p[None, :]
            np.add.at(grad_q, pos, outer + reg * qi)
            np.add.at(grad_q, neg, -outer + reg * qj)
            np.add.at(grad_b, pos, g + reg * item_bias[pos])
            np.add.at(grad_b, neg, -g + reg * item_bias[neg])
            grad_p = (g @ (qi - qj)) / n + reg * p
            p = (p - cfg.user_lr * grad_p).astype(np.float32)
        self.user_vector = p
        norm = cfg.example_norm * cfg.n_negatives if cfg.example_norm > 0 else n
        scale = np.float32(cfg.item_lr / (norm * cfg.local_epochs))
        return item_factors - scale * grad_q, item_bias - scale * grad_b, loss

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(
        self, item_factors: NDArray[np.float32], item_bias: NDArray[np.float32], k: int = 10
    ) -> float | None:
        """NDCG@k of the user's own top-k (training items masked) against their held-out items.

        Returns
        -------
        float or None
            None when the client has no held-out item (it is then not evaluated).
        """
        if self.held_out is None or self.held_out.size == 0:
            return None
        scores = item_factors @ self.user_vector + item_bias
        scores[self.positives] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        ones = np.ones(self.held_out.size, dtype=np.float32)
        relevant = sp.csr_matrix(
            (ones, self.held_out, [0, self.held_out.size]), shape=(1, self.n_items)
        )
        return float(ndcg_at_k(top[None, :], relevant, k)[0])
