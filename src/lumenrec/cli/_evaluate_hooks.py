"""The ``on_split`` / ``on_result`` hooks ``lumenrec evaluate`` hands to
:func:`lumenrec.evaluation.runner.compare`: :class:`SaveHooks` writes ``--save-split`` and
``--save-recs`` files as the seeds run, and :class:`GroupBy` collects the per-user-group
reports of ``--group-by`` (:mod:`lumenrec.evaluation.groups`), aggregates them over seeds and
prints one table per group definition."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lumenrec.cli._common import parse_names
from lumenrec.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from lumenrec.data.dataset import Dataset
    from lumenrec.data.split import Split
    from lumenrec.evaluation.protocol import EvalResult

__all__ = ["GroupBy", "SaveHooks", "gap_cell"]


class SaveHooks:
    """on_split / on_result hooks writing ``--save-split`` and ``--save-recs``."""

    def __init__(self, recs: str | None, split: str | None, seeds: list[int], names: list[str]):
        self.recs, self.split, self.seeds, self.names = recs, split, seeds, names
        self.pending: list[pd.DataFrame] = []
        self.written: list[Path] = []

    @staticmethod
    def _path(template: str, seed: int) -> Path:
        return Path(template.replace("{seed}", str(seed)))

    def on_split(self, seed: int, split: Split) -> None:
        if self.split is None or ("{seed}" not in self.split and seed != self.seeds[0]):
            return
        from lumenrec.evaluation.protocol import save_split

        self.written.append(save_split(split, self._path(self.split, seed)))

    def on_result(self, seed: int, name: str, result: EvalResult, split: Split) -> None:
        if self.recs is None or ("{seed}" not in self.recs and seed != self.seeds[-1]):
            return
        import pandas as pd

        from lumenrec.evaluation.protocol import recommendations_frame
        from lumenrec.explain import reasons_frame

        frame = recommendations_frame(result.recommendations, split.test)
        if result.model is not None:  # a reason for every saved item
            reasons = reasons_frame(result.model, result.recommendations, split.train)
            frame = pd.concat([frame, reasons], axis=1)
        frame.insert(0, "model", name)
        self.pending.append(frame)
        if name == self.names[-1]:
            target = self._path(self.recs, seed)
            target.parent.mkdir(parents=True, exist_ok=True)
            pd.concat(self.pending, ignore_index=True).to_parquet(target, index=False)
            self.pending = []
            self.written.append(target)


# -- --group-by: per-user-group metrics (lumenrec.evaluation.groups) ---------------------------
class GroupBy:
    """Collects per-group reports in ``on_result`` and renders them (``--group-by``)."""

    METRICS = ("ndcg", "precision", "recall")

    def __init__(self, names: list[str], k: int, use_valid: bool) -> None:
        self.names, self.k, self.use_valid = names, k, use_valid
        self.runs: list[dict[str, Any]] = []

    @classmethod
    def parse(cls, text: str | None, *, k: int, use_valid: bool) -> GroupBy | None:
        if text is None:
            return None
        from lumenrec.evaluation.groups import GROUP_BY_NAMES

        names = [n.lower() for n in parse_names(text, "--group-by")]
        unknown = [n for n in names if n not in GROUP_BY_NAMES]
        if unknown:
            msg = (
                f"unknown --group-by {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(GROUP_BY_NAMES)}"
            )
            raise ConfigError(msg)
        return cls(list(dict.fromkeys(names)), k, use_valid)

    def check(self, data: Dataset) -> None:
        """Fail before any fit when an attribute is missing on this dataset."""
        from lumenrec.evaluation.groups import attribute_groups

        for name in self.names:
            if name not in ("activity", "active"):
                attribute_groups(data, name)

    def chain(self, first: Any) -> Any:
        def hook(seed: int, name: str, result: EvalResult, split: Split) -> None:
            first(seed, name, result, split)
            self.on_result(seed, name, result, split)

        return hook

    def on_result(self, seed: int, model: str, result: EvalResult, split: Split) -> None:
        from lumenrec.evaluation.groups import AGE_BANDS, group_report, user_groups

        train = split.train if self.use_valid else split.train_full
        for name in self.names:
            labels = user_groups(name, split.test, train=train)
            orders = {"active": ["active", "inactive"], "age": [a for _, a in AGE_BANDS]}
            order = orders.get(name)
            report = group_report(result, labels, order=order)
            self.runs.append({"seed": seed, "model": model, "group_by": name, **report})

    def record(self) -> dict[str, Any]:
        """``{by, runs, aggregate}``: aggregate = per group_by, model, metric the mean over
        seeds of each group's mean and of the gap (p-values stay per run)."""
        import numpy as np

        agg: dict[str, Any] = {}
        for run in self.runs:
            slot = agg.setdefault(run["group_by"], {}).setdefault(run["model"], {})
            for metric, entry in run["metrics"].items():
                cell = slot.setdefault(metric, {"mean": {}, "gap": [], "p_value": []})
                for group, value in entry["mean"].items():
                    cell["mean"].setdefault(group, []).append(value)
                cell["gap"].append(entry["gap"])
                cell["p_value"].append(entry["test"]["p_value"])
                cell["test"] = entry["test"]["test"]

        def avg(values: list[Any]) -> float | None:
            ok = [v for v in values if v is not None]
            return float(np.mean(ok)) if ok else None

        for table in agg.values():
            for cells in table.values():
                for cell in cells.values():
                    cell["mean"] = {g: avg(v) for g, v in cell["mean"].items()}
                    cell["gap"] = avg(cell["gap"])
                    cell["p_value"] = avg(cell["p_value"])
        return {"by": self.names, "runs": self.runs, "aggregate": agg}

    def print(self, record: dict[str, Any], console: Any) -> None:
        """One table per group definition: model × group rows, then the gap and its test."""
        from rich.table import Table
        from rich.text import Text

        cols = [f"{m}@{self.k}" for m in self.METRICS]
        for name in record["by"]:
            table = Table(title=Text(f"per user group: {name} (mean over seeds)"))
            for label in ("model", "group", "users", *cols):
                table.add_column(label, justify="left" if label in ("model", "group") else "right")
            for model, cells in record["aggregate"].get(name, {}).items():
                runs = [r for r in record["runs"] if r["group_by"] == name and r["model"] == model]
                groups = runs[0]["groups"] if runs else []
                for group in groups:
                    values = [cells.get(c, {}).get("mean", {}).get(group) for c in cols]
                    table.add_row(
                        Text(model),
                        Text(group),
                        str(runs[0]["n_users"][group]),
                        *("–" if v is None else f"{v:.4f}" for v in values),
                    )
                gaps = [cells.get(c, {}) for c in cols]
                test = gaps[0].get("test", "") if gaps else ""
                table.add_row(
                    Text(model),
                    Text(f"gap (p, {test})", style="bold"),
                    "",
                    *(gap_cell(cell) for cell in gaps),
                )
            console.print(table)


def gap_cell(cell: dict[str, Any]) -> str:
    gap, p = cell.get("gap"), cell.get("p_value")
    if gap is None:
        return "–"
    return f"{gap:.4f} (p={p:.2g})" if p is not None else f"{gap:.4f}"
