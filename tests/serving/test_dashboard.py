"""``/dashboard`` over HTTP: pages render, the read rule (key, session cookie, loopback), the
write key for changes, escaping, the CSP, catalogue search, "view as user" and its knobs."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lumenrec.serving import create_app
from lumenrec.serving.dashboard import COOKIE, CSP
from lumenrec.serving.metrics import Metrics

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)


@pytest.fixture
def open_client(settings_for) -> Any:
    @contextlib.contextmanager
    def opener(client: tuple[str, int] = LOOPBACK, **overrides: Any) -> Iterator[TestClient]:
        with TestClient(create_app(settings_for(**overrides)), client=client) as c:
            yield c

    return opener


@pytest.fixture
def local(open_client) -> Iterator[TestClient]:
    with open_client() as c:
        yield c


def _rows(html: str, table_id: str) -> list[str]:
    section = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>", 1)[-1])


def _rec_ids(html: str) -> list[str]:
    table = html.split('id="recs"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'data-kind="item" data-value="([^"]+)"', table)


# -- pages and headers -------------------------------------------------------------------------
def test_overview_shows_health_registry_and_live_numbers(local):
    for _ in range(3):
        assert local.get("/recommend/u1?k=3").status_code == 200
    r = local.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "default-src 'self'" in CSP and "unsafe" not in CSP
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    page = r.text
    assert ">ready<" in page and "HybridRecommender" in page and "120 × 80" in page
    assert '<span class="badge serving">serving</span>' in page and "loaded" in page
    assert "requests/s" in page and "latency p99" in page and "GET /recommend/{user_id}" in page
    assert 'data-refresh="/dashboard/live"' in page
    # nothing inline that the CSP would block, and nothing from another origin
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/dashboard/dashboard.js" defer>']
    assert " style=" not in page and not re.search(r"\son[a-z]+=", page)
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", page)
    live = local.get("/dashboard/live")
    assert live.status_code == 200 and "requests/s" in live.text
    assert local.get("/dashboard/").status_code == 200


def test_assets_are_served_by_the_app_without_a_key(open_client):
    with open_client(client=REMOTE) as c:
        css = c.get("/dashboard/dashboard.css")
        js = c.get("/dashboard/dashboard.js")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "http" not in css.text and "url(" not in css.text
    assert "http://" not in js.text and "https://" not in js.text
    assert "localStorage" not in js.text and "sessionStorage" not in js.text


def test_the_dashboard_is_not_in_the_openapi_spec(local):
    assert not [p for p in local.get("/openapi.json").json()["paths"] if "dashboard" in p]


def test_live_metrics_rates_and_percentiles_leave_the_dashboard_out():
    metrics = Metrics()
    for ms in range(1, 101):
        metrics.observe_request("GET", "/recommend/{user_id}", 200, ms / 1000)
    metrics.observe_request("GET", "/recommend/{user_id}", 500, 0.2)
    metrics.observe_request("GET", "/dashboard", 200, 5.0)
    metrics.inc("lumenrec_feedback_events_total", "accepted", 30)
    metrics.inc("lumenrec_feedback_events_total", "duplicate", 7)
    live = metrics.live(window_s=60, step_s=10)
    assert live["requests_per_s"] == pytest.approx(101 / 60)
    assert live["feedback_per_s"] == pytest.approx(30 / 60)
    assert live["errors"] == 1 and live["n_latencies"] == 101
    assert live["latency_ms"]["p50"] == pytest.approx(51.0)
    assert live["latency_ms"]["p99"] == pytest.approx(100.0)
    assert live["latency_ms"]["max"] == pytest.approx(200.0)  # the dashboard's 5 s is left out
    assert len(live["series"]["requests"]) == 30 and sum(live["series"]["requests"]) == 101
    assert sum(live["series"]["feedback"]) == 30
    totals = metrics.request_totals()
    assert totals[0]["count"] == 100 and totals[0]["route"] == "/recommend/{user_id}"
    assert "/dashboard" in metrics.render()  # still in the Prometheus histogram
    empty = Metrics().live()
    assert empty["latency_ms"]["p50"] is None and empty["requests_per_s"] == 0


# -- access ------------------------------------------------------------------------------------
def test_remote_reads_need_a_key_loopback_does_not(open_client, keys):
    with open_client(client=REMOTE) as c:
        r = c.get("/dashboard")
        assert r.status_code == 401 and 'id="login-form"' in r.text
        assert r.headers["content-security-policy"] == CSP
        assert 'id="login-key"' in r.text and 'name="' not in r.text.split('id="login-form"')[1]
        assert c.get("/dashboard/live").status_code == 401
        assert c.get("/dashboard/user?user_id=u1").status_code == 401
        assert c.get("/dashboard/search?q=a").status_code == 401
        bad = c.get("/dashboard", headers={"X-API-Key": "not-the-key-0123456789"})
        assert bad.status_code == 401 and "not valid" in bad.text
        for key in (keys["read"], keys["write"]):
            assert c.get("/dashboard", headers={"X-API-Key": key}).status_code == 200
        # a key in the URL is not a way in (URLs end up in logs and histories)
        assert c.get(f"/dashboard?key={keys['read']}").status_code == 401
        assert c.get("/recommend/u1").status_code == 200  # the API's open reads are unchanged


def test_login_gives_a_read_only_session_cookie(open_client, keys):
    with open_client(client=REMOTE) as c:
        assert c.get("/dashboard/login").status_code == 401
        assert (
            c.get("/dashboard/login", headers={"X-API-Key": "wrong-key-0123456789"}).status_code
            == 401
        )
        r = c.get("/dashboard/login", headers={"X-API-Key": keys["read"]})
        assert r.status_code == 204
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower() and "Path=/dashboard" in cookie
        token = cookie.split("=", 1)[1].split(";", 1)[0]
        assert keys["read"] not in cookie and keys["write"] not in cookie and len(token) >= 40
        page = c.get("/dashboard")
        assert page.status_code == 200 and "read access: session" in page.text
        # the session reads the dashboard only: it is no key for the API's writes
        assert c.post("/feedback", json={"user_id": "u1", "item_id": "i1"}).status_code == 401
        assert c.post("/dashboard", json={}).status_code == 401
        out = c.get("/dashboard/logout", follow_redirects=False)
        assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]
        c.cookies.set(COOKIE, token, path="/dashboard")  # a replayed token is dead too
        assert c.get("/dashboard").status_code == 401
        c.cookies.set(COOKIE, "forged-token", path="/dashboard")
        assert c.get("/dashboard").status_code == 401


def test_require_read_key_closes_the_dashboard_to_loopback_too(open_client, keys):
    with open_client(require_read_key=True) as c:
        r = c.get("/dashboard")
        assert r.status_code == 401 and "login-form" in r.text  # a page, not the API's JSON 401
        assert c.get("/recommend/u1").status_code == 401
        assert c.get("/dashboard", headers={"X-API-Key": keys["read"]}).status_code == 200
        assert c.get("/dashboard/login", headers={"X-API-Key": keys["read"]}).status_code == 204
        assert c.get("/dashboard/user?user_id=u1").status_code == 200
        assert c.get("/recommend/u1").status_code == 401  # the cookie opens the dashboard only
        assert c.get("/dashboard/dashboard.js").status_code == 200


def test_changes_need_the_write_key(local, keys):
    page = local.get("/dashboard/user?user_id=u1&k=5").text
    item = _rec_ids(page)[0]
    body = {"kind": "item", "value": item}
    assert local.post("/users/u1/not-interested", json=body).status_code == 401
    read = local.post("/users/u1/not-interested", json=body, headers={"X-API-Key": keys["read"]})
    assert read.status_code == 403
    assert item in _rec_ids(local.get("/dashboard/user?user_id=u1&k=5").text)
    done = local.post("/users/u1/not-interested", json=body, headers={"X-API-Key": keys["write"]})
    assert done.status_code == 200
    after = local.get("/dashboard/user?user_id=u1&k=5").text
    assert item not in _rec_ids(after)
    assert f'data-value="{item}" data-undo="true"' in after  # listed under controls, with undo


# -- escaping ----------------------------------------------------------------------------------
def test_user_controlled_text_is_escaped(local, auth):
    evil = '<script>alert("x")</script>'
    local.post(
        "/items",
        json={"items": [{"item_id": "i<b>1</b>", "title": f"Rocket {evil} no. 999"}]},
        headers=auth,
    )
    page = local.get("/dashboard/search", params={"q": "rocket"}).text
    assert "Rocket &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; no. 999" in page
    assert "i&lt;b&gt;1&lt;/b&gt;" in page and evil not in page and "<b>1" not in page
    page = local.get("/dashboard/search", params={"q": '"><img src=x>'}).text
    assert "<img" not in page and "&quot;&gt;&lt;img src=x&gt;" in page
    page = local.get("/dashboard/user", params={"user_id": f'u"{evil}'}).text
    assert evil not in page and "&lt;script&gt;" in page
    assert 'data-user="u&quot;&lt;script&gt;' in page


# -- search ------------------------------------------------------------------------------------
def test_search_by_title_and_by_meaning(local):
    page = local.get("/dashboard/search", params={"q": "galaxy rocket", "k": 5}).text
    titles = _rows(page, "by-title")
    assert titles and all("galaxy" in t.lower() and "rocket" in t.lower() for t in titles)
    meaning = _rows(page, "by-meaning")
    assert 1 <= len(meaning) <= 5 and "(hashing)" in page
    assert all("topic: space" in m for m in meaning[:3])  # nearest texts share the topic
    empty = local.get("/dashboard/search").text
    assert 'id="by-title"' not in empty and 'name="q"' in empty
    nothing = local.get("/dashboard/search", params={"q": "zzzqqq"}).text
    assert "no match" in nothing


def test_search_without_a_text_model_is_by_title_only(tmp_path, clusters, settings_for):
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    root = tmp_path / "ease-models"
    ModelRegistry(root).publish(RecommendPipeline.fit(EASE(regularization=10.0), clusters))
    with TestClient(create_app(settings_for(model_dir=root)), client=LOOPBACK) as c:
        page = c.get("/dashboard/search", params={"q": "rocket"}).text
    assert "no text component" in page and _rows(page, "by-title")


def test_bad_input_gets_a_clear_page_never_a_500(local):
    cases = {
        "/dashboard/search?k=0&q=a": "k must be an integer in 1–100",
        "/dashboard/search?q=" + "a" * 201: "at most 200",
        "/dashboard/user?user_id=u1&k=abc": "k must be an integer",
        "/dashboard/user?user_id=u1&diversity=2": "diversity must be a number in [0, 1]",
        "/dashboard/user?user_id=u1&fairness=nan": "fairness must be a number in [0, 1]",
        "/dashboard/user?user_id=u1&explore=bogus(x=1)": "explore must be one of",
        "/dashboard/user?user_id=" + "u" * 300: "user_id must be 1–256",
    }
    for url, message in cases.items():
        r = local.get(url)
        assert r.status_code == 422, url
        assert message in r.text and r.headers["content-security-policy"] == CSP, url


def test_no_model_loaded_is_a_503_page(tmp_path, settings_for):
    empty = tmp_path / "no-models"
    with TestClient(create_app(settings_for(model_dir=empty)), client=LOOPBACK) as c:
        overview = c.get("/dashboard")
        assert overview.status_code == 200 and "not ready" in overview.text
        for url in ("/dashboard/search?q=a", "/dashboard/user?user_id=u1"):
            r = c.get(url)
            assert r.status_code == 503 and "no model loaded" in r.text


# -- view as user ------------------------------------------------------------------------------
def test_view_as_user_shows_history_and_explained_recommendations(local):
    page = local.get("/dashboard/user", params={"user_id": "u1", "k": 6}).text
    assert "Recommendations for u1" in page
    ids = _rec_ids(page)
    assert len(ids) == 6
    api = local.get("/recommend/u1?k=6").json()
    assert ids == [i["item_id"] for i in api["items"]]  # the list the API serves
    assert page.count('class="reason"') == 6 and "Because you liked" in page
    assert '<span class="badge cf">cf</span>' in page
    assert 'id="profile"' in page and "training" in page and "known to the model: yes" in page
    assert "rank without knobs" not in page  # no knobs: nothing to compare with


def test_knobs_change_the_list_and_say_how(local):
    plain = _rec_ids(local.get("/dashboard/user", params={"user_id": "u1", "k": 10}).text)
    page = local.get("/dashboard/user", params={"user_id": "u1", "k": 10, "diversity": "0.9"}).text
    diverse = _rec_ids(page)
    assert diverse != plain and len(diverse) == 10
    assert "rerank spec <code>mmr=0.9</code>" in page and "rank without knobs" in page
    changed = int(re.search(r"Knobs changed (\d+) of 10", page).group(1))
    assert changed == sum(a != b for a, b in zip(plain, diverse, strict=True)) > 0
    api = local.get("/recommend/u1?k=10&diversity=0.9").json()
    assert diverse == [i["item_id"] for i in api["items"]]
    short = _rec_ids(local.get("/dashboard/user", params={"user_id": "u1", "k": 3}).text)
    assert short == plain[:3]
    page = local.get("/dashboard/user", params={"user_id": "u1", "calibration": "0.5"}).text
    assert "calibration" in page and len(_rec_ids(page)) == 10


def test_exploration_is_previewed_never_logged(open_client, tmp_path, model_dir):
    db = tmp_path / "events.sqlite"
    with open_client(explore_default="epsilon-greedy(epsilon=0.5)") as c:
        page = c.get("/dashboard/user", params={"user_id": "u1", "k": 10}).text
        assert "as served (epsilon-greedy(epsilon=0.5))" in page
        assert "exploration policy epsilon-greedy(epsilon=0.5) (arm default" in page
        assert "not logged" in page and "propensity" in page
        page = c.get("/dashboard/user", params={"user_id": "u1", "explore": "thompson"}).text
        assert "arm explicit" in page
        off = c.get("/dashboard/user", params={"user_id": "u1", "explore": "off"}).text
        assert "exploration policy" not in off and "propensity" not in off
        served = c.get("/recommend/u1?k=10").json()  # the API's own answer is logged
        assert served["policy"] == "epsilon-greedy(epsilon=0.5)"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
    # a previewed policy the service does not serve leaves no bandit state behind
    saved = [p.name for p in (model_dir / "bandit-state").glob("*.npz")]
    assert not [name for name in saved if "thompson" in name], saved


def test_unknown_user_gets_the_popular_route(local):
    page = local.get("/dashboard/user", params={"user_id": "nobody-here"}).text
    assert len(_rec_ids(page)) == 10 and "known to the model: no" in page
    assert "fallback: popular" in page and '<span class="badge popular">popular</span>' in page


def test_the_demo_ends_with_the_dashboard_url():
    from io import StringIO

    from rich.console import Console

    from lumenrec.cli.demo import run_demo

    buffer = StringIO()
    info = run_demo(Console(file=buffer, width=300), smoke=True, serve=True)
    service = info["service"]
    assert service["dashboard_status"] == 200  # loopback reads it without a key
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/dashboard", service["dashboard"])
    last = buffer.getvalue().strip().splitlines()[-1]
    assert last.startswith("Dashboard") and service["dashboard"] in last
