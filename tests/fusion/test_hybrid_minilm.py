"""Real semantics: with the offline all-MiniLM-L6-v2, a new item reaches the users of its topic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sentence_transformers")

from lumenrec.fusion.hybrid import HybridRecommender  # noqa: E402
from lumenrec.models.content import ContentRecommender  # noqa: E402
from lumenrec.models.ease import EASE  # noqa: E402


@pytest.mark.model
def test_new_item_written_in_other_words_reaches_its_topic(clusters, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    content = ContentRecommender(encoder="minilm", cache=str(tmp_path / "emb.sqlite"))
    model = HybridRecommender({"cf": EASE(regularization=10.0), "text": content}).fit(clusters)
    # phrased differently from the catalogue's template (no "cooking" token): meaning links them
    new_item = pd.DataFrame(
        {
            "title": ["Chef knife and spice rack"],
            "description": ["Kitchen tools for preparing dinner."],
        },
        index=pd.Index(["new-knife"], name="item_id"),
    )
    (new,) = model.add_items(new_item)
    topics = clusters.user_attributes["topic"].to_numpy()
    users = np.arange(clusters.n_users)
    scores = model.score(users)
    scores[model.seen_[users].toarray() > 0] = -np.inf
    percentile = (scores > scores[:, [new]]).sum(axis=1) / (scores > -np.inf).sum(axis=1)
    assert np.median(percentile[topics == "cooking"]) < 0.25
    assert np.median(percentile[topics != "cooking"]) > 0.6
    recs = model.recommend(users, k=10)
    reached = (recs.items == new).any(axis=1)
    assert reached[topics == "cooking"].mean() >= 0.3
    assert reached[topics != "cooking"].mean() <= 0.05
    assert set(recs.routes[recs.items == new]) == {"text"}
    # the cache holds the catalogue and the new item: encoding them again costs nothing
    assert content.make_encoder().cache.count() == clusters.n_items + 1
