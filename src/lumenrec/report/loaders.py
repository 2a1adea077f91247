"""Read results JSON files and tell which LumenRec result each one is.

Kinds: ``compare`` (``lumenrec evaluate --json`` and the P1/P2/P4 benchmarks, schema
``lumenrec.compare/1``), ``p5`` (Coat debiasing), ``p6`` (off-policy evaluation), ``p7``
(privacy–utility), ``p8_tradeoffs`` (re-ranking sweeps), ``p8_groups`` (FairRecSys user
groups), ``cold_start``, ``sasrec_vs_recbole`` (training curves side by side) and ``other``
(any other benchmark record: listed with its headline facts). Anything else is refused with
a one-line :class:`~lumenrec.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumenrec.errors import DataError
from lumenrec.types import PathLike

__all__ = ["KINDS", "ResultFile", "detect_kind", "load_results"]

#: Every kind :func:`detect_kind` returns.
KINDS = (
    "compare",
    "p5",
    "p6",
    "p7",
    "p8_tradeoffs",
    "p8_groups",
    "cold_start",
    "sasrec_vs_recbole",
    "other",
)


@dataclass(frozen=True)
class ResultFile:
    """One results file: where it came from, its kind and its parsed content.

    Attributes
    ----------
    name : str
        The file name shown in the report (``results`` for an in-memory dict).
    kind : str
        One of :data:`KINDS`.
    data : dict
        The parsed JSON object.
    """

    name: str
    kind: str
    data: dict[str, Any]


def _has_epsilon_points(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds a list of dicts with an ``epsilon`` key (privacy–utility)."""
    if depth > 4:
        return False
    if isinstance(value, list):
        return any(isinstance(v, Mapping) and "epsilon" in v for v in value[:50]) or any(
            _has_epsilon_points(v, depth + 1) for v in value[:20]
        )
    if isinstance(value, Mapping):
        return any(_has_epsilon_points(v, depth + 1) for v in value.values())
    return False


def detect_kind(data: Any) -> str | None:
    """The kind of a parsed results object, or None when it is not a LumenRec result.

    Parameters
    ----------
    data : object
        Parsed JSON.

    Returns
    -------
    str or None
        One of :data:`KINDS`.
    """
    if not isinstance(data, Mapping):
        return None
    schema = str(data.get("schema", ""))
    protocol = str(data.get("protocol", "")).strip().lower()
    bench = str(data.get("benchmark", "")).strip().lower()
    if schema.startswith("lumenrec.compare/") and isinstance(data.get("aggregate"), Mapping):
        return "compare"
    if protocol == "p5" and isinstance(data.get("aggregate"), Mapping):
        return "p5"
    if protocol == "p6" and isinstance(data.get("bootstrap"), Mapping):
        return "p6"
    if (protocol.startswith("p7") or "privacy" in bench or "p7" in schema) and (
        _has_epsilon_points(data)
    ):
        return "p7"
    if "lambdas" in data and isinstance(data.get("sweeps") or data.get("summary"), Mapping):
        return "p8_tradeoffs"
    if bench.startswith("p8 user groups") and isinstance(data.get("datasets"), Mapping):
        return "p8_groups"
    if bench == "cold_start" and isinstance(data.get("p3"), Mapping):
        return "cold_start"
    if bench.startswith("sasrec: lumenrec vs recbole") and isinstance(data.get("quality"), Mapping):
        return "sasrec_vs_recbole"
    marked = any(key in data for key in ("schema", "benchmark", "protocol"))
    if marked and "created_at" in data:
        return "other"
    return None


def _read(path: Path) -> ResultFile:
    if not path.exists():
        msg = f"results file not found: {path}"
        raise DataError(msg)
    if not path.is_file():
        msg = f"not a LumenRec results file: {path} (not a regular file)"
        raise DataError(msg)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        msg = f"not a LumenRec results file: {path} (not UTF-8 text)"
        raise DataError(msg) from None
    except json.JSONDecodeError as err:
        msg = f"not a LumenRec results file: {path} (invalid JSON at line {err.lineno})"
        raise DataError(msg) from None
    except OSError as err:
        msg = f"cannot read results file {path}: {err.strerror or err}"
        raise DataError(msg) from None
    kind = detect_kind(data)
    if kind is None:
        msg = f"not a LumenRec results file: {path}"
        raise DataError(msg)
    return ResultFile(path.name, kind, dict(data))


def load_results(
    sources: Sequence[PathLike | Mapping[str, Any]] | PathLike | Mapping[str, Any],
) -> list[ResultFile]:
    """Load and classify results files (paths) or results dicts, in order.

    Parameters
    ----------
    sources : path, dict, or sequence of them
        JSON files written by ``lumenrec evaluate --json`` or ``benchmarks/``, or such a
        dict already in memory (named ``results``).

    Returns
    -------
    list of ResultFile

    Raises
    ------
    DataError
        A file is missing, is not JSON, or is not a LumenRec results file; the message is
        one line naming the file.
    """
    if isinstance(sources, Mapping | str | os.PathLike):
        sources = [sources]
    out: list[ResultFile] = []
    for source in sources:
        if isinstance(source, Mapping):
            kind = detect_kind(source)
            if kind is None:
                msg = "not a LumenRec results file: <results dict>"
                raise DataError(msg)
            name = "lumenrec evaluate" if kind in ("compare", "p5") else "results (in memory)"
            out.append(ResultFile(name, kind, dict(source)))
        else:
            out.append(_read(Path(os.fspath(source))))
    if not out:
        msg = "no results files given"
        raise DataError(msg)
    return out
