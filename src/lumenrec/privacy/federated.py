"""Federated MF/BPR, simulated on one machine with Flower (``pip install 'lumenrec[federated]'``).

One client per user. A client keeps its user vector and its interactions; each round it receives
the global item table (factors and biases), trains its user vector locally with the items held
fixed, and returns the item table after one step along its own mean item gradient. Flower's
``FedAvg`` averages those tables weighted by the clients' positives, which makes each round a
full-batch gradient step on the mean BPR loss of all users (optionally followed by Flower's
server-side adaptive ``FedAdagrad``), and Flower's ``DifferentialPrivacyServerSideFixedClipping``
can clip every client's update and add Gaussian noise to the aggregate. Evaluation is federated
too: every client ranks the catalogue for itself and reports only its NDCG@k.

The rounds are driven by Flower's own server loop (``flwr.server.server.Server``) over in-process
client proxies: the clients are ``flwr.client.NumPyClient`` objects, and every message goes
through Flower's serialisation (``Parameters`` of numpy ``.npy`` bytes), which is what the byte
counts measure. Flower is imported lazily; without it the functions here raise
:class:`~lumenrec.errors.MissingDependencyError` naming the ``federated`` extra.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError, MissingDependencyError, missing_dependency
from lumenrec.privacy._federated_client import LocalBPRClient, LocalConfig
from lumenrec.privacy.federated_dp import (
    FEDERATED_MODEL,
    check_federated_budget,
    federated_privacy,
)

if TYPE_CHECKING:
    from lumenrec.privacy.dp import PrivacySpend
    from lumenrec.privacy.ledger import PrivacyLedger

log = logging.getLogger(__name__)

__all__ = ["FederatedConfig", "FederatedResult", "import_flwr", "run_federated_bpr"]


def import_flwr() -> Any:
    """Import Flower, or raise MissingDependencyError naming the ``federated`` extra."""
    try:
        import flwr  # noqa: PLC0415
        import flwr.server.server  # noqa: F401, PLC0415
    except ImportError as err:
        package = "flwr"
        raise missing_dependency(package, "federated") from err
    return flwr


@dataclass(frozen=True)
class FederatedConfig:
    """Settings of a federated MF/BPR simulation.

    Attributes
    ----------
    n_factors : int
        Length of the user and item vectors.
    rounds : int
        Federated rounds (each: all sampled clients train, the server aggregates).
    local : LocalConfig
        Client-side training settings (sent to the clients in every round's config).
    strategy : {"fedavg", "fedadagrad"}
        Flower strategy: plain FedAvg, or FedAvg's weighted mean followed by a server-side
        Adagrad step (Reddi et al. 2021) with learning rate ``server_lr``.
    server_lr : float
        ``eta`` of FedAdagrad (unused by FedAvg).
    fraction_fit : float
        Share of clients sampled per round.
    dp_noise_multiplier : float or None
        With a value, central DP: each client's item update is clipped to L2 norm
        ``dp_clipping_norm`` and Gaussian noise of std ``dp_noise_multiplier * clip / n_sampled``
        is added to the (then uniformly weighted) aggregate; ε is accounted by
        :func:`~lumenrec.privacy.federated_dp.federated_privacy` (user level).
    dp_clipping_norm : float
        The clipping bound of the DP wrapper.
    dp_delta : float
        δ of the reported guarantee; must be below 1 / n_clients.
    accountant : {"prv", "rdp"}
        Opacus accountant for ε.
    eval_every : int
        Federated evaluation every this many rounds (0: only after the last round).
    k : int
        Cut-off of the reported NDCG.
    seed : int
        Seeds the item table and the clients.
    """

    n_factors: int = 64
    rounds: int = 100
    local: LocalConfig = field(default_factory=LocalConfig)
    strategy: Literal["fedavg", "fedadagrad"] = "fedavg"
    server_lr: float = 0.05
    fraction_fit: float = 1.0
    dp_noise_multiplier: float | None = None
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-6
    accountant: str = "prv"
    eval_every: int = 0
    k: int = 10
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError on an out-of-range setting."""
        checks = [
            (self.n_factors >= 1, "n_factors must be >= 1"),
            (self.rounds >= 1, "rounds must be >= 1"),
            (self.local.local_epochs >= 1, "local_epochs must be >= 1"),
            (self.local.n_negatives >= 1, "n_negatives must be >= 1"),
            (self.strategy in ("fedavg", "fedadagrad"), "strategy must be fedavg or fedadagrad"),
            (0.0 < self.fraction_fit <= 1.0, "fraction_fit must lie in (0, 1]"),
            (self.dp_noise_multiplier is None or self.dp_noise_multiplier > 0, "noise > 0"),
            (self.dp_clipping_norm > 0, "dp_clipping_norm must be > 0"),
            (self.accountant in ("prv", "rdp"), "accountant must be prv or rdp"),
            (self.eval_every >= 0 and self.k >= 1, "eval_every >= 0 and k >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


@dataclass
class FederatedResult:
    """What a simulation produced and what it cost.

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, n_factors), float32
    item_bias : ndarray of shape (n_items,), float32
    ndcg : float
        Mean over evaluated clients of their NDCG@k after the last round (NaN without held-out).
    history : list of dict
        ``{"round", "ndcg"}`` of every federated evaluation.
    rounds, n_clients : int
    bytes_down, bytes_up : int
        Serialised ``Parameters`` bytes sent to / received from clients for training.
    bytes_eval : int
        Bytes sent to clients for federated evaluation.
    payload_bytes : int
        One item table as Flower serialises it (per client, per direction).
    wall_time : float
        Seconds.
    privacy : dict or None
        With central DP: the spent (ε, δ) and how (``PrivacySpend.as_dict()``); None without
        DP, or when Opacus was absent and no ledger was given (ε not computed).
    """

    item_factors: NDArray[np.float32]
    item_bias: NDArray[np.float32]
    ndcg: float
    history: list[dict[str, float]]
    rounds: int
    n_clients: int
    bytes_down: int
    bytes_up: int
    bytes_eval: int
    payload_bytes: int
    wall_time: float
    privacy: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no arrays)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("item_factors", "item_bias")}
        out["bytes_per_round"] = (self.bytes_down + self.bytes_up) // max(self.rounds, 1)
        return out


def _rows(matrix: sp.csr_matrix, user: int) -> NDArray[np.int64]:
    return matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]].astype(np.int64)


def _build(flwr: Any) -> tuple[type, type]:
    """The NumPyClient and ClientProxy classes (defined here so flwr stays a lazy import)."""
    from flwr.client import NumPyClient  # noqa: PLC0415
    from flwr.server.client_proxy import ClientProxy  # noqa: PLC0415

    class BPRNumPyClient(NumPyClient):  # type: ignore[misc]
        def __init__(self, local: LocalBPRClient, k: int) -> None:
            self.local, self.k = local, k

        def get_parameters(self, config: dict[str, Any]) -> list[NDArray[Any]]:
            msg = "clients hold no global parameters; the server initialises the item table"
            raise DataError(msg)

        def fit(
            self, parameters: list[NDArray[Any]], config: dict[str, Any]
        ) -> tuple[list[NDArray[Any]], int, dict[str, Any]]:
            cfg = LocalConfig(**config)
            q, b, loss = self.local.fit(parameters[0], parameters[1], cfg)
            weight = 1 if cfg.example_norm > 0 else len(self.local.positives)
            return [q, b], weight, {"loss": loss}

        def evaluate(
            self, parameters: list[NDArray[Any]], config: dict[str, Any]
        ) -> tuple[float, int, dict[str, Any]]:
            value = self.local.evaluate(parameters[0], parameters[1], self.k)
            return 0.0, int(value is not None), {"ndcg": 0.0 if value is None else value}

    class InProcessProxy(ClientProxy):  # type: ignore[misc]
        """Hands Flower's messages to a local Client and counts the serialised bytes."""

        def __init__(self, cid: str, client: Any, meter: dict[str, int], lock: Any) -> None:
            super().__init__(cid)
            self.client, self.meter, self.lock = client, meter, lock

        def _count(self, key: str, params: Any) -> None:
            with self.lock:
                self.meter[key] += sum(len(t) for t in params.tensors)

        def get_properties(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return self.client.get_properties(ins)

        def get_parameters(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return self.client.get_parameters(ins)

        def fit(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            self._count("down", ins.parameters)
            res = self.client.fit(ins)
            self._count("up", res.parameters)
            return res

        def evaluate(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            self._count("eval", ins.parameters)
            return self.client.evaluate(ins)

        def reconnect(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return flwr.common.DisconnectRes(reason="")

    return BPRNumPyClient, InProcessProxy


def _strategy(flwr: Any, config: FederatedConfig, initial: Any, n_clients: int, rounds: int) -> Any:
    from flwr.server.strategy import (  # noqa: PLC0415
        DifferentialPrivacyServerSideFixedClipping,
        FedAdagrad,
        FedAvg,
    )

    base = FedAdagrad if config.strategy == "fedadagrad" else FedAvg
    every = config.eval_every

    class Strategy(base):  # type: ignore[misc, valid-type]
        """The chosen Flower strategy, evaluating only every ``eval_every`` rounds."""

        def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any):
            if server_round != rounds and (every == 0 or server_round % every):
                return []
            return super().configure_evaluate(server_round, parameters, client_manager)

    def mean_ndcg(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        total = sum(n for n, _ in results)
        value = sum(n * float(m["ndcg"]) for n, m in results) / total if total else float("nan")
        return {"ndcg": value, "n_evaluated": total}

    local = config.local
    if config.dp_noise_multiplier is not None and local.example_norm <= 0:
        msg = "central DP needs uniform client weights: set local.example_norm > 0"
        raise ConfigError(msg)
    kwargs: dict[str, Any] = {
        "fraction_fit": config.fraction_fit,
        "fraction_evaluate": 1.0,
        "min_fit_clients": 1,
        "min_evaluate_clients": 1,
        "min_available_clients": n_clients,
        "initial_parameters": initial,
        "on_fit_config_fn": lambda _round: asdict(local),
        "evaluate_metrics_aggregation_fn": mean_ndcg,
        "fit_metrics_aggregation_fn": lambda res: {
            "loss": sum(n * float(m["loss"]) for n, m in res) / max(sum(n for n, _ in res), 1)
        },
    }
    if base is FedAdagrad:
        kwargs.update(eta=config.server_lr, eta_l=local.item_lr, tau=1e-9)
    strategy = Strategy(**kwargs)
    if config.dp_noise_multiplier is not None:
        sampled = max(int(n_clients * config.fraction_fit), 1)
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, config.dp_noise_multiplier, config.dp_clipping_norm, sampled
        )
    return strategy


def run_federated_bpr(
    train: sp.csr_matrix,
    held_out: sp.csr_matrix | None,
    config: FederatedConfig,
    *,
    ledger: PrivacyLedger | None = None,
    fingerprint: str = "",
    max_epsilon: float | None = None,
) -> FederatedResult:
    """Simulate federated MF/BPR with one Flower client per user that has a training positive.

    Parameters
    ----------
    train : sparse matrix of shape (n_users, n_items)
        Training interactions (> 0 = positive); row ``u`` is client ``u``'s private data.
    held_out : sparse matrix of shape (n_users, n_items), optional
        Held-out positives each client evaluates itself on (NDCG@k, training items masked).
    config : FederatedConfig
    ledger : PrivacyLedger, optional
        With central DP: the training's ε is checked against the ledger's maximum for
        ``(fingerprint, "FederatedBPR")`` before anything runs, and recorded after.
    fingerprint : str
        The dataset's fingerprint (``Dataset.fingerprint()``), used with ``ledger``.
    max_epsilon : float, optional
        A maximum to apply (and store) instead of the ledger's.

    Returns
    -------
    FederatedResult

    Raises
    ------
    MissingDependencyError
        Flower is not installed (``pip install 'lumenrec[federated]'``).
    ConfigError, DataError
        Bad settings; no positives; shapes that disagree; over the privacy budget.
    """
    config.validate()
    train = sp.csr_matrix(train)
    train.sum_duplicates()
    train.eliminate_zeros()
    n_clients = int(np.count_nonzero(np.diff(train.indptr) > 0))
    spend = _account(config, n_clients, ledger, fingerprint, max_epsilon)
    flwr = import_flwr()
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays  # noqa: PLC0415
    from flwr.server.client_manager import SimpleClientManager  # noqa: PLC0415
    from flwr.server.server import Server  # noqa: PLC0415

    n_users, n_items = train.shape
    if held_out is not None:
        held_out = sp.csr_matrix(held_out)
        held_out.eliminate_zeros()
        if held_out.shape != train.shape:
            msg = f"held_out has shape {held_out.shape}, train {train.shape}"
            raise DataError(msg)
    users = np.flatnonzero(np.diff(train.indptr) > 0)
    if users.size == 0:
        msg = "federated training needs at least one user with a positive"
        raise DataError(msg)
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    client_seeds = rng.integers(0, 2**63 - 1, size=n_users)
    item_factors = (rng.standard_normal((n_items, config.n_factors)) * 0.1).astype(np.float32)
    item_bias = np.zeros(n_items, dtype=np.float32)
    initial = ndarrays_to_parameters([item_factors, item_bias])

    numpy_client_cls, proxy_cls = _build(flwr)
    meter, lock = {"down": 0, "up": 0, "eval": 0}, threading.Lock()
    manager = SimpleClientManager()
    for u in users:
        local = LocalBPRClient(
            _rows(train, u),
            n_items,
            config.n_factors,
            int(client_seeds[u]),
            None if held_out is None else _rows(held_out, u),
        )
        client = numpy_client_cls(local, config.k).to_client()
        manager.register(proxy_cls(f"user-{u}", client, meter, lock))
    strategy = _strategy(flwr, config, initial, len(users), config.rounds)
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(1)
    history, _elapsed = server.fit(num_rounds=config.rounds, timeout=None)

    item_factors, item_bias = parameters_to_ndarrays(server.parameters)
    curve = [
        {"round": float(r), "ndcg": float(v)}
        for r, v in history.metrics_distributed.get("ndcg", [])
    ]
    result = FederatedResult(
        item_factors=np.asarray(item_factors, dtype=np.float32),
        item_bias=np.asarray(item_bias, dtype=np.float32),
        ndcg=curve[-1]["ndcg"] if curve else float("nan"),
        history=curve,
        rounds=config.rounds,
        n_clients=len(users),
        bytes_down=meter["down"],
        bytes_up=meter["up"],
        bytes_eval=meter["eval"],
        payload_bytes=sum(len(t) for t in initial.tensors),
        wall_time=time.perf_counter() - start,
        privacy=None if spend is None else spend.as_dict(),
    )
    if ledger is not None and spend is not None:
        ledger.record(fingerprint, FEDERATED_MODEL, spend, max_epsilon=max_epsilon)
    return result


def _account(
    config: FederatedConfig,
    n_clients: int,
    ledger: PrivacyLedger | None,
    fingerprint: str,
    max_epsilon: float | None,
) -> PrivacySpend | None:
    """ε of a DP run, checked against the ledger first; without a ledger, a missing Opacus
    only means ε is not computed (logged)."""
    if config.dp_noise_multiplier is None:
        return None
    if ledger is not None:
        return check_federated_budget(config, n_clients, ledger, fingerprint, max_epsilon)
    try:
        return federated_privacy(config, max(n_clients, 1))
    except MissingDependencyError:
        log.warning("central DP is on but Opacus is absent: epsilon is not computed")
        return None
