"""Human-centric service features through HTTP: reasons, /explain, re-ranking knobs,
"not interested" (item / category / brand) honoured at once and after a restart, the
personalisation switch and the user's own profile view."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def branded(tmp_path_factory, hybrid_factory) -> Path:
    """A registry whose catalogue has a category (the planted topic) and a brand column."""
    from lumenrec.data.synthetic import block_clusters
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    data = block_clusters(n_topics=4, n_users=120, n_items=80, random_state=0)
    data.catalog["category"] = data.catalog["topic"]
    data.catalog["brand"] = [f"brand{i % 5}" for i in range(len(data.catalog))]
    root = tmp_path_factory.mktemp("branded") / "models"
    ModelRegistry(root).publish(RecommendPipeline.fit(hybrid_factory(), data))
    return root


@pytest.fixture
def human(client_for, branded, tmp_path):
    import shutil

    target = tmp_path / "branded"
    shutil.copytree(branded, target)

    def open_client():
        return client_for(model_dir=target)

    return open_client


def _ids(body: dict) -> list[str]:
    return [x["item_id"] for x in body["items"]]


def test_every_item_has_a_reason_and_explain_matches(human, auth):
    with human() as client:
        body = client.get("/recommend/u3", params={"k": 5}).json()
        assert all(x["reason"]["sentence"] for x in body["items"])
        top = body["items"][0]
        got = client.get(f"/explain/u3/{top['item_id']}", params={"k": 5})
        assert got.status_code == 200
        reason = got.json()["reason"]
        assert got.json()["rank"] == 1
        assert {k: reason[k] for k in top["reason"]} == top["reason"]
        unlisted = next(f"i{i}" for i in range(80) if f"i{i}" not in _ids(body))
        missing = client.get(f"/explain/u3/{unlisted}", params={"k": 5})
        assert missing.status_code == 404 and "not in user" in missing.json()["detail"]


def test_rerank_knobs_change_the_list_and_bad_ones_are_422(human):
    with human() as client:
        plain = client.get("/recommend/u3", params={"k": 8}).json()
        diverse = client.get("/recommend/u3", params={"k": 8, "diversity": 1.0}).json()
        assert diverse["rerank"]["stages"] == ["mmr"] and diverse["rerank"]["feasible"]
        assert _ids(diverse) != _ids(plain)
        spec = client.get("/recommend/u3", params={"k": 8, "rerank": "mmr=1"}).json()
        assert _ids(spec) == _ids(diverse)
        unknown = client.get("/recommend/u3", params={"rerank": "sparkle=0.3"})
        assert unknown.status_code == 422 and "sparkle" in unknown.json()["detail"]
        out_of_range = client.get("/recommend/u3", params={"rerank": "mmr=1.5"})
        assert out_of_range.status_code == 422
        knob = client.get("/recommend/u3", params={"diversity": 2})
        assert knob.status_code == 422


def test_not_interested_is_honoured_at_once_and_after_a_restart(human, auth):
    with human() as client:
        before = _ids(client.get("/recommend/u5", params={"k": 10}).json())
        target = before[0]
        neighbours = [x["item_id"] for x in client.get(f"/similar/{target}").json()["items"]]
        r = client.post(
            "/users/u5/not-interested", json={"kind": "item", "value": target}, headers=auth
        )
        assert r.status_code == 200 and r.json()["changed"]
        after = _ids(client.get("/recommend/u5", params={"k": 10}).json())
        assert target not in after
        # neighbours that stayed are ranked after every non-neighbour
        flags = [i in neighbours for i in after]
        assert flags == sorted(flags)
    with human() as client:  # a new process on the same store
        again = _ids(client.get("/recommend/u5", params={"k": 10}).json())
        assert again == after
        profile = client.get("/users/u5/profile").json()
        assert profile["controls"]["not_interested"]["items"] == [target]
        undo = {"kind": "item", "value": target, "undo": True}
        client.post("/users/u5/not-interested", json=undo, headers=auth)
        assert target in _ids(client.get("/recommend/u5", params={"k": 10}).json())


def test_brand_exclusion_and_bad_controls(human, auth, branded):
    from lumenrec.serving import ModelRegistry

    catalog = ModelRegistry(branded).load().catalog
    with human() as client:
        client.post(
            "/users/u2/not-interested", json={"kind": "brand", "value": "Brand1"}, headers=auth
        )
        items = _ids(client.get("/recommend/u2", params={"k": 20}).json())
        assert len(items) == 20 and all(catalog.loc[i, "brand"] != "brand1" for i in items)
        profile = client.get("/users/u2/profile").json()
        assert profile["controls"]["not_interested"]["brands"] == ["Brand1"]
        unknown = client.post(
            "/users/u2/not-interested", json={"kind": "brand", "value": "nope"}, headers=auth
        )
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        bad_kind = client.post(
            "/users/u2/not-interested", json={"kind": "colour", "value": "red"}, headers=auth
        )
        assert bad_kind.status_code == 422
        denied = client.post("/users/u2/not-interested", json={"kind": "item", "value": "i1"})
        assert denied.status_code == 401


def test_category_exclusion_removes_the_whole_topic(human, auth, branded):
    from lumenrec.serving import ModelRegistry

    catalog = ModelRegistry(branded).load().catalog
    with human() as client:
        client.post(
            "/users/u0/not-interested", json={"kind": "category", "value": "sports"}, headers=auth
        )
        items = _ids(client.get("/recommend/u0", params={"k": 30}).json())
        assert items and all(catalog.loc[i, "category"] != "sports" for i in items)


def test_personalisation_switch_and_profile(human, auth):
    with human() as client:
        personal = client.get("/recommend/u7", params={"k": 5}).json()
        r = client.put("/users/u7/settings", json={"personalised": False}, headers=auth)
        assert r.status_code == 200
        flat = client.get("/recommend/u7", params={"k": 5}).json()
        assert flat["personalised"] is False and flat["fallback"] == "popular"
        assert all(x["reason"]["method"] == "setting" for x in flat["items"])
        assert _ids(flat) != _ids(personal)
        profile = client.get("/users/u7/profile").json()
        assert profile["route"] == "non-personalised" and profile["known_to_model"]
        assert profile["training_history"] and profile["interests"]["categories"]
        client.put("/users/u7/settings", json={"personalised": True}, headers=auth)
        assert _ids(client.get("/recommend/u7", params={"k": 5}).json()) == _ids(personal)


def test_erasure_removes_controls(human, auth):
    with human() as client:
        client.post(
            "/users/u9/not-interested", json={"kind": "brand", "value": "brand2"}, headers=auth
        )
        assert client.delete("/users/u9", headers=auth).status_code == 200
        profile = client.get("/users/u9/profile").json()
        assert profile["controls"]["not_interested"]["brands"] == []
        assert not profile["known_to_model"]
