"""Metrics: request histogram, model version gauge and counters in Prometheus text format.

Kept per app (``app.state.metrics``), not in a process-global registry, so several apps in one
process (tests) never share counts. Beside the Prometheus counters, the same observations feed
a small live view for the dashboard (:meth:`Metrics.live`): per-second request and feedback
counts over the last five minutes and the latencies of the last 4,096 requests (O(1) per
request, under the same lock).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COUNTERS = {
    "lumenrec_feedback_events_total": ("Feedback events received, by result.", "result"),
    "lumenrec_fallback_total": ("Recommendation lists served by a fallback, by kind.", "kind"),
    "lumenrec_model_reloads_total": ("Model reload attempts, by result.", "result"),
    "lumenrec_rate_limited_total": ("Requests refused with 429.", None),
}
_INITIAL = {
    "lumenrec_feedback_events_total": ("accepted", "duplicate"),
    "lumenrec_fallback_total": ("popular", "text"),
    "lumenrec_model_reloads_total": ("ok", "rejected"),
    "lumenrec_rate_limited_total": (None,),
}
#: Seconds of per-second buckets kept for the live view (rates and the sparkline).
LIVE_SECONDS = 300
#: Latencies kept for the live percentiles (the most recent requests).
LIVE_LATENCIES = 4096
#: Routes left out of the live view (the dashboard's own page loads and polls).
LIVE_EXCLUDE = ("/dashboard",)


class _SecondBuckets:
    """Counts per wall-second in a ring of ``LIVE_SECONDS`` slots (not thread-safe alone)."""

    def __init__(self) -> None:
        self.stamp = [-1] * LIVE_SECONDS
        self.count = [0.0] * LIVE_SECONDS

    def add(self, second: int, value: float) -> None:
        slot = second % LIVE_SECONDS
        if self.stamp[slot] != second:
            self.stamp[slot], self.count[slot] = second, 0.0
        self.count[slot] += value

    def window(self, now: int, seconds: int) -> list[float]:
        """Counts of the ``seconds`` seconds up to ``now`` (oldest first; 0 when none)."""
        out = []
        for second in range(now - seconds + 1, now + 1):
            slot = second % LIVE_SECONDS
            out.append(self.count[slot] if self.stamp[slot] == second else 0.0)
        return out


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[min(int(rank), len(ordered)) - 1]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items()) + "}"


class Metrics:
    """Thread-safe counters and histograms rendered by :meth:`render`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hist: dict[tuple[str, str, str], list[float]] = {}
        self._counters: dict[str, dict[str | None, float]] = defaultdict(dict)
        for name, labels in _INITIAL.items():
            for label in labels:
                self._counters[name][label] = 0.0
        self.model_version: str | None = None
        self.model_loaded_at: float | None = None
        self.started_at = time.time()
        self._live_requests = _SecondBuckets()
        self._live_errors = _SecondBuckets()
        self._live_feedback = _SecondBuckets()
        self._live_latency: deque[tuple[float, float]] = deque(maxlen=LIVE_LATENCIES)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Add one request to ``http_request_duration_seconds``."""
        key = (method, route, str(status))
        with self._lock:
            row = self._hist.get(key)
            if row is None:
                row = self._hist[key] = [0.0] * (len(_BUCKETS) + 2)
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    row[i] += 1
            row[-2] += seconds
            row[-1] += 1
            if not route.startswith(LIVE_EXCLUDE):
                now = time.time()
                self._live_requests.add(int(now), 1.0)
                if status >= 500:
                    self._live_errors.add(int(now), 1.0)
                self._live_latency.append((now, seconds))

    def inc(self, name: str, label: str | None = None, value: float = 1.0) -> None:
        """Increase counter ``name`` (one of the known counters) for ``label``."""
        if name not in _COUNTERS:
            msg = f"unknown counter {name!r}"
            raise KeyError(msg)
        with self._lock:
            self._counters[name][label] = self._counters[name].get(label, 0.0) + value
            if name == "lumenrec_feedback_events_total" and label == "accepted" and value:
                self._live_feedback.add(int(time.time()), value)

    def set_model(self, version: str | None) -> None:
        """Record the version now serving (the model version gauge)."""
        with self._lock:
            self.model_version = version
            self.model_loaded_at = time.time()

    def counter(self, name: str, label: str | None = None) -> float:
        with self._lock:
            return self._counters[name].get(label, 0.0)

    def counters(self) -> dict[str, dict[str | None, float]]:
        """A copy of every counter, by name and label."""
        with self._lock:
            return {name: dict(values) for name, values in self._counters.items()}

    def request_totals(self) -> list[dict[str, Any]]:
        """Requests since start per (method, route, status) from the histogram: ``count`` and
        ``mean_s``, most frequent first."""
        with self._lock:
            rows = [
                {
                    "method": method,
                    "route": route,
                    "status": int(status),
                    "count": int(row[-1]),
                    "mean_s": row[-2] / row[-1] if row[-1] else 0.0,
                }
                for (method, route, status), row in self._hist.items()
            ]
        return sorted(rows, key=lambda r: (-r["count"], r["route"], r["method"], r["status"]))

    def live(self, window_s: int = 60, step_s: int = 10) -> dict[str, Any]:
        """What the service did in the last ``window_s`` seconds (dashboard routes left out).

        Parameters
        ----------
        window_s : int
            Seconds the rates and latency percentiles cover (at most ``LIVE_SECONDS``).
        step_s : int
            Width of the buckets of ``series`` (which covers ``LIVE_SECONDS``).

        Returns
        -------
        dict
            ``requests_per_s``, ``feedback_per_s``, ``errors`` (5xx answers), ``latency_ms``
            (``p50``/``p95``/``p99``/``max``, None without requests), ``n_latencies``,
            ``window_s``, and ``series``: ``{"step_s", "requests", "feedback"}`` with counts
            per step over the last ``LIVE_SECONDS`` seconds, oldest first.
        """
        window_s = max(1, min(int(window_s), LIVE_SECONDS))
        step_s = max(1, min(int(step_s), LIVE_SECONDS))
        now = time.time()
        second = int(now)
        with self._lock:
            requests = self._live_requests.window(second, LIVE_SECONDS)
            feedback = self._live_feedback.window(second, LIVE_SECONDS)
            errors = sum(self._live_errors.window(second, window_s))
            recent = sorted(s for t, s in self._live_latency if t > now - window_s)

        def steps(counts: list[float]) -> list[float]:
            return [
                sum(counts[i : i + step_s])
                for i in range(len(counts) % step_s, len(counts), step_s)
            ]

        latency = {
            name: None if value is None else value * 1000.0
            for name, value in (
                ("p50", _percentile(recent, 50)),
                ("p95", _percentile(recent, 95)),
                ("p99", _percentile(recent, 99)),
                ("max", recent[-1] if recent else None),
            )
        }
        return {
            "window_s": window_s,
            "requests_per_s": sum(requests[-window_s:]) / window_s,
            "feedback_per_s": sum(feedback[-window_s:]) / window_s,
            "errors": int(errors),
            "latency_ms": latency,
            "n_latencies": len(recent),
            "series": {"step_s": step_s, "requests": steps(requests), "feedback": steps(feedback)},
        }

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        out = [
            "# HELP http_request_duration_seconds HTTP request latency by method, route, status.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        with self._lock:
            for (method, route, status), row in sorted(self._hist.items()):
                base = {"method": method, "route": route, "status": status}
                for bound, count in zip(_BUCKETS, row, strict=False):
                    out.append(
                        f"http_request_duration_seconds_bucket{_labels({**base, 'le': str(bound)})} "
                        f"{count:g}"
                    )
                inf = _labels({**base, "le": "+Inf"})
                out.append(f"http_request_duration_seconds_bucket{inf} {row[-1]:g}")
                out.append(f"http_request_duration_seconds_sum{_labels(base)} {row[-2]:.6f}")
                out.append(f"http_request_duration_seconds_count{_labels(base)} {row[-1]:g}")
            out += [
                "# HELP lumenrec_model_version_info The model version being served (value 1).",
                "# TYPE lumenrec_model_version_info gauge",
            ]
            if self.model_version is not None:
                out.append(
                    f"lumenrec_model_version_info{_labels({'version': self.model_version})} 1"
                )
                out += [
                    "# HELP lumenrec_model_loaded_timestamp_seconds When the model was loaded.",
                    "# TYPE lumenrec_model_loaded_timestamp_seconds gauge",
                    f"lumenrec_model_loaded_timestamp_seconds {self.model_loaded_at:.3f}",
                ]
            for name, (help_text, label_name) in _COUNTERS.items():
                out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                for label, value in sorted(self._counters[name].items(), key=lambda x: str(x[0])):
                    pairs = {label_name: label} if label_name and label is not None else {}
                    out.append(f"{name}{_labels(pairs)} {value:g}")
        return "\n".join(out) + "\n"
