"""What the dashboard pages show, read from the service (no HTTP here): health, registry,
catalogue search, and a user's list under the per-request knobs, previewed without logging."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lumenrec._post_rank import Explore, parse_chain
from lumenrec.controls import UserControls
from lumenrec.errors import ArtifactError, DataError
from lumenrec.serving.routers.recommend import rerank_spec
from lumenrec.serving.store import StoreError

__all__ = [
    "EXPLORE_CHOICES",
    "ID_MAX",
    "K_LIMIT",
    "explore_options",
    "health",
    "int_param",
    "parse_knobs",
    "ranked_list",
    "registry_info",
    "search_catalogue",
    "user_view",
]

K_LIMIT = 100
ID_MAX = 256
#: Exploration policies the user page offers besides the service's own configuration.
EXPLORE_CHOICES = (
    "epsilon-greedy(epsilon=0.1)",
    "softmax(temperature=0.5)",
    "thompson",
    "greedy",
)


def health(service: Any, settings: Any, metrics: Any) -> dict[str, Any]:
    """What the Health card shows: readiness, the model serving, retrieval, exploration."""
    pipeline = service.pipeline
    exploration = []
    if settings.explore_default:
        exploration.append(f"default {settings.explore_default}")
    if settings.explore_split:
        exploration.append(f"split {settings.explore_split}")
    if settings.log_impressions and not exploration:
        exploration.append("greedy lists logged")
    out: dict[str, Any] = {
        "ready": pipeline is not None,
        "last_reload_error": service.last_reload_error,
        "require_read_key": settings.require_read_key,
        "exploration": "; ".join(exploration) or None,
        "started_at": metrics.started_at,
        "loaded_at": metrics.model_loaded_at,
    }
    if pipeline is not None:
        model = type(pipeline.model).__name__
        comps = getattr(pipeline.model, "components", None)
        if comps:
            model += " (" + ", ".join(f"{k}: {type(v).__name__}" for k, v in comps.items()) + ")"
        dataset = pipeline.metadata.get("dataset")
        out.update(
            serving=pipeline.version,
            model=model + (f" on {dataset}" if dataset else ""),
            shape=f"{pipeline.n_users:,} × {pipeline.n_items:,}",
            trained_at=pipeline.trained_at,
            retrieval=pipeline.retrieval,
        )
    return out


def registry_info(service: Any) -> dict[str, Any]:
    """Published versions, the ``current`` pointer, the version serving and the last 20
    registry events of the store (newest first)."""
    pipeline = service.pipeline
    out: dict[str, Any] = {
        "versions": [],
        "current": None,
        "serving": None if pipeline is None else pipeline.version,
        "log": [],
    }
    registry = service.registry
    if registry is not None:
        try:
            out["versions"] = registry.versions()
            out["current"] = registry.current()
        except (ArtifactError, OSError) as err:
            out["error"] = str(err).replace(str(registry.root), "MODEL_DIR")
    if service.store is not None:
        try:
            out["log"] = list(reversed(service.store.model_log()[-20:]))
        except StoreError:
            out["log"] = []
    return out


def _titles(pipeline: Any, idx: np.ndarray) -> list[str]:
    explainer = pipeline.explainer()
    return [explainer.label(int(i)) for i in idx]


def _details(pipeline: Any, ids: list[str]) -> list[str]:
    """Short side information of items (catalogue columns other than title/description)."""
    catalog = pipeline.catalog
    if catalog is None or not ids:
        return [""] * len(ids)
    cols = [c for c in catalog.columns if c not in ("title", "description")][:3]
    if not cols:
        return [""] * len(ids)
    try:
        rows = catalog.reindex(ids)[cols]
    except ValueError:  # a catalogue with duplicate ids: no details rather than an error
        return [""] * len(ids)
    return [
        " · ".join(f"{c}: {v}" for c, v in zip(cols, row, strict=True) if isinstance(v, str) and v)[
            :160
        ]
        for row in rows.itertuples(index=False)
    ]


def search_catalogue(
    service: Any, encoder_for: Callable[[Any], Any], query: str, k: int
) -> dict[str, Any]:
    """Items matching ``query`` by title words and, with a text model, by meaning.

    Parameters
    ----------
    service : Service
    encoder_for : callable
        The text encoder of a text model (built once per model by the caller).
    query : str
    k : int
        Results per list.

    Returns
    -------
    dict
        ``query``, ``k``, ``title`` and ``meaning`` (None without a text model) hit lists of
        ``{item_id, title, details[, score]}``, and ``meaning_note``.
    """
    pipeline, _ = service.require()
    out: dict[str, Any] = {"query": query, "k": k, "title": [], "meaning": None}
    if not query:
        out["meaning_note"] = ""
        return out
    deleted = set(pipeline.deleted_items())
    catalog = pipeline.catalog
    words = query.lower().split()
    if catalog is not None and "title" in catalog.columns:
        titles = catalog["title"].astype(str).str.lower()
        mask = np.ones(len(titles), bool)
        for word in words:
            mask &= titles.str.contains(word, regex=False).to_numpy()
        found = [str(i) for i in catalog.index[mask] if str(i) not in deleted]
    else:
        found = [str(i) for i in pipeline.items.ids if all(w in str(i).lower() for w in words)]
        found = [i for i in found if i not in deleted]
    idx = pipeline.items.index(found, missing="ignore")
    keep = idx >= 0
    idx, found = idx[keep], [f for f, ok in zip(found, keep, strict=True) if ok]
    popularity = pipeline.features().popularity
    order = np.lexsort((idx, -popularity[idx]))[:k] if len(idx) else np.empty(0, np.int64)
    hit_ids = [found[i] for i in order]
    hit_idx = idx[order]
    out["title"] = [
        {"item_id": i, "title": t, "details": d}
        for i, t, d in zip(
            hit_ids, _titles(pipeline, hit_idx), _details(pipeline, hit_ids), strict=True
        )
    ]
    text = pipeline.text_model()
    emb = getattr(text, "item_embeddings_", None)
    if text is None or emb is None:
        out["meaning_note"] = (
            "This model has no text component (no language-model embeddings): title search only."
        )
        return out
    vector = np.asarray(encoder_for(text).encode([query]), np.float32)[0]
    n = min(len(emb), pipeline.n_items)
    scores = np.asarray(emb[:n] @ vector, np.float64)
    gone = pipeline.items.index(sorted(deleted), missing="ignore") if deleted else []
    for i in gone:
        if 0 <= i < n:
            scores[i] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    top = top[np.isfinite(scores[top]) & (scores[top] > 0)]  # unrelated items are left out
    ids = [str(i) for i in pipeline.items.lookup(top)]
    out["meaning"] = [
        {"item_id": i, "title": t, "score": float(scores[j]), "details": d}
        for i, t, j, d in zip(
            ids, _titles(pipeline, top), top, _details(pipeline, ids), strict=True
        )
    ]
    encoder = getattr(text, "encoder", None)
    out["meaning_note"] = (
        "Cosine similarity between the query and each item's text, both embedded by the "
        f"pipeline's text model{f' ({encoder})' if isinstance(encoder, str) else ''}."
    )
    return out


def explore_options(settings: Any) -> list[tuple[str, str]]:
    """``(value, label)`` of the exploration choices: as served, off, configured, standard."""
    configured = _configured(settings)
    served = "as served (" + ("; ".join(configured) if configured else "no exploration") + ")"
    options = [("", served), ("off", "off: the recommender's own list")]
    for spec in dict.fromkeys([*configured, *EXPLORE_CHOICES]):
        options.append((spec, spec))
    return options


def ranked_list(
    service: Any, user_id: str, k: int, spec: str | None, assigned: tuple[str, str] | None
) -> dict[str, Any]:
    """The user's list as ``GET /recommend`` would rank it, without logging or caching it."""
    pipeline, store = service.require()
    uid = service.uid(user_id)
    chain = parse_chain(spec)
    request = _explore_request(service, assigned[0]) if assigned else None
    try:
        controls = store.user_controls(uid)
    except StoreError:
        controls = UserControls()
    try:
        history, profile, deleted = store.user_context(
            uid,
            after_seq=pipeline.events_watermark,
            limit=service.settings.history_limit,
            deleted_since=pipeline.trained_at,
        )
    except StoreError:
        history, profile, deleted = [], None, False
    ranked = pipeline.recommend(
        uid,
        k,
        history=history,
        profile=profile,
        forget=deleted,
        rerank=chain,
        controls=controls,
        explain=True,
        explore=request,
    )
    idx = pipeline.items.index([i["item_id"] for i in ranked.items], missing="ignore")
    titles = _titles(pipeline, np.maximum(idx, 0))
    items = [
        {**item, "title": title if i >= 0 else item["item_id"]}
        for item, title, i in zip(ranked.items, titles, idx, strict=True)
    ]
    out = {
        "items": items,
        "model_version": pipeline.version or "unversioned",
        "fallback": ranked.fallback,
        "fold_in": ranked.fold_in,
        "rerank": ranked.rerank,
    }
    if assigned:
        out["policy"], out["arm"] = assigned
    return out


def _configured(settings: Any) -> list[str]:
    """Policy specs the service itself serves with (default and split arms)."""
    specs = [settings.explore_default] if settings.explore_default else []
    if settings.explore_split:
        from lumenrec.serving.exploration import parse_split

        specs += [spec for spec, _ in parse_split(settings.explore_split)]
    return specs


def _explore_request(service: Any, spec: str) -> Explore | None:
    """The policy for a preview: the service's live one for a configured spec (its learned
    state, read only), else a fresh one that the service never sees (nothing to save)."""
    settings = service.settings
    if service.explorer is not None and (spec in _configured(settings) or spec == "greedy"):
        return service.explorer.request(spec)
    from lumenrec.explore import make_policy

    return Explore(make_policy(spec), np.random.default_rng(), settings.explore_candidates)


def parse_knobs(params: Any, options: list[tuple[str, str]]) -> dict[str, Any]:
    """The user page's query parameters, checked (a DataError names the bad one)."""
    knobs: dict[str, Any] = {"user_id": (params.get("user_id") or "").strip()}
    user = knobs["user_id"]
    if user and (len(user) > ID_MAX or not user.isprintable()):
        msg = f"user_id must be 1–{ID_MAX} printable characters"
        raise DataError(msg)
    knobs["k"] = int_param(params.get("k"), "k", 10, K_LIMIT)
    for name in ("diversity", "calibration", "fairness"):
        raw = (params.get(name) or "").strip()
        if not raw:
            knobs[name] = None
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            msg = f"{name} must be a number in [0, 1] (got {raw[:20]!r})"
            raise DataError(msg)
        knobs[name] = value
    explore = params.get("explore") or ""
    if explore not in {value for value, _ in options}:
        msg = f"explore must be one of {[v for v, _ in options if v]} or empty"
        raise DataError(msg)
    knobs["explore"] = explore
    return knobs


def int_param(raw: str | None, name: str, default: int, top: int) -> int:
    """An integer query parameter in 1–``top`` (``default`` when empty), else a DataError."""
    text = (raw or "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= top:
        msg = f"{name} must be an integer in 1–{top} (got {text[:20]!r})"
        raise DataError(msg)
    return int(text)


def user_view(service: Any, knobs: dict[str, Any]) -> dict[str, Any]:
    """The user page's data: the list under the knobs, the plain list's ranks when a knob is
    set (``baseline``, ``changed``) and the profile."""
    user_id, k = knobs["user_id"], knobs["k"]
    spec = rerank_spec(None, knobs["diversity"], knobs["calibration"], knobs["fairness"])
    explorer = service.explorer
    choice = knobs["explore"]
    if choice == "off" or explorer is None:
        assigned = None
    elif choice:
        assigned = (choice, "explicit")
    else:
        assigned = explorer.assign(service.uid(user_id), None)
    listing = ranked_list(service, user_id, k, spec, assigned)
    view: dict[str, Any] = {
        "user_id": user_id,
        "listing": listing,
        "spec": spec,
        "profile": service.profile(user_id),
    }
    if spec or assigned:
        plain = ranked_list(service, user_id, k, None, None)
        view["baseline"] = {item["item_id"]: item["rank"] for item in plain["items"]}
        view["changed"] = sum(
            view["baseline"].get(item["item_id"]) != item["rank"] for item in listing["items"]
        )
    return view
