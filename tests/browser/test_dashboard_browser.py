"""The dashboard in a real browser: headless Debian Chromium driven by Playwright against a real
``lumenrec serve`` app (uvicorn on 127.0.0.1, a free port) started by the test.

Skips, with the reason, when Playwright, Chromium or the serve extra is missing; never passes
without a browser. Screenshots go to each test's temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

for _module, _extra in (("fastapi", "serve"), ("uvicorn", "serve"), ("playwright", "playwright")):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} is not installed (pip install {_extra!r} to run the browser tests)",
            allow_module_level=True,
        )

CHROMIUM = os.environ.get("LUMENREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set LUMENREC_CHROMIUM)",
        allow_module_level=True,
    )

WRITE_KEY = "write-key-browser-0123456789"
READ_KEY = "read-key-browser-0123456789"
KNOWN_TITLE = "Deluxe galaxy rocket no. 51"  # an item of the session ``clusters`` catalogue


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, clusters) -> Iterator[str]:
    """A real service on 127.0.0.1: a hybrid (EASE + hashing text) model, reads need a key."""
    import uvicorn

    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry, ServiceSettings, create_app

    root = tmp_path_factory.mktemp("dashboard-browser")
    model = HybridRecommender(
        {"cf": EASE(regularization=10.0), "text": ContentRecommender(encoder="hashing")}
    )
    ModelRegistry(root / "models").publish(RecommendPipeline.fit(model, clusters))
    port = _free_port()
    settings = ServiceSettings(
        model_dir=root / "models",
        db=root / "events.sqlite",
        host="127.0.0.1",
        port=port,
        api_key=WRITE_KEY,
        read_api_key=READ_KEY,
        require_read_key=True,
        rate_limit=0.0,
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-browser-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
        except Error as err:
            pytest.skip(f"Chromium at {CHROMIUM} does not start headless: {err}")
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page with every request, console error and page error recorded."""

    def __init__(self, page: Any, base_url: str, shots: Path) -> None:
        self.page, self.base_url, self.shots = page, base_url, shots
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    def expected_refusals(self, status: int) -> None:
        """Drop the console lines Chromium writes for answers the test provoked on purpose
        (there must be some); anything else stays an error."""
        refused = f"the server responded with a status of {status}"
        assert any(refused in e for e in self.errors), self.errors
        self.errors = [e for e in self.errors if refused not in e]

    def check_clean(self) -> None:
        """No console error, no request to anything but this service on 127.0.0.1."""
        assert not self.errors, self.errors
        host = urlsplit(self.base_url).netloc
        foreign = [
            u for u in self.requests if urlsplit(u).scheme != "data" and urlsplit(u).netloc != host
        ]
        assert self.requests and not foreign, foreign


@pytest.fixture
def watched(browser, base_url, tmp_path) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    w = Watched(page, base_url, tmp_path)
    try:
        yield w
    finally:
        context.close()


def _login(w: Watched) -> None:
    page = w.page
    response = page.goto(f"{w.base_url}/dashboard")
    assert response is not None and response.status == 401  # reads need a key here
    page.fill("#login-key", "not-the-key-0123456789")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-status:has-text('invalid API key')")
    page.fill("#login-key", READ_KEY)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    page.wait_for_selector("text=read access: session")
    assert READ_KEY not in page.url
    w.expected_refusals(401)  # the login page itself and the wrong key


def _rec_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#recs button[data-action='not-interested']", "els => els.map(e => e.dataset.value)"
    )


def test_dashboard_loads_clean_and_refreshes_live(watched, base_url):
    import httpx

    for user in ("u1", "u2", "u3"):
        httpx.get(f"{base_url}/recommend/{user}", headers={"X-API-Key": READ_KEY}, timeout=10)
    page = watched.page
    _login(watched)
    assert page.inner_text("h1") == "Overview"
    assert page.locator(".badge.serving").inner_text() == "serving"
    assert "ready" in page.inner_text(".card >> nth=0")
    assert page.locator("#live svg.spark").count() == 2
    with page.expect_response(lambda r: r.url.endswith("/dashboard/live"), timeout=12_000) as live:
        pass
    assert live.value.status == 200
    assert "GET /recommend/{user_id}" in page.inner_text("#live")
    watched.shot("overview")
    watched.check_clean()


def test_catalogue_search_finds_a_known_item(watched):
    page = watched.page
    _login(watched)
    page.fill("input[name=q]", "galaxy rocket")
    with page.expect_navigation():
        page.click("form[action='/dashboard/search'] button")
    assert "/dashboard/search?q=galaxy+rocket" in page.url
    assert KNOWN_TITLE in page.inner_text("#by-title")
    assert KNOWN_TITLE in page.inner_text("#by-meaning")  # by meaning, through the embeddings
    page.fill("input[name=q]", "astronaut comet nebula")  # words no single title holds
    with page.expect_navigation():
        page.click("form[action='/dashboard/search'] button")
    assert "no match" in page.inner_text("#by-title")
    assert page.locator("#by-meaning tbody tr").count() > 0
    assert "topic: space" in page.inner_text("#by-meaning tbody tr >> nth=0")
    watched.shot("search")
    watched.check_clean()


def test_view_as_user_shows_reasons_and_a_knob_changes_the_list(watched):
    page = watched.page
    _login(watched)
    page.fill("#user-form input[name=user_id]", "u1")
    with page.expect_navigation():
        page.click("#user-form button")
    page.wait_for_selector("#recommendations")
    plain = _rec_ids(page)
    assert len(plain) == 10
    reasons = page.locator("#recs .reason").all_inner_texts()
    assert len(reasons) == 10 and all(r.startswith("Because you liked") for r in reasons)
    assert page.locator("#recs .badge.cf").count() == 10
    assert page.locator("#profile").is_visible()
    watched.shot("user")

    page.fill("#user-form input[name=diversity]", "0.9")
    with page.expect_navigation():
        page.click("#user-form button")
    diverse = _rec_ids(page)
    assert len(diverse) == 10 and diverse != plain
    assert "Knobs changed" in page.inner_text("#knob-effect")
    assert page.locator("#recs .badge.new").count() >= 1
    watched.shot("user-diversity")

    page.fill("#user-form input[name=diversity]", "")
    page.fill("#user-form input[name=k]", "3")
    with page.expect_navigation():
        page.click("#user-form button")
    assert _rec_ids(page) == plain[:3]
    page.select_option("#user-form select[name=explore]", "epsilon-greedy(epsilon=0.1)")
    with page.expect_navigation():
        page.click("#user-form button")
    assert "not logged" in page.inner_text("#recommendations")
    assert page.locator("#recs th:has-text('propensity')").count() == 1
    watched.check_clean()


def test_not_interested_needs_the_write_key_typed_on_the_page(watched):
    page = watched.page
    _login(watched)
    page.goto(f"{watched.base_url}/dashboard/user?user_id=u2&k=5")
    first = _rec_ids(page)[0]
    button = page.locator(f"#recs button[data-value='{first}']")
    button.click()
    page.wait_for_selector("#write-status:has-text('write key')")
    page.fill("#write-key", READ_KEY)  # the read key cannot change anything
    button.click()
    page.wait_for_selector("#write-status:has-text('read-only')")
    watched.expected_refusals(403)
    page.fill("#write-key", WRITE_KEY)
    with page.expect_navigation():
        button.click()
    assert first not in _rec_ids(page)
    assert page.input_value("#write-key") == ""  # not kept after the reload
    undo = page.locator(f"#profile button[data-value='{first}'][data-undo='true']")
    assert undo.count() == 1
    page.fill("#write-key", WRITE_KEY)
    with page.expect_navigation():
        undo.click()
    assert first in _rec_ids(page)
    assert all(WRITE_KEY not in u for u in watched.requests)  # never in a URL
    watched.shot("not-interested")
    watched.check_clean()
