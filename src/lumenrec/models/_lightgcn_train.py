"""Training of :class:`~lumenrec.models.lightgcn.LightGCN` with torch: one run of mini-batch
BPR or sampled-softmax steps with the whole graph propagated at every step (a sparse CSR
product whose backward reuses the symmetric adjacency), uniform negatives, L2 on the batch's
ego embeddings, optional NDCG@10 validation for early stopping, through
:func:`~lumenrec.models._torch_train.train_loop`. Torch is imported by the caller."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.models._lightgcn_graph import normalized_adjacency
from lumenrec.models._torch_train import (
    LoopSettings,
    blocked_validation_ndcg,
    seeded_init,
    train_loop,
    validation_users,
)
from lumenrec.models.bpr import sample_negatives

__all__ = ["LightGCNTrainingMixin"]

_INIT_STD = 0.1


def _symmetric_spmm(torch: Any) -> Any:
    """``A @ X`` for a symmetric sparse ``A`` whose backward is ``A @ grad`` (no transpose:
    torch would otherwise transpose and re-sort ``A`` at every step)."""

    class SymmetricSpMM(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, graph: Any, x: Any) -> Any:
            ctx.graph = graph
            return graph @ x

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return None, ctx.graph @ grad

    return SymmetricSpMM.apply


class LightGCNTrainingMixin:
    """The training run :class:`~lumenrec.models.lightgcn.LightGCN` gains (``_train``)."""

    n_factors: int
    n_layers: int
    loss: str
    n_negatives: int
    learning_rate: float
    regularization: float
    batch_size: int
    patience: int
    eval_every: int
    progress: bool | None
    mixed_precision: bool
    checkpoint_dir: str | None

    def _train(
        self,
        torch: Any,
        device: Any,
        train: sp.csr_matrix,
        valid: sp.csr_matrix | None,
        seed: int,
        rng: np.random.Generator,
        n_epochs: int,
    ) -> tuple[NDArray[np.float32], Any]:
        """One training run; returns the kept ego embeddings (users then items) and history."""
        n_users, n_items = train.shape
        adjacency, _ = normalized_adjacency(train)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": used for spmm only
            warnings.filterwarnings(
                "ignore", message="Sparse CSR tensor support", category=UserWarning
            )
            graph = torch.sparse_csr_tensor(
                torch.from_numpy(adjacency.indptr.astype(np.int64)),
                torch.from_numpy(adjacency.indices.astype(np.int64)),
                torch.from_numpy(adjacency.data.astype(np.float32)),
                adjacency.shape,
                check_invariants=False,  # a canonical scipy CSR
            ).to(device)
        spmm = _symmetric_spmm(torch)
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(train.indptr))
        items = train.indices.astype(np.int64)
        pos_keys = users * n_items + items
        n_layers, reg, bs = int(self.n_layers), float(self.regularization), int(self.batch_size)
        with seeded_init(seed, device):
            net = torch.nn.Embedding(n_users + n_items, self.n_factors).to(device)
            torch.nn.init.normal_(net.weight, std=_INIT_STD)
            optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)

            def propagate() -> Any:
                with torch.autocast(device.type, enabled=False):
                    layer = net.weight.float()
                    total = layer
                    for _ in range(n_layers):
                        layer = spmm(graph, layer)
                        total = total + layer
                    return total / (n_layers + 1)

            def batches(epoch: int) -> Any:
                order = rng.permutation(len(users))
                neg = sample_negatives(rng, users[order], pos_keys, n_items, self.n_negatives)
                tensors = [
                    torch.from_numpy(a).to(device)
                    for a in (users[order], items[order] + n_users, neg + n_users)
                ]
                for start in range(0, len(order), bs):
                    yield tuple(t[start : start + bs] for t in tensors)

            def batch_loss(batch: Any) -> Any:
                bu, bi, bj = batch
                final = propagate()
                emb = torch.nn.functional.embedding  # its backward beats index backward on CPU
                u, qi, qj = emb(bu, final), emb(bi, final), emb(bj, final)  # qj: (B, n_neg, f)
                x_ui = (u * qi).sum(-1)
                x_uj = torch.einsum("bf,bnf->bn", u, qj)
                if self.loss == "bpr":
                    fit = -torch.nn.functional.logsigmoid(x_ui[:, None] - x_uj).mean()
                else:
                    logits = torch.cat([x_ui[:, None], x_uj], dim=1).float()
                    fit = -torch.log_softmax(logits, dim=1)[:, 0].mean()
                e_u, e_i, e_j = emb(bu, net.weight), emb(bi, net.weight), emb(bj, net.weight)
                penalty = (
                    e_u.pow(2).sum(-1) + e_i.pow(2).sum(-1) + e_j.pow(2).sum(-1).mean(-1)
                ).mean()
                return fit + 0.5 * reg * penalty

            validate = None
            if valid is not None:
                val_users = validation_users(valid, rng)
                cache: dict[str, Any] = {}

                def score_rows(rows: NDArray[np.int64]) -> NDArray[np.float32]:
                    final = cache["final"]
                    u = final[torch.from_numpy(rows).to(device)]
                    return (u @ final[n_users:].T).float().cpu().numpy()

                def validate() -> float:
                    cache["final"] = propagate()
                    try:
                        return blocked_validation_ndcg(score_rows, val_users, valid, train, k=10)
                    finally:
                        cache.clear()

            settings = LoopSettings(
                n_epochs=n_epochs,
                patience=self.patience if valid is not None else 0,
                eval_every=self.eval_every,
                mixed_precision=self.mixed_precision,
                progress=self.progress,
                checkpoint_dir=self.checkpoint_dir if valid is not None else None,
                desc="LightGCN",
            )
            history = train_loop(net, optimizer, batches, batch_loss, settings, validate)
        ego = net.weight.detach().float().cpu().numpy()
        return np.ascontiguousarray(ego, np.float32), history
