"""S5 (SERVICE.md 4.4): no pickle, ever.

Two gates:

- **static**: every call in ``src/`` is parsed (``ast``) and deserialisers that can run code are
  refused: ``pickle``/``cPickle``/``dill``/``cloudpickle``/``marshal``/``shelve`` loads,
  ``joblib.load``, ``pandas.read_pickle``, ``yaml.load``, ``torch.load`` without
  ``weights_only=True`` and ``np.load`` without ``allow_pickle=False``;
- **dynamic**: a pickle whose ``__reduce__`` creates a sentinel file replaces, in turn, every
  file of a published model version (pipeline, model, HNSW index and label files, neural
  ``weights.safetensors``), with its sha256 in the manifest updated so the checksum passes;
  loading through the registry must fail with an :class:`ArtifactError` and the sentinel must
  not exist.
"""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: modules whose load functions unpickle (or execute) their input
_PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve"}
_PICKLE_CALLS = {"load", "loads", "Unpickler", "open"}


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str) -> object:
    """The constant value of keyword ``name`` (``...`` when absent or not a constant)."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else ...
    return ...


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Findings ``file:line: reason`` for the deserialisers S5 forbids in ``source``."""
    tree = ast.parse(source, filename)
    found = []
    aliases: dict[str, str] = {}  # local name -> module it imports (import numpy as np)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            for alias in node.names:
                if root in _PICKLERS or (root == "joblib" and alias.name == "load"):
                    found.append(
                        f"{filename}:{node.lineno}: from {node.module} import {alias.name}"
                    )
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if not name:
            continue
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        module, _, func = full.rpartition(".")
        where = f"{filename}:{node.lineno}: {name}("
        unpickles = (
            (module.split(".")[0] in _PICKLERS and func in _PICKLE_CALLS)
            or (module == "joblib" and func == "load")
            or (module == "pandas" and func == "read_pickle")
        )
        if unpickles:
            found.append(f"{where} unpickles")
        elif module == "yaml" and func in ("load", "load_all", "unsafe_load", "full_load"):
            found.append(f"{where} can build arbitrary objects; use yaml.safe_load")
        elif module == "torch" and func == "load" and _keyword(node, "weights_only") is not True:
            found.append(f"{where} without weights_only=True")
        elif module == "numpy" and func == "load" and _keyword(node, "allow_pickle") is not False:
            found.append(f"{where} without allow_pickle=False")
    return found


def test_the_checker_catches_every_forbidden_form():
    bad = """
import pickle, joblib, yaml, torch
import numpy as np
import pandas as pd
from pickle import loads
from dill import load as dload
pickle.load(f); pickle.loads(b); joblib.load(p); yaml.load(s); torch.load(p)
torch.load(p, weights_only=False); np.load(p); np.load(p, allow_pickle=True)
pd.read_pickle(p); loads(b)
"""
    findings = unsafe_calls(bad)
    assert len(findings) == 12, "\n".join(findings)
    good = """
import numpy as np, torch, yaml
np.load(p, allow_pickle=False); torch.load(p, weights_only=True); yaml.safe_load(s)
json.loads(s); np.save(fh, a, allow_pickle=False)
"""
    assert unsafe_calls(good) == []


def test_s5_static_gate_over_src():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"no sources found under {SRC}"
    findings = [f for path in files for f in unsafe_calls(path.read_text(), str(path))]
    assert not findings, "deserialisers that can run code:\n" + "\n".join(findings)


def test_pyarrow_is_past_the_pickled_extension_type_fix():
    """CVE-2023-47248: pyarrow < 14.0.1 unpickled PyExtensionType metadata from Parquet/IPC
    files, and the registry reads Parquet vocabularies and catalogues."""
    import pyarrow

    major, minor, patch = (int(p) for p in pyarrow.__version__.split(".")[:3])
    assert (major, minor, patch) >= (14, 0, 1), pyarrow.__version__


# -- dynamic gate: a malicious pickle under every file name the loaders read -----------------
class _Boom:
    """Unpickling this creates the sentinel file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _published(root: Path, pipeline) -> Path:
    from lumenrec.serving.registry import ModelRegistry

    ModelRegistry(root).publish(pipeline)
    return root


@pytest.fixture(scope="module")
def registries(tmp_path_factory, clusters) -> dict[str, Path]:
    """Published versions whose artifacts hold every kind of file a loader reads: a factor
    model with its HNSW index (faiss file + .npy labels) and a neural model (safetensors)."""
    pytest.importorskip("fastapi")
    from lumenrec.models.als import ImplicitALS
    from lumenrec.pipeline import RecommendPipeline

    base = tmp_path_factory.mktemp("s5")
    out = {}
    if _has("faiss"):
        als = RecommendPipeline.fit(ImplicitALS(n_factors=8, random_state=0), clusters)
        als.use_ann()
        out["als-hnsw"] = _published(base / "als", als)
    if _has("torch") and _has("safetensors"):
        from lumenrec.models.multvae import MultVAE

        vae = MultVAE(
            hidden_dim=16, latent_dim=8, n_epochs=1, refit=False, valid_fraction=0.0,
            random_state=0, progress=False,
        )  # fmt: skip
        out["multvae"] = _published(base / "vae", RecommendPipeline.fit(vae, clusters))
    return out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _swap_in(path: Path, blob: bytes) -> None:
    """Replace ``path`` and update its sha256 in the manifest beside it (checksums pass)."""
    path.write_bytes(blob)
    if path.name == "manifest.json":
        return
    manifest = path.parent / "manifest.json"
    body = json.loads(manifest.read_text())
    assert path.name in body["files"], f"{path.name} is read but not covered by the manifest"
    body["files"][path.name] = hashlib.sha256(blob).hexdigest()
    manifest.write_text(json.dumps(body))


def _payloads(name: str, sentinel: Path) -> dict[str, bytes]:
    raw = pickle.dumps(_Boom(str(sentinel)))
    out = {"raw pickle": raw}
    if name.endswith((".npy", ".npz")):  # a valid numpy file whose object array is a pickle
        import io

        buf = io.BytesIO()
        evil = np.array([_Boom(str(sentinel))], dtype=object)
        if name.endswith(".npy"):
            np.save(buf, evil, allow_pickle=True)
        else:
            np.savez(buf, evil=evil)
        out["numpy object array"] = buf.getvalue()
    return out


def test_s5_malicious_pickle_under_every_artifact_file_never_runs(registries, tmp_path):
    from lumenrec.errors import ArtifactError
    from lumenrec.serving.registry import ModelRegistry

    if not registries:
        pytest.skip("needs faiss-cpu or torch + safetensors")
    sentinel = tmp_path / "pwned"
    seen: set[str] = set()
    for kind, root in registries.items():
        version = root / "versions" / "v1"
        files = sorted(p.relative_to(version) for p in version.rglob("*") if p.is_file())
        seen.update(p.name for p in files)
        for rel in files:
            for label, blob in _payloads(rel.name, sentinel).items():
                work = tmp_path / "work"
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(root, work)
                _swap_in(work / "versions" / "v1" / rel, blob)
                with pytest.raises(ArtifactError, match=r"corrupt|unreadable|incompatible") as err:
                    ModelRegistry(work).load()
                assert "\n" not in str(err.value), (kind, rel)
                assert not sentinel.exists(), f"{kind}: {rel} ({label}) ran the pickle"
    expected = {"manifest.json", "arrays.npz", "vocab-users.parquet", "vocab-items.parquet"}
    if "als-hnsw" in registries:
        expected |= {"ann-hnsw.faiss", "ann-labels.npy"}
    if "multvae" in registries:
        expected |= {"weights.safetensors"}
    assert expected <= seen, f"artifact files not covered: {expected - seen}"
