"""Privacy accounting of federated training with central DP (DP-FedAvg through Flower).

With ``FederatedConfig.dp_noise_multiplier`` set, Flower's
``DifferentialPrivacyServerSideFixedClipping`` clips every sampled client's update to L2 norm
``C = dp_clipping_norm`` and adds Gaussian noise of standard deviation ``σ · C / m`` to the
uniformly weighted mean of the ``m`` sampled updates (McMahan et al. 2018, DP-FedAvg). One
client is one user, so one user's whole contribution to a round moves the mean by at most
``C / m``: each round is a Gaussian mechanism with noise multiplier ``σ`` at **user level**,
and ``rounds`` of them at sampling rate ``q = m / n_clients`` are accounted by the same Opacus
accountant as DP-SGD (:func:`~lumenrec.privacy.dp.epsilon_spent`). With ``fraction_fit = 1``
(every client every round) this is exact; Flower samples a fixed-size subset without
replacement, which the accountant's Poisson-sampling analysis only approximates when
``fraction_fit < 1`` (the usual practice; said in docs/privacy.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lumenrec.errors import ConfigError
from lumenrec.privacy.dp import PrivacySpend, epsilon_spent

if TYPE_CHECKING:
    from lumenrec.privacy.federated import FederatedConfig
    from lumenrec.privacy.ledger import PrivacyLedger

__all__ = ["FEDERATED_MODEL", "check_federated_budget", "federated_privacy"]

#: The model name federated trainings are recorded under in a privacy ledger.
FEDERATED_MODEL = "FederatedBPR"


def _sampled(config: FederatedConfig, n_clients: int) -> int:
    return max(int(n_clients * config.fraction_fit), 1)


def federated_privacy(config: FederatedConfig, n_clients: int) -> PrivacySpend | None:
    """The (ε, δ) a federated training with central DP spends, before it runs.

    Parameters
    ----------
    config : FederatedConfig
        ``dp_noise_multiplier`` (σ), ``dp_clipping_norm``, ``fraction_fit``, ``rounds``,
        ``dp_delta`` and ``accountant`` are used.
    n_clients : int
        Clients taking part (users with a training positive).

    Returns
    -------
    PrivacySpend or None
        None without DP; otherwise ``level="user"``, ``mechanism="dp-fedavg"``.

    Raises
    ------
    ConfigError
        ``dp_delta`` not in (0, 1 / n_clients), or the accountant fails.
    MissingDependencyError
        Opacus is not installed (``pip install 'lumenrec[privacy]'``).
    """
    sigma = config.dp_noise_multiplier
    if sigma is None:
        return None
    if n_clients < 1:
        msg = "federated DP needs at least one client"
        raise ConfigError(msg)
    delta = float(config.dp_delta)
    if not 0.0 < delta < 1.0 / n_clients:
        msg = (
            f"dp_delta must lie in (0, 1/n_clients) = (0, {1.0 / n_clients:.3g}) for "
            f"{n_clients} clients (got {delta:g}); a larger delta would allow publishing a "
            "client's data outright. Lower dp_delta, e.g. to 1e-6"
        )
        raise ConfigError(msg)
    q = _sampled(config, n_clients) / n_clients
    eps = epsilon_spent(float(sigma), q, int(config.rounds), delta, config.accountant)
    return PrivacySpend(
        epsilon=eps,
        delta=delta,
        level="user",
        mechanism="dp-fedavg",
        accountant=config.accountant,
        noise_multiplier=float(sigma),
        sample_rate=q,
        steps=int(config.rounds),
        sensitivity=float(config.dp_clipping_norm),
        target_epsilon=eps,
    )


def check_federated_budget(
    config: FederatedConfig,
    n_clients: int,
    ledger: PrivacyLedger,
    fingerprint: str,
    max_epsilon: float | None = None,
) -> PrivacySpend | None:
    """Account a federated training and refuse it (before it starts) when it would exceed the
    ledger's maximum for ``(fingerprint, FEDERATED_MODEL)``.

    Returns
    -------
    PrivacySpend or None
        What to :meth:`~lumenrec.privacy.ledger.PrivacyLedger.record` after training (None
        without DP: nothing is charged).

    Raises
    ------
    ConfigError
        Over budget (nothing trained, nothing written), or a bad ``dp_delta``.
    """
    spend = federated_privacy(config, n_clients)
    if spend is not None:
        ledger.check(fingerprint, FEDERATED_MODEL, spend.epsilon, max_epsilon)
    return spend
