"""``lumenrec users delete`` (SERVICE.md P1 through the CLI) and ``lumenrec serve --config``."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from lumenrec.cli import app  # noqa: E402
from lumenrec.cli.serve import _settings_kwargs  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402
from lumenrec.models.ease import EASE  # noqa: E402
from lumenrec.pipeline import RecommendPipeline  # noqa: E402
from lumenrec.serving import EventStore, ModelRegistry, ServiceSettings, create_app  # noqa: E402

KEY = "config-test-key-0123456789"


@pytest.fixture(autouse=True)
def _restore_loggers():
    saved = {}
    for name in ("lumenrec", "uvicorn"):
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate)
    yield
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, str]:
    """A registry with an EASE model, and a user it was trained on."""
    data = block_clusters(n_topics=4, n_users=60, n_items=40, random_state=0)
    root = tmp_path_factory.mktemp("users") / "models"
    ModelRegistry(root).publish(RecommendPipeline.fit(EASE(regularization=10.0), data))
    return root, str(data.users.ids[0])


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _seed_store(db: Path, user: str) -> None:
    store = EventStore(db)
    events = [
        {"user_id": u, "item_id": str(i), "type": "click", "value": 1.0, "timestamp": 1.7e9}
        for u in (user, "bystander")
        for i in range(5)
    ]
    store.add_events(events)
    store.upsert_users([{"user_id": user, "text": "likes topic zero", "attributes": {}}])
    store.close()


# -- users delete ----------------------------------------------------------------------------
def test_users_delete_erases_events_profile_and_keeps_a_hashed_audit_row(published, tmp_path):
    model_dir, user = published
    db = tmp_path / "events.sqlite"
    _seed_store(db, user)
    r = _invoke("users", "delete", user, "--db", db, "--model-dir", model_dir, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out == {
        "user_id": user,
        "events_deleted": 5,
        "profile_deleted": True,
        "audit_row": True,
        "model_version": "v1",
        "in_model": True,
        "retrain_due": True,
    }
    store = EventStore(db)
    try:
        assert store.count_events(user) == 0 and not store.has_profile(user)
        assert store.count_events("bystander") == 5
        assert store.hash_id(user) in store.deleted_user_hashes(since=0)
    finally:
        store.close()
    with sqlite3.connect(db) as conn:  # the audit row holds a salted hash, never the id
        rows = conn.execute("SELECT kind, id_hash, n_events FROM deletions").fetchall()
    assert [(k, n) for k, _, n in rows] == [("user", 5)] and user not in rows[0][1]
    assert user.encode() not in db.read_bytes()  # secure_delete + WAL checkpoint
    again = _invoke("users", "delete", user, "--db", db, "--json")  # idempotent
    assert again.exit_code == 0 and json.loads(again.stdout)["events_deleted"] == 0
    plain = _invoke("users", "delete", "someone-else", "--db", db, "--model-dir", model_dir)
    assert plain.exit_code == 0 and "erased user 'someone-else': 0 events" in plain.output


def test_users_delete_reaches_a_running_service_on_the_same_db(published, tmp_path):
    """The CLI erasure is the endpoint's: the service stops using the cached list, the
    user's trained vector and their history at its next request (same as DELETE /users)."""
    model_dir, user = published
    db = tmp_path / "events.sqlite"
    _seed_store(db, user)
    settings = ServiceSettings(model_dir=model_dir, db=db, api_key=KEY, cache_ttl_s=600)
    with TestClient(create_app(settings)) as client:
        before = client.get(f"/recommend/{user}?k=5").json()
        assert before["fallback"] is None  # personalised: the trained row
        assert client.get(f"/recommend/{user}?k=5").json() == before  # now cached
        r = _invoke("users", "delete", user, "--db", db)
        assert r.exit_code == 0, r.output
        after = client.get(f"/recommend/{user}?k=5").json()
        assert after["fallback"] == "popular" and after["fold_in"] is False, after
        strict = client.get(f"/recommend/{user}?k=5&strict=true")
        assert strict.status_code == 404  # the id is a new, unknown user now
        assert client.get("/recommend/bystander?k=5").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad\x01id", "--db", "{db}"], "user_id must be 1–256 printable characters"),
        (["x" * 257, "--db", "{db}"], "user_id must be 1–256 printable characters"),
        (["u1", "--db", "{tmp}/absent.sqlite"], "no event store at"),
        (["u1", "--db", "{db}", "--model-dir", "{tmp}/nowhere"], "is not a directory"),
    ],
)
def test_users_delete_bad_input_exit_2(tmp_path, args, message):
    db = tmp_path / "events.sqlite"
    EventStore(db).close()
    argv = [a.format(db=db, tmp=tmp_path) for a in args]
    r = _invoke("users", "delete", *argv)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert not (tmp_path / "absent.sqlite").exists()


# -- serve --config --------------------------------------------------------------------------
def _config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_serve_config_file_is_read_into_the_settings(published, tmp_path, monkeypatch):
    import uvicorn

    model_dir, _ = published
    seen = {}

    def fake_run(asgi, **kwargs):
        seen["settings"], seen["kwargs"] = asgi.state.settings, kwargs
        seen["write_key_works"] = asgi.state.keyring.role(KEY) == "write"

    monkeypatch.setattr(uvicorn, "run", fake_run)
    for name in ("LUMENREC_API_KEY", "LUMENREC_RATE_LIMIT", "LUMENREC_PORT", "LUMENREC_DB"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "conf").mkdir()
    config = _config(
        tmp_path / "conf" / "serve.toml",
        f'model_dir = "{model_dir}"\ndb = "data/events.sqlite"\nport = 8123\n'
        f'api_key = "{KEY}"\n\n[serve]\nrate_limit = 5.0\nstore_synchronous = "NORMAL"\n',
    )
    r = _invoke("serve", "--config", config)
    assert r.exit_code == 0, r.output
    settings = seen["settings"]
    assert settings.db == tmp_path / "conf" / "data" / "events.sqlite"  # relative to the file
    assert settings.rate_limit == 5.0 and settings.store_synchronous == "NORMAL"
    assert seen["kwargs"]["port"] == 8123 and seen["kwargs"]["host"] == "127.0.0.1"
    assert seen["write_key_works"] and settings.api_key is None  # only the hash is kept
    monkeypatch.setenv("LUMENREC_RATE_LIMIT", "7")  # variables beat the file ...
    r = _invoke("serve", "--config", config, "--port", "8124")  # ... options beat both
    assert r.exit_code == 0, r.output
    assert seen["settings"].rate_limit == 7.0 and seen["kwargs"]["port"] == 8124


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_serve_refuses_a_readable_config_holding_the_key(published, tmp_path, mode):
    model_dir, _ = published
    config = _config(
        tmp_path / "serve.toml",
        f'model_dir = "{model_dir}"\ndb = "{tmp_path / "e.db"}"\napi_key = "{KEY}"\n',
        mode,
    )
    r = _invoke("serve", "--config", config)
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())
    assert f"refusing to start: --config {config} holds api_key but its mode is {mode:04o}" in flat
    assert f"chmod 600 {config}" in flat and KEY not in r.output and "Traceback" not in r.output
    assert not (tmp_path / "e.db").exists()


def test_serve_config_without_secrets_may_be_readable(published, tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.delenv("LUMENREC_API_KEY", raising=False)
    model_dir, _ = published
    config = _config(
        tmp_path / "serve.toml", f'model_dir = "{model_dir}"\ndb = "e.db"\nrate_limit = 3\n', 0o644
    )
    assert _invoke("serve", "--config", config).exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rate_limt = 5\ndb = "e.db"\n', "unknown setting(s) ['rate_limt']; valid keys are"),
        ("db = [unterminated\n", "is not valid TOML"),
        (
            'db = "e.db"\nmodel_dir = "m"\nrate_limit = -1\n',
            "invalid setting rate_limit in --config",
        ),
        ('db = "e.db"\n', "--model-dir is required (or model_dir in --config"),
        ('db = "e.db"\nmodel_dir = "m"\nhost = "0.0.0.0"\n', "refusing to listen on 0.0.0.0"),
    ],
)
def test_serve_bad_config_exit_2(tmp_path, monkeypatch, text, message):
    for name in ("LUMENREC_API_KEY", "LUMENREC_API_KEY_HASH", "LUMENREC_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    config = _config(tmp_path / "serve.toml", text)
    r = _invoke("serve", "--config", config)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output


def test_serve_missing_config_file_exit_2(tmp_path):
    r = _invoke("serve", "--config", tmp_path / "nope.toml")
    assert r.exit_code == 2 and "does not exist" in r.output


def test_settings_precedence_options_then_environment_then_file(tmp_path):
    config = _config(tmp_path / "s.toml", 'db = "a.db"\nport = 1\nrate_limit = 2.0\n')
    merged = _settings_kwargs(
        config,
        {"db": None, "port": 3, "host": None, "model_dir": None},
        {"LUMENREC_RATE_LIMIT": "9"},
    )
    assert merged == {"db": tmp_path / "a.db", "port": 3}
