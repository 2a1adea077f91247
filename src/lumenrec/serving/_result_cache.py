"""The per-user cache of recent ``/recommend`` answers that
:class:`~lumenrec.serving.service.Service` keeps: an LRU over users with a TTL per entry,
holding JSON bytes, dropped for a user on their writes and cleared on model swaps, catalogue
changes and deletions."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["ResultCache"]


class ResultCache:
    """Per-user LRU of recent responses with a TTL; invalidated on the user's writes.

    Responses are kept as JSON bytes: thousands of cached lists with their reasons as Python
    dicts made the garbage collector's full passes stall requests (p99 > 100 ms)."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self._data: OrderedDict[str, dict[tuple, tuple[float, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str, key: tuple) -> bytes | None:
        if not self.size:
            return None
        with self._lock:
            hit = self._data.get(user_id, {}).get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                return None
            self._data.move_to_end(user_id)
            return hit[1]

    def put(self, user_id: str, key: tuple, value: bytes) -> None:
        if not self.size:
            return
        with self._lock:
            entry = self._data.setdefault(user_id, {})
            entry[key] = (time.monotonic(), value)
            self._data.move_to_end(user_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def drop(self, user_id: str) -> None:
        with self._lock:
            self._data.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._data
