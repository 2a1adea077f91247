"""Fragments of the dashboard's overview page: the live panel (KPIs, sparklines and counters,
re-rendered every 5 s by the page's script), the health card and the model-registry card.
:func:`lumenrec.serving.dashboard_pages.overview_page` lays them out; ``live_panel`` is also
re-exported there for the ``/dashboard/live`` fragment route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lumenrec.serving._dashboard_html import esc, format_number, format_time, html_table

__all__ = ["health_card", "live_panel", "registry_card", "spark_svg"]


def spark_svg(counts: Sequence[float], step_s: int, label: str, cls: str = "") -> str:
    """Bars of ``counts`` (oldest first) as inline SVG (markup only: allowed by the CSP)."""
    n = max(len(counts), 1)
    top = max(max(counts, default=0.0), 1.0)
    width = 300.0 / n
    bars = []
    for i, value in enumerate(counts):
        h = 56.0 * value / top
        ago = (n - i) * step_s
        bars.append(
            f'<rect class="bar {cls}" x="{i * width:.2f}" y="{58 - h:.2f}" '
            f'width="{max(width - 1, 0.5):.2f}" height="{h:.2f}">'
            f"<title>{value:g} in the {step_s} s ending {ago - step_s} s ago</title></rect>"
        )
    return (
        f'<svg class="spark" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" '
        f'aria-label="{esc(label)}"><line class="axis" x1="0" y1="58.5" x2="300" y2="58.5"/>'
        f"{''.join(bars)}</svg>"
    )


def live_panel(live: dict[str, Any], counters: dict[str, dict], totals: list[dict]) -> str:
    """The live numbers (re-rendered every 5 s by the page's script)."""
    lat = live["latency_ms"]
    kpis = [
        (format_number(live["requests_per_s"]), "requests/s"),
        (format_number(live["feedback_per_s"]), "feedback events/s"),
        (format_number(lat["p50"], 1, " ms"), "latency p50"),
        (format_number(lat["p95"], 1, " ms"), "latency p95"),
        (format_number(lat["p99"], 1, " ms"), "latency p99"),
        (str(live["errors"]), "5xx answers"),
    ]
    kpi_html = "".join(
        f'<div class="kpi"><div class="v">{esc(v)}</div><div class="l">{esc(label)}</div></div>'
        for v, label in kpis
    )
    series = live["series"]
    step = int(series["step_s"])
    span = step * len(series["requests"])
    fallback = counters.get("lumenrec_fallback_total", {})
    feedback = counters.get("lumenrec_feedback_events_total", {})
    reloads = counters.get("lumenrec_model_reloads_total", {})
    limited = counters.get("lumenrec_rate_limited_total", {})
    counter_rows = [
        (
            "feedback events accepted / duplicate",
            feedback.get("accepted", 0),
            feedback.get("duplicate", 0),
        ),
        ("fallback lists: popular / text", fallback.get("popular", 0), fallback.get("text", 0)),
        ("model reloads: ok / rejected", reloads.get("ok", 0), reloads.get("rejected", 0)),
    ]
    counter_html = html_table(
        ["since start", "", ""],
        [(esc(name), f"{a:g}", f"{b:g}") for name, a, b in counter_rows]
        + [("requests refused with 429", f"{limited.get(None, 0):g}", "")],
        num=(1, 2),
    )
    routes = html_table(
        ["route", "status", "requests", "mean"],
        [
            (
                f"{esc(r['method'])} {esc(r['route'])}",
                esc(r["status"]),
                f"{r['count']:,}",
                format_number(r["mean_s"] * 1000, 1, " ms"),
            )
            for r in totals
            if not str(r["route"]).startswith("/dashboard")
        ][:8],
        num=(1, 2, 3),
    )
    return (
        f'<div class="kpis">{kpi_html}</div>'
        f'<p class="muted small">Rates and percentiles over the last {live["window_s"]} s '
        f"({live['n_latencies']} requests; dashboard pages left out). "
        f"Requests (blue) and feedback events (green) per {step} s over the last {span // 60} "
        "minutes:</p>"
        f"{spark_svg(series['requests'], step, 'requests per step')}"
        f"{spark_svg(series['feedback'], step, 'feedback events per step', 'fb')}"
        f"<div class=grid><div>{counter_html}</div><div>{routes}</div></div>"
    )


def health_card(health: dict[str, Any]) -> str:
    ready = health["ready"]
    state = '<span class="ok">ready</span>' if ready else '<span class="bad">not ready</span>'
    rows = [
        ("status", state),
        ("model version serving", esc(health.get("serving") or "–")),
        ("model", esc(health.get("model") or "–")),
        ("users × items", esc(health.get("shape") or "–")),
        ("trained", esc(format_time(health.get("trained_at")))),
        ("loaded", esc(format_time(health.get("loaded_at")))),
        ("retrieval", esc(health.get("retrieval") or "–")),
        ("exploration", esc(health.get("exploration") or "off")),
        (
            "reads need a key",
            esc(
                "yes"
                if health.get("require_read_key")
                else "no (loopback or key for the dashboard)"
            ),
        ),
        ("up since", esc(format_time(health.get("started_at")))),
    ]
    error = health.get("last_reload_error")
    if error:
        rows.append(
            (
                '<span class="bad">last reload error</span>',
                f"{esc(error.get('version'))}: {esc(error.get('error'))} "
                f"({esc(format_time(error.get('at')))})",
            )
        )
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="card"><h2>Health</h2><table>{table}</table></div>'


def registry_card(registry: dict[str, Any]) -> str:
    marks = []
    for version in reversed(registry["versions"]):
        tags = []
        if version == registry["serving"]:
            tags.append('<span class="badge serving">serving</span>')
        if version == registry["current"]:
            tags.append('<span class="badge current">current</span>')
        marks.append((esc(version), " ".join(tags)))
    versions = (
        html_table(["version", ""], marks) if marks else '<p class="muted">none published</p>'
    )
    log_rows = [
        (esc(format_time(at)), esc(version), esc(action), esc(detail or ""))
        for version, action, at, detail in registry["log"]
    ]
    log = (
        html_table(["when", "version", "action", "detail"], log_rows)
        if log_rows
        else '<p class="muted">no registry events in the store yet</p>'
    )
    error = registry.get("error")
    note = f'<p class="bad">{esc(error)}</p>' if error else ""
    return (
        '<div class="card"><h2>Model registry</h2>'
        f'{note}<p class="muted small">Published versions, newest first; the '
        "<code>current</code> pointer and the version this process serves.</p>"
        f'{versions}<h2 class="spaced">History (newest first)</h2>{log}</div>'
    )
