"""HTML of the dashboard pages (server-rendered; every value from outside goes through
:func:`esc`). The data comes from :mod:`lumenrec.serving.dashboard`, which owns the routes,
access rules and the reads from the service; this module only renders."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "error_page",
    "live_panel",
    "login_page",
    "overview_page",
    "search_page",
    "user_page",
]

_ROUTES = ("cf", "text", "popular", "exploration", "rule")


def esc(value: Any) -> str:
    """``html.escape`` of ``str(value)`` (quotes too: safe in text and attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _when(ts: float | None) -> str:
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _badge(route: Any) -> str:
    cls = str(route) if route in _ROUTES else ""
    return f'<span class="badge {cls}">{esc(route)}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    """A table of already escaped cells; ``num`` are right-aligned column positions."""
    th = "".join(f"<th{' class=num' if i in num else ''}>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def layout(title: str, body: str, *, active: str = "", access: str = "") -> str:
    """The page frame: head (app-served CSS and JS only), navigation, access line."""
    nav = "".join(
        f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>'
        for key, href, label in (
            ("overview", "/dashboard", "Overview"),
            ("search", "/dashboard/search", "Catalogue search"),
            ("user", "/dashboard/user", "View as user"),
        )
    )
    who = ""
    if access:
        logout = ' · <a href="/dashboard/logout">log out</a>' if access == "session" else ""
        who = f'<span class="who">read access: {esc(access)}{logout}</span>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · LumenRec</title>"
        '<link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/dashboard/dashboard.css">'
        '<script src="/dashboard/dashboard.js" defer></script></head><body>'
        f'<header><a class="brand" href="/dashboard">LumenRec</a><nav>{nav}</nav>{who}</header>'
        f"<main><h1>{esc(title)}</h1>{body}</main>"
        "<footer>LumenRec dashboard · server-rendered, offline, read-only "
        "(changes go through the write key)</footer></body></html>"
    )


def login_page(reason: str) -> str:
    """The 401 page: a key field that never becomes part of a URL (no ``name``)."""
    body = (
        f'<div class="card"><p>{esc(reason)}</p>'
        '<form id="login-form" class="inline" autocomplete="off">'
        "<label>API key (read key, or the write key)"
        '<input id="login-key" type="password" class="wide" autocomplete="current-password" required></label>'
        '<button type="submit">Open the dashboard</button></form>'
        '<div id="login-status" class="status"></div>'
        '<p class="muted small">The key is sent once in the <code>X-API-Key</code> header; '
        "the server answers with a session cookie (HttpOnly, SameSite=Strict, 8 hours) that "
        "allows reading the dashboard only. Scripts: <code>curl -H 'X-API-Key: …'</code> works "
        "on every dashboard page.</p>"
        '<noscript><p class="bad">The login needs JavaScript; without it, send the key as '
        "an X-API-Key header or open the dashboard from the server itself (loopback).</p>"
        "</noscript></div>"
    )
    return layout("Dashboard login", body)


def error_page(status: int, detail: str, *, access: str = "") -> str:
    """An error card with the status and the one-line detail (escaped)."""
    body = (
        f'<div class="card error"><h2>{status}</h2><p>{esc(detail)}</p>'
        '<p><a href="/dashboard">Back to the overview</a></p></div>'
    )
    return layout("Dashboard: error", body, access=access)


# -- overview ----------------------------------------------------------------------------------
def _spark(counts: Sequence[float], step_s: int, label: str, cls: str = "") -> str:
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
        (_fmt(live["requests_per_s"]), "requests/s"),
        (_fmt(live["feedback_per_s"]), "feedback events/s"),
        (_fmt(lat["p50"], 1, " ms"), "latency p50"),
        (_fmt(lat["p95"], 1, " ms"), "latency p95"),
        (_fmt(lat["p99"], 1, " ms"), "latency p99"),
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
    counter_html = _table(
        ["since start", "", ""],
        [(esc(name), f"{a:g}", f"{b:g}") for name, a, b in counter_rows]
        + [("requests refused with 429", f"{limited.get(None, 0):g}", "")],
        num=(1, 2),
    )
    routes = _table(
        ["route", "status", "requests", "mean"],
        [
            (
                f"{esc(r['method'])} {esc(r['route'])}",
                esc(r["status"]),
                f"{r['count']:,}",
                _fmt(r["mean_s"] * 1000, 1, " ms"),
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
        f"{_spark(series['requests'], step, 'requests per step')}"
        f"{_spark(series['feedback'], step, 'feedback events per step', 'fb')}"
        f"<div class=grid><div>{counter_html}</div><div>{routes}</div></div>"
    )


def _health_card(health: dict[str, Any]) -> str:
    ready = health["ready"]
    state = '<span class="ok">ready</span>' if ready else '<span class="bad">not ready</span>'
    rows = [
        ("status", state),
        ("model version serving", esc(health.get("serving") or "–")),
        ("model", esc(health.get("model") or "–")),
        ("users × items", esc(health.get("shape") or "–")),
        ("trained", esc(_when(health.get("trained_at")))),
        ("loaded", esc(_when(health.get("loaded_at")))),
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
        ("up since", esc(_when(health.get("started_at")))),
    ]
    error = health.get("last_reload_error")
    if error:
        rows.append(
            (
                '<span class="bad">last reload error</span>',
                f"{esc(error.get('version'))}: {esc(error.get('error'))} "
                f"({esc(_when(error.get('at')))})",
            )
        )
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="card"><h2>Health</h2><table>{table}</table></div>'


def _registry_card(registry: dict[str, Any]) -> str:
    marks = []
    for version in reversed(registry["versions"]):
        tags = []
        if version == registry["serving"]:
            tags.append('<span class="badge serving">serving</span>')
        if version == registry["current"]:
            tags.append('<span class="badge current">current</span>')
        marks.append((esc(version), " ".join(tags)))
    versions = _table(["version", ""], marks) if marks else '<p class="muted">none published</p>'
    log_rows = [
        (esc(_when(at)), esc(version), esc(action), esc(detail or ""))
        for version, action, at, detail in registry["log"]
    ]
    log = (
        _table(["when", "version", "action", "detail"], log_rows)
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


def search_form(query: str = "", k: int = 20) -> str:
    """The catalogue search form (a plain ``GET`` to ``/dashboard/search``)."""
    return (
        '<form class="inline" method="get" action="/dashboard/search">'
        f'<label>Title words or a description<input name="q" class="wide" maxlength="200" '
        f'value="{esc(query)}" placeholder="e.g. space rocket"></label>'
        f'<label>Results<input name="k" type="number" min="1" max="100" value="{k}"></label>'
        '<button type="submit">Search</button></form>'
    )


def overview_page(health: dict, registry: dict, live_html: str, *, access: str) -> str:
    """The overview: Health and Live cards, the registry, and the entry forms."""
    body = (
        '<div class="grid">'
        f"{_health_card(health)}"
        '<div class="card"><h2>Live</h2>'
        f'<div id="live" data-refresh="/dashboard/live" data-every="5">{live_html}</div></div>'
        "</div>"
        '<div class="grid">'
        f"{_registry_card(registry)}"
        '<div class="card"><h2>Catalogue search</h2>'
        f"{search_form()}</div>"
        '<div class="card"><h2>View as user</h2>'
        f"{user_form({'user_id': '', 'k': 10})}</div>"
        "</div>"
    )
    return layout("Overview", body, active="overview", access=access)


# -- search ------------------------------------------------------------------------------------
def _hits_table(hits: list[dict[str, Any]], score: bool) -> str:
    if not hits:
        return '<p class="muted">no match</p>'
    head = ["#", "item", "id", *(["similarity"] if score else []), "details"]
    rows = []
    for i, hit in enumerate(hits, 1):
        row = [str(i), esc(hit["title"]), f'<span class="muted">{esc(hit["item_id"])}</span>']
        if score:
            row.append(_fmt(hit.get("score"), 3))
        row.append(f'<span class="small muted">{esc(hit.get("details", ""))}</span>')
        rows.append(row)
    return _table(head, rows, num=(0, 3) if score else (0,))


def search_page(result: dict[str, Any], *, access: str) -> str:
    """The search form and, for a query, the title and meaning hit lists."""
    query = result["query"]
    parts = [f'<div class="card">{search_form(query, result["k"])}</div>']
    if query:
        parts.append(
            '<div class="grid">'
            f'<div class="card" id="by-title"><h2>By title ({len(result["title"])})</h2>'
            '<p class="muted small">Items whose title contains every word of the query '
            "(case-insensitive), most popular first.</p>"
            f"{_hits_table(result['title'], score=False)}</div>"
            '<div class="card" id="by-meaning"><h2>By meaning</h2>'
        )
        if result["meaning"] is None:
            parts.append(f'<p class="muted">{esc(result["meaning_note"])}</p></div></div>')
        else:
            parts.append(
                f'<p class="muted small">{esc(result["meaning_note"])}</p>'
                f"{_hits_table(result['meaning'], score=True)}</div></div>"
            )
    return layout("Catalogue search", "".join(parts), active="search", access=access)


# -- view as user ------------------------------------------------------------------------------
def user_form(knobs: dict[str, Any], explore_options: Sequence[tuple[str, str]] = ()) -> str:
    """The "view as user" form; the knobs appear when ``explore_options`` are given."""

    def number(name: str, label: str) -> str:
        value = knobs.get(name)
        shown = "" if value is None else f"{value:g}"
        return (
            f'<label>{label}<input name="{name}" type="number" min="0" max="1" step="0.05" '
            f'value="{shown}" placeholder="off"></label>'
        )

    options = "".join(
        f'<option value="{esc(value)}"{" selected" if value == knobs.get("explore", "") else ""}>'
        f"{esc(label)}</option>"
        for value, label in explore_options
    )
    explore = (
        f'<label>Exploration<select name="explore">{options}</select></label>' if options else ""
    )
    knob_html = (
        number("diversity", "Diversity (MMR)")
        + number("calibration", "Calibration")
        + number("fairness", "Fairness (provider)")
        + explore
        if explore_options
        else ""
    )
    return (
        '<form class="inline" method="get" action="/dashboard/user" id="user-form">'
        f'<label>User id<input name="user_id" maxlength="256" required '
        f'value="{esc(knobs.get("user_id", ""))}"></label>'
        f'<label>k<input name="k" type="number" min="1" max="100" value="{int(knobs.get("k", 10))}"></label>'
        f'{knob_html}<button type="submit">Show</button></form>'
    )


def _reason_html(reason: dict[str, Any] | None) -> str:
    if not reason:
        return '<span class="muted">–</span>'
    evidence = "".join(
        f"<li>{esc(e.get('label'))} "
        f'<meter min="0" max="1" value="{float(e.get("share") or 0):.3f}"></meter> '
        f"{float(e.get('share') or 0):.0%}</li>"
        for e in reason.get("evidence", [])[:3]
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in reason.get("notes", []))
    extra = f'<ul class="evidence">{evidence}{notes}</ul>' if evidence or notes else ""
    return (
        f'<span class="reason">{esc(reason.get("sentence"))}</span> '
        f'<span class="small muted">({esc(reason.get("kind"))}, {esc(reason.get("method"))})</span>'
        f"{extra}"
    )


def _recs_table(listing: dict[str, Any], user_id: str, baseline: dict[str, int] | None) -> str:
    items = listing["items"]
    if not items:
        return '<p class="muted">no items</p>'
    explored = any(i.get("propensity") is not None for i in items)
    head = ["#", "item", "score", "route", "why"]
    if explored:
        head.append("propensity")
    if baseline is not None:
        head.append("rank without knobs")
    head.append("")
    rows = []
    for item in items:
        row = [
            str(item["rank"]),
            f'{esc(item.get("title"))}<br><span class="small muted">{esc(item["item_id"])}</span>',
            _fmt(item.get("score"), 4),
            _badge(item.get("route"))
            + (
                ' <span class="badge exploration">explored</span>'
                if item.get("exploratory")
                else ""
            ),
            _reason_html(item.get("reason")),
        ]
        if explored:
            row.append(_fmt(item.get("propensity"), 3))
        if baseline is not None:
            before = baseline.get(item["item_id"])
            row.append(str(before) if before else '<span class="badge new">new</span>')
        row.append(
            '<button type="button" class="small secondary" data-action="not-interested" '
            f'data-user="{esc(user_id)}" data-kind="item" data-value="{esc(item["item_id"])}">'
            "not interested</button>"
        )
        rows.append(row)
    return f'<div id="recs">{_table(head, rows, num=(0, 2))}</div>'


def _profile_card(profile: dict[str, Any], user_id: str) -> str:
    interests = profile.get("interests") or {}
    shares = []
    for kind in ("categories", "brands"):
        for entry in interests.get(kind, []):
            shares.append(
                f"<li>{esc(entry['name'])} "
                f'<meter min="0" max="1" value="{float(entry["share"]):.3f}"></meter> '
                f"{float(entry['share']):.0%}</li>"
            )
    controls = profile.get("controls") or {}
    chosen = controls.get("not_interested") or {}
    control_rows = []
    for kind in ("items", "categories", "brands"):
        for value in chosen.get(kind, []) or []:
            single = {"items": "item", "categories": "category", "brands": "brand"}[kind]
            control_rows.append(
                f"<li>not interested in {esc(single)} {esc(value)} "
                '<button type="button" class="small secondary" data-action="not-interested" '
                f'data-user="{esc(user_id)}" data-kind="{single}" data-value="{esc(value)}" '
                'data-undo="true">undo</button></li>'
            )
    if controls.get("personalised") is False:
        control_rows.append("<li>personalisation switched off by the user</li>")
    training = profile.get("training_history") or []
    recent = profile.get("recent_feedback") or []
    history_rows = [
        (esc(h.get("title")), f'<span class="muted">{esc(h.get("item_id"))}</span>', "training")
        for h in training[:15]
    ] + [
        (
            esc(e.get("title")),
            f'<span class="muted">{esc(e.get("item_id"))}</span>',
            esc(f"{e.get('type', 'event')} · {_when(e.get('timestamp'))}"),
        )
        for e in recent[:15]
    ]
    more = len(training) + len(recent) - len(history_rows)
    history = (
        _table(["item", "id", "source"], history_rows)
        if history_rows
        else '<p class="muted">no history: the list comes from the profile text or popularity</p>'
    )
    if more > 0:
        history += f'<p class="muted small">… and {more} more</p>'
    text = profile.get("profile_text")
    return (
        '<div class="card" id="profile"><h2>What the service holds</h2>'
        f"<p>Route of the next list: {_badge(profile.get('route'))} · known to the model: "
        f"{'yes' if profile.get('known_to_model') else 'no'}</p>"
        + (f"<p>Profile text: {esc(text)}</p>" if text else "")
        + (f'<h2>Interests</h2><ul class="evidence">{"".join(shares)}</ul>' if shares else "")
        + (
            f'<h2>Controls</h2><ul class="evidence">{"".join(control_rows)}</ul>'
            if control_rows
            else ""
        )
        + f"<h2>History</h2>{history}</div>"
    )


def user_page(
    knobs: dict[str, Any],
    explore_options: Sequence[tuple[str, str]],
    view: dict[str, Any] | None,
    *,
    access: str,
) -> str:
    """The user page: the form with its knobs and, for a user id, the explained list (with
    the plain list's ranks when a knob is set), the write-key field and the profile."""
    parts = [f'<div class="card">{user_form(knobs, explore_options)}</div>']
    if view is not None:
        listing = view["listing"]
        facts = [f"model {esc(listing['model_version'])}"]
        if listing.get("fallback"):
            facts.append(f"fallback: {esc(listing['fallback'])}")
        if listing.get("fold_in"):
            facts.append("folded in from stored feedback")
        if listing.get("policy"):
            facts.append(
                f"exploration policy {esc(listing['policy'])} (arm {esc(listing.get('arm'))}; "
                "a preview: not logged, the bandit does not learn from it)"
            )
        rerank = listing.get("rerank")
        if rerank:
            facts.append(f"re-ranked: {esc(', '.join(rerank.get('stages', [])))}")
            if not rerank.get("feasible", True):
                facts.append('<span class="bad">a constraint could not be met</span>')
            facts += [esc(n) for n in rerank.get("notes", [])]
        if view.get("spec"):
            facts.append(f"rerank spec <code>{esc(view['spec'])}</code>")
        changed = view.get("changed")
        summary = (
            f'<p class="small" id="knob-effect">Knobs changed {changed} of {len(listing["items"])} '
            "items against the plain list.</p>"
            if changed is not None
            else ""
        )
        parts.append(
            '<div class="card" id="recommendations">'
            f"<h2>Recommendations for {esc(view['user_id'])}</h2>"
            f'<p class="muted small">{" · ".join(facts)}</p>{summary}'
            '<form class="inline" autocomplete="off" id="write-form">'
            "<label>Write key (only for “not interested”; sent in a header, never stored)"
            '<input id="write-key" type="password" class="wide" autocomplete="new-password"></label></form>'
            '<div id="write-status" class="status"></div>'
            f"{_recs_table(listing, view['user_id'], view.get('baseline'))}</div>"
        )
        parts.append(_profile_card(view["profile"], view["user_id"]))
    return layout("View as user", "".join(parts), active="user", access=access)
