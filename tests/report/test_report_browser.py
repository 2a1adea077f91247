"""The report in a real browser: headless Debian Chromium opens the file from disk, every plot
renders, nothing is logged to the console and no network request is made."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the report needs matplotlib (the 'report' extra)")

CHROMIUM = "/usr/bin/chromium"
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _browser_or_skip() -> None:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright's Python package is not installed (pip install playwright)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")


def test_report_renders_offline_in_chromium(tmp_path):
    _browser_or_skip()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_report import compare_record
    finally:
        sys.path.pop(0)
    from lumenrec.report import write_report

    extra = [BENCH / n for n in ("p6_obd.json", "p8_tradeoffs_ml-1m.json") if (BENCH / n).is_file()]
    page_path = write_report([compare_record(), *extra], tmp_path / "report.html")
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    console: list[str] = []
    failures: list[str] = []
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except PlaywrightError as err:  # a broken install must say so, not pass
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(err).splitlines()[0]}")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.append(r.url))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(url, wait_until="load")
            sizes = page.eval_on_selector_all(
                "svg",
                "els => els.map(e => { const r = e.getBoundingClientRect();"
                " return [r.width, r.height]; })",
            )
            broken = page.eval_on_selector_all(
                "img", "els => els.filter(i => !i.complete || i.naturalWidth === 0).length"
            )
            title = page.title()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert title == "LumenRec evaluation report"
    assert len(sizes) >= 5 + 2 * len(extra)
    assert all(w > 50 and h > 50 for w, h in sizes), sizes
    assert broken == 0
    assert console == [], console
    assert failures == []
    assert requests == [url], requests  # the file itself and nothing else
    assert (tmp_path / "report.png").stat().st_size > 10_000
