"""HTML of the dashboard pages (server-rendered; every value from outside goes through
:func:`esc`). The data comes from :mod:`lumenrec.serving.dashboard`, which owns the routes,
access rules and the reads from the service; this module only renders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lumenrec.serving._dashboard_html import esc, format_number, html_table, layout
from lumenrec.serving._dashboard_overview import health_card, live_panel, registry_card
from lumenrec.serving._dashboard_user import profile_card, recs_table, user_form

__all__ = [
    "error_page",
    "live_panel",
    "login_page",
    "overview_page",
    "search_page",
    "user_page",
]


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
        f"{health_card(health)}"
        '<div class="card"><h2>Live</h2>'
        f'<div id="live" data-refresh="/dashboard/live" data-every="5">{live_html}</div></div>'
        "</div>"
        '<div class="grid">'
        f"{registry_card(registry)}"
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
            row.append(format_number(hit.get("score"), 3))
        row.append(f'<span class="small muted">{esc(hit.get("details", ""))}</span>')
        rows.append(row)
    return html_table(head, rows, num=(0, 3) if score else (0,))


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
            f"{recs_table(listing, view['user_id'], view.get('baseline'))}</div>"
        )
        parts.append(profile_card(view["profile"], view["user_id"]))
    return layout("View as user", "".join(parts), active="user", access=access)
