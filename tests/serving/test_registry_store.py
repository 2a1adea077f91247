"""ModelRegistry (atomic versions, rejection of bad artifacts), EventStore (WAL, concurrency) and
RecommendPipeline (id mapping, fold-in, persistence)."""

from __future__ import annotations

import json
import sqlite3
import threading

import pandas as pd
import pytest

from lumenrec.errors import ArtifactError, ConfigError, NotFittedError, UnknownIdError
from lumenrec.models.ease import EASE
from lumenrec.models.popularity import MostPopular
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving.registry import ModelRegistry
from lumenrec.serving.store import EventStore, StoreError


@pytest.fixture(scope="module")
def ease_pipeline(clusters):
    return RecommendPipeline.fit(EASE(regularization=10.0), clusters)


# -- registry ----------------------------------------------------------------------------
def test_publish_versions_and_pointer(tmp_path, ease_pipeline):
    registry = ModelRegistry(tmp_path / "m")
    with pytest.raises(NotFittedError, match="no model published"):
        registry.load()
    assert registry.publish(ease_pipeline) == "v1"
    assert registry.publish(ease_pipeline, activate=False) == "v2"
    assert registry.versions() == ["v1", "v2"] and registry.current() == "v1"
    loaded = registry.load()
    assert loaded.version == "v1" and loaded.users == ease_pipeline.users
    registry.set_current("v2")
    assert (tmp_path / "m" / "current").read_text() == "v2\n"
    with pytest.raises(UnknownIdError, match="model version 'v9' not found"):
        registry.set_current("v9")
    with pytest.raises(ConfigError, match="invalid model version"):
        registry.path("../v1")
    assert not list((tmp_path / "m").glob(".*.tmp"))


def test_leftovers_are_cleaned_at_start(tmp_path, ease_pipeline):
    root = tmp_path / "m"
    ModelRegistry(root).publish(ease_pipeline)
    (root / "versions" / ".v2.abc.tmp").mkdir()
    (root / "versions" / ".v2.abc.tmp" / "arrays.npz").write_bytes(b"partial")
    (root / ".current.999.tmp").write_text("v2")
    registry = ModelRegistry(root)
    assert registry.versions() == ["v1"] and registry.current() == "v1"
    assert not (root / "versions" / ".v2.abc.tmp").exists()
    assert not (root / ".current.999.tmp").exists()


def test_incompatible_embedding_dimension_is_never_published(tmp_path, clusters, hybrid_factory):
    root = tmp_path / "m"
    registry = ModelRegistry(root)
    registry.publish(RecommendPipeline.fit(hybrid_factory(), clusters))
    bad = RecommendPipeline.fit(hybrid_factory(), clusters)
    bad.model.components["text"].encoder = "hashing:64"  # embeddings are 256-d
    with pytest.raises(ArtifactError, match="dimension 256, encoder 64"):
        registry.publish(bad)
    assert registry.versions() == ["v1"] and registry.current() == "v1"


@pytest.mark.parametrize("damage", ["truncate", "manifest", "future", "pointer"])
def test_damaged_versions_fail_loudly(tmp_path, ease_pipeline, damage):
    root = tmp_path / "m"
    registry = ModelRegistry(root)
    registry.publish(ease_pipeline)
    v1 = root / "versions" / "v1"
    if damage == "truncate":
        (v1 / "vocab-items.parquet").write_bytes(b"PAR1")
        match = "sha256 mismatch for vocab-items.parquet"
    elif damage == "manifest":
        (v1 / "manifest.json").write_text("{")
        match = "not valid JSON"
    elif damage == "future":
        manifest = json.loads((v1 / "manifest.json").read_text())
        manifest["format_version"] = 99
        (v1 / "manifest.json").write_text(json.dumps(manifest))
        match = "newer version"
    else:
        (root / "current").write_text("../../etc/passwd")
        match = "pointer is corrupt"
    with pytest.raises(ArtifactError, match=match):
        registry.load()


# -- store -------------------------------------------------------------------------------
def test_store_is_wal_full_and_idempotent(tmp_path):
    store = EventStore(tmp_path / "e.db", synchronous="FULL")
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    event = {"user_id": "a", "item_id": "b", "type": "view", "value": 1, "timestamp": 1.0}
    assert store.add_events([{**event, "event_id": "x"}, {**event, "event_id": "x"}]) == (1, 1)
    assert store.add_events([event, event]) == (2, 0)  # no event_id: always new
    assert store.count_events() == 3 and store.max_seq() >= 3
    assert store.integrity_check() == "ok"
    with pytest.raises(StoreError):
        EventStore(tmp_path / "e2.db", synchronous="OFF")


def test_concurrent_writers_never_see_locked(tmp_path):
    path = tmp_path / "e.db"
    EventStore(path)
    errors = []

    def write(worker):
        store = EventStore(path, synchronous="NORMAL")  # its own connections, like a process
        try:
            for n in range(100):
                event = {"user_id": f"w{worker}", "item_id": f"i{n}", "type": "view"}
                store.add_events(
                    [{**event, "value": 1, "timestamp": 1, "event_id": f"{worker}-{n}"}]
                )
        except StoreError as err:
            errors.append(err)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 400


class _ReadOnlyStore(EventStore):
    """The store opened read-only (as on a read-only data directory; root ignores chmod)."""

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
            self._local.conn = conn
            self._conns.append(conn)
        return conn


def test_read_only_store_reports_unavailable_but_reads(tmp_path):
    EventStore(tmp_path / "e.db").close()
    store = _ReadOnlyStore(tmp_path / "e.db")
    event = {"user_id": "a", "item_id": "b", "type": "view", "value": 1, "timestamp": 1.0}
    with pytest.raises(StoreError, match="^event store unavailable: read-only$"):
        store.add_events([event])
    assert store.user_context("a", after_seq=0, limit=10, deleted_since=0) == ([], None, False)
    store.close()


# -- pipeline ----------------------------------------------------------------------------
def test_pipeline_maps_ids_and_round_trips(tmp_path, ease_pipeline, clusters):
    ranked = ease_pipeline.recommend("u1", 5, exclude=["i0"])
    u1 = clusters.users.index(["u1"])
    recs = ease_pipeline.model.recommend(u1, 6)
    expected = [x for x in clusters.items.ids[recs.items[0]] if x != "i0"][:5]
    assert [x["item_id"] for x in ranked.items] == expected and ranked.known_user
    ease_pipeline.save(tmp_path / "p")
    loaded = RecommendPipeline.load(tmp_path / "p")
    assert loaded.recommend("u1", 5, exclude=["i0"]).items == ranked.items
    assert list(loaded.catalog.index) == list(clusters.items.ids)
    # a known user's training row equals the fold-in of that row (EASE)
    history = [(clusters.items.ids[i], 1.0) for i in clusters.matrix[u1[0]].indices]
    folded = ease_pipeline.recommend("u1-copy", 5, history=history)
    plain = ease_pipeline.recommend("u1", 5)
    assert folded.fold_in and [x["item_id"] for x in folded.items] == [
        x["item_id"] for x in plain.items
    ]
    with pytest.raises(Exception, match="k must be a positive int"):
        ease_pipeline.recommend("u1", 0)


def test_pipeline_without_fold_in_or_add_items(clusters):
    pipeline = RecommendPipeline.fit(MostPopular(), clusters)
    ranked = pipeline.recommend("ghost", 3, history=[("i1", 1.0)])
    assert ranked.fold_in and {x["route"] for x in ranked.items} == {"popular"}
    assert "i1" not in [x["item_id"] for x in ranked.items]
    frame = pd.DataFrame({"title": ["x"]}, index=pd.Index(["brand-new"], name="item_id"))
    with pytest.raises(ConfigError, match="cannot add items"):
        pipeline.add_items(frame)
    with pytest.raises(ConfigError, match="cannot find similar items"):
        pipeline.similar("i1")


def test_a_busy_database_at_open_is_retried_then_reported(tmp_path, monkeypatch):
    """SQLite can answer SQLITE_BUSY at open without running the busy handler (seen in CI when
    two servers and a writer started on one file): the open retries within busy_timeout_ms,
    and a database that stays busy is a clear StoreError, not a crash."""
    from lumenrec.serving import store as store_mod

    real_conn = store_mod.EventStore._conn
    failures = {"left": 3}

    class BusyOnce:
        def __init__(self, conn):
            self._conn = conn

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA journal_mode") and failures["left"] > 0:
                failures["left"] -= 1
                msg = "database is locked"
                raise sqlite3.OperationalError(msg)
            return self._conn.execute(sql, *args)

    monkeypatch.setattr(
        store_mod.EventStore, "_conn", lambda self: BusyOnce(real_conn(self)), raising=True
    )
    store = store_mod.EventStore(tmp_path / "a.sqlite", busy_timeout_ms=2000)
    assert failures["left"] == 0
    store.close()
    failures["left"] = 10**9  # busy for ever: reported once the timeout has passed
    with pytest.raises(store_mod.StoreError, match="busy"):
        store_mod.EventStore(tmp_path / "b.sqlite", busy_timeout_ms=100)
