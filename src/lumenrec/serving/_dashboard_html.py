"""The building blocks every dashboard page is made of: escaping, number and time formatting,
route badges, plain tables of already escaped cells and the page frame (head, navigation,
access line). Everything from outside goes through :func:`esc` here before it reaches the
markup; the page modules (:mod:`lumenrec.serving.dashboard_pages` and its fragments) only
assemble these pieces."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["esc", "format_number", "format_time", "html_table", "layout", "route_badge"]

_ROUTES = ("cf", "text", "popular", "exploration", "rule")


def esc(value: Any) -> str:
    """``html.escape`` of ``str(value)`` (quotes too: safe in text and attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def format_number(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def format_time(ts: float | None) -> str:
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def route_badge(route: Any) -> str:
    cls = str(route) if route in _ROUTES else ""
    return f'<span class="badge {cls}">{esc(route)}</span>'


def html_table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
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
