"""The mini-batch steps of :class:`~lumenrec.models.debiased.DebiasedMF` (torch): the per-pair
loss (log loss on ``σ(x)`` for binary labels, squared error for ratings), one epoch over the
observed pairs in a random order with the naive, IPS or SNIPS estimate of the loss, and the
doubly robust (DR-JL) step that first updates the imputation model on the batch and then
returns the prediction model's direct-plus-corrected loss. Torch is passed in by the caller."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DebiasedStepsMixin"]


class DebiasedStepsMixin:
    """Methods :class:`~lumenrec.models.debiased.DebiasedMF` gains for its training steps."""

    method: str
    task: str
    batch_size: int
    unobserved_ratio: int

    def _loss(self, torch: Any, x: Any, target: Any) -> Any:
        """Per-pair loss of logits/ratings ``x`` against (possibly soft) ``target``."""
        if self.task == "rating":
            return (x - target) ** 2
        logsig = torch.nn.functional.logsigmoid
        return -(target * logsig(x) + (1.0 - target) * logsig(-x))

    def _epoch(
        self, torch: Any, pred: Any, imp: Any, opt: Any, opt_imp: Any, t: dict[str, Any],
        rng: np.random.Generator, shape: tuple[int, int],
    ) -> float:  # fmt: skip
        n_obs, n_all = len(t["u"]), shape[0] * shape[1]
        ratio = n_obs / n_all
        order = torch.from_numpy(rng.permutation(n_obs)).to(t["u"].device)
        bs, total = int(self.batch_size), 0.0
        for start in range(0, n_obs, bs):
            b = order[start : start + bs]
            u, i, y, w = t["u"][b], t["i"][b], t["y"][b], t["w"][b]
            x = pred.logits(u, i)
            e = self._loss(torch, x, y)
            if self.method == "naive":
                loss = e.mean()
            elif self.method == "ips":
                loss = ratio * (w * e).mean()
            elif self.method == "snips":
                loss = (w * e).sum() / w.sum()
            else:
                loss = self._dr_step(
                    torch, pred, imp, opt_imp, x, e, (u, i, y, w), rng, shape, ratio
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        return total / n_obs

    def _dr_step(
        self, torch: Any, pred: Any, imp: Any, opt_imp: Any, x: Any, e: Any,
        batch: tuple[Any, ...], rng: np.random.Generator, shape: tuple[int, int],
        obs_ratio: float,
    ) -> Any:  # fmt: skip
        """Update the imputation model on this batch; return the prediction model's DR loss."""
        u, i, _, w = batch
        device = u.device
        # imputation step: fit ê to the (fixed) prediction error on observed pairs
        imputed = imp.imputed(u, i, self.task)
        e_hat_obs = self._loss(torch, x.detach(), imputed)
        imp_loss = (w * (e.detach() - e_hat_obs) ** 2).mean()
        opt_imp.zero_grad(set_to_none=True)
        imp_loss.backward()
        opt_imp.step()
        # prediction step: direct part on uniformly drawn pairs + corrected observed part
        m = int(self.unobserved_ratio) * len(u)
        du = torch.from_numpy(rng.integers(0, shape[0], m)).to(device)
        di = torch.from_numpy(rng.integers(0, shape[1], m)).to(device)
        with torch.no_grad():
            target_all = imp.imputed(du, di, self.task)
            target_obs = imp.imputed(u, i, self.task)
        direct = self._loss(torch, pred.logits(du, di), target_all).mean()
        corrected = obs_ratio * (w * (e - self._loss(torch, x, target_obs))).mean()
        return direct + corrected
