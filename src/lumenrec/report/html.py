"""Page assembly: escaped HTML fragments, tables and the self-contained page around them.

Every piece of text that comes from a results file goes through :func:`esc`
(:func:`html.escape` with quotes); only the SVG produced by :mod:`lumenrec.report.plots` and
fragments built here are inserted as markup. The page has no script, no external stylesheet,
font or image: it opens offline from disk and makes no network request.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Markup",
    "Section",
    "esc",
    "fmt",
    "fmt_stats",
    "page",
    "table",
]


class Markup(str):
    """A string that is already safe HTML (built here or by the plotting module)."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """HTML-escape any value (quotes too); :class:`Markup` passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals (small numbers in scientific notation); '–' if None."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = value
        return fmt(lo, digits) if lo == hi else f"{fmt(lo, digits)}–{fmt(hi, digits)}"
    if not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return "–" if value is None or isinstance(value, float) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 10 ** (-digits + 1):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def fmt_stats(stats: Any, digits: int = 4) -> Markup:
    """``mean ± std`` of an aggregate cell (``{mean, std}``) as markup; '–' when absent."""
    if not isinstance(stats, dict) or stats.get("mean") is None:
        return Markup("–")
    text = esc(fmt(stats["mean"], digits))
    if isinstance(stats.get("std"), int | float):
        return Markup(f'{text}<span class="sd"> ± {float(stats["std"]):.{digits}f}</span>')
    return text


def table(
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    row_classes: Sequence[str] | None = None,
) -> Markup:
    """An HTML table; cells are escaped unless they are :class:`Markup`.

    Parameters
    ----------
    header : sequence
        Column titles.
    rows : iterable of sequences
        Cell values; the first column is left-aligned, the rest right-aligned.
    caption : str, optional
    row_classes : sequence of str, optional
        CSS class per row (``anchor`` for published numbers, ``best`` ...).
    """
    out = ['<div class="tw"><table>']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and i < len(row_classes) else ""
        attr = f' class="{esc(cls)}"' if cls else ""
        cells = "".join(
            f'<td class="wrap">{esc(c)}</td>' if len(str(c)) > 48 else f"<td>{esc(c)}</td>"
            for c in row
        )
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


@dataclass
class Section:
    """One titled part of the report.

    Attributes
    ----------
    title : str
    anchor : str
        The id used by the table of contents (letters, digits and dashes).
    parts : list of Markup
        Paragraphs, tables and figures, in order.
    source : str
        The results file the section comes from.
    """

    title: str
    anchor: str
    source: str = ""
    parts: list[Markup] = field(default_factory=list)

    def text(self, value: str, cls: str = "") -> None:
        """Append an escaped paragraph."""
        attr = f' class="{esc(cls)}"' if cls else ""
        self.parts.append(Markup(f"<p{attr}>{esc(value)}</p>"))

    def add(self, markup: Markup) -> None:
        """Append a fragment that is already markup (a table)."""
        self.parts.append(markup)

    def figure(self, svg: str, caption: str) -> None:
        """Append an inline SVG figure with an escaped caption."""
        self.parts.append(
            Markup(f'<figure class="plot">{svg}<figcaption>{esc(caption)}</figcaption></figure>')
        )

    def heading(self, value: str) -> None:
        """Append an escaped sub-heading."""
        self.parts.append(Markup(f"<h3>{esc(value)}</h3>"))

    def render(self) -> Markup:
        """The section as HTML."""
        src = f' <span class="src">{esc(self.source)}</span>' if self.source else ""
        body = "".join(self.parts)
        return Markup(
            f'<section id="{esc(self.anchor)}"><h2>{esc(self.title)}{src}</h2>{body}</section>'
        )


_CSS = """
:root{--fg:#1d2433;--mute:#5b6475;--line:#dde1e8;--acc:#2b6cb0;--bg:#fbfbfd}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{padding:18px 28px 10px;border-bottom:1px solid var(--line);background:#fff}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:var(--mute)}
main{max-width:1180px;margin:0 auto;padding:8px 28px 40px}
nav{margin:10px 0 0;font-size:13px}
nav a{color:var(--acc);text-decoration:none;margin-right:14px;white-space:nowrap}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;
margin:16px 0}
h2{font-size:18px;margin:0 0 8px}
h3{font-size:15px;margin:14px 0 6px}
.src{font-size:12px;font-weight:400;color:var(--mute);margin-left:8px}
.glance{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0}
.card{flex:1 1 210px;border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#f7f9fc}
.card b{display:block;font-size:20px}
.card span{color:var(--mute);font-size:12px}
.tw{overflow-x:auto}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums;font-size:13px}
caption{text-align:left;color:var(--mute);font-size:12px;padding-bottom:4px}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f1f4f9;font-weight:600}
td.wrap{white-space:normal;text-align:left;min-width:260px}
tr.anchor td{color:var(--mute);font-style:italic}
tr.best td{font-weight:600}
.sd{color:var(--mute);font-size:12px}
.note{color:var(--mute);font-size:13px}
.ok{color:#1f7a3a;font-weight:600}.bad{color:#b03a2e;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(470px,1fr));gap:10px}
figure.plot{margin:6px 0;text-align:center}
figure.plot svg{max-width:100%;height:auto}
figcaption{color:var(--mute);font-size:12px}
footer{color:var(--mute);font-size:12px;text-align:center;padding:10px}
"""


def page(title: str, subtitle: Sequence[str], glance: Markup, sections: Sequence[Section]) -> str:
    """The complete, self-contained HTML document.

    Parameters
    ----------
    title : str
    subtitle : sequence of str
        Lines under the title (escaped).
    glance : Markup
        The "at a glance" cards.
    sections : sequence of Section
    """
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    lines = "".join(f"<p>{esc(line)}</p>" for line in subtitle)
    body = "".join(s.render() for s in sections)
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{lines}<nav>{nav}</nav></header>"
        f"<main>{glance}{body}</main>"
        "<footer>Generated by lumenrec report · self-contained: no scripts, fonts or images "
        "are fetched</footer></body></html>\n"
    )
