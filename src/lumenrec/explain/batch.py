"""Reasons for a whole evaluation's lists (``lumenrec evaluate --save-recs``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from lumenrec.explain.explainer import Explainer
from lumenrec.types import Recommendations

__all__ = ["reasons_frame"]

_DEFAULT_ROUTE = {"ContentRecommender": "text", "MostPopular": "popular"}


def reasons_frame(model: Any, recs: Recommendations, train: Any) -> pd.DataFrame:
    """One reason per listed item, aligned with
    :func:`~lumenrec.evaluation.protocol.recommendations_frame` (users, then rank).

    Parameters
    ----------
    model : fitted Recommender
    recs : Recommendations
        Lists of training users (dense indices).
    train : Dataset
        The training part (catalogue titles, popularity).

    Returns
    -------
    DataFrame
        Columns ``reason_kind``, ``reason_method``, ``reason`` (the sentence) and
        ``evidence`` (JSON list of ``{label, item_id, contribution, share}``).
    """
    catalog = getattr(train, "catalog", None)
    ids = [str(i) for i in train.items.ids]
    if catalog is not None and len(catalog) != len(ids):
        catalog = None
    popularity = np.bincount(train.item_idx, minlength=len(ids)).astype(np.float32)
    comps = getattr(model, "components", None) or {}
    text = comps.get(getattr(model, "text", None)) if comps else None
    explainer = Explainer(model, ids, catalog, popularity=popularity, text_model=text)
    default = _DEFAULT_ROUTE.get(type(model).__name__, "cf")
    rows: list[tuple[str, str, str, str]] = []
    for r, user in enumerate(recs.users):
        keep = recs.items[r] >= 0
        items = recs.items[r][keep]
        routes = recs.routes[r][keep] if recs.routes is not None else [default] * len(items)
        reasons = explainer.explain(items, routes, user=int(user)) if len(items) else []
        for reason in reasons:
            evidence = [e.to_dict() for e in reason.evidence]
            rows.append((reason.kind, reason.method, reason.sentence, json.dumps(evidence)))
    return pd.DataFrame(rows, columns=["reason_kind", "reason_method", "reason", "evidence"])
