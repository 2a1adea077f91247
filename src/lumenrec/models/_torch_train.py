"""Shared torch plumbing for the neural models (not a framework).

- :func:`import_torch` / :func:`resolve_device`: torch imported lazily, "auto" = CUDA when
  present, else CPU, with a clear error for a bad or unavailable device.
- :func:`train_loop`: epochs of mini-batch steps with a progress bar (loss and validation
  metric), early stopping on a validation score (NDCG@10 from :func:`validation_ndcg`),
  bf16 autocast on CUDA, the best weights restored at the end and optionally checkpointed as
  ``best.safetensors`` + ``best.json`` in a directory (atomic rename, no pickle).
- :func:`module_to_arrays` / :func:`arrays_to_module`: weights as plain numpy arrays, which
  the models store as ``weights.safetensors`` in their artifact; so an artifact written on a
  GPU loads on a CPU and back.

Torch's global RNG is never touched: :func:`train_loop` and :func:`seeded_init` run inside
``torch.random.fork_rng`` with a seed of their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._progress import progress
from lumenrec.errors import ArtifactError, ConfigError, missing_dependency

__all__ = [
    "LoopSettings",
    "TrainHistory",
    "arrays_to_module",
    "blocked_validation_ndcg",
    "holdout_split",
    "import_torch",
    "module_to_arrays",
    "resolve_device",
    "seeded_init",
    "train_loop",
    "validation_ndcg",
    "validation_users",
    "weights_from_bytes",
    "weights_to_bytes",
]

log = logging.getLogger(__name__)


def import_torch() -> Any:
    """The torch module, or :class:`~lumenrec.errors.MissingDependencyError` naming the extra."""
    try:
        import torch
    except ImportError as err:
        missing = missing_dependency("torch", "torch")
        raise missing from err
    return torch


def resolve_device(spec: str) -> Any:
    """A ``torch.device`` for ``spec`` ("auto" = cuda when available, else cpu).

    Raises
    ------
    ConfigError
        ``spec`` is not a device string, or names CUDA on a machine without it.
    """
    torch = import_torch()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        msg = f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0' (got {spec!r})"
        raise ConfigError(msg) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = f"device is {spec!r} but CUDA is not available; use device='auto' or 'cpu'"
        raise ConfigError(msg)
    return device


@contextlib.contextmanager
def seeded_init(seed: int, device: Any = None) -> Iterator[None]:
    """Run a block (module construction, a training loop) on torch RNGs seeded with
    ``seed``, restoring the caller's RNG state afterwards."""
    torch = import_torch()
    cuda = [device] if device is not None and torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class LoopSettings:
    """How :func:`train_loop` runs.

    Parameters
    ----------
    n_epochs : int
        Most epochs to run.
    patience : int
        Stop after this many validations without improvement (0: never stop early).
    eval_every : int
        Validate every this many epochs (and after the last one).
    mixed_precision : bool
        bf16 autocast for the forward pass on CUDA; ignored on CPU.
    progress : bool or None
        Epoch bar (None: when INFO logging is on and stderr is a TTY).
    checkpoint_dir : str or None
        Write the best weights there as ``best.safetensors`` + ``best.json``.
    desc : str
        Label of the progress bar and log lines.
    """

    n_epochs: int
    patience: int = 0
    eval_every: int = 1
    mixed_precision: bool = True
    progress: bool | None = None
    checkpoint_dir: str | None = None
    desc: str = "train"


@dataclass
class TrainHistory:
    """What :func:`train_loop` did: mean loss and wall time per epoch, validation scores."""

    loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    valid_epochs: list[int] = field(default_factory=list)
    valid_scores: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("nan")
    stopped_early: bool = False

    def as_state(self) -> dict[str, Any]:
        """JSON-ready summary (stored in model manifests)."""
        best = None if np.isnan(self.best_score) else float(self.best_score)
        return {
            "epochs_run": len(self.loss),
            "best_epoch": int(self.best_epoch),
            "best_valid_ndcg@10": best,
            "stopped_early": bool(self.stopped_early),
            "mean_epoch_seconds": float(np.mean(self.epoch_seconds)) if self.epoch_seconds else 0.0,
        }


def module_to_arrays(module: Any) -> dict[str, NDArray]:
    """``state_dict`` of ``module`` as contiguous CPU numpy arrays (float32 for floats)."""
    out: dict[str, NDArray] = {}
    for name, tensor in module.state_dict().items():
        arr = tensor.detach().cpu().numpy()
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        out[name] = np.ascontiguousarray(arr)
    return out


def arrays_to_module(module: Any, arrays: dict[str, NDArray]) -> Any:
    """Load numpy ``arrays`` (from :func:`module_to_arrays`) into ``module``; returns it.

    Raises
    ------
    ConfigError
        When names or shapes do not match the module built from the saved parameters.
    """
    torch = import_torch()
    state = module.state_dict()
    if set(arrays) != set(state):
        missing, extra = sorted(set(state) - set(arrays)), sorted(set(arrays) - set(state))
        msg = f"saved weights do not match the model: missing {missing}, unexpected {extra}"
        raise ConfigError(msg)
    for name, arr in arrays.items():
        if tuple(arr.shape) != tuple(state[name].shape):
            msg = f"saved weight {name} has shape {arr.shape}, the model expects {tuple(state[name].shape)}"
            raise ConfigError(msg)
    module.load_state_dict({n: torch.from_numpy(np.array(a)) for n, a in arrays.items()})
    return module


def weights_to_bytes(arrays: dict[str, NDArray]) -> bytes:
    """Serialise named arrays as a safetensors file (no pickle)."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})


def weights_from_bytes(blob: bytes) -> dict[str, NDArray]:
    """Inverse of :func:`weights_to_bytes` (needs safetensors, not torch).

    Raises
    ------
    ArtifactError
        When ``blob`` is not a readable safetensors file.
    """
    from safetensors.numpy import load

    try:
        return dict(load(blob))
    except Exception as err:  # safetensors raises its own error types (SafetensorError, ...)
        msg = f"weights.safetensors is corrupt or not a safetensors file ({err})"
        raise ArtifactError(msg) from err


def _write_checkpoint(directory: str, arrays: dict[str, NDArray], meta: dict[str, Any]) -> None:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for name, blob in (
        ("best.safetensors", weights_to_bytes(arrays)),
        ("best.json", json.dumps(meta, indent=2).encode()),
    ):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=root)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, root / name)


def train_loop(
    module: Any,
    optimizer: Any,
    batches: Callable[[int], Iterable[Any]],
    batch_loss: Callable[[Any], Any],
    settings: LoopSettings,
    validate: Callable[[], float] | None = None,
) -> TrainHistory:
    """Train ``module`` and return its history; the best validated weights are restored.

    Parameters
    ----------
    module : torch.nn.Module
        Already on its device.
    optimizer : torch.optim.Optimizer
    batches : callable(epoch) -> iterable
        The mini-batches of one epoch (already on the module's device).
    batch_loss : callable(batch) -> scalar tensor
        Forward pass and loss of one batch (run under autocast on CUDA).
    settings : LoopSettings
    validate : callable() -> float, optional
        Higher is better (NDCG@10). Called with the module in eval mode under
        ``torch.no_grad``. Without it every epoch runs and the last weights are kept.
    """
    torch = import_torch()
    device = next(iter(module.parameters())).device
    autocast = settings.mixed_precision and device.type == "cuda"
    history = TrainHistory()
    best_state: dict[str, Any] | None = None
    bad = 0
    bar = progress(range(settings.n_epochs), desc=settings.desc, enabled=settings.progress)
    for epoch in bar:
        start = time.perf_counter()
        module.train()
        total, count = torch.zeros((), device=device), 0
        for batch in batches(epoch):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = batch_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().float()
            count += 1
        history.loss.append(float(total) / max(count, 1))
        history.epoch_seconds.append(time.perf_counter() - start)
        last = epoch + 1 == settings.n_epochs
        if validate is not None and ((epoch + 1) % settings.eval_every == 0 or last):
            module.eval()
            with torch.no_grad():
                score = float(validate())
            history.valid_epochs.append(epoch + 1)
            history.valid_scores.append(score)
            if best_state is None or score > history.best_score:
                history.best_score, history.best_epoch, bad = score, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                if settings.checkpoint_dir:
                    _write_checkpoint(
                        settings.checkpoint_dir,
                        module_to_arrays(module),
                        {"epoch": epoch + 1, "valid_ndcg@10": score, "loss": history.loss[-1]},
                    )
            else:
                bad += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{history.loss[-1]:.4f}", ndcg10=f"{score:.4f}")
            log.debug(
                "%s epoch %d loss %.5f valid ndcg@10 %.5f",
                settings.desc,
                epoch + 1,
                history.loss[-1],
                score,
            )
            if settings.patience and bad >= settings.patience:
                history.stopped_early = True
                break
        elif hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.loss)
    module.eval()
    return history


def validation_ndcg(
    scores: NDArray[np.floating],
    relevant: sp.csr_matrix,
    seen: sp.csr_matrix | None = None,
    k: int = 10,
) -> float:
    """Mean NDCG@k of full-ranking ``scores`` against ``relevant`` (seen items masked).

    Computed from each relevant item's rank (the number of unmasked items scored strictly
    higher), which needs no sort: exact up to ties, which count in the item's favour.

    Parameters
    ----------
    scores : ndarray of shape (n, n_items), float
    relevant : sparse matrix of shape (n, n_items)
        Held-out items of the same rows (nonzero = relevant); rows without any are skipped.
    seen : sparse matrix of shape (n, n_items), optional
        Training items of those rows, excluded from the ranking.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    if seen is not None:
        seen = sp.csr_matrix(seen)
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        s[rows, seen.indices] = -np.inf
    rel = sp.csr_matrix(relevant)
    rel.eliminate_zeros()
    counts = np.diff(rel.indptr)
    rows = np.repeat(np.arange(rel.shape[0]), counts)
    target = s[rows, rel.indices]
    rank = np.empty(len(rows), np.int64)
    for start in range(0, len(rows), 1024):  # bounded memory: 1024 rows of the score matrix
        chunk = slice(start, start + 1024)
        rank[chunk] = (s[rows[chunk]] > target[chunk, None]).sum(axis=1)
    gain = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    dcg = np.bincount(rows, weights=gain, minlength=rel.shape[0])
    discounts = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
    ideal = discounts[np.minimum(counts, k) - 1]
    has = counts > 0
    return float(np.mean(dcg[has] / ideal[has])) if has.any() else 0.0


def validation_users(
    valid: sp.csr_matrix, rng: np.random.Generator, limit: int = 5000
) -> NDArray[np.int64]:
    """Rows of ``valid`` with a held-out item; a seeded sample of ``limit`` of them when more
    (bounds the time one validation takes)."""
    users = np.flatnonzero(np.diff(sp.csr_matrix(valid).indptr) > 0).astype(np.int64)
    if len(users) > limit:
        users = np.sort(rng.choice(users, limit, replace=False))
    return users


def blocked_validation_ndcg(
    score_rows: Callable[[NDArray[np.int64]], NDArray[np.floating]],
    users: NDArray[np.integer],
    relevant: sp.csr_matrix,
    seen: sp.csr_matrix | None = None,
    k: int = 10,
    block: int = 2048,
) -> float:
    """:func:`validation_ndcg` over ``users`` in blocks of ``block`` rows (bounded memory).

    ``score_rows(rows)`` returns the full-catalogue scores of those users, shape
    (len(rows), n_items); ``relevant`` and ``seen`` are indexed by user.
    """
    relevant = sp.csr_matrix(relevant)
    users = np.asarray(users, np.int64)
    total, count = 0.0, 0
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        n = int((np.diff(relevant[rows].indptr) > 0).sum())
        if n == 0:
            continue
        part_seen = None if seen is None else sp.csr_matrix(seen)[rows]
        total += validation_ndcg(score_rows(rows), relevant[rows], part_seen, k) * n
        count += n
    return total / count if count else 0.0


def holdout_split(
    user_items: sp.csr_matrix, fraction: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out a random ``fraction`` of each user's interactions (at least one, for users
    with two or more) for early stopping; returns ``(train, valid)`` with the same shape."""
    mat = sp.csr_matrix(user_items)
    counts = np.diff(mat.indptr)
    owner = np.repeat(np.arange(mat.shape[0]), counts)
    keys = rng.random(mat.nnz)
    order = np.lexsort((keys, owner))  # random order within each user
    rank = np.empty(mat.nnz, np.int64)
    rank[order] = np.arange(mat.nnz) - np.repeat(mat.indptr[:-1], counts)
    n_out = np.where(counts >= 2, np.maximum(1, np.round(fraction * counts)), 0)
    held = rank < n_out[owner]
    coo = mat.tocoo()
    shape = mat.shape
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=shape)
    valid = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=shape)
    return train, valid
