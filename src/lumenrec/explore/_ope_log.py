"""The logged-bandit-feedback container of :mod:`lumenrec.explore.ope` and its input checks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BanditLog", "check_action_dist"]

#: Tolerance of the check that each (row, position) of a target distribution sums to 1.
SUM_TOL = 1e-6


def _fail(msg: str) -> DataError:
    return DataError(" ".join(msg.split()))


@dataclass(frozen=True)
class BanditLog:
    """Logged bandit feedback, one row per shown (action, position).

    Attributes
    ----------
    action : ndarray of shape (n,), int64
        Action (item) index in ``[0, n_actions)``.
    position : ndarray of shape (n,), int64
        0-based slot in ``[0, n_positions)``.
    reward : ndarray of shape (n,), float64
        Observed reward (e.g. click 0/1).
    pscore : ndarray of shape (n,), float64
        Logging propensity: the probability that the logging policy showed this action at this
        position, in ``(0, 1]``.
    n_actions, n_positions : int
        Size of the action space and number of slots.
    context : ndarray of shape (n, d), float64, optional
        Context (user) features per row.
    action_context : ndarray of shape (n_actions, d_a), float64, optional
        Item features per action.
    slate_id : ndarray of shape (n,), int64, optional
        Which served list (request) a row belongs to; needed by the slate estimator ``iips``.
    action_ids : tuple, optional
        External item id of each action index (``from_frame`` records its mapping here).
    """

    action: NDArray[np.int64]
    position: NDArray[np.int64]
    reward: NDArray[np.float64]
    pscore: NDArray[np.float64]
    n_actions: int
    n_positions: int
    context: NDArray[np.float64] | None = field(default=None, repr=False)
    action_context: NDArray[np.float64] | None = field(default=None, repr=False)
    slate_id: NDArray[np.int64] | None = field(default=None, repr=False)
    action_ids: tuple[Any, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Coerce the arrays and check shapes, ranges and propensities."""
        set_ = object.__setattr__
        n = np.shape(self.action)[0] if np.ndim(self.action) == 1 else -1
        for name in ("action", "position", "reward", "pscore"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or arr.shape[0] != n:
                msg = f"BanditLog.{name} must be 1-D with one entry per logged row ({n})"
                raise _fail(msg)
            set_(self, name, arr)
        if n == 0:
            msg = "the log is empty: no logged rows to evaluate on"
            raise _fail(msg)
        for name, count in (("action", self.n_actions), ("position", self.n_positions)):
            arr = getattr(self, name)
            if not np.issubdtype(arr.dtype, np.integer) and (
                not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))
            ):
                msg = f"BanditLog.{name} must hold integer indices"
                raise _fail(msg)
            arr = arr.astype(np.int64)
            bad = int(((arr < 0) | (arr >= count)).sum())
            if bad:
                msg = (
                    f"{bad} of {n} rows have a {name} outside [0, {count}); {name}s are 0-based "
                    f"indices (n_{name}s={count})"
                )
                raise _fail(msg)
            set_(self, name, arr)
        reward = self.reward.astype(np.float64)
        if not np.all(np.isfinite(reward)):
            msg = f"{int((~np.isfinite(reward)).sum())} of {n} rewards are NaN or infinite"
            raise _fail(msg)
        set_(self, "reward", reward)
        set_(self, "pscore", check_pscore(self.pscore, "pscore"))
        if self.context is not None:
            ctx = np.asarray(self.context, dtype=np.float64)
            if ctx.ndim != 2 or ctx.shape[0] != n:
                msg = f"BanditLog.context must have shape (n={n}, d), got {ctx.shape}"
                raise _fail(msg)
            set_(self, "context", ctx)
        if self.action_context is not None:
            act = np.asarray(self.action_context, dtype=np.float64)
            if act.ndim != 2 or act.shape[0] != self.n_actions:
                msg = (
                    f"BanditLog.action_context must have shape (n_actions={self.n_actions}, d_a),"
                    f" got {act.shape}"
                )
                raise _fail(msg)
            set_(self, "action_context", act)
        if self.slate_id is not None:
            sid = np.asarray(self.slate_id)
            if sid.shape != (n,):
                msg = f"BanditLog.slate_id must have shape ({n},)"
                raise _fail(msg)
            set_(self, "slate_id", np.unique(sid, return_inverse=True)[1].astype(np.int64))

    @property
    def n(self) -> int:
        """Number of logged rows."""
        return int(self.action.shape[0])

    def take(self, rows: NDArray[np.int64]) -> BanditLog:
        """The log restricted to (or resampled at) ``rows`` (same action space)."""
        pick = np.asarray(rows)

        def sub(arr: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if arr is None else arr[pick]

        return BanditLog(
            action=self.action[pick],
            position=self.position[pick],
            reward=self.reward[pick],
            pscore=self.pscore[pick],
            n_actions=self.n_actions,
            n_positions=self.n_positions,
            context=sub(self.context),
            action_context=self.action_context,
            slate_id=sub(self.slate_id),
            action_ids=self.action_ids,
        )

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame | str | os.PathLike[str],
        *,
        action: str = "item_id",
        position: str = "position",
        reward: str = "reward",
        propensity: str = "propensity",
        context_columns: Sequence[str] | None = None,
        slate: str | None = None,
        items: Sequence[Any] | None = None,
    ) -> BanditLog:
        """Read the "lumenrec" log format: one row per shown item.

        Parameters
        ----------
        df : DataFrame or path
            The log, or a CSV / TSV / Parquet file holding it.
        action, position, reward, propensity : str
            Column names: item id (any hashable), 0-based slot, reward, logging propensity of
            (item, slot) in (0, 1].
        context_columns : sequence of str, optional
            Numeric context columns (one-hot encode categorical ones first).
        slate : str, optional
            Column identifying the served list (e.g. ``request_id``), for ``iips``.
        items : sequence, optional
            The full action space (item ids); default: the sorted distinct ids of the log.
            Action index ``j`` is ``items[j]``; the mapping is kept in ``action_ids``.
        """
        import pandas as pd

        frame = _read_table(df) if not isinstance(df, pd.DataFrame) else df
        cols = [action, position, reward, propensity, *(context_columns or [])]
        if slate is not None:
            cols.append(slate)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            msg = (
                f"log is missing column(s) {missing}; it has {list(frame.columns)}. Name them with "
                f"action=, position=, reward=, propensity= (propensity is the logging policy's "
                f"probability of showing the item at that position)"
            )
            raise _fail(msg)
        if len(frame) == 0:
            msg = "the log is empty: no logged rows to evaluate on"
            raise _fail(msg)
        ids = frame[action].to_numpy()
        if pd.isna(ids).any():
            msg = f"{int(pd.isna(ids).sum())} rows have no {action!r}"
            raise _fail(msg)
        vocab = np.asarray(sorted(set(ids.tolist())) if items is None else list(items), object)
        index = {v: i for i, v in enumerate(vocab.tolist())}
        unknown = [v for v in set(ids.tolist()) if v not in index]
        if unknown:
            msg = f"{len(unknown)} logged item ids are not in items=, e.g. {unknown[:3]}"
            raise _fail(msg)
        act = np.fromiter((index[v] for v in ids.tolist()), np.int64, len(ids))
        pos = pd.to_numeric(frame[position], errors="coerce").to_numpy(np.float64)
        if np.isnan(pos).any() or (pos < 0).any() or (pos != np.round(pos)).any():
            msg = f"column {position!r} must hold 0-based integer slots"
            raise _fail(msg)
        prop = pd.to_numeric(frame[propensity], errors="coerce").to_numpy(np.float64)
        check_pscore(prop, f"column {propensity!r}")
        ctx = None
        if context_columns:
            ctx = frame[list(context_columns)].apply(pd.to_numeric, errors="coerce").to_numpy()
            if np.isnan(ctx).any():
                msg = "context columns must be numeric without missing values"
                raise _fail(msg)
        return cls(
            action=act,
            position=pos.astype(np.int64),
            reward=pd.to_numeric(frame[reward], errors="coerce").to_numpy(np.float64),
            pscore=prop,
            n_actions=len(vocab),
            n_positions=int(pos.max()) + 1,
            context=ctx,
            slate_id=None if slate is None else frame[slate].to_numpy(),
            action_ids=tuple(vocab.tolist()),
        )


def _read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    import pandas as pd

    p = Path(os.fspath(path))
    if not p.is_file():
        msg = f"log file {str(p)!r} not found"
        raise _fail(msg)
    name = p.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(p)
    sep = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
    return pd.read_csv(p, sep=sep)


def check_pscore(pscore: NDArray[Any], what: str) -> NDArray[np.float64]:
    """Propensities as float64, or a DataError naming how many rows are bad and the fix."""
    arr = np.asarray(pscore, dtype=np.float64)
    n = arr.shape[0]
    nan = int(np.isnan(arr).sum())
    if nan:
        msg = (
            f"{what}: {nan} of {n} propensities are missing (NaN); off-policy estimates need the "
            f"logging policy's probability of every shown (item, position) - log it at serving "
            f"time or drop those rows"
        )
        raise _fail(msg)
    low = int((arr <= 0).sum())
    high = int((arr > 1).sum())
    if low or high:
        msg = (
            f"{what}: {low} of {n} propensities are <= 0 and {high} are > 1; a propensity is the "
            f"probability (0 < p <= 1) that the logging policy showed the item at that position "
            f"(not a percentage, not a score)"
        )
        raise _fail(msg)
    return arr


def check_action_dist(action_dist: NDArray[Any], log: BanditLog) -> NDArray[np.float64]:
    """The target distribution as (n, n_actions, n_positions) float64 (a 2-D one is broadcast).

    Raises
    ------
    DataError
        Wrong shape, negative or NaN entries, or a (row, position) not summing to 1.
    """
    arr = np.asarray(action_dist, dtype=np.float64)
    shape = (log.n, log.n_actions, log.n_positions)
    if arr.shape == shape[1:]:
        arr = np.broadcast_to(arr, shape)
    if arr.shape != shape:
        msg = (
            f"action_dist must have shape (n_rounds, n_actions, n_positions)={shape} (or "
            f"{shape[1:]} shared by every round), got {arr.shape}"
        )
        raise _fail(msg)
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        msg = "action_dist holds negative, NaN or infinite probabilities"
        raise _fail(msg)
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_TOL
    if off.any():
        rows, pos = np.nonzero(off)
        msg = (
            f"action_dist must sum to 1 over actions for each (row, position); "
            f"{int(off.sum())} of {sums.size} do not (first: row {int(rows[0])}, position "
            f"{int(pos[0])}, sum {sums[rows[0], pos[0]]:.6g}); normalise it per position"
        )
        raise _fail(msg)
    return arr
