"""Planted-structure datasets: a checkerboard and topic clusters with topic-worded item text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lumenrec._random import check_random_state
from lumenrec.data.dataset import Dataset
from lumenrec.data.io import from_pandas
from lumenrec.data.vocab import IdIndex
from lumenrec.types import Seed

__all__ = ["TOPICS", "block_clusters", "checkerboard"]

#: Topic name → words used to write item titles and descriptions.
TOPICS: dict[str, tuple[str, ...]] = {
    "hiking": ("trail", "backpack", "boots", "tent", "summit", "compass", "trekking", "campfire"),
    "cooking": ("recipe", "skillet", "spices", "kitchen", "baking", "knife", "sauce", "oven"),
    "jazz": (
        "saxophone",
        "trumpet",
        "swing",
        "bebop",
        "improvisation",
        "vinyl",
        "quartet",
        "blues",
    ),
    "space": ("galaxy", "rocket", "astronaut", "telescope", "planet", "nebula", "orbit", "comet"),
    "gardening": (
        "seeds",
        "compost",
        "roses",
        "greenhouse",
        "soil",
        "pruning",
        "tulips",
        "watering",
    ),
    "photography": (
        "camera",
        "lens",
        "aperture",
        "tripod",
        "portrait",
        "shutter",
        "exposure",
        "film",
    ),
    "skincare": (
        "moisturizer",
        "serum",
        "sunscreen",
        "cleanser",
        "lotion",
        "retinol",
        "toner",
        "mask",
    ),
    "chess": (
        "opening",
        "endgame",
        "gambit",
        "knight",
        "bishop",
        "checkmate",
        "tournament",
        "pawn",
    ),
}
_ADJECTIVES = (
    "classic",
    "modern",
    "essential",
    "deluxe",
    "compact",
    "practical",
    "premium",
    "handy",
)


def checkerboard(n: int = 40, name: str = "checkerboard") -> Dataset:
    """``n`` users × ``n`` items; user u interacted with item i iff ``u % 2 == i % 2``.

    A model with any collaborative signal ranks a withheld same-parity item first.
    """
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    mask = (u % 2) == (i % 2)
    vocab = IdIndex(range(n))
    return Dataset(vocab, IdIndex(range(n)), u[mask], i[mask], name=name)


def block_clusters(
    n_topics: int = 4,
    n_users: int = 200,
    n_items: int = 120,
    *,
    density: float = 0.15,
    noise: float = 0.02,
    random_state: Seed = 0,
    name: str = "block_clusters",
) -> Dataset:
    """Users and items grouped into topics; users mostly interact with their topic's items.

    Items carry a ``title``, ``description`` and ``topic`` in the catalogue, worded from
    :data:`TOPICS`, so text models can recover the structure too. Users carry their
    ``topic`` as an attribute. Timestamps increase with the event order.

    Parameters
    ----------
    n_topics : int
        At most ``len(TOPICS)`` (8).
    density : float
        Probability that a user interacted with a given item of their own topic.
    noise : float
        Probability of an interaction with an item of another topic.
    """
    names = list(TOPICS)[:n_topics]
    if not 1 <= n_topics <= len(TOPICS):
        from lumenrec.errors import ConfigError

        msg = f"n_topics must be in [1, {len(TOPICS)}] (got {n_topics})"
        raise ConfigError(msg)
    rng = check_random_state(random_state)
    user_topic = np.arange(n_users) % n_topics
    item_topic = np.arange(n_items) % n_topics
    prob = np.where(user_topic[:, None] == item_topic[None, :], density, noise)
    hits = rng.random((n_users, n_items)) < prob
    # every user gets at least two items of their topic
    for u in range(n_users):
        own = np.flatnonzero(item_topic == user_topic[u])
        hits[u, rng.choice(own, size=min(2, len(own)), replace=False)] = True
    users, items = np.nonzero(hits)
    order = rng.permutation(len(users))
    df = pd.DataFrame(
        {
            "user_id": [f"u{x}" for x in users[order]],
            "item_id": [f"i{x}" for x in items[order]],
            "rating": rng.integers(3, 6, size=len(users)).astype(float),
            "timestamp": 1_600_000_000 + np.arange(len(users)) * 60,
        }
    )
    catalog = []
    for i in range(n_items):
        topic = names[item_topic[i]]
        words = rng.choice(TOPICS[topic], size=3, replace=False)
        adj = _ADJECTIVES[i % len(_ADJECTIVES)]
        catalog.append(
            {
                "item_id": f"i{i}",
                "title": f"{adj.title()} {words[0]} {words[1]} no. {i}",
                "description": f"A {adj} {topic} item with {words[0]}, {words[1]} and {words[2]}.",
                "topic": topic,
            }
        )
    user_attrs = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(n_users)], "topic": [names[t] for t in user_topic]}
    )
    data = from_pandas(df, items=pd.DataFrame(catalog), users=user_attrs, name=name)
    data.catalog.attrs["text_fields"] = ["title", "description"]
    return data
