"""Exploration in the serving path: which policy answers a request, logging what it showed,
learning online from feedback, and keeping the bandit state across restarts.

- **Which policy.** ``/recommend?explore=SPEC`` names one for the request (arm ``explicit``);
  otherwise ``explore_split`` (``"thompson=0.5;greedy=0.5"``) assigns each user to an arm by a
  stable hash of their id, and ``explore_default`` covers everyone else. No policy: the plain
  list, not logged unless ``log_impressions`` is on (then as ``greedy`` with propensity 1).
- **Logging.** Every list a policy served is stored (request id, user, items, positions,
  propensities, policy spec + parameters + version, model version, arm, the candidate set and
  the time) before the response leaves (group commit), so off-policy evaluation can replay it.
- **Learning.** Feedback carrying the ``request_id`` updates the policy that served it at once
  (reward 1); an impression with no positive feedback within ``explore_feedback_window_s``
  counts as reward 0 when the window closes.
- **State.** Each policy's arrays are saved with the item ids they index to
  ``<model_dir>/bandit-state/<policy>.npz`` (on shutdown and every ``explore_save_every``
  updates) and loaded at start, remapped by item id when the model changed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from lumenrec._post_rank import Explore
from lumenrec.errors import ConfigError

__all__ = ["Explorer", "parse_split"]

log = logging.getLogger(__name__)
_STATE_DIR = "bandit-state"
_MAX_PENDING = 100_000


def parse_split(text: str | None) -> list[tuple[str, float]]:
    """``"thompson=0.5;greedy=0.5"`` → ``[("thompson", 0.5), ("greedy", 0.5)]`` (shares sum to 1)."""
    if not text:
        return []
    arms = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        spec, sep, share = part.rpartition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if not sep or not spec.strip() or not 0 < value <= 1:
            msg = f"explore_split entry {part!r} must be POLICY=SHARE with SHARE in (0, 1]"
            raise ConfigError(msg)
        arms.append((spec.strip(), value))
    total = sum(v for _, v in arms)
    if abs(total - 1.0) > 1e-6:
        msg = f"explore_split shares must sum to 1 (got {total:g} in {text!r})"
        raise ConfigError(msg)
    return arms


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec)[:120]


class Explorer:
    """The service's policies, their logs and their online state.

    Parameters
    ----------
    settings : ServiceSettings
    store : EventStore
    """

    def __init__(self, settings: Any, store: Any) -> None:
        from lumenrec.explore import make_policy

        self.settings = settings
        self.store = store
        self._make = make_policy
        self._policies: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._rng_lock = threading.Lock()
        self._rng = np.random.default_rng()
        self._pending: OrderedDict[str, tuple[float, str, list[tuple[int, int, str]]]] = (
            OrderedDict()
        )
        self._updates = 0
        self.split = parse_split(settings.explore_split)
        for spec in [settings.explore_default, *(s for s, _ in self.split)]:
            if spec:
                self.policy(spec)  # a bad configured spec stops the start, with its message

    @property
    def active(self) -> bool:
        """Whether requests without ``explore=`` go through a policy."""
        return bool(self.settings.explore_default or self.split or self.settings.log_impressions)

    # -- policies --------------------------------------------------------------------------
    def policy(self, spec: str) -> Any:
        """The (stateful) policy for a spec string, built once."""
        with self._lock:
            found = self._policies.get(spec)
            if found is None:
                found = self._make(spec)
                self._policies[spec] = found
            return found

    def assign(self, user_id: str, requested: str | None) -> tuple[str, str] | None:
        """``(policy spec, arm)`` for a request, or None for the plain list."""
        if requested:
            return requested, "explicit"
        if self.split:
            digest = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).digest()
            point = int.from_bytes(digest[:8], "big") / 2**64
            edge = 0.0
            for spec, share in self.split:
                edge += share
                if point < edge:
                    return spec, f"split:{spec}"
            return self.split[-1][0], f"split:{self.split[-1][0]}"
        if self.settings.explore_default:
            return self.settings.explore_default, "default"
        if self.settings.log_impressions:
            return "greedy", "default"
        return None

    def request(self, spec: str) -> Explore:
        """An :class:`~lumenrec._post_rank.Explore` for one request (its own random stream)."""
        with self._rng_lock:
            seed = int(self._rng.integers(2**63))
        return Explore(
            self.policy(spec), np.random.default_rng(seed), self.settings.explore_candidates
        )

    # -- logging ---------------------------------------------------------------------------
    def log(self, pipeline: Any, user_id: str, spec: str, arm: str, ranked: Any) -> str:
        """Store the served list; return its request id."""
        served = ranked.served
        policy = self.policy(spec)
        request_id = uuid.uuid4().hex
        items = [
            {
                "item_id": entry["item_id"],
                "position": pos,
                "propensity": entry["propensity"],
                "exploratory": entry["exploratory"],
            }
            for pos, entry in enumerate(ranked.items)
        ]
        self.store.log_served(
            {
                "request_id": request_id,
                "user_id": user_id,
                "ts": time.time(),
                "policy": spec,
                "policy_params": policy.params(),
                "policy_version": policy.version,
                "model_version": pipeline.version or "unversioned",
                "arm": arm,
                "propensity_method": served["propensity_method"],
                "candidates": served["candidates"],
                "items": items,
            }
        )
        shown = [
            (int(idx), pos, entry["item_id"])
            for pos, (idx, entry) in enumerate(zip(served["item_index"], ranked.items, strict=True))
        ]
        with self._lock:
            self._pending[request_id] = (time.monotonic(), spec, shown)
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
        self.expire(pipeline)
        return request_id

    # -- learning --------------------------------------------------------------------------
    def feedback(self, pipeline: Any, events: list[dict[str, Any]]) -> int:
        """Update policies from events that carry a ``request_id``; returns how many did."""
        done = 0
        for event in events:
            request_id = event.get("request_id")
            if not request_id:
                continue
            positive = event.get("type") != "dislike" and float(event.get("value", 1.0)) > 0
            with self._lock:
                pending = self._pending.get(request_id)
                match = (
                    None
                    if pending is None
                    else next((s for s in pending[2] if s[2] == event["item_id"]), None)
                )
                if match is not None:
                    pending[2].remove(match)
            if match is not None:
                self._update(pipeline, pending[1], match[0], match[1], 1.0 if positive else 0.0)
                done += 1
                continue
            row = self.store.impression(request_id, event["item_id"])
            if row is None:
                continue  # no such impression (or already rewarded): nothing to learn
            idx = int(pipeline.items.index([event["item_id"]], missing="ignore")[0])
            if idx >= 0:
                self._update(pipeline, row[1], idx, int(row[2]), 1.0 if positive else 0.0)
                done += 1
        self.expire(pipeline)
        return done

    def expire(self, pipeline: Any, now: float | None = None) -> int:
        """Reward 0 for impressions whose feedback window closed; returns how many."""
        horizon = (
            time.monotonic() if now is None else now
        ) - self.settings.explore_feedback_window_s
        expired = []
        with self._lock:
            while self._pending:
                request_id, (at, spec, shown) = next(iter(self._pending.items()))
                if at > horizon:
                    break
                self._pending.popitem(last=False)
                expired.append((spec, shown))
        for spec, shown in expired:
            for idx, pos, _ in shown:
                self._update(pipeline, spec, idx, pos, 0.0)
        return sum(len(s) for _, s in expired)

    def _update(self, pipeline: Any, spec: str, item: int, position: int, reward: float) -> None:
        policy = self.policy(spec)
        emb = getattr(pipeline.text_model(), "item_embeddings_", None)
        vector = emb[item] if emb is not None and item < len(emb) else None
        with self._lock:
            policy.update(item, reward, position=position, item_vector=vector)
            self._updates += 1
            due = self._updates % max(self.settings.explore_save_every, 1) == 0
        if due:
            self.save(pipeline)

    # -- state -----------------------------------------------------------------------------
    def save(self, pipeline: Any) -> None:
        """Write every policy's state with the item ids it indexes (atomic per file)."""
        if pipeline is None:
            return
        root = Path(self.settings.model_dir) / _STATE_DIR
        root.mkdir(parents=True, exist_ok=True)
        ids = np.asarray([str(i) for i in pipeline.items.ids], dtype=str)
        with self._lock:
            states = {spec: p.get_state() for spec, p in self._policies.items()}
        for spec, state in states.items():
            if not state:
                continue
            arrays = {f"state__{k}": np.asarray(v) for k, v in state.items()}
            tmp = root / f".{_slug(spec)}.npz.tmp"
            with tmp.open("wb") as fh:
                np.savez(fh, item_ids=ids, spec=np.asarray(spec), **arrays)
            tmp.replace(root / f"{_slug(spec)}.npz")

    def load(self, pipeline: Any) -> int:
        """Restore saved states (remapped to ``pipeline``'s items); returns how many."""
        root = Path(self.settings.model_dir) / _STATE_DIR
        if pipeline is None or not root.is_dir():
            return 0
        loaded = 0
        for path in sorted(root.glob("*.npz")):
            try:
                with np.load(path, allow_pickle=False) as data:
                    spec = str(data["spec"])
                    saved_ids = data["item_ids"]
                    state = {
                        k[len("state__") :]: data[k] for k in data.files if k.startswith("state__")
                    }
            except (OSError, ValueError, KeyError) as err:
                log.warning("bandit state %s unreadable, starting fresh: %s", path.name, err)
                continue
            try:
                policy = self.policy(spec)
            except ConfigError as err:
                log.warning("bandit state %s names an unknown policy: %s", path.name, err)
                continue
            policy.set_state(_remap(state, saved_ids, pipeline))
            loaded += 1
        return loaded


def _remap(state: dict[str, np.ndarray], saved_ids: np.ndarray, pipeline: Any) -> dict:
    """Re-index per-item arrays (leading dimension = number of saved items) to the pipeline's
    items; new items start from the policy's prior (zeros), shared arrays are kept."""
    current = [str(i) for i in pipeline.items.ids]
    if len(saved_ids) == len(current) and all(
        a == b for a, b in zip(saved_ids, current, strict=True)
    ):
        return state
    where = pipeline.items.index(list(saved_ids), missing="ignore")
    keep = where >= 0
    out = {}
    for name, arr in state.items():
        if arr.ndim >= 1 and arr.shape[0] == len(saved_ids):
            fresh = np.zeros((len(current), *arr.shape[1:]), arr.dtype)
            fresh[where[keep]] = arr[keep]
            out[name] = fresh
        else:
            out[name] = arr
    return out
