"""Torch training loop of :class:`lumenrec.models.adapter.TextAdapter` (torch imported lazily;
the fitted adapters are plain numpy arrays, so loading and serving need no torch)."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from lumenrec.models._torch_train import import_torch, resolve_device

__all__ = ["train_adapter"]

log = logging.getLogger(__name__)


def train_adapter(
    inputs: NDArray[np.float32],
    targets: NDArray[np.float32],
    side: str,
    *,
    pairs: tuple[NDArray[np.integer], NDArray[np.integer]],
    other: NDArray[np.float32],
    rows: NDArray[np.integer],
    loss: str,
    anchor: float,
    n_negatives: int,
    hidden: int,
    n_epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    device: str,
    seed: int,
) -> tuple[NDArray[np.float32], ...]:
    """Train one adapter (text embedding → CF vector); returns its layers as numpy arrays.

    ``side="item"``: rows are items, ``other`` the fixed user factors, and the competitors
    of ``f(text_i)`` are the CF vectors of ``rows`` (see :class:`~lumenrec.models.adapter.TextAdapter`).
    ``side="user"``: rows are users, ``other`` the fixed item vectors ranked for ``g``.
    """
    torch, dev = import_torch(), resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d, f = inputs.shape[1], targets.shape[1]
    layers = [torch.nn.Linear(d, hidden or f)]
    if hidden:
        layers += [torch.nn.ReLU(), torch.nn.Linear(hidden, f)]
    net = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32)).to(dev)
    fixed = torch.from_numpy(np.ascontiguousarray(other, np.float32)).to(dev)
    y = torch.from_numpy(np.ascontiguousarray(targets, np.float32)).to(dev)
    rows_t = torch.from_numpy(np.asarray(rows, np.int64)).to(dev)
    if loss == "mse":
        units = rows_t.cpu()
    else:
        units = torch.from_numpy(np.stack(pairs).astype(np.int64).T.copy())
        column = torch.full((len(targets),), -1, dtype=torch.long, device=dev)
        column[rows_t] = torch.arange(len(rows_t), device=dev)
        keys = y[rows_t]  # the fixed competitors: CF vectors of the training rows
    cross_entropy = torch.nn.functional.cross_entropy
    for epoch in range(n_epochs):
        total = 0.0
        for batch in torch.randperm(len(units), generator=gen).split(batch_size):
            b = units[batch].to(dev)
            if loss == "mse":
                value = (net(x[b]) - y[b]).pow(2).sum(-1).mean()
            elif side == "item":
                uniq, inv = torch.unique(b[:, 1], return_inverse=True)
                q = fixed[b[:, 0]]
                with torch.no_grad():
                    if 0 < n_negatives < len(keys):  # a shared uniform sample of competitors
                        cols = torch.randint(len(keys), (n_negatives,), generator=gen).to(dev)
                        base = q @ keys[cols].T
                        base[:, torch.isin(cols, column[uniq])] = float("-inf")
                    else:
                        base = q @ keys.T
                        base[:, column[uniq]] = float("-inf")  # they compete as adapted vectors
                adapted = net(x[uniq])
                value = cross_entropy(torch.cat([q @ adapted.T, base], 1), inv)
                value = value + anchor * (adapted - y[uniq]).pow(2).sum(-1).mean()
            else:
                q = net(x[b[:, 0]])
                value = cross_entropy(q @ fixed.T, b[:, 1])
                value = value + anchor * (q - y[b[:, 0]]).pow(2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += float(value.detach()) * len(b)
        log.debug("%s adapter epoch %d/%d loss %.5f", side, epoch + 1, n_epochs, total / len(units))
    out = [np.zeros(0, np.float32)] * 4  # a linear adapter leaves W2, b2 empty
    for j, m in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
        out[2 * j : 2 * j + 2] = [m.weight.detach().T.cpu().numpy(), m.bias.detach().cpu().numpy()]
    return tuple(np.ascontiguousarray(a, dtype=np.float32) for a in out)
