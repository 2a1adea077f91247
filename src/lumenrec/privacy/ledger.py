"""The privacy budget ledger: what every private training on a dataset has spent.

One JSON file per model registry, ``<model_dir>/privacy-ledger.json``::

    {"format": 1,
     "budgets": {"<dataset fingerprint>/<model name>": {"max_epsilon": 8.0}},
     "entries": [{"fingerprint": ..., "model": ..., "epsilon": ..., "delta": ..., "level": ...,
                  "mechanism": ..., "accountant": ..., "version": ..., "time": ...}, ...]}

Composition is basic (sequential) composition: the spent budget of a (dataset, model) key is
``(Σ ε_i, Σ δ_i)`` over its entries. That bound is simple and always valid; it is loose (RDP or
PRV composition of the underlying mechanisms would give a smaller ε), so it never understates.
The same people are in every model trained on one dataset, so :meth:`PrivacyLedger.spent` also
reports the dataset-wide sum over all models (``model=None``).

:meth:`PrivacyLedger.check` runs before a training starts and raises
:class:`~lumenrec.errors.ConfigError` (writing nothing) when the training's target ε would take
the key past its maximum; :meth:`PrivacyLedger.record` appends an entry after the model is
published. Writes are atomic (temporary file, fsync, ``os.replace``) under an exclusive lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lumenrec.errors import ArtifactError, ConfigError
from lumenrec.privacy.dp import PrivacySpend
from lumenrec.types import PathLike

__all__ = ["LEDGER_FILE", "PrivacyLedger"]

#: File name of the ledger inside a model directory.
LEDGER_FILE = "privacy-ledger.json"
_FORMAT = 1


def _key(fingerprint: str, model: str) -> str:
    return f"{fingerprint}/{model}"


class PrivacyLedger:
    """Budget ledger of one model directory.

    Parameters
    ----------
    model_dir : path
        The registry directory; the ledger is ``model_dir / "privacy-ledger.json"``. Nothing is
        created until :meth:`record` or :meth:`set_max_epsilon` writes.
    """

    def __init__(self, model_dir: PathLike) -> None:
        self.model_dir = Path(model_dir)
        self.path = self.model_dir / LEDGER_FILE

    # -- reading ---------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"format": _FORMAT, "budgets": {}, "entries": []}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            msg = f"privacy ledger {self.path} is unreadable ({err}); refusing to train privately"
            raise ArtifactError(msg) from err
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            msg = f"privacy ledger {self.path} has an unknown format"
            raise ArtifactError(msg)
        return data

    def entries(self, fingerprint: str | None = None, model: str | None = None) -> list[dict]:
        """Recorded trainings, oldest first, optionally of one dataset and/or model."""
        return [
            e
            for e in self._read()["entries"]
            if (fingerprint is None or e["fingerprint"] == fingerprint)
            and (model is None or e["model"] == model)
        ]

    def spent(self, fingerprint: str, model: str | None = None) -> tuple[float, float]:
        """``(Σ ε, Σ δ)`` of a dataset's trainings (of one model, or all models when None)."""
        rows = self.entries(fingerprint, model)
        return (
            float(math.fsum(e["epsilon"] for e in rows)),
            float(math.fsum(e["delta"] for e in rows)),
        )

    def max_epsilon(self, fingerprint: str, model: str) -> float | None:
        """The configured maximum of a (dataset, model) key, or None."""
        budget = self._read()["budgets"].get(_key(fingerprint, model))
        return None if budget is None else float(budget["max_epsilon"])

    def check(
        self,
        fingerprint: str,
        model: str,
        epsilon: float,
        max_epsilon: float | None = None,
    ) -> dict[str, Any]:
        """Refuse a training whose ε would take (dataset, model) past its maximum.

        Parameters
        ----------
        fingerprint : str
            The dataset's fingerprint (``Dataset.fingerprint()``).
        model : str
        epsilon : float
            The training's target ε (an upper bound on what it will spend).
        max_epsilon : float, optional
            The maximum to apply; default: the one stored for this key (none: no maximum).

        Returns
        -------
        dict
            ``spent_epsilon``, ``spent_delta``, ``max_epsilon`` (None when unbounded).

        Raises
        ------
        ConfigError
            When ``spent + epsilon > max_epsilon``; nothing is written.
        """
        limit = self.max_epsilon(fingerprint, model) if max_epsilon is None else max_epsilon
        if limit is not None and (not math.isfinite(limit) or limit <= 0):
            msg = f"max_epsilon must be a finite number > 0 (got {limit!r})"
            raise ConfigError(msg)
        eps, delta = self.spent(fingerprint, model)
        if limit is not None and eps + float(epsilon) > limit + 1e-12:
            msg = (
                f"privacy budget exceeded for model {model!r} on dataset {fingerprint[:12]}: "
                f"{eps:.4g} of max epsilon {limit:g} already spent in {len(self.entries(fingerprint, model))} "
                f"training(s), so a training at epsilon {float(epsilon):g} would reach "
                f"{eps + float(epsilon):.4g}. Nothing was trained (ledger: {self.path})"
            )
            raise ConfigError(msg)
        return {"spent_epsilon": eps, "spent_delta": delta, "max_epsilon": limit}

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with open(self.model_dir / f".{LEDGER_FILE}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{LEDGER_FILE}.", dir=self.model_dir)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2, allow_nan=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def set_max_epsilon(self, fingerprint: str, model: str, max_epsilon: float) -> None:
        """Store the maximum of a (dataset, model) key (used when a check names none)."""
        if not math.isfinite(max_epsilon) or max_epsilon <= 0:
            msg = f"max_epsilon must be a finite number > 0 (got {max_epsilon!r})"
            raise ConfigError(msg)
        with self._locked():
            data = self._read()
            data["budgets"][_key(fingerprint, model)] = {"max_epsilon": float(max_epsilon)}
            self._write(data)

    def record(
        self,
        fingerprint: str,
        model: str,
        spend: PrivacySpend,
        version: str | None = None,
        max_epsilon: float | None = None,
    ) -> dict[str, Any]:
        """Append one training's spend (and re-check the maximum under the lock).

        Parameters
        ----------
        fingerprint, model : str
        spend : PrivacySpend
        version : str, optional
            The registry version the model was published as.
        max_epsilon : float, optional
            Also store this as the key's maximum.

        Returns
        -------
        dict
            The entry written.

        Raises
        ------
        ConfigError
            When a concurrent training spent the budget first.
        """
        with self._locked():
            self.check(fingerprint, model, spend.epsilon, max_epsilon)
            data = self._read()
            if max_epsilon is not None:
                data["budgets"][_key(fingerprint, model)] = {"max_epsilon": float(max_epsilon)}
            entry = {
                "fingerprint": fingerprint,
                "model": model,
                **spend.as_dict(),
                "version": version,
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            data["entries"].append(entry)
            self._write(data)
        return entry

    def summary(self, fingerprint: str, model: str) -> dict[str, Any]:
        """JSON-ready totals for a manifest or report: per key and dataset-wide."""
        eps, delta = self.spent(fingerprint, model)
        all_eps, all_delta = self.spent(fingerprint)
        return {
            "composition": "basic (sum of epsilons and deltas)",
            "model_total_epsilon": eps,
            "model_total_delta": delta,
            "dataset_total_epsilon": all_eps,
            "dataset_total_delta": all_delta,
            "max_epsilon": self.max_epsilon(fingerprint, model),
            "trainings": len(self.entries(fingerprint, model)),
        }
