"""A self-contained HTML evaluation report from LumenRec results JSON files.

:func:`build_report` reads the files that ``lumenrec evaluate --json`` and ``benchmarks/``
write and returns one HTML page with every plot inline (matplotlib → SVG): no scripts, no
fonts, no images fetched from anywhere, so it opens offline from disk. :func:`write_report`
writes it. Needs matplotlib (the ``report`` extra).

Example
-------
>>> from lumenrec.report import write_report  # doctest: +SKIP
>>> write_report(["results.json"], "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lumenrec.report.loaders import KINDS, ResultFile, detect_kind, load_results
from lumenrec.types import PathLike

__all__ = ["KINDS", "ResultFile", "build_report", "detect_kind", "load_results", "write_report"]

Source = PathLike | Mapping[str, Any]


def build_report(
    sources: Sequence[Source] | Source, *, title: str = "LumenRec evaluation report"
) -> str:
    """Render results files (or results dicts) as one self-contained HTML page.

    Parameters
    ----------
    sources : path, dict, or sequence of them
        Results JSON files (``lumenrec evaluate --json``, ``benchmarks/results/*.json``) or
        the dicts themselves.
    title : str
        Page title.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    DataError
        A file is missing or is not a LumenRec results file (one line naming it).
    MissingDependencyError
        matplotlib is not installed.
    """
    from lumenrec.report.bench_sections import bench_sections, other_section
    from lumenrec.report.html import Markup, Section, esc, page
    from lumenrec.report.sections import Card, compare_sections

    files = load_results(sources)
    order = sorted(range(len(files)), key=lambda i: (KINDS.index(files[i].kind), i))
    sections: list[Section] = []
    cards: list[Card] = []
    others: list[ResultFile] = []
    first_compare = True
    for idx in order:
        rf = files[idx]
        if rf.kind == "other":
            others.append(rf)
            continue
        build = compare_sections if rf.kind == "compare" else bench_sections
        secs, new = build(rf, idx)
        sections += secs
        if rf.kind != "compare" or first_compare:
            cards += new  # the glance shows the first comparison, then the benchmarks' goals
        first_compare = first_compare and rf.kind != "compare"
    if others:
        sections.append(other_section(others))
    glance = ""
    if cards:
        items = "".join(f'<div class="card"><b>{esc(big)}</b><span>{esc(small)}</span></div>'
                        for big, small in cards[:6])  # fmt: skip
        glance = (
            f'<section id="glance"><h2>At a glance</h2><div class="glance">{items}</div></section>'
        )
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = ", ".join(rf.name for rf in files[:6])
    if len(files) > 6:
        names += f" and {len(files) - 6} more"
    subtitle = [f"From {names}", f"Generated {created}"]
    return page(title, subtitle, Markup(glance), sections)


def write_report(
    sources: Sequence[Source] | Source,
    out: PathLike,
    *,
    title: str = "LumenRec evaluation report",
) -> Path:
    """:func:`build_report` and write the page to ``out`` (parent folders are created).

    Returns
    -------
    Path
        ``out``.
    """
    text = build_report(sources, title=title)
    target = Path(os.fspath(out))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
