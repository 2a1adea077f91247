"""Fragments of the dashboard's "view as user" page: the user form with its re-ranking and
exploration knobs, the explained recommendation table (reasons, propensities, ranks without
knobs, "not interested" buttons) and the card of what the service holds about the user
(interests, controls, history). :func:`lumenrec.serving.dashboard_pages.user_page` lays
them out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lumenrec.serving._dashboard_html import (
    esc,
    format_number,
    format_time,
    html_table,
    route_badge,
)

__all__ = ["profile_card", "reason_html", "recs_table", "user_form"]


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


def reason_html(reason: dict[str, Any] | None) -> str:
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


def recs_table(listing: dict[str, Any], user_id: str, baseline: dict[str, int] | None) -> str:
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
            format_number(item.get("score"), 4),
            route_badge(item.get("route"))
            + (
                ' <span class="badge exploration">explored</span>'
                if item.get("exploratory")
                else ""
            ),
            reason_html(item.get("reason")),
        ]
        if explored:
            row.append(format_number(item.get("propensity"), 3))
        if baseline is not None:
            before = baseline.get(item["item_id"])
            row.append(str(before) if before else '<span class="badge new">new</span>')
        row.append(
            '<button type="button" class="small secondary" data-action="not-interested" '
            f'data-user="{esc(user_id)}" data-kind="item" data-value="{esc(item["item_id"])}">'
            "not interested</button>"
        )
        rows.append(row)
    return f'<div id="recs">{html_table(head, rows, num=(0, 2))}</div>'


def profile_card(profile: dict[str, Any], user_id: str) -> str:
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
            esc(f"{e.get('type', 'event')} · {format_time(e.get('timestamp'))}"),
        )
        for e in recent[:15]
    ]
    more = len(training) + len(recent) - len(history_rows)
    history = (
        html_table(["item", "id", "source"], history_rows)
        if history_rows
        else '<p class="muted">no history: the list comes from the profile text or popularity</p>'
    )
    if more > 0:
        history += f'<p class="muted small">… and {more} more</p>'
    text = profile.get("profile_text")
    return (
        '<div class="card" id="profile"><h2>What the service holds</h2>'
        f"<p>Route of the next list: {route_badge(profile.get('route'))} · known to the model: "
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
