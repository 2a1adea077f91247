"""LumenRec ImplicitALS (numba CG) against implicit's AlternatingLeastSquares: same data, settings, threads.

Reads the raw dataset files directly (no dependency on in-progress loaders), binarises, makes a
seeded per-user random 80/20 holdout, fits both models with the same objective, start and thread
count, and writes NDCG@10 (full ranking, training items masked) and fit times to
``benchmarks/results/als_vs_implicit_<dataset>.json``.

Usage::

    python benchmarks/bench_als_vs_implicit.py --dataset ml-100k --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ml-100k", "ml-1m-processed", "amazon-beauty")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pairs(name: str, root: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """(user ids, item ids, {file: sha256}) of every interaction; raw ids, not yet dense."""
    folder = root / name
    if name == "ml-100k":
        files = [folder / "u.data"]
        raw = np.loadtxt(files[0], dtype=np.int64, usecols=(0, 1))
        users, items = raw[:, 0], raw[:, 1]
    elif name == "ml-1m-processed":
        files = [folder / f"test_1m{v}.dat" for v in range(1, 6)]
        raw = np.concatenate(
            [np.loadtxt(f, dtype=np.int64, delimiter=",", usecols=(0, 1)) for f in files]
        )
        users, items = raw[:, 0], raw[:, 1]
    elif name == "amazon-beauty":
        files = [folder / "Beauty.txt"]
        us, its = [], []
        for line in files[0].read_text().splitlines():
            parts = line.split()
            if len(parts) > 1:
                us.extend([int(parts[0])] * (len(parts) - 1))
                its.extend(int(p) for p in parts[1:])
        users, items = np.asarray(us, np.int64), np.asarray(its, np.int64)
    else:
        msg = f"unknown dataset {name!r}; choose from {DATASETS}"
        raise SystemExit(msg)
    return users, items, {f.name: sha256(f) for f in files}


def binary_matrix(users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
    """Users x items CSR of ones (duplicates collapsed), dense ids in sorted raw-id order."""
    _, u = np.unique(users, return_inverse=True)
    _, i = np.unique(items, return_inverse=True)
    mat = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)))
    mat.data[:] = 1.0
    mat.sort_indices()
    return mat


def holdout(mat: sp.csr_matrix, frac: float, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-user random split: round(frac * n_u) items train, the rest test (seeded)."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
    keys = rng.random(mat.nnz)
    order = np.lexsort((keys, rows))  # shuffle within each user
    rank = np.empty(mat.nnz, np.int64)
    rank[order] = np.arange(mat.nnz) - np.repeat(mat.indptr[:-1], np.diff(mat.indptr))
    n_train = np.round(frac * np.diff(mat.indptr)).astype(np.int64)
    is_train = rank < n_train[rows]
    coo = mat.tocoo()
    parts = []
    for keep in (is_train, ~is_train):
        m = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=mat.shape)
        m.sort_indices()
        parts.append(m)
    return parts[0], parts[1]


def ndcg_at_k(
    user_f: np.ndarray, item_f: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10
):
    """Mean NDCG@k over users with test items; full ranking, training items masked."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    users = np.flatnonzero(np.diff(test.indptr))
    values = []
    tops = []
    for s in range(0, len(users), 1024):
        block = users[s : s + 1024]
        scores = user_f[block] @ item_f.T
        seen = train[block]
        scores[np.repeat(np.arange(len(block)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(
            top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1
        )
        tops.append(top)
        truth = test[block]
        for r in range(len(block)):
            rel = np.isin(top[r], truth.indices[truth.indptr[r] : truth.indptr[r + 1]])
            ideal = disc[: min(k, truth.indptr[r + 1] - truth.indptr[r])].sum()
            values.append(float((rel * disc).sum() / ideal))
    return float(np.mean(values)), len(values), np.vstack(tops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="ml-100k")
    default_dir = os.environ.get("LUMENREC_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--reg", type=float, default=10.0, help="lambda (ImplicitALS default)")
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="confidence C = 1 + alpha (binary data)"
    )
    parser.add_argument("--cg-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0, help="holdout and factor-init seed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    from implicit.cpu.als import AlternatingLeastSquares

    from lumenrec.models._kernels.als_cg import least_squares_cg
    from lumenrec.models.als import ImplicitALS

    numba.set_num_threads(args.threads)
    users, items, checksums = load_pairs(args.dataset, args.data_dir)
    full = binary_matrix(users, items)
    train, test = holdout(full, 0.8, args.seed)
    print(
        f"{args.dataset}: {full.shape[0]} users x {full.shape[1]} items, train {train.nnz}, test {test.nnz}"
    )
    # implicit uses the stored value as the confidence; feed it C = 1 + alpha * r with its alpha=1
    conf = train.copy()
    conf.data = (1.0 + args.alpha * conf.data).astype(np.float32)

    # numba JIT warm-up on the real dtypes (float32 data/factors, CSR index dtypes of `train`)
    small = train[:8]
    t0 = time.perf_counter()
    x = np.zeros((8, args.factors), np.float32)
    y = np.full((train.shape[1], args.factors), 0.01, np.float32)
    least_squares_cg(
        small.indptr, small.indices, small.data, x, y, args.reg, args.alpha, args.cg_steps
    )
    jit_s = time.perf_counter() - t0
    print(f"numba JIT warm-up {jit_s:.2f}s")

    def fit_ours() -> ImplicitALS:
        return ImplicitALS(
            n_factors=args.factors,
            regularization=args.reg,
            alpha=args.alpha,
            n_epochs=args.iterations,
            cg_steps=args.cg_steps,
            random_state=args.seed,
        ).fit(train)

    def fit_implicit() -> AlternatingLeastSquares:
        model = AlternatingLeastSquares(
            factors=args.factors,
            regularization=args.reg,
            alpha=1.0,
            iterations=args.iterations,
            num_threads=args.threads,
            random_state=args.seed,
        )
        model.cg_steps = args.cg_steps
        model.fit(conf, show_progress=False)
        return model

    times: dict[str, list[float]] = {"lumenrec": [], "implicit": []}
    models = {}
    with threadpool_limits(1, "blas"):
        for _ in range(args.repeats):  # interleave so drift hits both equally
            for name, fit in (("lumenrec", fit_ours), ("implicit", fit_implicit)):
                t0 = time.perf_counter()
                models[name] = fit()
                times[name].append(time.perf_counter() - t0)
                print(f"  {name:8s} fit {times[name][-1]:.3f}s")
    ours, theirs = models["lumenrec"], models["implicit"]
    factors = {
        "lumenrec": (ours.user_factors_, ours.item_factors_),
        "implicit": (theirs.user_factors, theirs.item_factors),
    }
    metrics, tops = {}, {}
    for name, (uf, itf) in factors.items():
        value, n_users, tops[name] = ndcg_at_k(uf, itf, train, test)
        metrics[name] = {"ndcg@10": value, "n_users": n_users}
    median = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = median["lumenrec"] / median["implicit"]
    overlap = float(
        np.mean([len(set(a) & set(b)) / 10 for a, b in zip(*tops.values(), strict=True)])
    )
    rel_diff = float(
        np.linalg.norm(ours.item_factors_ - theirs.item_factors)
        / np.linalg.norm(theirs.item_factors)
    )
    ndcg_gap = metrics["lumenrec"]["ndcg@10"] / metrics["implicit"]["ndcg@10"] - 1.0
    result = {
        "benchmark": "als_vs_implicit",
        "dataset": args.dataset,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": (
            "raw interactions binarised (every rating/interaction = 1, duplicates collapsed); "
            "seeded per-user random 80/20 holdout (round(0.8 n_u) train); both models fit on train "
            "with confidence C = 1 + alpha*r, unscaled L2 regularization, the same CG steps, "
            "identical initial factors (uniform [0,0.01), implicit's scheme, same seed) and the same "
            "thread count, BLAS limited to 1 thread; implicit is given the confidence matrix with "
            "its alpha=1. NDCG@10 with full ranking over all items, training items masked, binary "
            "relevance, IDCG over min(|test|,10), mean over users with test items. Fit time = "
            f"median of {args.repeats} interleaved fits (wall clock, after a separate numba JIT warm-up)."
        ),
        "input_files_sha256": checksums,
        "shape": {
            "users": full.shape[0],
            "items": full.shape[1],
            "train_nnz": train.nnz,
            "test_nnz": test.nnz,
        },
        "seeds": {"holdout": args.seed, "init": args.seed},
        "settings": {
            "factors": args.factors,
            "iterations": args.iterations,
            "regularization": args.reg,
            "alpha": args.alpha,
            "cg_steps": args.cg_steps,
            "threads": args.threads,
        },
        "versions": {
            pkg: _version(pkg) for pkg in ("numpy", "scipy", "numba", "implicit", "lumenrec")
        },
        "hardware": {
            "processor": platform.processor(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "numba_threading_layer": numba.threading_layer(),
            "python": platform.python_version(),
        },
        "metrics": metrics,
        "ndcg_relative_difference": ndcg_gap,
        "top10_overlap": overlap,
        "item_factor_relative_difference": rel_diff,
        "fit_seconds": {name: {"median": median[name], "runs": ts} for name, ts in times.items()},
        "numba_jit_seconds": jit_s,
        "fit_time_ratio_ours_over_implicit": ratio,
    }
    out = args.output or REPO / "benchmarks" / "results" / f"als_vs_implicit_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"NDCG@10 lumenrec {metrics['lumenrec']['ndcg@10']:.4f} implicit {metrics['implicit']['ndcg@10']:.4f} "
        f"({ndcg_gap:+.2%}); fit {median['lumenrec']:.3f}s vs {median['implicit']:.3f}s "
        f"(ratio {ratio:.2f}); top-10 overlap {overlap:.3f}; wrote {out}"
    )


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # e.g. lumenrec run from a source tree via PYTHONPATH
        module = __import__(package)
        return str(getattr(module, "__version__", "unknown"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
