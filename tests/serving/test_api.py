"""HTTP contracts and SERVICE.md 4.3 bad-input rows for the endpoints of ``lumenrec serve``."""

from __future__ import annotations

import json
import re
import sqlite3
import time

import pytest


def _event(**kw):
    return {"user_id": "u1", "item_id": "i1", "type": "click", **kw}


def test_recommend_contract_for_known_user(client):
    r = client.get("/recommend/u1", params={"k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == "u1" and body["model_version"] == "v1"
    assert body["fallback"] is None and body["fold_in"] is False
    items = body["items"]
    assert [x["rank"] for x in items] == [1, 2, 3, 4, 5]
    assert all(set(x) == {"item_id", "score", "rank", "route", "reason"} for x in items)
    assert all(x["reason"]["sentence"] and x["reason"]["kind"] for x in items)
    assert {x["route"] for x in items} == {"cf"}
    scores = [x["score"] for x in items]
    assert scores == sorted(scores, reverse=True)
    assert r.headers["x-request-id"]


def test_recommend_exclude_and_seen_items(client, clusters):
    first = [x["item_id"] for x in client.get("/recommend/u2?k=5").json()["items"]]
    r = client.get("/recommend/u2", params=[("k", "5"), ("exclude", first[0]), ("exclude", "nope")])
    ids = [x["item_id"] for x in r.json()["items"]]
    assert first[0] not in ids and ids[:4] == first[1:]
    seen = set(clusters.items.ids[clusters.item_idx[clusters.user_idx == 2]])
    assert not seen & set(ids)


@pytest.mark.parametrize("k", ["0", "-1", "abc", "100000", "1.5"])
def test_bad_k_is_422_with_bounds(client, k):
    r = client.get(f"/recommend/u1?k={k}")
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", "k"]
    assert "1–1000" in err["msg"]


def test_bad_k_on_similar(client):
    r = client.get("/similar/i1?k=1001")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "k"]


@pytest.mark.parametrize("user_id", ["x" * 257, "a%00b", "a%0Ab", "tab%09", "a%FFb", "%C3%28"])
def test_bad_user_ids_are_422(client, user_id):
    r = client.get(f"/recommend/{user_id}")
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["path", "user_id"]
    assert err["msg"] == "user_id must be 1–256 printable characters"


def test_longest_valid_id_and_unicode_are_fine(client):
    assert client.get("/recommend/" + "x" * 256).status_code == 200
    assert client.get("/recommend/用户-é").status_code == 200


def test_unknown_user_gets_popular_fallback_and_strict_404(client):
    r = client.get("/recommend/stranger?k=3")
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] == "popular" and {x["route"] for x in body["items"]} == {"popular"}
    r = client.get("/recommend/stranger?strict=true")
    assert r.status_code == 404 and r.json() == {"detail": "unknown user 'stranger'"}
    assert client.get("/recommend/u1?strict=true").status_code == 200


def test_similar_items(client, clusters):
    r = client.get("/similar/i4?k=5")
    assert r.status_code == 200
    body = r.json()
    assert body["item_id"] == "i4" and len(body["items"]) == 5
    assert "i4" not in [x["item_id"] for x in body["items"]]
    r = client.get("/similar/nope")
    assert r.status_code == 404 and r.json() == {"detail": "unknown item 'nope'"}


def test_body_errors_400_415_413(client, auth):
    headers = {**auth, "Content-Type": "application/json"}
    r = client.post("/feedback", content=b"{not json", headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = client.post(
        "/feedback", content=b"user_id=u1", headers={**auth, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = client.post("/feedback", content=b" " * ((1 << 20) + 1), headers=headers)
    assert r.status_code == 413 and "1 MiB" in r.json()["detail"]


def test_batch_over_limit_is_413(client, auth):
    events = [{"user_id": "u", "item_id": "i"}] * 10_001
    r = client.post("/feedback/batch", json={"events": events}, headers=auth)
    assert r.status_code == 413
    assert "10001" in r.json()["detail"] and "10000" in r.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"user_id": "u1", "item_id": "i1", "value": NaN}', "value"),
        ('{"user_id": "u1", "item_id": "i1", "value": Infinity}', "value"),
        ('{"user_id": "u1", "item_id": "i1", "timestamp": -5}', "timestamp"),
        ('{"user_id": "u1", "item_id": "i1", "timestamp": 99999999999}', "timestamp"),
        ('{"user_id": "u1", "item_id": "i1", "type": "teleport"}', "type"),
        ('{"user_id": "u1"}', "item_id"),
        ('{"user_id": "u1", "item_id": "i1", "extra": 1}', "extra"),
        ('{"user_id": "", "item_id": "i1"}', "user_id"),
    ],
)
def test_bad_feedback_is_422_naming_the_field(client, auth, payload, field):
    headers = {**auth, "Content-Type": "application/json"}
    r = client.post("/feedback", content=payload, headers=headers)
    assert r.status_code == 422
    assert ["body", field] in [e["loc"] for e in r.json()["detail"]]


def test_batch_errors_name_the_event(client, auth):
    events = [_event(), _event(item_id="")]
    r = client.post("/feedback/batch", json={"events": events}, headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events", 1, "item_id"]


def test_duplicate_event_id_is_stored_once(client, auth, settings_for):
    first = client.post("/feedback", json=_event(event_id="e-1"), headers=auth)
    assert first.status_code == 200 and first.json() == {
        "accepted": 1,
        "duplicates": 0,
        "duplicate": False,
    }
    again = client.post("/feedback", json=_event(event_id="e-1", value=5), headers=auth)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    batch = client.post(
        "/feedback/batch",
        json={"events": [_event(event_id="e-1"), _event(event_id="e-2"), _event(event_id="e-2")]},
        headers=auth,
    )
    assert batch.json() == {"accepted": 1, "duplicates": 2, "duplicate": False}
    with sqlite3.connect(settings_for().db) as conn:
        rows = conn.execute("SELECT event_id, value FROM events ORDER BY seq").fetchall()
    assert rows == [("e-1", 1.0), ("e-2", 1.0)]


def test_unknown_item_follows_auto_insert(client_for, auth):
    with client_for(auto_insert_item=False) as c:
        r = c.post(
            "/feedback/batch", json={"events": [_event(), _event(item_id="zz")]}, headers=auth
        )
        assert r.status_code == 422
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "events", 1, "item_id"] and err["msg"] == "unknown item 'zz'"
        assert c.post("/feedback", json=_event(), headers=auth).status_code == 200
    with client_for() as c:
        assert c.post("/feedback", json=_event(item_id="zz"), headers=auth).status_code == 200


def test_timestamp_defaults_to_now(client, auth, settings_for):
    before = time.time()
    client.post("/feedback", json=_event(), headers=auth)
    with sqlite3.connect(settings_for().db) as conn:
        (ts,) = conn.execute("SELECT ts FROM events").fetchone()
    assert before - 1 <= ts <= time.time() + 1


def test_admin_reload_unknown_and_invalid_versions(client, auth):
    r = client.post("/admin/reload", json={"version": "v9"}, headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "model version 'v9' not found"}
    for bad in ["../../etc/passwd", "..", "a/b", "x" * 65]:
        r = client.post("/admin/reload", json={"version": bad}, headers=auth)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "version"]
    assert client.get("/recommend/u1").json()["model_version"] == "v1"
    r = client.post("/admin/reload", headers=auth)
    assert r.status_code == 200 and r.json() == {"model_version": "v1", "previous": "v1"}
    versions = client.get("/admin/versions", headers=auth).json()
    assert versions == {"versions": ["v1"], "current": "v1", "serving": "v1"}


def test_health_and_openapi(client):
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and ready.json()["model_version"] == "v1"
    spec = client.get("/openapi.json").json()
    assert {"/recommend/{user_id}", "/feedback", "/items", "/users/{user_id}"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_not_ready_without_a_model(client_for, tmp_path, auth):
    with client_for(model_dir=tmp_path / "empty") as c:
        r = c.get("/health/ready")
        assert r.status_code == 503 and r.json()["ready"] is False
        r = c.get("/recommend/u1")
        assert r.status_code == 503 and "no model loaded" in r.json()["detail"]
        # writes and erasure still work without a model
        assert c.post("/feedback", json=_event(), headers=auth).status_code == 200
        assert c.delete("/users/u1", headers=auth).status_code == 200


def test_blas_threads_are_pinned(client):
    assert client.get("/health/ready").json()["blas_threads"] == 1


def test_broken_store_fails_writes_with_503_and_keeps_reads(client, auth, monkeypatch):
    from lumenrec.serving.store import StoreError

    store = client.app.state.service.store

    def full(*args, **kwargs):
        msg = "event store unavailable: disk full"
        raise StoreError(msg)

    monkeypatch.setattr(store, "add_events", full)
    monkeypatch.setattr(store, "user_context", full)
    r = client.post("/feedback", json=_event(), headers=auth)
    assert r.status_code == 503 and r.json() == {"detail": "event store unavailable: disk full"}
    assert client.get("/recommend/u9").status_code == 200


def test_pointer_polling_swaps_versions(client_for, model_dir):
    import shutil

    shutil.copytree(model_dir / "versions" / "v1", model_dir / "versions" / "v2")
    with client_for(reload_interval_s=0.05) as c:
        assert c.get("/recommend/u1").json()["model_version"] == "v1"
        (model_dir / "current").write_text("v2\n")
        deadline = time.monotonic() + 10
        while c.get("/health/ready").json()["model_version"] != "v2":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.get("/recommend/u1").json()["model_version"] == "v2"


_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+-]+$')


def test_metrics_prometheus_text(client, auth):
    client.get("/recommend/u1")
    client.get("/recommend/stranger")
    client.post("/feedback", json=_event(event_id="m1"), headers=auth)
    client.post("/feedback", json=_event(event_id="m1"), headers=auth)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for line in text.splitlines():
        assert line.startswith("# ") or _SAMPLE.match(line), line
    assert "# TYPE http_request_duration_seconds histogram" in text
    assert re.search(
        r'http_request_duration_seconds_count\{method="GET",route="/recommend/\{user_id\}",'
        r'status="200"\} 2',
        text,
    )
    assert 'le="+Inf"' in text
    assert 'lumenrec_model_version_info{version="v1"} 1' in text
    assert 'lumenrec_feedback_events_total{result="accepted"} 1' in text
    assert 'lumenrec_feedback_events_total{result="duplicate"} 1' in text
    assert 'lumenrec_fallback_total{kind="popular"} 1' in text


def test_error_bodies_are_json_detail(client, auth):
    for r in (
        client.get("/recommend/u1?k=0"),
        client.get("/similar/nope"),
        client.post("/feedback", json={}, headers=auth),
        client.get("/no/such/route"),
    ):
        assert set(json.loads(r.content)) == {"detail"}
