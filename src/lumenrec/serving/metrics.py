"""Metrics: request histogram, model version gauge and counters in Prometheus text format.

Kept per app (``app.state.metrics``), not in a process-global registry, so several apps in one
process (tests) never share counts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

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

    def inc(self, name: str, label: str | None = None, value: float = 1.0) -> None:
        """Increase counter ``name`` (one of the known counters) for ``label``."""
        if name not in _COUNTERS:
            msg = f"unknown counter {name!r}"
            raise KeyError(msg)
        with self._lock:
            self._counters[name][label] = self._counters[name].get(label, 0.0) + value

    def set_model(self, version: str | None) -> None:
        """Record the version now serving (the model version gauge)."""
        with self._lock:
            self.model_version = version
            self.model_loaded_at = time.time()

    def counter(self, name: str, label: str | None = None) -> float:
        with self._lock:
            return self._counters[name].get(label, 0.0)

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
