"""Differential-privacy calibration and accounting on Opacus's accountants (RDP and PRV).

Every ε LumenRec reports comes from one accountant family: Opacus's ``RDPAccountant`` or
``PRVAccountant``. DP-SGD is a Poisson-subsampled Gaussian mechanism (noise multiplier σ,
sampling rate q, T steps); a one-shot release of noisy counts or a noisy Gram matrix is the
same mechanism with q = 1 and T = the number of releases, so both are accounted by the same
code (:func:`epsilon_spent`) and calibrated by the same inverse (:func:`noise_multiplier_for`,
Opacus's ``get_noise_multiplier``).

Secure RNG: Opacus's ``secure_mode`` (a cryptographically strong noise generator from
``torchcsprng``) is not available here; noise comes from seeded numpy / torch generators, which
is right for reproducible research and wrong against an adversary who can predict the
generator's state (see docs/privacy.md).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, missing_dependency

__all__ = [
    "ACCOUNTANTS",
    "PrivacySpend",
    "SpendState",
    "bounded_rows",
    "check_budget",
    "epsilon_spent",
    "gaussian_noise_multiplier",
    "gram_sensitivity",
    "import_opacus",
    "noise_multiplier_for",
    "quiet_accountant",
    "symmetric_gaussian",
]

#: Accountants LumenRec accepts (Opacus names).
ACCOUNTANTS: tuple[str, ...] = ("prv", "rdp")

Level = Literal["user", "event"]


def import_opacus() -> Any:
    """The opacus module, or :class:`~lumenrec.errors.MissingDependencyError` naming the extra."""
    try:
        with warnings.catch_warnings():
            # opacus imports modules that warn about their own deprecated APIs on import
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import opacus
            import opacus.accountants
            import opacus.accountants.utils
    except ImportError as err:
        missing = missing_dependency("opacus", "privacy")
        raise missing from err
    return opacus


@dataclass(frozen=True)
class PrivacySpend:
    """The (ε, δ) one private training spent, and how it was obtained.

    Parameters
    ----------
    epsilon, delta : float
        The guarantee, as computed by ``accountant`` from the other fields.
    level : {"user", "event"}
        What ε protects: a whole user's history ("user") or one interaction/rating ("event").
    mechanism : str
        "dp-sgd" (Poisson-subsampled Gaussian) or "gaussian" (one-shot release, q = 1).
    accountant : {"prv", "rdp"}
    noise_multiplier : float
        σ: noise standard deviation over the L2 sensitivity (the clipping norm for DP-SGD).
    sample_rate : float
        q (1.0 for a one-shot release).
    steps : int
        T (1 for a single release).
    sensitivity : float
        L2 sensitivity of one release (DP-SGD: the per-unit clipping norm).
    target_epsilon : float
        The ε asked for; ``epsilon`` is at most this (calibration searches σ upwards).
    """

    epsilon: float
    delta: float
    level: Level
    mechanism: str
    accountant: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    sensitivity: float
    target_epsilon: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy (for manifests, the ledger and reports)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrivacySpend:
        """Inverse of :meth:`as_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class SpendState:
    """Mixin of the private models: their ``privacy_`` (a ``PrivacySpend.as_dict()``) travels
    in the artifact manifest's state, so a loaded model still says what it spent."""

    privacy_: dict[str, Any]

    def _get_state(self) -> dict[str, Any]:
        return {"privacy": dict(self.privacy_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.privacy_ = dict(state["privacy"])


def check_budget(epsilon: float, delta: float, n: int, *, unit: str = "users") -> None:
    """Reject an unusable (ε, δ) before anything is trained.

    Parameters
    ----------
    epsilon : float
        Must be finite and > 0.
    delta : float
        Must lie in (0, 1/n): a δ of 1/n or more allows a mechanism that publishes one of the
        ``n`` protected units outright.
    n : int
        Number of protected units (users for user-level DP, events for event-level DP).
    unit : str
        Their name, for the message.

    Raises
    ------
    ConfigError
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float | np.floating):
        msg = f"epsilon must be a number (got {epsilon!r})"
        raise ConfigError(msg)
    if not math.isfinite(float(epsilon)) or epsilon <= 0:
        msg = f"epsilon must be a finite number > 0 (got {epsilon!r}); train without --epsilon for a non-private model"
        raise ConfigError(msg)
    if n < 1:
        msg = f"a private training needs at least one of its {unit} (got n = {n})"
        raise ConfigError(msg)
    if (
        isinstance(delta, bool)
        or not isinstance(delta, int | float | np.floating)
        or not 0 < delta < 1.0 / n
    ):
        msg = (
            f"delta must lie in (0, 1/n) with n = {n} {unit} (1/n = {1.0 / n:.3g}); "
            f"got delta = {delta!r}"
        )
        raise ConfigError(msg)


@contextlib.contextmanager
def quiet_accountant() -> Iterator[None]:
    """Silence the one accountant warning that is advice, not a problem: RDP's "optimal order
    is the largest alpha" (the bound is still valid, only not the tightest; PRV's domain
    search triggers it internally at large ε), and numpy's divide-by-zero and overflow in the PRV's
    ``log(1 - q)`` at q = 1 (a masked branch of ``np.where``)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", over="ignore"):
        warnings.filterwarnings(
            "ignore", message="Optimal order is the (largest|smallest) alpha", category=UserWarning
        )
        yield


def _check_accountant(accountant: str) -> None:
    if accountant not in ACCOUNTANTS:
        msg = f"accountant must be one of {ACCOUNTANTS} (got {accountant!r})"
        raise ConfigError(msg)


def epsilon_spent(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = "prv",
) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian steps, by Opacus's accountant.

    The accountant's history is set to ``[(σ, q, T)]`` and ``get_epsilon(delta)`` is called,
    exactly as ``PrivacyEngine`` does after T optimiser steps.

    Parameters
    ----------
    noise_multiplier : float
        σ > 0.
    sample_rate : float
        q in (0, 1] (1 for a one-shot Gaussian release).
    steps : int
        T >= 1.
    delta : float
        In (0, 1).
    accountant : {"prv", "rdp"}

    Returns
    -------
    float
    """
    _check_accountant(accountant)
    if noise_multiplier <= 0 or not 0 < sample_rate <= 1 or steps < 1 or not 0 < delta < 1:
        msg = (
            "need noise_multiplier > 0, 0 < sample_rate <= 1, steps >= 1 and 0 < delta < 1 "
            f"(got {noise_multiplier}, {sample_rate}, {steps}, {delta})"
        )
        raise ConfigError(msg)
    opacus = import_opacus()
    acc = opacus.accountants.create_accountant(mechanism=accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    try:
        with quiet_accountant():
            return float(acc.get_epsilon(delta=float(delta)))
    except (RuntimeError, RuntimeWarning, FloatingPointError) as err:
        raise _numerical(accountant, err) from err


def noise_multiplier_for(
    epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
    tolerance: float = 1e-3,
) -> float:
    """The σ that reaches ``epsilon`` after ``steps`` steps at ``sample_rate`` (Opacus's
    ``get_noise_multiplier``); the ε it gives is at most ``epsilon`` and within
    ``tolerance`` of it.

    Returns
    -------
    float
        σ; pass it to :func:`epsilon_spent` for the exact ε it buys.

    Raises
    ------
    ConfigError
        An invalid argument, or a budget too small for any σ below 1e6.
    """
    _check_accountant(accountant)
    if not math.isfinite(epsilon) or epsilon <= 0:
        msg = f"epsilon must be a finite number > 0 (got {epsilon!r})"
        raise ConfigError(msg)
    if not 0 < sample_rate <= 1 or steps < 1 or not 0 < delta < 1:
        msg = f"need 0 < sample_rate <= 1, steps >= 1, 0 < delta < 1 (got {sample_rate}, {steps}, {delta})"
        raise ConfigError(msg)
    opacus = import_opacus()
    try:
        with quiet_accountant():
            sigma = float(
                opacus.accountants.utils.get_noise_multiplier(
                    target_epsilon=float(epsilon),
                    target_delta=float(delta),
                    sample_rate=float(sample_rate),
                    steps=int(steps),
                    accountant=accountant,
                    epsilon_tolerance=float(tolerance),
                )
            )
    except ValueError as err:
        msg = f"no noise multiplier reaches epsilon={epsilon} at delta={delta} ({err})"
        raise ConfigError(msg) from err
    except (RuntimeError, RuntimeWarning, FloatingPointError) as err:
        raise _numerical(accountant, err) from err
    return sigma


def _numerical(accountant: str, err: BaseException) -> ConfigError:
    """The PRV accountant's discretisation fails at very small noise (huge ε)."""
    msg = f"the {accountant} accountant failed numerically ({err}); use accountant='rdp' for very large epsilon"
    return ConfigError(msg)


def gaussian_noise_multiplier(
    epsilon: float, delta: float, releases: int = 1, accountant: str = "prv"
) -> float:
    """σ for ``releases`` composed one-shot Gaussian releases (q = 1) reaching (ε, δ).

    The noise standard deviation of each release is ``σ × its L2 sensitivity``.
    """
    return noise_multiplier_for(epsilon, delta, 1.0, releases, accountant)


def gram_sensitivity(max_norm_sq: float) -> float:
    """L2 sensitivity of the upper triangle (with diagonal) of ``XᵀX`` when one user is added
    or removed and every user row has ``‖x_u‖² <= c`` (``c = max_norm_sq``).

    One user adds ``x xᵀ``; its upper triangle has squared norm ``(‖x‖⁴ + Σ x_i⁴) / 2``.
    Binary rows of at most ``c`` items, scaled by ``sqrt(c / n_u)`` when ``n_u > c``, reach
    the largest value at ``n_u = c``: ``sqrt(c (c + 1) / 2)``. (Rows scaled that way satisfy
    ``Σ x_i⁴ = c² / n_u <= c``, so the bound holds for them as well.)
    """
    c = float(max_norm_sq)
    return math.sqrt(c * (c + 1.0) / 2.0)


def bounded_rows(user_items: sp.spmatrix, max_items: int) -> sp.csr_matrix:
    """Binary rows scaled so that ``‖x_u‖² <= max_items``.

    Parameters
    ----------
    user_items : sparse matrix of shape (n_users, n_items)
        Stored value > 0 = interaction.
    max_items : int
        ``c``: a row with ``n_u > c`` items gets weight ``sqrt(c / n_u)`` on each.

    Returns
    -------
    csr_matrix of shape (n_users, n_items), float64
    """
    x = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    x.data = (x.data > 0).astype(np.float64)
    x.eliminate_zeros()
    x.sort_indices()
    counts = np.diff(x.indptr).astype(np.float64)
    scale = np.sqrt(np.minimum(1.0, max_items / np.maximum(counts, 1.0)))
    x.data *= np.repeat(scale, np.diff(x.indptr))
    return x


def symmetric_gaussian(n: int, std: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """A symmetric n × n matrix whose upper triangle (with diagonal) is i.i.d. N(0, std²).

    Parameters
    ----------
    n : int
    std : float
    rng : numpy Generator

    Returns
    -------
    ndarray of shape (n, n), float64
    """
    z = rng.standard_normal((n, n)) * std
    upper = np.triu(z)
    return upper + np.triu(z, 1).T
