"""Federated MF/BPR at tiny scale (Flower simulation, one client per user).

The main venv has no Flower (its pins clash with ours); the simulation then runs in the side
venv ``.venv-federated`` (CI creates it) in a subprocess, else the test skips saying why.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lumenrec.errors import ConfigError, MissingDependencyError
from lumenrec.privacy._federated_client import LocalBPRClient, LocalConfig
from lumenrec.privacy.dp import quiet_accountant
from lumenrec.privacy.federated import FederatedConfig, import_flwr, run_federated_bpr
from lumenrec.privacy.federated_dp import federated_privacy
from lumenrec.privacy.ledger import LEDGER_FILE, PrivacyLedger

SIDE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-federated" / "bin" / "python"
HAS_FLWR = importlib.util.find_spec("flwr") is not None

#: Runs in whichever interpreter has Flower; prints one JSON line.
SIMULATION = r"""
import json, logging
import numpy as np, scipy.sparse as sp
from lumenrec.privacy._federated_client import LocalConfig
from lumenrec.privacy.federated import FederatedConfig, import_flwr, run_federated_bpr

import_flwr()
logging.getLogger("flwr").setLevel(logging.WARNING)
rng = np.random.default_rng(0)
n_users, n_items = 40, 30
group = np.arange(n_users) % 2  # two tastes: even users like items < 15, odd users the rest
rows, cols = [], []
for u in range(n_users):
    pool = np.arange(15) if group[u] == 0 else np.arange(15, 30)
    chosen = rng.choice(pool, size=8, replace=False)
    rows += [u] * 8
    cols += list(chosen)
m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
mask = rng.random(m.nnz) < 0.75
coo = m.tocoo()
train = sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=m.shape)
test = sp.csr_matrix((coo.data[~mask], (coo.row[~mask], coo.col[~mask])), shape=m.shape)
from lumenrec.evaluation.metrics import ndcg_at_k
seen = train.toarray() > 0
scores = [np.where(seen, -np.inf, rng.random(seen.shape)) for _ in range(20)]
ranked = [np.argsort(-x, axis=1)[:, :10] for x in scores]
has = np.diff(test.indptr) > 0
out = {"random": float(np.mean([np.nanmean(ndcg_at_k(r, test, 10)[has]) for r in ranked]))}
local = LocalConfig(local_epochs=3, user_lr=1.0, item_lr=20.0, n_negatives=2)
for name, cfg in {
    "fedavg": FederatedConfig(n_factors=8, rounds=15, local=local, eval_every=5, seed=0),
    "dp": FederatedConfig(
        n_factors=8, rounds=3, seed=0, dp_noise_multiplier=0.5, dp_clipping_norm=1.0,
        local=LocalConfig(local_epochs=1, item_lr=20.0, example_norm=6.0),
    ),
}.items():
    r = run_federated_bpr(train, test, cfg)
    out[name] = r.summary()
    out[name]["finite"] = bool(np.isfinite(r.item_factors).all())
    out[name]["shape"] = list(r.item_factors.shape)
print(json.dumps(out))
"""


def _simulate() -> dict:
    if HAS_FLWR:
        cmd = [sys.executable, "-c", SIMULATION]
    elif SIDE_PYTHON.exists():
        cmd = [str(SIDE_PYTHON), "-c", SIMULATION]
    else:
        pytest.skip("Flower is absent here and there is no .venv-federated (see docs/privacy.md)")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_simulation_learns_and_counts_bytes() -> None:
    out = _simulate()
    fed = out["fedavg"]
    assert fed["n_clients"] == 40
    assert fed["rounds"] == 15
    assert [h["round"] for h in fed["history"]] == [5.0, 10.0, 15.0]
    # two clear tastes (unseen items of the own taste are also sampled as negatives, so the
    # toy tops out near 0.55); a random ranking of the unseen items scores about 0.3
    assert fed["ndcg"] > out["random"] + 0.1, (out["random"], fed["history"])
    assert fed["finite"] and fed["shape"] == [30, 8]
    # only the item table travels: one payload per client per direction per round
    per_round = fed["payload_bytes"] * fed["n_clients"]
    assert fed["bytes_down"] == fed["bytes_up"] == per_round * fed["rounds"]
    assert fed["payload_bytes"] < 30 * 9 * 4 + 512  # 30 x (8 factors + bias) float32 + headers
    dp = out["dp"]
    assert dp["finite"] and dp["rounds"] == 3
    if dp["privacy"] is not None:  # the side venv has no Opacus: epsilon is then not computed
        assert dp["privacy"]["level"] == "user" and dp["privacy"]["steps"] == 3


def test_local_client_keeps_its_vector_and_steps_items() -> None:
    rng = np.random.default_rng(1)
    q = (rng.standard_normal((12, 4)) * 0.1).astype(np.float32)
    b = np.zeros(12, dtype=np.float32)
    client = LocalBPRClient(np.array([0, 3, 5]), 12, 4, seed=2, held_out=np.array([7]))
    before = client.user_vector.copy()
    q2, b2, loss = client.fit(q, b, LocalConfig(local_epochs=2, n_negatives=3))
    assert q2.shape == q.shape and b2.shape == b.shape and np.isfinite(loss)
    assert not np.array_equal(before, client.user_vector)  # trained locally, kept locally
    assert (b2[[0, 3, 5]] > b[[0, 3, 5]]).all()  # positives pushed up
    value = client.evaluate(q2, b2, k=5)
    assert value is not None and 0.0 <= value <= 1.0
    assert LocalBPRClient(np.array([1]), 12, 4, seed=0).evaluate(q, b) is None


def test_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="rounds"):
        FederatedConfig(rounds=0).validate()
    with pytest.raises(ConfigError, match="fraction_fit"):
        FederatedConfig(fraction_fit=0.0).validate()


@pytest.mark.skipif(HAS_FLWR, reason="Flower is installed in this interpreter")
def test_missing_flower_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r"lumenrec\[federated\]"):
        import_flwr()


def _dp_config(**kw) -> FederatedConfig:
    base = {
        "rounds": 50,
        "dp_noise_multiplier": 1.1,
        "dp_clipping_norm": 0.5,
        "local": LocalConfig(example_norm=6.0),
    }
    return FederatedConfig(**{**base, **kw})


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_federated_epsilon_equals_opacus(fraction) -> None:
    opacus = pytest.importorskip("opacus")
    spend = federated_privacy(_dp_config(fraction_fit=fraction), n_clients=400)
    acc = opacus.accountants.PRVAccountant()
    acc.history = [(1.1, max(int(400 * fraction), 1) / 400, 50)]
    assert spend is not None
    assert spend.level == "user" and spend.mechanism == "dp-fedavg"
    with quiet_accountant():  # Opacus's PRV warns on log(0) at q = 1
        expected = acc.get_epsilon(delta=1e-6)
    assert abs(spend.epsilon - expected) <= 1e-6
    assert spend.sample_rate == pytest.approx(fraction) and spend.steps == 50
    # fewer rounds or more noise spend less
    assert federated_privacy(_dp_config(rounds=10), 400).epsilon < spend.epsilon or fraction < 1
    assert federated_privacy(FederatedConfig(), 400) is None


def test_federated_delta_must_be_below_one_over_clients() -> None:
    pytest.importorskip("opacus")
    with pytest.raises(ConfigError, match=r"dp_delta must lie in \(0, 1/n_clients\)"):
        federated_privacy(_dp_config(dp_delta=0.01), n_clients=400)


def test_over_budget_federated_training_is_refused_before_it_starts(tmp_path) -> None:
    pytest.importorskip("opacus")
    import scipy.sparse as sp

    ledger = PrivacyLedger(tmp_path)
    train = sp.csr_matrix(np.eye(20, 12, dtype=np.float32))
    spend = federated_privacy(_dp_config(), n_clients=12)
    with pytest.raises(ConfigError, match="privacy budget exceeded"):
        run_federated_bpr(
            train, None, _dp_config(), ledger=ledger, fingerprint="f" * 16, max_epsilon=1.0
        )
    assert spend.epsilon > 1.0
    assert not (tmp_path / LEDGER_FILE).exists()  # nothing trained, nothing written
