"""DP-SGD through Opacus: the torch modules of the private gradient models and one training loop.

:func:`train_private` wraps a module, an optimiser and a data loader with Opacus's
``PrivacyEngine.make_private`` (Poisson sampling of privacy units, per-unit gradient clipping
by ghost clipping, Gaussian noise on the summed gradient, the accountant hooked on every
optimiser step). The noise multiplier is calibrated first with
:func:`~lumenrec.privacy.dp.noise_multiplier_for` for the exact number of steps the loop will
run, and the reported ε is :func:`~lumenrec.privacy.dp.epsilon_spent` of what ran, which
equals ``PrivacyEngine.get_epsilon``.

Everything runs inside ``seeded_init``: torch's global RNG (which Opacus's Poisson sampler
uses) is forked, seeded and restored, so no global state leaks out.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lumenrec.errors import ConfigError, FitError
from lumenrec.models._torch_train import import_torch, seeded_init
from lumenrec.privacy.dp import (
    Level,
    PrivacySpend,
    epsilon_spent,
    import_opacus,
    noise_multiplier_for,
    quiet_accountant,
)

__all__ = ["DPSettings", "history_module", "rating_module", "train_private"]

log = logging.getLogger(__name__)

#: Smallest expected Poisson batch: an empty draw then has probability below e^-32.
_MIN_BATCH = 32


@dataclass(frozen=True)
class DPSettings:
    """How one DP-SGD training runs.

    Parameters
    ----------
    epsilon, delta : float
        Target budget (already checked against the number of units).
    level : {"user", "event"}
        What one sample of the data loader is: a whole user or one event.
    batch_size : int
        Expected Poisson batch (sample rate = batch_size / n_units).
    n_epochs : int
        Passes: steps = n_epochs × round(n_units / batch_size).
    max_grad_norm : float
        Per-unit clipping norm C.
    learning_rate : float
        Adam step size.
    accountant : {"prv", "rdp"}
    """

    epsilon: float
    delta: float
    level: Level
    batch_size: int
    n_epochs: int
    max_grad_norm: float
    learning_rate: float
    accountant: str


@contextlib.contextmanager
def _opacus_quiet() -> Iterator[None]:
    """Opacus's advice about a setting chosen on purpose (no secure RNG: see docs/privacy.md)
    and torch's note that Opacus's backward hook on a first layer (whose input needs no
    gradient) fires on module outputs, which is what Opacus relies on; silenced narrowly, plus
    the accountant's (see :func:`quiet_accountant`)."""
    with quiet_accountant(), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*[Ss]ecure RNG turned off.*", category=UserWarning
        )
        warnings.filterwarnings(
            "ignore", message="Full backward hook is firing", category=UserWarning
        )
        yield


def history_module(n_items: int, n_factors: int, dropout: float) -> Any:
    """Asymmetric MF: user vector ``tanh(dropout(x̃_u) W_in)`` from the user's own history,
    scores ``u W_outᵀ + b``; only item-side parameters exist (both ``nn.Linear``)."""
    torch = import_torch()
    nn = torch.nn

    class HistoryMF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.encode = nn.Linear(n_items, n_factors, bias=False)
            self.decode = nn.Linear(n_factors, n_items)

        def forward(self, rows: Any) -> Any:
            return self.decode(torch.tanh(self.encode(self.drop(rows))))

    return HistoryMF()


def multinomial_criterion() -> Any:
    """Per-user multinomial log-likelihood ``−Σ_i x_ui log softmax(z_u)_i / n_u`` with the
    ``reduction`` attribute Opacus's ghost clipping switches to "none"."""
    torch = import_torch()

    class Multinomial(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reduction = "mean"

        def forward(self, logits: Any, target: Any) -> Any:
            per = -(torch.log_softmax(logits, -1) * target).sum(-1) / target.sum(-1).clamp(min=1)
            return per if self.reduction == "none" else per.mean()

    return Multinomial()


def rating_module(n_users: int, n_items: int, n_factors: int, offset: float) -> Any:
    """Biased MF regressor ``offset + b_u + b_i + p_u · q_i`` (embeddings only)."""
    torch = import_torch()
    nn = torch.nn

    class RatingMF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Embedding(n_users, n_factors)
            self.item = nn.Embedding(n_items, n_factors)
            self.user_bias = nn.Embedding(n_users, 1)
            self.item_bias = nn.Embedding(n_items, 1)
            for emb in (self.user, self.item):
                nn.init.normal_(emb.weight, std=0.01)
            for emb in (self.user_bias, self.item_bias):
                nn.init.zeros_(emb.weight)

        def forward(self, pairs: Any) -> Any:
            u, i = pairs[:, 0], pairs[:, 1]
            dot = (self.user(u) * self.item(i)).sum(-1)
            return offset + dot + self.user_bias(u)[:, 0] + self.item_bias(i)[:, 0]

    return RatingMF()


def train_private(
    module: Any,
    criterion: Any,
    tensors: tuple[Any, ...],
    make_batch: Callable[[tuple[Any, ...]], tuple[Any, Any]],
    settings: DPSettings,
    seed: int,
    weight_decay: float = 0.0,
) -> tuple[PrivacySpend, list[float]]:
    """Train ``module`` in place with DP-SGD; returns the spend and the mean loss per epoch.

    Parameters
    ----------
    module : torch.nn.Module
        Built inside the caller's ``seeded_init`` (initial weights are seeded there).
    criterion : torch.nn.Module
        ``criterion(output, target)`` with a ``reduction`` attribute.
    tensors : tuple of torch.Tensor
        One row per privacy unit (a user or an event), first dimension = n_units.
    make_batch : callable(tuple of tensors) -> (input, target)
        Builds the module input and the target of a sampled batch.
    settings : DPSettings
    seed : int
        Seeds the Poisson sampler, dropout and the noise.
    weight_decay : float
        Adam's weight decay.

    Returns
    -------
    spend : PrivacySpend
    losses : list of float
    """
    torch = import_torch()
    opacus = import_opacus()
    n_units = int(tensors[0].shape[0])
    batch = max(1, min(int(settings.batch_size), n_units))
    dataset = torch.utils.data.TensorDataset(*tensors)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch)
    steps_per_epoch = len(loader)
    sample_rate = 1.0 / steps_per_epoch  # Opacus's own choice: q = 1 / len(loader)
    steps = steps_per_epoch * settings.n_epochs
    if n_units * sample_rate < _MIN_BATCH:
        msg = (
            f"the expected batch ({n_units * sample_rate:.0f} of {n_units} {settings.level}s) "
            f"must be at least {_MIN_BATCH}; raise batch_size"
        )
        raise ConfigError(msg)
    sigma = noise_multiplier_for(
        settings.epsilon, settings.delta, sample_rate, steps, settings.accountant
    )
    log.info(
        "DP-SGD (%s-level): %d units, q=%.5f, %d steps, sigma=%.4f, C=%.3g",
        settings.level,
        n_units,
        sample_rate,
        steps,
        sigma,
        settings.max_grad_norm,
    )
    optimizer = torch.optim.Adam(
        module.parameters(), lr=settings.learning_rate, weight_decay=weight_decay
    )
    losses: list[float] = []
    with _opacus_quiet(), seeded_init(seed):
        engine = opacus.PrivacyEngine(accountant=settings.accountant)
        noise_gen = torch.Generator().manual_seed(seed + 1)
        model, dp_opt, dp_crit, dp_loader = engine.make_private(
            module=module,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=settings.max_grad_norm,
            grad_sample_mode="ghost",
            noise_generator=noise_gen,
            poisson_sampling=True,
        )
        model.train()
        for _ in range(settings.n_epochs):
            total, count = 0.0, 0
            for batch in dp_loader:
                if batch[0].shape[0] == 0:  # P < (1 - q)^n: negligible at n q >= 32
                    msg = "an empty Poisson batch was drawn; train again with another seed"
                    raise FitError(msg)
                inputs, target = make_batch(batch)
                loss = dp_crit(model(inputs), target)
                dp_opt.zero_grad(set_to_none=True)
                loss.backward()
                dp_opt.step()
                total += float(loss.detach()) * int(batch[0].shape[0])
                count += int(batch[0].shape[0])
            losses.append(total / max(count, 1))
        engine_eps = float(engine.get_epsilon(settings.delta))
        ran = sum(n for (_s, _q, n) in engine.accountant.history)
        model.eval()
    spend = PrivacySpend(
        epsilon=epsilon_spent(sigma, sample_rate, ran, settings.delta, settings.accountant),
        delta=settings.delta,
        level=settings.level,
        mechanism="dp-sgd",
        accountant=settings.accountant,
        noise_multiplier=sigma,
        sample_rate=sample_rate,
        steps=int(ran),
        sensitivity=float(settings.max_grad_norm),
        target_epsilon=float(settings.epsilon),
    )
    if not np.isclose(spend.epsilon, engine_eps, rtol=0, atol=1e-6):
        msg = f"our epsilon {spend.epsilon} differs from Opacus's {engine_eps}"
        raise RuntimeError(msg)
    return spend, losses
