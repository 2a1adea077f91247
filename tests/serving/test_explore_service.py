"""Exploration in the serving path, through HTTP: propensities on every explored list, logged
impressions, feedback joined by request id, online updates, state across restarts, traffic
split by a stable hash, bad policy specs."""

from __future__ import annotations

import numpy as np
import pytest


def _service(client):
    return client.app.state.service


def test_explored_list_carries_and_logs_propensities(client_for, auth):
    with client_for() as client:
        r = client.get("/recommend/u3", params={"k": 5, "explore": "epsilon-greedy(epsilon=0.5)"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["policy"] == "epsilon-greedy(epsilon=0.5)" and body["arm"] == "explicit"
        items = body["items"]
        assert len(items) == 5 and body["request_id"]
        assert all(0 < x["propensity"] <= 1 for x in items)
        for x in items:
            assert (x["reason"]["kind"] == "exploration") == x["exploratory"]
        log = _service(client).store.impression_log()
        mine = log[log["request_id"] == body["request_id"]]
        assert list(mine["item_id"]) == [x["item_id"] for x in items]
        np.testing.assert_allclose(mine["propensity"], [x["propensity"] for x in items])
        assert list(mine["position"]) == [0, 1, 2, 3, 4]
        assert set(mine["policy_version"]) and set(mine["model_version"]) == {"v1"}
        # feedback carrying the request id joins its impression
        clicked = items[2]["item_id"]
        event = {
            "user_id": "u3",
            "item_id": clicked,
            "type": "click",
            "request_id": body["request_id"],
        }
        assert client.post("/feedback", json=event, headers=auth).status_code == 200
        log = _service(client).store.impression_log()
        mine = log[log["request_id"] == body["request_id"]].set_index("item_id")
        assert mine.loc[clicked, "reward"] == 1.0
        assert mine["reward"].sum() == 1.0


def test_greedy_lists_are_unchanged_and_uncached_exploration(client_for):
    with client_for() as client:
        plain = client.get("/recommend/u4", params={"k": 5}).json()
        greedy = client.get("/recommend/u4", params={"k": 5, "explore": "greedy"}).json()
        assert [x["item_id"] for x in greedy["items"]] == [x["item_id"] for x in plain["items"]]
        assert all(x["propensity"] == 1.0 and not x["exploratory"] for x in greedy["items"])
        assert "request_id" not in plain


def test_thompson_learns_from_feedback_and_keeps_state_across_restart(client_for, auth):
    spec = "thompson"
    with client_for() as client:
        body = client.get("/recommend/u5", params={"k": 4, "explore": spec}).json()
        for x in body["items"][:2]:
            event = {
                "user_id": "u5", "item_id": x["item_id"], "type": "click",
                "request_id": body["request_id"],
            }  # fmt: skip
            client.post("/feedback", json=event, headers=auth)
        state = {k: v.copy() for k, v in _service(client).explorer.policy(spec).get_state().items()}
        assert state and any(np.asarray(v).sum() > 0 for v in state.values())
    with client_for() as client:  # a new process on the same model dir and store
        again = _service(client).explorer.policy(spec).get_state()
        assert set(again) == set(state)
        for name in state:
            np.testing.assert_array_equal(again[name], state[name])


def test_traffic_split_is_stable_and_logged(client_for):
    split = "greedy=0.5;epsilon-greedy(epsilon=1.0)=0.5"
    with client_for(explore_split=split) as client:
        arms = {}
        for u in range(20):
            first = client.get(f"/recommend/u{u}", params={"k": 3}).json()
            second = client.get(f"/recommend/u{u}", params={"k": 3}).json()
            assert first["arm"] == second["arm"] and first["arm"].startswith("split:")
            arms[u] = first["arm"]
        assert len(set(arms.values())) == 2
        log = _service(client).store.impression_log()
        assert set(log["arm"]) == set(arms.values())
        assert (log["propensity"] > 0).all() and (log["propensity"] <= 1).all()


def test_every_served_list_is_logged_under_a_default_policy(client_for):
    with client_for(explore_default="softmax(temperature=0.5)") as client:
        ids = [
            client.get(f"/recommend/u{u % 30}", params={"k": 4}).json()["request_id"]
            for u in range(60)
        ]
        log = _service(client).store.impression_log()
        assert set(log["request_id"]) == set(ids) and len(log) == 240
        assert log["propensity"].between(0, 1, inclusive="right").all()


@pytest.mark.parametrize("spec", ["sparkle", "epsilon-greedy(epsilon=2)", "softmax(heat=1)"])
def test_bad_policy_specs_are_422(client_for, spec):
    with client_for() as client:
        r = client.get("/recommend/u1", params={"explore": spec})
        assert r.status_code == 422 and r.json()["detail"]


def test_bad_split_setting_refuses_to_start(settings_for):
    from lumenrec.errors import ConfigError
    from lumenrec.serving.exploration import parse_split

    with pytest.raises(ConfigError, match="sum to 1"):
        parse_split("greedy=0.5;thompson=0.2")
    with pytest.raises(ConfigError, match="POLICY=SHARE"):
        parse_split("greedy")


def test_ope_over_the_service_store_matches_the_python_api(client_for, auth, tmp_path):
    from lumenrec.explore.ope import estimate
    from lumenrec.explore.store_log import log_from_impressions

    settings = {"explore_default": "epsilon-greedy(epsilon=0.5)", "explore_candidates": 5}
    with client_for(**settings) as client:
        rng = np.random.default_rng(0)
        for i in range(60):
            body = client.get(f"/recommend/u{i % 40}", params={"k": 3}).json()
            item = body["items"][int(rng.integers(3))]["item_id"]
            if rng.random() < 0.5:
                event = {
                    "user_id": f"u{i % 40}", "item_id": item, "type": "click",
                    "request_id": body["request_id"],
                }  # fmt: skip
                client.post("/feedback", json=event, headers=auth)
        frame = _service(client).store.impression_log()
    log, dist = log_from_impressions(frame, "epsilon-greedy(epsilon=0.5)")
    assert log.n == 180 and dist.shape[1:] == (5, 3)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    on_policy = estimate(log, dist, ["ips", "snips"])
    # evaluating the logging policy on its own log: every weight is 1, so IPS is the mean reward
    assert on_policy["ips"].value == pytest.approx(frame["reward"].mean())
    target = "softmax(temperature=0.5)"
    glog, gdist = log_from_impressions(frame, target)
    python = estimate(glog, gdist, ["ips", "snips"], max_unsupported=1.0)
    # the CLI over the same store gives the same numbers
    import json

    from typer.testing import CliRunner

    from lumenrec.cli import app

    out = tmp_path / "ope.json"
    result = CliRunner().invoke(
        app,
        ["ope", "--db", str(tmp_path / "events.sqlite"), "--target", target,
         "--estimators", "ips,snips", "--max-unsupported", "1.0", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cli = json.loads(out.read_text())["estimates"]
    for name in ("ips", "snips"):
        assert cli[name]["value"] == pytest.approx(python[name].value, rel=1e-12, abs=1e-15)
