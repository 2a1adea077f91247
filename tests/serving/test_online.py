"""Online behaviour: new items from text, fold-in of feedback, erasure, retrain, hot swaps."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading

import numpy as np


def _topic_of(clusters):
    topics = clusters.catalog["topic"]
    return dict(zip(clusters.catalog.index, topics, strict=True))


def _users_of(clusters, topic):
    attrs = clusters.user_attributes
    return list(attrs.index[attrs["topic"] == topic])


def test_new_item_reaches_matching_users_on_next_request(client, auth, clusters):
    item = {
        "item_id": "fresh-skillet",
        "title": "Classic skillet recipe",
        "description": "A cooking item with skillet, spices and recipe.",
    }
    r = client.post("/items", json={"items": [item]}, headers=auth)
    assert r.status_code == 200
    assert r.json() == {
        "added": ["fresh-skillet"],
        "updated": [],
        "pending": [],
        "model_version": "v1",
    }

    def reach(users):
        hits = []
        for user in users:
            items = client.get(f"/recommend/{user}?k=10").json()["items"]
            got = [x for x in items if x["item_id"] == "fresh-skillet"]
            assert all(x["route"] == "text" for x in got)
            hits.append(bool(got))
        return np.mean(hits)

    assert reach(_users_of(clusters, "cooking")) >= 0.3
    assert reach(_users_of(clusters, "jazz")) <= 0.1
    similar = client.get("/similar/fresh-skillet?k=5").json()["items"]
    topics = _topic_of(clusters)
    assert sum(topics.get(x["item_id"]) == "cooking" for x in similar) >= 4
    twice = [{"item_id": "dup", "text": "a"}, {"item_id": "dup", "text": "chess gambit"}]
    assert client.post("/items", json={"items": twice}, headers=auth).json()["added"] == ["dup"]
    assert client.get("/similar/dup").status_code == 200
    again = client.post("/items", json={"items": [{**item, "title": "Skillet"}]}, headers=auth)
    assert again.json()["added"] == [] and again.json()["updated"] == ["fresh-skillet"]


def test_raw_text_items_and_restart_replay(client_for, auth, clusters):
    item = {"item_id": "t-1", "text": "saxophone trumpet bebop quartet jazz vinyl swing"}
    with client_for() as c:
        assert c.post("/items", json={"items": [item]}, headers=auth).json()["added"] == ["t-1"]
    with client_for() as c:  # a restart replays stored items onto the loaded version
        similar = c.get("/similar/t-1?k=5")
        assert similar.status_code == 200
        topics = _topic_of(clusters)
        assert sum(topics.get(x["item_id"]) == "jazz" for x in similar.json()["items"]) >= 4


def test_feedback_from_unknown_user_folds_in(client, auth, clusters):
    before = client.get("/recommend/newcomer?k=10").json()
    assert before["fallback"] == "popular" and before["fold_in"] is False
    jazz = [i for i, t in _topic_of(clusters).items() if t == "jazz"][:4]
    events = [{"user_id": "newcomer", "item_id": i, "type": "like"} for i in jazz]
    assert client.post("/feedback/batch", json={"events": events}, headers=auth).status_code == 200
    after = client.get("/recommend/newcomer?k=10").json()
    assert after["fallback"] is None and after["fold_in"] is True
    ids = [x["item_id"] for x in after["items"]]
    assert ids != [x["item_id"] for x in before["items"]]
    assert not set(ids) & set(jazz)
    topics = _topic_of(clusters)
    assert sum(topics[i] == "jazz" for i in ids) >= 8


def test_feedback_of_known_user_updates_their_list(client, auth):
    before = [x["item_id"] for x in client.get("/recommend/u3?k=5").json()["items"]]
    client.post("/feedback", json={"user_id": "u3", "item_id": before[0]}, headers=auth)
    after = client.get("/recommend/u3?k=5").json()
    assert after["fold_in"] is True and before[0] not in [x["item_id"] for x in after["items"]]


def test_profile_text_fallback(client, auth, clusters):
    profile = {"user_id": "reader", "text": "telescope galaxy rocket nebula orbit planet"}
    assert client.post("/users", json={"users": [profile]}, headers=auth).json() == {"updated": 1}
    body = client.get("/recommend/reader?k=10").json()
    assert body["fallback"] == "text" and {x["route"] for x in body["items"]} == {"text"}
    topics = _topic_of(clusters)
    assert sum(topics[x["item_id"]] == "space" for x in body["items"]) >= 8


def test_delete_user_erases_everything(client, auth, settings_for):
    client.post("/users", json={"users": [{"user_id": "u5", "text": "chess"}]}, headers=auth)
    client.post(
        "/feedback", json={"user_id": "u5", "item_id": "i3", "event_id": "x1"}, headers=auth
    )
    assert client.get("/recommend/u5").json()["fold_in"] is True
    service = client.app.state.service
    assert "u5" in service.cache
    assert client.delete("/users/u5", headers=auth).status_code == 200
    assert "u5" not in service.cache
    db = settings_for().db
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events WHERE user_id='u5'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM users WHERE user_id='u5'").fetchone()[0] == 0
        audit = conn.execute("SELECT kind, id_hash, n_events FROM deletions").fetchall()
    assert [(a[0], a[2]) for a in audit] == [("user", 1)] and "u5" not in audit[0][1]
    after = client.get("/recommend/u5").json()
    assert after["fallback"] == "popular" and after["fold_in"] is False
    assert client.get("/recommend/u5?strict=true").status_code == 404
    assert client.delete("/users/u5", headers=auth).status_code == 200
    assert client.delete("/users/never-existed", headers=auth).status_code == 200
    for path in (db, db.with_name(db.name + "-wal")):  # secure_delete + WAL truncation
        assert not path.exists() or path.read_bytes().find(b"chess") == -1


def test_delete_item_is_immediate(client, auth):
    top = client.get("/recommend/u1?k=3").json()["items"][0]["item_id"]
    assert client.delete(f"/items/{top}", headers=auth).status_code == 204
    assert top not in [x["item_id"] for x in client.get("/recommend/u1?k=50").json()["items"]]
    assert top not in [x["item_id"] for x in client.get("/recommend/nobody?k=80").json()["items"]]
    assert client.get(f"/similar/{top}").status_code == 404
    assert client.delete(f"/items/{top}", headers=auth).status_code == 204


def test_retrain_publishes_without_deleted_users(client, auth, model_dir):
    client.post("/feedback", json={"user_id": "late", "item_id": "i2"}, headers=auth)
    erased = client.delete("/users/u7", headers=auth).json()
    assert erased["model_version"] == "v2"  # the erasure itself publishes a version without u7
    r = client.post("/admin/retrain", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == "v3" and body["previous"] == "v2"
    assert (model_dir / "current").read_text().strip() == "v3"
    pipeline = client.app.state.service.pipeline
    assert "late" in pipeline.users and "u7" not in pipeline.users
    rec = client.get("/recommend/late").json()
    assert rec["model_version"] == "v3" and rec["fold_in"] is False and rec["fallback"] is None


def test_corrupt_version_is_rejected_and_old_keeps_serving(client, auth, model_dir, caplog):
    shutil.copytree(model_dir / "versions" / "v1", model_dir / "versions" / "v2")
    target = model_dir / "versions" / "v2" / "model" / "component-cf" / "arrays.npz"
    target.write_bytes(target.read_bytes()[:100])
    with caplog.at_level(logging.ERROR, logger="lumenrec"):
        r = client.post("/admin/reload", json={"version": "v2"}, headers=auth)
    assert r.status_code == 409
    assert "rejected, v1 keeps serving" in r.json()["detail"] and "arrays.npz" in r.json()["detail"]
    assert str(model_dir) not in r.text
    assert any("arrays.npz" in rec.getMessage() for rec in caplog.records)
    assert client.get("/recommend/u1").json()["model_version"] == "v1"
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    error = ready.json()["last_reload_error"]
    assert error["version"] == "v2" and "sha256 mismatch" in error["error"]
    assert (model_dir / "current").read_text().strip() == "v1"
    assert 'lumenrec_model_reloads_total{result="rejected"} 1' in client.get("/metrics").text


def test_hot_swap_drops_no_request(client, auth, model_dir):
    shutil.copytree(model_dir / "versions" / "v1", model_dir / "versions" / "v2")
    failures, versions = [], set()

    def read():
        for n in range(40):
            r = client.get(f"/recommend/u{n % 30}?k=5")
            if r.status_code != 200:
                failures.append(r.status_code)
            versions.add(r.json().get("model_version"))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for version in ("v2", "v1", "v2"):
        assert (
            client.post("/admin/reload", json={"version": version}, headers=auth).status_code == 200
        )
    for t in threads:
        t.join()
    assert failures == [] and versions <= {"v1", "v2"}
