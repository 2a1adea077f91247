"""SERVICE.md 4.4: S1 auth on writes, S2 no open bind, S3 no URL/path inputs, S6 CORS/CSRF,
S7 rate limits, S8 key hygiene, S10 error hygiene."""

from __future__ import annotations

import logging
import re

import pytest

from lumenrec.errors import ConfigError

WRITES = [
    ("post", "/feedback", {"user_id": "u1", "item_id": "i1"}),
    ("post", "/feedback/batch", {"events": [{"user_id": "u1", "item_id": "i1"}]}),
    ("post", "/items", {"items": [{"item_id": "n1", "title": "A new trail tent"}]}),
    ("post", "/users", {"users": [{"user_id": "p1", "text": "likes jazz"}]}),
    ("delete", "/users/u1", None),
    ("delete", "/items/i1", None),
    ("post", "/admin/reload", {}),
    ("post", "/admin/retrain", None),
]


def _call(client, method, path, body, headers=None):
    if body is None:
        return client.request(method.upper(), path, headers=headers)
    return client.request(method.upper(), path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_s1_writes_need_the_write_key(client, keys, method, path, body):
    for headers in (None, {"X-API-Key": "wrong-key-000000000000"}):
        r = _call(client, method, path, body, headers)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == 'APIKey header="X-API-Key"'
        assert "wrong-key" not in r.text and "wrong-key" not in str(r.headers)
    r = _call(client, method, path, body, {"X-API-Key": keys["read"]})
    assert r.status_code == 403 and r.json() == {"detail": "this API key is read-only"}
    assert keys["read"] not in r.text
    r = _call(client, method, path, body, {"X-API-Key": keys["write"]})
    assert r.status_code in (200, 204), (path, r.text)


def test_s1_admin_listing_needs_the_write_key(client, keys):
    assert client.get("/admin/versions").status_code == 401
    assert client.get("/admin/versions", headers={"X-API-Key": keys["read"]}).status_code == 403


def test_reads_open_by_default_and_closed_on_request(client_for, keys):
    with client_for() as c:
        assert c.get("/recommend/u1").status_code == 200
    with client_for(require_read_key=True) as c:
        assert c.get("/recommend/u1").status_code == 401
        assert c.get("/recommend/u1", headers={"X-API-Key": keys["read"]}).status_code == 200
        assert c.get("/health/ready").status_code == 200  # probes stay open
        assert c.get("/metrics").status_code == 200


def test_s2_refuses_open_bind_without_key(settings_for):
    settings = settings_for(host="0.0.0.0", api_key=None)
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        settings.check_bind()
    settings_for(host="0.0.0.0").check_bind()  # with a key: allowed
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        settings_for(host=host, api_key=None).check_bind()
    assert settings_for(api_key="").api_key is None  # LUMENREC_API_KEY= means no key


_SUSPECT = re.compile(r"url|uri|path|file|dir|folder|href|src", re.IGNORECASE)


def test_s3_no_route_takes_a_url_or_path(client):
    spec = client.get("/openapi.json").json()
    names = []
    for ops in spec["paths"].values():
        for op in ops.values():
            names += [p["name"] for p in op.get("parameters", [])]

    def walk(node):
        if isinstance(node, dict):
            assert node.get("format") not in ("uri", "path", "binary"), node
            for key, value in node.items():
                if key == "properties":
                    names.extend(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec.get("components", {}))
    assert names and not [n for n in names if _SUSPECT.search(n)]
    assert not [p for p in spec["paths"] if re.search(r"dump|restore|upload|import|fetch", p)]


def test_s6_no_cors_and_form_posts_are_401(client):
    r = client.options(
        "/feedback",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.post(
        "/feedback",
        data={"user_id": "u1", "item_id": "i1"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 401
    assert "access-control-allow-origin" not in r.headers


def test_s7_rate_limit_per_key(client_for, keys):
    with client_for(rate_limit=1.0, rate_burst=3.0) as c:
        read = {"X-API-Key": keys["read"]}
        codes = [c.get("/recommend/u1", headers=read).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/recommend/u1", headers=read)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "rate limit" in r.json()["detail"]
        # another key has its own bucket
        assert c.get("/recommend/u1", headers={"X-API-Key": keys["write"]}).status_code == 200
        assert "lumenrec_rate_limited_total 3" in c.get("/metrics").text


def test_s8_keys_hashed_at_rest_and_never_logged(client_for, keys, caplog):
    from lumenrec.serving.auth import hash_key, verify_key

    caplog.set_level(logging.DEBUG)
    with client_for() as c:
        app = c.app
        assert app.state.settings.api_key is None and app.state.settings.read_api_key is None
        assert all(h.startswith("scrypt$") for h in app.state.keyring.hashes)
        assert keys["write"] not in repr(vars(app.state))
        c.post(
            "/feedback",
            json={"user_id": "u1", "item_id": "i1"},
            headers={"X-API-Key": keys["write"]},
        )
        c.post("/feedback", json={}, headers={"X-API-Key": "not-the-key-123456789"})
        c.post("/admin/reload", json={"version": "v9"}, headers={"X-API-Key": keys["write"]})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert keys["write"] not in logged and "not-the-key" not in logged
    hashed = hash_key(keys["write"])
    assert keys["write"] not in hashed
    assert verify_key(keys["write"], hashed) and not verify_key("other", hashed)


def test_s8_key_given_as_hash(client_for):
    from lumenrec.serving.auth import hash_key

    secret = "only-the-hash-is-configured"
    with client_for(api_key=None, read_api_key=None, api_key_hash=hash_key(secret)) as c:
        body = {"user_id": "u1", "item_id": "i1"}
        assert c.post("/feedback", json=body, headers={"X-API-Key": secret}).status_code == 200
        assert c.post("/feedback", json=body, headers={"X-API-Key": "x" * 20}).status_code == 401


def test_short_or_malformed_keys_are_config_errors(settings_for):
    from lumenrec.serving import create_app

    with pytest.raises(ConfigError, match="at least 16"):
        create_app(settings_for(api_key="short"))
    with pytest.raises(ConfigError, match="scrypt"):
        create_app(settings_for(api_key_hash="md5$abc"))


def test_s10_internal_errors_hide_details(client, monkeypatch, caplog):
    def boom(*args, **kwargs):
        msg = "SELECT * FROM events WHERE path='/srv/secret.py'"
        raise RuntimeError(msg)

    monkeypatch.setattr(client.app.state.service, "recommend_json", boom)
    with caplog.at_level(logging.ERROR, logger="lumenrec"):
        r = client.get("/recommend/u1")
    assert r.status_code == 500
    body = r.json()
    assert set(body) == {"detail", "request_id"} and body["detail"] == "internal error"
    assert body["request_id"] == r.headers["x-request-id"]
    assert "SELECT" not in r.text and "secret" not in r.text and "Traceback" not in r.text
    assert any(body["request_id"] in rec.getMessage() for rec in caplog.records)
