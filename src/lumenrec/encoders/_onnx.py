"""ONNX Runtime path for sentence-transformers models: one-off export (+ dynamic int8), then inference.

The export needs torch, onnx and onnxscript once per model; afterwards inference needs only
``onnxruntime`` and ``tokenizers`` (no torch import). Why not sentence-transformers' own
``backend="onnx"``: it needs ``optimum-onnx``, whose only release pins transformers < 4.58 and
would downgrade sentence-transformers to 5.x, so we export with ``torch.onnx`` and quantise
with ``onnxruntime.quantization`` directly (per-channel int8 weights, dynamic activations).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ArtifactError, ConfigError, missing_dependency

__all__ = ["OnnxSentenceModel", "export_onnx"]

log = logging.getLogger(__name__)

_FORMAT = 1
_CONFIG = "lumenrec_onnx.json"
_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}


class OnnxSentenceModel:
    """Tokenizer + ONNX Runtime session + pooling for one exported model directory.

    Parameters
    ----------
    folder : Path
        A directory written by :func:`export_onnx`.
    backend : {"onnx", "onnx-int8"}
        fp32 graph or the dynamically quantised int8 graph.
    """

    def __init__(self, folder: Path, backend: str) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as err:
            missing = missing_dependency("onnxruntime", "text-fast")
            raise missing from err
        config = json.loads((folder / _CONFIG).read_text())
        if config.get("format") != _FORMAT:
            msg = f"ONNX export in {folder} has format {config.get('format')}; delete the folder"
            raise ArtifactError(msg)
        self.dim = int(config["dim"])
        self.pooling = str(config["pooling"])
        self.input_names = list(config["input_names"])
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(int(config["max_seq_length"]))
        tokenizer.enable_padding(pad_id=int(config["pad_id"]), pad_token=str(config["pad_token"]))
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.per_text = backend == "onnx-int8"
        self.session = ort.InferenceSession(
            str(folder / _FILES[backend]), options, providers=["CPUExecutionProvider"]
        )

    def encode_batch(self, texts: list[str]) -> NDArray[np.float32]:
        """Pooled (not yet normalised) embeddings, shape (len(texts), dim), float32.

        The int8 graph quantises activations dynamically with one scale per input tensor,
        so a text's vector would depend on the other texts of its batch; it therefore runs
        one text per call (no padding either, which on CPU is as fast as batching).
        """
        if self.per_text and len(texts) > 1:
            return np.concatenate([self._run([t]) for t in texts], axis=0)
        return self._run(texts)

    def _run(self, texts: list[str]) -> NDArray[np.float32]:
        encodings = self.tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {name: arrays[name] for name in self.input_names}
        hidden = self.session.run(None, feeds)[0]
        if self.pooling == "cls":
            return np.ascontiguousarray(hidden[:, 0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return (summed / np.maximum(weights.sum(axis=1), 1.0)).astype(np.float32)


def export_onnx(model: Any, folder: Path) -> Path:
    """Export a loaded SentenceTransformer to ``folder`` (fp32 + int8 graphs, tokenizer, config).

    The files are built in a temporary sibling directory and moved into place with one
    ``rename``, so concurrent exporters never see a half-written folder (the loser's copy is
    discarded).

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        Modules must be Transformer, Pooling (mean or CLS) and optionally Normalize.
    folder : Path
        Destination, e.g. ``<cache_dir>/all-MiniLM-L6-v2-53aa51172d14``.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    ConfigError
        The model has another module layout (use ``backend="torch"``).
    MissingDependencyError
        onnx, onnxscript or onnxruntime is missing.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        missing = missing_dependency("onnxruntime, onnx and onnxscript", "text-fast")
        raise missing from err
    config = _describe(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        transformer = model[0]
        hf_model = transformer.auto_model.eval()
        names = config["input_names"]
        example = transformer.tokenizer(["an example text", "a"], padding=True, return_tensors="pt")
        args = tuple(example[name].to(hf_model.device) for name in names)
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=8192)
        module = _hidden_states(hf_model, names)
        captured = io.StringIO()
        torch_onnx_log = logging.getLogger("torch.onnx")
        old_level = torch_onnx_log.level
        torch_onnx_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(captured), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    args,
                    str(tmp / "raw.onnx"),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_shapes=(tuple({0: batch, 1: seq} for _ in names),),
                    dynamo=True,
                    external_data=False,
                )
        finally:
            torch_onnx_log.setLevel(old_level)
        log.debug("torch.onnx.export output:\n%s", captured.getvalue())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(
                str(tmp / "raw.onnx"), str(tmp / _FILES["onnx"]), skip_symbolic_shape=True
            )
            quantize_dynamic(
                str(tmp / _FILES["onnx"]),
                str(tmp / _FILES["onnx-int8"]),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"MatMulConstBOnly": True},
            )
        (tmp / "raw.onnx").unlink()
        (tmp / "tokenizer.json").write_text(transformer.tokenizer.backend_tokenizer.to_str())
        (tmp / _CONFIG).write_text(json.dumps(config, indent=2))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / _CONFIG).is_file():
                raise
            log.debug("another process exported %s first; keeping its copy", folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def is_exported(folder: Path) -> bool:
    """True when ``folder`` holds a complete export (the config file is written last)."""
    return (folder / _CONFIG).is_file()


def _describe(model: Any) -> dict[str, Any]:
    kinds = [type(m).__name__ for m in model]
    if (
        len(kinds) not in (2, 3)
        or kinds[:2] != ["Transformer", "Pooling"]
        or kinds[2:]
        not in (
            [],
            ["Normalize"],
        )
    ):
        msg = (
            f"the ONNX backends support Transformer → Pooling (→ Normalize) models; this one has "
            f"{kinds}; use backend='torch'"
        )
        raise ConfigError(msg)
    pooling = getattr(model[1], "pooling_mode", None)
    if not isinstance(pooling, str):
        cfg = model[1].get_config_dict()
        modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
        pooling = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
            modes[0] if len(modes) == 1 else "", "other"
        )
    if pooling not in ("mean", "cls"):
        msg = (
            f"the ONNX backends support mean or CLS pooling (got {pooling!r}); use backend='torch'"
        )
        raise ConfigError(msg)
    tokenizer = model[0].tokenizer
    names = [
        n
        for n in tokenizer.model_input_names
        if n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    get_dim = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return {
        "format": _FORMAT,
        "dim": int(get_dim()),
        "pooling": pooling,
        "max_seq_length": int(model.max_seq_length),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "input_names": names,
        "quantization": "onnxruntime dynamic int8, per-channel QInt8 weights, MatMulConstBOnly",
    }


def _hidden_states(hf_model: Any, names: list[str]) -> Any:
    """A torch module mapping positional inputs to ``last_hidden_state`` (for the exporter)."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf_model = hf_model

        def forward(self, *inputs: Any) -> Any:
            kwargs = dict(zip(names, inputs, strict=True))
            return self.hf_model(**kwargs).last_hidden_state

    return HiddenStates().eval()
