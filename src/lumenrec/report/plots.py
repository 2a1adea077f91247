"""Matplotlib figures rendered to inline SVG strings (no files, no pyplot, no external refs).

Every figure is built with the object API (:class:`~matplotlib.figure.Figure` on a
:class:`~matplotlib.backends.backend_svg.FigureCanvasSVG`), so no pyplot state is touched.
Text is drawn as paths (``svg.fonttype = "path"``) with the DejaVu Sans font that ships
inside matplotlib, so the SVG needs no font at all; ``svg.hashsalt`` is fixed per figure and
the date metadata dropped, so the same data gives byte-identical SVG. Element ids are
prefixed per figure so that several SVGs can sit in one HTML page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lumenrec.errors import MissingDependencyError

__all__ = ["bar_chart", "dot_chart", "line_chart", "svg_text"]

#: (x values, y values, y spread or None, point labels or None) of one line.
Series = tuple[Sequence[float], Sequence[float], Sequence[float] | None, Sequence[str] | None]

_RC = {
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        msg = "the HTML report needs matplotlib: pip install 'lumenrec[report]'"
        raise MissingDependencyError(msg) from err
    return matplotlib


def _figure(width: float, height: float) -> Any:
    _matplotlib()
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def svg_text(fig: Any, key: str) -> str:
    """Serialise a figure as an inline ``<svg>`` element (deterministic, self-contained).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    key : str
        Unique name of the figure in its page: salts the SVG ids and prefixes them.

    Returns
    -------
    str
        The ``<svg ...>...</svg>`` text without XML prolog or DOCTYPE.
    """
    matplotlib = _matplotlib()
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"lumenrec-{safe}", **_RC}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # RDF only
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    if ids:
        pattern = re.compile(r'(\bid="|#)(' + "|".join(map(re.escape, sorted(ids))) + r')(?=[")])')
        text = pattern.sub(lambda m: f"{m.group(1)}{safe}-{m.group(2)}", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{safe}" ', 1)


def _axes(width: float = 6.0, height: float = 3.2) -> tuple[Any, Any]:
    """A figure with one axes (call inside :func:`_styled` so the rc settings apply)."""
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _styled(build: Any) -> Any:
    """Run ``build()`` with the report's rc settings (they apply when artists are made)."""
    with _matplotlib().rc_context(_RC):
        return build()


def line_chart(
    series: Mapping[str, Series],
    *,
    key: str,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: Mapping[str, float] | None = None,
    points: Mapping[str, tuple[float, float]] | None = None,
    xticks: Sequence[float] | None = None,
    xticklabels: Sequence[str] | None = None,
    logy: bool = False,
) -> str:
    """Lines with optional error bands, reference lines and reference points, as SVG.

    Parameters
    ----------
    series : mapping of name to (x, y, spread, labels)
        One line per entry; ``spread`` (or None) draws a band of ± spread; ``labels`` (or
        None) annotates the first and last point (e.g. λ of a trade-off curve).
    key : str
        Unique figure name in the page.
    xlabel, ylabel, title : str
    hlines : mapping of label to y, optional
        Dashed horizontal reference lines (published anchors).
    points : mapping of label to (x, y), optional
        Reference markers.
    xticks, xticklabels : sequence, optional
    logy : bool, default False

    Returns
    -------
    str
        Inline SVG.
    """

    def build() -> str:
        fig, ax = _axes()
        for name, (x, y, spread, labels) in series.items():
            xs, ys = [float(v) for v in x], [_num(v) for v in y]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, label=name)
            if spread is not None:
                lo = [a - _num(s, 0.0) for a, s in zip(ys, spread, strict=True)]
                hi = [a + _num(s, 0.0) for a, s in zip(ys, spread, strict=True)]
                ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)
            if labels:
                for i in {0, len(xs) - 1}:
                    ax.annotate(
                        labels[i], (xs[i], ys[i]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=line.get_color(),
                    )  # fmt: skip
        for i, (label, y) in enumerate((hlines or {}).items()):
            ax.axhline(y, linestyle="--", linewidth=0.9, color=f"C{(i + 5) % 10}", label=label)
        for i, (label, (x, y)) in enumerate((points or {}).items()):
            ax.plot([x], [y], marker="*", markersize=9, linestyle="none",
                    color=f"C{(i + 7) % 10}", label=label)  # fmt: skip
        if xticks is not None:
            ax.set_xticks(list(xticks), labels=list(xticklabels) if xticklabels else None)
        if logy:
            ax.set_yscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        _legend(ax)
        return svg_text(fig, key)

    return str(_styled(build))


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    *,
    key: str,
    ylabel: str,
    title: str = "",
    xlabel: str = "",
    overlay: tuple[str, Sequence[float]] | None = None,
    hlines: Mapping[str, float] | None = None,
) -> str:
    """Grouped vertical bars (one group per category, one bar per series), as SVG.

    Parameters
    ----------
    categories : sequence of str
    series : mapping of name to (values, spreads or None)
        Missing values may be None or NaN (no bar).
    key, ylabel, title, xlabel : str
    overlay : (label, values), optional
        A step line drawn over the groups (e.g. the training popularity share).
    hlines : mapping of label to y, optional

    Returns
    -------
    str
        Inline SVG.
    """

    def build() -> str:
        fig, ax = _axes(6.0, 3.2)
        n = max(len(series), 1)
        width = 0.8 / n
        xs = list(range(len(categories)))
        for j, (name, (values, spread)) in enumerate(series.items()):
            pos = [x - 0.4 + width * (j + 0.5) for x in xs]
            vals = [_num(v) for v in values]
            err = [_num(s, 0.0) for s in spread] if spread is not None else None
            ax.bar(pos, vals, width=width, yerr=err, capsize=2, label=name)
        if overlay is not None:
            label, values = overlay
            ax.step(xs, [_num(v) for v in values], where="mid", color="0.25", linewidth=1.4,
                    linestyle="--", label=label)  # fmt: skip
        for i, (label, y) in enumerate((hlines or {}).items()):
            ax.axhline(y, linestyle=":", linewidth=0.9, color=f"C{(i + 6) % 10}", label=label)
        ax.set_xticks(xs, labels=list(categories))
        if len(categories) > 6:
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        _legend(ax)
        return svg_text(fig, key)

    return str(_styled(build))


def dot_chart(
    labels: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    *,
    key: str,
    xlabel: str,
    title: str = "",
    vline: tuple[str, float] | None = None,
) -> str:
    """Horizontal dot plot with error bars (e.g. estimates with 1-σ bootstrap intervals).

    Parameters
    ----------
    labels : sequence of str
        One row per label (top to bottom).
    series : mapping of name to (values, spreads or None)
        Points per row; a spread draws ± spread as an error bar. None/NaN skips a point.
    key, xlabel, title : str
    vline : (label, x), optional
        A vertical reference line (e.g. the true value).

    Returns
    -------
    str
        Inline SVG.
    """

    def build() -> str:
        fig, ax = _axes(6.0, 0.6 + 0.32 * max(len(labels), 3))
        n = max(len(series), 1)
        ys = list(range(len(labels)))[::-1]
        for j, (name, (values, spread)) in enumerate(series.items()):
            offset = (j - (n - 1) / 2) * 0.18
            err = [_num(s, 0.0) for s in spread] if spread is not None else None
            ax.errorbar([_num(v) for v in values], [y + offset for y in ys], xerr=err,
                        fmt="o", markersize=4, capsize=2, label=name)  # fmt: skip
        if vline is not None:
            ax.axvline(vline[1], linestyle="--", color="0.3", linewidth=1, label=vline[0])
        ax.set_yticks(ys, labels=list(labels))
        ax.set(xlabel=xlabel, title=title)
        _legend(ax)
        return svg_text(fig, key)

    return str(_styled(build))


def _legend(ax: Any) -> None:
    """A legend inside the axes for a few entries, outside on the right for many."""
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 4:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif handles:
        ax.legend(fontsize=7, loc="best")


def _num(value: Any, default: float = math.nan) -> float:
    """A float, with None/non-numbers as ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)
