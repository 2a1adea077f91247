"""BPR: Bayesian Personalised Ranking matrix factorisation (Rendle et al. 2009), trained with torch."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec._progress import progress
from lumenrec._random import derive_seed
from lumenrec.errors import DataError
from lumenrec.models._torch_train import import_torch, resolve_device
from lumenrec.models.base import BaseRecommender, as_positives
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["BPR"]

log = logging.getLogger(__name__)

_INIT_STD = 0.1
_FOLD_IN_STEPS = 50
_FOLD_IN_NEGATIVES = 16
_FOLD_IN_TRIPLES = 1 << 18  # triples per fold-in chunk (bounds memory)
_NEG_BLOCK = 256  # history positions per seeded block of the fold-in negative table


def sample_negatives(
    rng: np.random.Generator,
    users: NDArray[np.int64],
    pos_keys: NDArray[np.int64],
    n_items: int,
    n: int,
) -> NDArray[np.int64]:
    """Uniform negative items for each ``users`` entry, ``n`` per entry, avoiding positives.

    A draw that hits one of the user's positives (looked up in the sorted ``pos_keys =
    user * n_items + item``) is redrawn once; a second collision is kept (rare on sparse data,
    and only a weak, unbiased-in-expectation label noise).

    Returns
    -------
    ndarray of shape (len(users), n), int64
    """
    neg = rng.integers(0, n_items, size=(len(users), n), dtype=np.int64)
    keys = users[:, None] * n_items + neg
    pos = np.minimum(np.searchsorted(pos_keys, keys), len(pos_keys) - 1)
    hit = pos_keys[pos] == keys
    if hit.any():
        neg[hit] = rng.integers(0, n_items, size=int(hit.sum()), dtype=np.int64)
    return neg


class BPR(BaseRecommender):
    """Matrix factorisation with an item bias trained on the BPR pairwise loss.

    ``score(u, i) = p_u · q_i + b_i``. Each epoch visits every stored (positive) interaction
    once in a random order, pairs it with ``n_negatives`` uniformly drawn items the user has not
    interacted with (a colliding draw is redrawn once), and minimises
    ``mean(−log σ(x_ui − x_uj)) + regularization · (‖p_u‖² + ‖q_i‖² + mean_j ‖q_j‖² + b_i² + mean_j b_j²)``
    over mini-batches with Adagrad (LightFM's default schedule: per-coordinate steps that only
    move the rows a batch touches). On ML-100K (80/20, 30 epochs) it reached NDCG@10 ≈ 0.40
    against ≈ 0.39 for the best Adam and 0.38 for batched SGD settings tried, and it passes the
    planted-structure checks at the default step size. Stored values are only used as
    "positive or not" (``> 0``).

    Training is deterministic for a given ``random_state`` on CPU (numpy draws the order and
    the negatives; a seeded ``torch.Generator`` draws the initial factors). Fitted arrays are
    numpy float32, so scoring, saving and loading need no torch.

    Stability: experimental.

    Parameters
    ----------
    n_factors : int, default 64
    learning_rate : float, default 0.05
        Adagrad step size (also the Adam step size of :meth:`fold_in`).
    regularization : float, default 0.01
        L2 weight on the embeddings and biases touched by each example. At 1e-4 the model
        over-fits: ML-100K NDCG@10 0.36 instead of 0.40, and the planted-clusters share drops
        to 0.73-0.86 across seeds (0.81-0.90 at 0.01).
    n_epochs : int, default 30
    batch_size : int, default 4096
        Positive interactions per step.
    n_negatives : int, default 1
        Negative items per positive.
    device : str, default "auto"
        A torch device ("cpu", "cuda", "cuda:1", ...); "auto" = cuda when available, else cpu.
    random_state : int, Generator or None
    progress : bool or None
        Epoch progress bar (None: on when INFO logging is enabled and stderr is a TTY).

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors), float32
    item_factors_ : ndarray of shape (n_items, n_factors), float32
    item_bias_ : ndarray of shape (n_items,), float32
    loss_history_ : ndarray of shape (n_epochs,), float64
        Mean training loss (BPR term + regularization) of each epoch.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = BPR(n_factors=4, n_epochs=2, random_state=0).fit(sp.random(20, 10, 0.3, format="csr"))
    >>> m.recommend([0], k=3).items.shape
    (1, 3)
    """

    _param_constraints = {
        "n_factors": Interval(int, 1),
        "learning_rate": Interval(float, 0.0, low_open=True),
        "regularization": Interval(float, 0.0),
        "n_epochs": Interval(int, 1),
        "batch_size": Interval(int, 1),
        "n_negatives": Interval(int, 1),
        "progress": (None, Options((True, False))),
    }
    _fitted_arrays = ("user_factors_", "item_factors_", "item_bias_", "loss_history_")

    def __init__(
        self,
        n_factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        n_epochs: int = 30,
        batch_size: int = 4096,
        n_negatives: int = 1,
        device: str = "auto",
        random_state: Seed = None,
        progress: bool | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.n_negatives = n_negatives
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # -- fitting ---------------------------------------------------------------------------
    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        torch = import_torch()
        device = resolve_device(self.device)
        positives = as_positives(user_items)
        if positives.nnz == 0:
            msg = "BPR needs at least one positive (> 0) interaction"
            raise DataError(msg)
        n_users, n_items = positives.shape
        log.info("training BPR on %s: %d positives", device, positives.nnz)
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(positives.indptr))
        items = positives.indices.astype(np.int64)
        pos_keys = users * n_items + items  # sorted: CSR rows in order, sorted indices

        gen = torch.Generator().manual_seed(derive_seed(rng))
        f = self.n_factors
        user_f = (torch.randn(n_users, f, generator=gen) * _INIT_STD).to(device).requires_grad_()
        # item table = [factors | bias]: one gather per item, and the L2 penalty covers both
        item_t = torch.randn(n_items, f + 1, generator=gen) * _INIT_STD
        item_t[:, f] = 0.0
        item_t = item_t.to(device).requires_grad_()
        opt = torch.optim.Adagrad([user_f, item_t], lr=self.learning_rate)
        history = []
        epochs = progress(
            range(self.n_epochs), total=self.n_epochs, desc="BPR", enabled=self.progress
        )
        for epoch in epochs:
            order = rng.permutation(len(users))
            neg = sample_negatives(rng, users[order], pos_keys, n_items, self.n_negatives)
            batches = [torch.from_numpy(a).to(device) for a in (users[order], items[order], neg)]
            history.append(self._epoch(torch, batches, user_f, item_t, opt))
            log.debug("BPR epoch %d/%d loss %.6f", epoch + 1, self.n_epochs, history[-1])
        self.user_factors_ = user_f.detach().cpu().numpy().astype(np.float32)
        items_np = item_t.detach().cpu().numpy().astype(np.float32)
        self.item_factors_ = np.ascontiguousarray(items_np[:, :f])
        self.item_bias_ = np.ascontiguousarray(items_np[:, f])
        self.loss_history_ = np.asarray(history, np.float64)

    def _epoch(self, torch: Any, batches: list[Any], user_f: Any, item_t: Any, opt: Any) -> float:
        """One pass over the shuffled positives; returns the mean loss."""
        emb, logsigmoid = torch.nn.functional.embedding, torch.nn.functional.logsigmoid
        f, reg, bs = self.n_factors, float(self.regularization), int(self.batch_size)
        bu_all, bi_all, bj_all = batches
        total = torch.zeros((), device=user_f.device)
        for start in range(0, len(bu_all), bs):
            bu, bi, bj = (t[start : start + bs] for t in (bu_all, bi_all, bj_all))
            u, qi, qj = emb(bu, user_f), emb(bi, item_t), emb(bj, item_t)  # qj: (B, n_neg, f+1)
            x_ui = (u * qi[:, :f]).sum(-1) + qi[:, f]
            x_uj = torch.einsum("bf,bnf->bn", u, qj[..., :f]) + qj[..., f]
            nll = -logsigmoid(x_ui[:, None] - x_uj).mean()
            penalty = (u.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1).mean(-1)).mean()
            loss = nll + reg * penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(bu)
        return float(total) / len(bu_all)

    # -- scoring ---------------------------------------------------------------------------
    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        if items is None:
            return self.user_factors_[users] @ self.item_factors_.T + self.item_bias_
        return self.user_factors_[users] @ self.item_factors_[items].T + self.item_bias_[items]

    def _negative_table(self, length: int) -> NDArray[np.int64]:
        """Fold-in negatives per history position; seeded by block, so any prefix is stable."""
        seed = self.random_state if isinstance(self.random_state, int | np.integer) else 0
        blocks = [
            np.random.default_rng([int(seed), b]).integers(
                0, self.n_items_, size=(_NEG_BLOCK, _FOLD_IN_NEGATIVES), dtype=np.int64
            )
            for b in range(math.ceil(max(length, 1) / _NEG_BLOCK))
        ]
        return np.concatenate(blocks)[:length]

    def fold_in(self, histories: sp.spmatrix) -> NDArray[np.float32]:
        """User factors for new histories by gradient steps with the item side frozen.

        Each row's vector starts at zero and takes 50 full-batch Adam steps (step size
        ``learning_rate``) on that user's own BPR objective, with 16 negatives per history
        item drawn from a fixed seeded table (a negative that the user has is skipped). Rows
        are independent: a user's result does not depend on the other rows of the batch.

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float

        Returns
        -------
        ndarray of shape (n, n_factors), float32
            Zero rows for empty histories (their scores are the item biases).
        """
        check_is_fitted(self)
        torch = import_torch()
        hist = as_positives(histories)
        if hist.shape[1] != self.n_items_:
            msg = f"histories has {hist.shape[1]} columns but the model has {self.n_items_} items"
            raise DataError(msg)
        out = np.zeros((hist.shape[0], self.n_factors), np.float32)
        lengths = np.diff(hist.indptr)
        if hist.nnz == 0:
            return out
        table = self._negative_table(int(lengths.max()))
        item_f = torch.from_numpy(self.item_factors_)
        bias = torch.from_numpy(self.item_bias_)
        rows_per_chunk = max(
            1, _FOLD_IN_TRIPLES // (_FOLD_IN_NEGATIVES * max(1, int(lengths.max())))
        )
        for lo in range(0, hist.shape[0], rows_per_chunk):
            block = hist[lo : lo + rows_per_chunk]
            out[lo : lo + block.shape[0]] = self._fold_in_block(torch, block, table, item_f, bias)
        return out

    def _fold_in_block(
        self, torch: Any, block: sp.csr_matrix, table: NDArray[np.int64], item_f: Any, bias: Any
    ) -> NDArray[np.float32]:
        n_rows, n_items = block.shape
        counts = np.diff(block.indptr)
        rows = np.repeat(np.arange(n_rows), counts)
        position = np.arange(block.nnz) - np.repeat(block.indptr[:-1], counts)
        neg = table[position]  # (nnz, m)
        keys = np.sort(rows.astype(np.int64) * n_items + block.indices)
        qkeys = rows[:, None].astype(np.int64) * n_items + neg
        found = keys[np.minimum(np.searchsorted(keys, qkeys), len(keys) - 1)] == qkeys
        weight = np.where(found, 0.0, 1.0)
        per_row = np.bincount(rows, weights=weight.sum(1), minlength=n_rows)
        weight /= np.maximum(per_row[rows], 1.0)[:, None]  # each user's objective is a mean
        t_rows = torch.from_numpy(rows.astype(np.int64))
        qi = item_f[torch.from_numpy(block.indices.astype(np.int64))]
        bi = bias[torch.from_numpy(block.indices.astype(np.int64))]
        qj, bj = item_f[torch.from_numpy(neg)], bias[torch.from_numpy(neg)]
        diff_q = qi[:, None, :] - qj  # (nnz, m, f)
        diff_b = bi[:, None] - bj
        w = torch.from_numpy(weight.astype(np.float32))
        user = torch.zeros(n_rows, self.n_factors, requires_grad=True)
        opt = torch.optim.Adam([user], lr=self.learning_rate)
        reg = float(self.regularization)
        for _ in range(_FOLD_IN_STEPS):
            x = torch.einsum("nf,nmf->nm", user[t_rows], diff_q) + diff_b
            loss = -(w * torch.nn.functional.logsigmoid(x)).sum() + reg * user.pow(2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return user.detach().numpy()

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Scores for users given only their histories (see :meth:`fold_in`).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
        items : array-like of shape (m,), int, optional

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
        """
        x = self.fold_in(histories)
        return self._dot_scores(x, self.item_factors_, items, self.item_bias_)
