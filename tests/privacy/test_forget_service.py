"""Erasure through the service: after DELETE /users/{id} no endpoint, file or cache returns
anything about the user, and the served model is a version without them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")

WRITE = "write-key-0123456789abcdef"
WHO = "zed.erase.me@example.org"


def _data():
    import pandas as pd

    from lumenrec.data.io import from_pandas
    from lumenrec.data.synthetic import block_clusters

    base = block_clusters(n_topics=3, n_users=40, n_items=30, random_state=3)
    users = np.where(base.user_idx == 7, WHO, [f"u{int(u)}" for u in base.user_idx])
    frame = pd.DataFrame(
        {
            "user_id": users,
            "item_id": base.items.ids[base.item_idx],
            "rating": base.ratings,
            "timestamp": base.timestamps,
        }
    )
    data = from_pandas(frame, items=base.catalog.reset_index(), name="erase")
    data.catalog.attrs["text_fields"] = ["title", "description"]
    return data


def test_service_erasure_leaves_nothing_about_the_user(tmp_path):
    from fastapi.testclient import TestClient

    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry, ServiceSettings, create_app

    models = tmp_path / "models"
    hybrid = HybridRecommender(
        {"cf": EASE(regularization=5.0), "text": ContentRecommender("hashing")}
    )
    ModelRegistry(models).publish(RecommendPipeline.fit(hybrid, _data()))
    settings = ServiceSettings(
        model_dir=models, db=tmp_path / "events.sqlite", api_key=WRITE, rate_limit=0
    )
    auth = {"X-API-Key": WRITE}
    with TestClient(create_app(settings)) as client:
        before = client.get(f"/recommend/{WHO}", params={"k": 5, "explore": "greedy"}).json()
        assert before["fallback"] is None  # a training user
        item = before["items"][0]["item_id"]
        event = {
            "user_id": WHO,
            "item_id": item,
            "type": "click",
            "request_id": before["request_id"],
        }
        client.post("/feedback", json=event, headers=auth)
        client.post(
            "/users", json={"users": [{"user_id": WHO, "text": "zed profile"}]}, headers=auth
        )
        client.post(f"/users/{WHO}/not-interested", json={"value": item}, headers=auth)
        gone = client.delete(f"/users/{WHO}", headers=auth)
        assert gone.status_code == 200, gone.text
        body = gone.json()
        assert body["model_effect"] == "exact" and body["model_version"] == "v2"
        assert body["pending_retrain"] is None
        ready = client.get("/health/ready").json()
        assert ready["model_version"] == "v2"
        after = client.get(f"/recommend/{WHO}").json()
        assert after["fallback"] == "popular" and not after["fold_in"]
        profile = client.get(f"/users/{WHO}/profile").json()
        assert not profile["known_to_model"] and profile["training_history"] == []
        assert profile["recent_feedback"] == [] and profile["profile_text"] is None
        assert profile["controls"]["not_interested"]["items"] == []
        assert client.get(f"/recommend/{WHO}", params={"strict": True}).status_code == 404
        again = client.delete(f"/users/{WHO}", headers=auth).json()
        assert again["model_effect"] == "none"
        assert WHO not in client.app.state.service.cache
    leaks = [
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and WHO.encode() in p.read_bytes()
    ]
    assert leaks == []
