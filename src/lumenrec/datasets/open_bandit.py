"""Open Bandit Dataset (OBD; Saito et al., NeurIPS 2021 Datasets & Benchmarks) logs for OPE.

Reads ``<data_dir>/open-bandit/{random,bts}/<campaign>/<campaign>.csv`` (or a folder that itself
holds ``random/`` and ``bts/``) and prepares each log exactly as obp 0.5.7 does (protocol P6 of
BENCHMARKS.md): rows sorted by ``timestamp`` (stable), action = ``item_id``, position =
``position - 1``, reward = ``click``, propensity = ``propensity_score``; context = one-hot of
``user_feature_0..3`` with the first level of each dropped; item features = ``item_feature_1..3``
label-encoded (sorted codes) followed by ``item_feature_0``, read from the same folder's
``item_context.csv`` and indexed by ``item_id`` (the hashes differ between folders).

Target policies: :func:`bts_action_dist` (the production Bernoulli Thompson sampling with
ZOZO's published Beta prior: ``derived/bts_all_action_dist.csv`` when present, else 1e6
Monte-Carlo draws from ``derived/bts_production_prior.csv`` exactly as obp's
``BernoulliTS.compute_batch_action_dist``) and :func:`random_action_dist`. The on-policy truth
of a policy is its own log's mean click (:func:`on_policy_value`). The sample is Apache-2.0
material from obp; cite arXiv:2008.07146.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lumenrec.datasets._registry import resolve_data_dir
from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._ope_log import BanditLog
from lumenrec.types import PathLike

__all__ = [
    "CAMPAIGNS",
    "POLICIES",
    "OBDLog",
    "bts_action_dist",
    "find_obd_dir",
    "load_open_bandit",
    "on_policy_value",
    "random_action_dist",
    "read_obd_file",
]

POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
_URL = "https://research.zozo.com/data.html (full data) or the obp package (this sample)"


@dataclass(frozen=True)
class OBDLog:
    """One prepared OBD log.

    Attributes
    ----------
    log : BanditLog
        Rows in timestamp order; context (n, 20) for campaign "all", action_context (80, 4).
    policy, campaign : str
        Which logging policy and campaign.
    row_id : ndarray of shape (n,), int64
        The CSV's first (unnamed) column, in the prepared order.
    sha256 : str
        Of the log CSV.
    """

    log: BanditLog
    policy: str
    campaign: str
    row_id: NDArray[np.int64] = field(repr=False)
    sha256: str = ""

    @property
    def on_policy_value(self) -> float:
        """Mean reward of this log (the logging policy's on-policy value)."""
        return float(self.log.reward.mean())


def find_obd_dir(data_dir: PathLike | None = None) -> Path:
    """The folder holding ``random/`` and ``bts/`` (``data_dir`` itself or its ``open-bandit/``)."""
    base = resolve_data_dir(data_dir)
    for cand in (base, base / "open-bandit"):
        if (cand / "random").is_dir() or (cand / "bts").is_dir():
            return cand
    msg = (
        f"Open Bandit Dataset not found under {base} (looked for random/ and bts/ there and in "
        f"open-bandit/); get the sample from {_URL} and pass data_dir= or set LUMENREC_DATA_DIR"
    )
    raise DataError(msg)


def _check(policy: str, campaign: str) -> None:
    if policy not in POLICIES:
        msg = f"unknown OBD policy {policy!r}; valid: {', '.join(POLICIES)}"
        raise ConfigError(msg)
    if campaign not in CAMPAIGNS:
        msg = f"unknown OBD campaign {campaign!r}; valid: {', '.join(CAMPAIGNS)}"
        raise ConfigError(msg)


def load_open_bandit(
    policy: str = "random", campaign: str = "all", data_dir: PathLike | None = None
) -> OBDLog:
    """Load and prepare ``{policy}/{campaign}`` as P6 says (see the module docstring)."""
    _check(policy, campaign)
    folder = find_obd_dir(data_dir) / policy / campaign
    path = folder / f"{campaign}.csv"
    if not path.is_file():
        msg = f"OBD file {path} is missing; get it from {_URL}"
        raise DataError(msg)
    return read_obd_file(
        path, item_context=folder / "item_context.csv", policy=policy, campaign=campaign
    )


def read_obd_file(
    path: PathLike,
    *,
    item_context: PathLike | None = None,
    policy: str = "",
    campaign: str = "",
) -> OBDLog:
    """Prepare one OBD-format CSV (``item_context.csv`` defaults to the file's folder)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        msg = f"OBD log {path} not found"
        raise DataError(msg)
    raw = path.read_bytes()
    data = pd.read_csv(path, index_col=0)
    need = ["timestamp", "item_id", "position", "click", "propensity_score"]
    missing = [c for c in need if c not in data.columns]
    if missing:
        msg = (
            f"{path.name} is not an OBD log: missing column(s) {missing} (use --format lumenrec "
            f"for item_id/position/reward/propensity logs)"
        )
        raise DataError(msg)
    data = data.sort_values("timestamp", kind="stable")
    user_cols = [c for c in data.columns if "user_feature" in c]
    context = pd.get_dummies(data[user_cols], drop_first=True).to_numpy(np.float64)
    ic_path = Path(item_context) if item_context is not None else path.parent / "item_context.csv"
    if not ic_path.is_file():
        msg = f"{ic_path} is missing; OBD logs come with their folder's item_context.csv"
        raise DataError(msg)
    items = pd.read_csv(ic_path, index_col=0).sort_values("item_id").reset_index(drop=True)
    n_actions = len(items)
    if not (items["item_id"].to_numpy() == np.arange(n_actions)).all():
        msg = f"{ic_path.name}: item_id must be 0..{n_actions - 1}"
        raise DataError(msg)
    cats = [c for c in items.columns if c not in ("item_id", "item_feature_0")]
    coded = [np.unique(items[c].to_numpy(), return_inverse=True)[1] for c in cats]
    action_context = np.c_[np.column_stack(coded), items["item_feature_0"].to_numpy()]
    position = (np.unique(data["position"].to_numpy(), return_inverse=True)[1]).astype(np.int64)
    log = BanditLog(
        action=data["item_id"].to_numpy(np.int64),
        position=position,
        reward=data["click"].to_numpy(np.float64),
        pscore=data["propensity_score"].to_numpy(np.float64),
        n_actions=n_actions,
        n_positions=int(position.max()) + 1,
        context=context,
        action_context=action_context.astype(np.float64),
        action_ids=tuple(range(n_actions)),
    )
    return OBDLog(
        log, policy, campaign, data.index.to_numpy(np.int64), hashlib.sha256(raw).hexdigest()
    )


def on_policy_value(policy: str, campaign: str = "all", data_dir: PathLike | None = None) -> float:
    """The policy's own mean click (obp's ``calc_on_policy_policy_value_estimate``)."""
    return load_open_bandit(policy, campaign, data_dir).on_policy_value


def random_action_dist(n_actions: int, n_positions: int) -> NDArray[np.float64]:
    """Uniform target: 1 / n_actions for every (action, position); shape (n_actions, n_positions)."""
    return np.full((n_actions, n_positions), 1.0 / n_actions)


def bts_action_dist(
    campaign: str = "all",
    data_dir: PathLike | None = None,
    *,
    n_sim: int | None = None,
    len_list: int = 3,
    random_state: int = 12345,
    chunk: int = 20_000,
) -> NDArray[np.float64]:
    """P(item a at position k) under the production BTS; shape (n_items, len_list), float64.

    With ``n_sim=None`` the stored ``derived/bts_<campaign>_action_dist.csv`` is read when it
    exists, else 1e6 draws are simulated. Simulation repeats obp's
    ``BernoulliTS(is_zozotown_prior=True, random_state=random_state)
    .compute_batch_action_dist(n_sim)``: each draw samples theta ~ Beta(alpha, beta) per item
    (legacy ``RandomState`` stream, same order) and ranks the top ``len_list``.
    """
    import pandas as pd

    _check("bts", campaign)
    derived = find_obd_dir(data_dir) / "derived"
    stored = derived / f"bts_{campaign}_action_dist.csv"
    if n_sim is None and stored.is_file() and len_list == 3:
        table = pd.read_csv(stored).sort_values("item_id")
        return table[[f"position_{k + 1}" for k in range(3)]].to_numpy(np.float64)
    prior_path = derived / "bts_production_prior.csv"
    if not prior_path.is_file():
        msg = f"{prior_path} (the production Beta prior) is missing"
        raise DataError(msg)
    prior = pd.read_csv(prior_path)
    prior = prior[prior["campaign"] == campaign].sort_values("item_id")
    alpha = prior["alpha"].to_numpy(np.float64)
    beta = prior["beta"].to_numpy(np.float64)
    n_sim = 1_000_000 if n_sim is None else int(n_sim)
    if n_sim < 1:
        msg = "n_sim must be >= 1"
        raise ConfigError(msg)
    rs = np.random.RandomState(random_state)
    counts = np.zeros((alpha.size, len_list))
    done = 0
    while done < n_sim:
        m = min(chunk, n_sim - done)
        theta = rs.beta(
            np.broadcast_to(alpha, (m, alpha.size)), np.broadcast_to(beta, (m, alpha.size))
        )
        top = np.argsort(theta, axis=1)[:, ::-1][:, :len_list]
        for k in range(len_list):
            counts[:, k] += np.bincount(top[:, k], minlength=alpha.size)
        done += m
    return counts / n_sim
