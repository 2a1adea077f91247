"""SASRec id-only vs text-unified on P2 (leave-one-out, full ranking), mean ± std over seeds.

Usage::

    python benchmarks/bench_sasrec.py --dataset amazon-beauty --seeds 0,1,2
    python benchmarks/bench_sasrec.py --dataset amazon-toys --seeds 0 --variants text

The P2 split is deterministic; seeds change the model's initialisation, batch order and
negatives. Each model is fitted on ``train_full`` and holds out every user's last training
event (the protocol's validation item) for early stopping on NDCG@10; the test query is the
whole history. No hyper-parameter is chosen on test: the settings below were fixed before
the runs (the paper's width/depth/dropout for sparse Amazon data), except the number of
negatives: 2048 beat 512 on validation NDCG@10 (0.0579 vs 0.0567, id-only, seed 0), and
``refit=True`` (retrain on every event for the best epoch count, as every other model is
fitted on train ∪ valid) was fixed in advance.
The JSON adds, per run, the epochs run, the best epoch and seconds per training epoch, and
the published anchors of BENCHMARKS.md. Writes ``benchmarks/results/p2_sasrec_<dataset>.json``; variants run in parallel processes
(``--variants id --name A`` and ``--variants text --name B``) are joined with
``--merge results/A.json results/B.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from _common import data_dir, hardware, write_json

from lumenrec.cli._registry import default_cache
from lumenrec.datasets import load
from lumenrec.evaluation.runner import compare
from lumenrec.models.sasrec import SASRec

#: Fixed settings (SASRec paper on Amazon: d=50-64, 2 blocks, dropout 0.5, maxlen 50).
BASE: dict[str, Any] = {
    "n_factors": 64,
    "n_layers": 2,
    "n_heads": 1,
    "max_length": 50,
    "dropout": 0.5,
    "loss": "sampled",
    "n_negatives": 2048,
    "learning_rate": 1e-3,
    "batch_size": 256,
    "n_epochs": 200,
    "patience": 8,
    "eval_every": 2,
    "refit": True,
}
ANCHORS = {
    "amazon-beauty": {
        "SASRec sampled softmax (independent)": {"ndcg@10": 0.0531, "hr@10": 0.0921},
        "BSARec (reported, highest published)": {"ndcg@10": 0.0611, "hr@10": 0.1008},
        "SASRec BCE (original)": {"ndcg@10": 0.0318, "hr@10": 0.0605},
        "goal (text-fused)": {"ndcg@10": 0.062, "hr@10": 0.102},
    },
    "amazon-toys": {"SASRec sampled softmax (independent)": {"ndcg@10": 0.0580, "hr@10": 0.0970}},
    "amazon-sports": {
        "SASRec sampled softmax (independent)": {"ndcg@10": 0.0314, "hr@10": 0.0569},
        "BSARec (reported)": {"hr@10": 0.0612},
    },
}


def merge(paths: list[str], name: str) -> Path:
    """One record from runs of the variants made separately (e.g. in parallel processes):
    models, runs, aggregates and training logs side by side; the rest from the first file."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    out = dict(records[0])
    fingerprints = {r["dataset"]["fingerprint"] for r in records}
    if len(fingerprints) != 1 or len({json.dumps(r["settings"]) for r in records}) != 1:
        msg = "refusing to merge runs on different data or settings"
        raise SystemExit(msg)
    for key in ("models", "aggregate"):
        out[key] = {k: v for r in records for k, v in r[key].items()}
    for key in ("runs", "training"):
        out[key] = [x for r in records for x in r[key]]
    out["merged_from"] = [Path(p).name for p in paths]
    out["wall_time"] = max(r["wall_time"] for r in records)
    out.pop("created_at", None)
    return write_json(name, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="id,text", help="comma list of id,text")
    ap.add_argument("--params", default="{}", help="JSON overrides of the fixed settings")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--cache", default=None, help="embedding cache (default: the CLI's)")
    ap.add_argument("--name", default=None, help="result file name (default p2_sasrec_<dataset>)")
    ap.add_argument("--merge", nargs="+", default=None, help="result files to merge into --name")
    args = ap.parse_args(argv)
    if args.merge:
        print(merge(args.merge, args.name or f"p2_sasrec_{args.dataset}"))
        return 0
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    params = {**BASE, **json.loads(args.params)}
    data = load(args.dataset, data_dir=data_dir(args.data_dir))
    cache = args.cache or default_cache()
    made: dict[str, list[SASRec]] = {}

    def factory(name: str, extra: dict[str, Any]) -> Any:
        def make() -> SASRec:
            model = SASRec(**params, **extra)
            made.setdefault(name, []).append(model)
            return model

        return make

    variants = {
        "sasrec": factory("sasrec", {}),
        "sasrec-text": factory("sasrec-text", {"text_encoder": args.encoder, "cache": cache}),
    }
    chosen = {
        name: f
        for name, f in variants.items()
        if ("text" if name.endswith("text") else "id") in args.variants.split(",")
    }
    training: list[dict[str, Any]] = []

    def on_result(seed: int, name: str, result: Any, split: Any) -> None:
        model = made[name][-1]
        training.append({"seed": seed, "model": name, **model.history_})
        print(
            f"seed {seed} {name}: ndcg@10 {result.summary['ndcg@10']:.4f} "
            f"hr@10 {result.summary['hr@10']:.4f} {model.history_}",
            file=sys.stderr,
            flush=True,
        )

    cmp = compare(chosen, data, "p2", seeds, on_result=on_result)
    out = dict(cmp.results)
    out["settings"] = params
    out["encoder"] = args.encoder
    out["training"] = training
    out["anchors"] = ANCHORS.get(args.dataset, {})
    out["hardware"] = {**out.get("hardware", {}), **hardware(), "torch_threads": args.threads}
    out["command"] = "python benchmarks/bench_sasrec.py " + " ".join(argv or sys.argv[1:])
    path = write_json(args.name or f"p2_sasrec_{args.dataset}", out)
    for name, metrics in out["aggregate"].items():
        n, h = metrics["ndcg@10"], metrics["hr@10"]
        print(f"{name}: ndcg@10 {n['mean']:.4f} ± {n['std'] or 0:.4f}  hr@10 {h['mean']:.4f}")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
