"""ContentRecommender: recency weighting, fold-in, profiles, and new items from text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lumenrec.data import from_pandas
from lumenrec.errors import DataError
from lumenrec.models.content import ContentRecommender, recency_weights


def test_recency_weights_follow_event_order():
    df = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": ["x", "y", "x", "z"]})
    data = from_pandas(df)
    w = recency_weights(data, half_life=1.0).toarray()
    # user a: events x (age 2), y (age 1), x (age 0) -> x: 0.25 + 1, y: 0.5
    np.testing.assert_allclose(w[0], [1.25, 0.5, 0.0])
    np.testing.assert_allclose(w[1], [0.0, 0.0, 1.0])
    flat = recency_weights(data, half_life=np.inf).toarray()
    np.testing.assert_allclose(flat[0], [2.0, 1.0, 0.0])


def test_needs_text(checker):
    with pytest.raises(DataError, match="needs item text"):
        ContentRecommender(encoder="hashing").fit(checker)


def test_fold_in_equals_fitted_profile_with_flat_weights(clusters):
    model = ContentRecommender(encoder="hashing", half_life=np.inf).fit(clusters)
    hist = clusters.matrix[:5]
    hist = sp.csr_matrix((np.ones_like(hist.data), hist.indices, hist.indptr), shape=hist.shape)
    np.testing.assert_allclose(model.score_history(hist), model.score(np.arange(5)), atol=1e-5)


def test_profile_text_serves_users_without_history(clusters):
    data = clusters.subset(clusters.user_idx != 3)  # user 3 keeps only attributes (topic)
    plain = ContentRecommender(encoder="hashing").fit(data)
    assert np.isnan(plain.score(np.array([3]))).all()
    with_profile = ContentRecommender(encoder="hashing", profile_weight=0.3).fit(data)
    assert np.isfinite(with_profile.score(np.array([3]))).all()


def test_add_items_uses_the_fit_template(clusters):
    model = ContentRecommender(encoder="hashing").fit(clusters)
    row = clusters.catalog.iloc[[0]]
    (new,) = model.add_items(row)
    np.testing.assert_allclose(model.item_embeddings_[new], model.item_embeddings_[0], atol=1e-6)
    assert model.seen_.shape == (clusters.n_users, clusters.n_items + 1)
