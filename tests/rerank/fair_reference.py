"""Random FA*IR cases and LensKit's answers: ``tests/rerank/data/fair_lenskit.json``.

LensKit (``lenskit.reranking.FAIRReranker``, 2025.8) pins pandas 2.x, which the project venv
does not have, so the reference lists are produced once in a separate environment and
stored; ``test_fair_lenskit.py`` compares against the stored lists always and against a
live LensKit when it is importable. Regenerate with::

    python -m venv /tmp/lkvenv && /tmp/lkvenv/bin/pip install lenskit==2025.8.1
    /tmp/lkvenv/bin/python tests/rerank/fair_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).with_name("data") / "fair_lenskit.json"


def random_cases(n_cases: int = 300, seed: int = 20240801) -> list[dict[str, Any]]:
    """Candidate lists with protected flags, k, p and alpha (shared with the test)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n_cases):
        n = int(rng.integers(1, 121))
        rate = float(rng.choice([0.0, 0.05, 0.2, 0.4, 0.6, 0.9, 1.0]))
        cases.append(
            {
                "items": rng.choice(10_000, size=n, replace=False).tolist(),
                "protected": (rng.random(n) < rate).tolist(),
                "k": int(rng.integers(1, 61)),
                "p": float(rng.choice([0.1, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9])),
                "alpha": float(rng.choice([0.01, 0.05, 0.1, 0.15])),
            }
        )
    return cases


def lenskit_lists(cases: list[dict[str, Any]]) -> list[list[int]]:
    """Run LensKit's FAIRReranker(n=k, p, alpha) on every case."""
    from lenskit.data import DatasetBuilder, ItemList
    from lenskit.reranking import FAIRReranker, FAIRRerankerConfig

    out = []
    for case in cases:
        items = np.asarray(case["items"], dtype=np.int64)
        builder = DatasetBuilder()
        builder.add_entities("item", items)
        builder.add_scalar_attribute("item", "protected", items, np.asarray(case["protected"]))
        ranker = FAIRReranker(FAIRRerankerConfig(n=case["k"], p=case["p"], alpha=case["alpha"]))
        ranker.train(builder.build())
        scores = np.linspace(1.0, 0.0, items.size)
        ranked = ranker(ItemList(item_ids=items, scores=scores, ordered=True))
        out.append([int(i) for i in ranked.ids()])
    return out


def main() -> None:
    import lenskit

    cases = random_cases()
    lists = lenskit_lists(cases)
    payload = {
        "source": f"lenskit {lenskit.__version__} lenskit.reranking.FAIRReranker(n=k, p, alpha)",
        "generator": "tests/rerank/fair_reference.py random_cases(300, seed=20240801)",
        "cases": [{**c, "lenskit": ranked} for c, ranked in zip(cases, lists, strict=True)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
