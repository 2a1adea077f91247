"""``lumenrec report`` and ``evaluate --report``: content, escaping, self-containment, errors."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("matplotlib", reason="the report needs matplotlib (the 'report' extra)")

from lumenrec.cli import app as lumenrec_app  # noqa: E402
from lumenrec.cli.report import REPORT_HELP, report_command  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402
from lumenrec.errors import DataError  # noqa: E402
from lumenrec.evaluation.protocol import popularity_deciles  # noqa: E402
from lumenrec.report import build_report, detect_kind, load_results, write_report  # noqa: E402
from lumenrec.report.stats import paired_test  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def _restore_lumenrec_logger():
    logger = logging.getLogger("lumenrec")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


def _cell(values: list[float]) -> dict:
    arr = np.asarray(values)
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    return {"mean": float(arr.mean()), "std": std, "n": arr.size}


def compare_record(names=("ease", "pop"), seeds=(0, 1, 2), per_user: bool = False) -> dict:
    """A small but complete ``lumenrec.compare/1`` record (no model is fitted)."""
    rng = np.random.default_rng(0)
    runs, table = [], {}
    for seed in seeds:
        for j, name in enumerate(names):
            base = 0.45 - 0.2 * j + 0.003 * seed
            metrics = {f"ndcg@{k}": base + 0.01 * (k == 5) for k in (5, 10, 20)}
            metrics |= {"precision@10": base - 0.05, "recall@10": base / 2, "coverage@10": 0.1}
            metrics |= {"gini@10": 0.9, "novelty@10": 2.0, "popularity_bias@10": 0.95}
            run = {"seed": seed, "model": name, "n_users": 50, "metrics": metrics,
                   "long_tail": {"popularity_share": [0.5, 0.3, 0.2],
                                 "exposure_share": [0.8, 0.15, 0.05]},
                   "history": {"loss": [1.0, 0.6, 0.5], "valid_epochs": [1, 3],
                               "valid_scores": [0.2, 0.3]}}  # fmt: skip
            if per_user:
                run["per_user"] = {"ndcg@10": (base + rng.normal(0, 0.05, 50)).tolist()}
            runs.append(run)
            for m, v in {**metrics, "n_users": 50}.items():
                table.setdefault(name, {}).setdefault(m, []).append(v)
    groups = {
        "by": ["gender"],
        "runs": [{"seed": 0, "model": n, "group_by": "gender", "groups": ["F", "M"],
                  "n_users": {"F": 20, "M": 30}} for n in names],
        "aggregate": {"gender": {n: {"ndcg@10": {"mean": {"F": 0.3, "M": 0.4}, "gap": 0.1,
                                                 "p_value": 0.02, "test": "welch"}}
                                 for n in names}},
    }  # fmt: skip
    return {
        "schema": "lumenrec.compare/1",
        "protocol": "p1",
        "description": "P1: per-user random split",
        "evaluated_on": "test",
        "dataset": {"name": "ml-100k", "n_users": 50, "n_items": 30, "n_events": 900},
        "seeds": list(seeds),
        "k": 10,
        "ks": [5, 10, 20],
        "runs": runs,
        "aggregate": {n: {m: _cell(v) for m, v in t.items()} for n, t in table.items()},
        "groups": groups,
    }


def _strip_date(text: str) -> str:
    return re.sub(r"Generated [^<]*", "", text)


def test_compare_report_has_every_part_and_is_self_contained():
    text = build_report([compare_record()])
    for part in ("At a glance", "BiVAE (MS Recommenders)", "NDCG@k over k", "Long tail",
                 "paired t-test (scipy.stats.ttest_rel) paired over 3 seeds", "coverage@10",
                 "Per user group: gender", "Training curves", "Protocol P1"):  # fmt: skip
        assert part in text, part
    assert text.count("<svg") >= 5  # ndcg@k, long tail, group, loss, validation
    lowered = text.lower()
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "src="):
        assert banned not in lowered, banned
    assert not re.search(r"url\((?!#)", text)  # only in-page references (SVG clip paths)
    assert not re.search(r'href="(?!#)', text)  # only in-page links
    hosts = set(re.findall(r"https?://[^\"' )]+", text))
    assert hosts <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # xmlns only
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # per-figure id prefixes: no clashes between SVGs


def test_report_is_deterministic_and_escapes_names():
    record = compare_record(names=("<script>alert(1)</script>", "pop & co"))
    first, second = build_report(record), build_report(record)
    assert _strip_date(first) == _strip_date(second)
    assert "<script>alert(1)" not in first
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first and "pop &amp; co" in first


def test_paired_test_over_seeds_users_and_one_seed():
    seeds = paired_test(compare_record(), "ndcg@10")
    assert seeds["best"] == "ease" and seeds["runner_up"] == "pop" and seeds["pairing"] == "seeds"
    assert seeds["p_value"] is None and "same difference" in seeds["note"]  # constant gap
    users = paired_test(compare_record(per_user=True), "ndcg@10")
    assert users["pairing"] == "users" and users["n"] == 150 and users["p_value"] < 1e-6
    assert "Wilcoxon" in users["test"]
    one = paired_test(compare_record(seeds=(0,)), "ndcg@10")
    assert one["p_value"] is None and "one seed" in one["note"]
    assert paired_test(compare_record(names=("ease",)), "ndcg@10") is None


def test_popularity_deciles_shares():
    popularity = np.arange(20, 0, -1, dtype=float)  # item 0 most popular
    ranked = np.array([[0, 1, -1], [0, 19, 2]])
    out = popularity_deciles(ranked, popularity, k=3, n_bins=10)
    # two items per decile: items 0, 1 take three of the five slots, item 2 and item 19 one each
    assert out["exposure_share"][:2] == pytest.approx([0.6, 0.2])
    assert out["exposure_share"][-1] == pytest.approx(0.2)
    assert sum(out["popularity_share"]) == pytest.approx(1.0)
    assert out["popularity_share"] == sorted(out["popularity_share"], reverse=True)


def test_benchmark_files_each_get_their_section():
    names = ["p5_coat.json", "p6_obd.json", "p8_tradeoffs_ml-1m.json", "p8_fairrecsys.json",
             "cold_start_amazon-toys.json", "sasrec_vs_recbole_ml-1m.json", "ann_20000.json"]  # fmt: skip
    paths = [BENCH / n for n in names if (BENCH / n).is_file()]
    if len(paths) < len(names):
        pytest.skip("benchmarks/results is incomplete in this checkout")
    kinds = [rf.kind for rf in load_results(paths)]
    assert kinds == ["p5", "p6", "p8_tradeoffs", "p8_groups", "cold_start",
                     "sasrec_vs_recbole", "other"]  # fmt: skip
    text = build_report(paths)
    for part in ("P5 on Coat", "bootstrap error", "obp 0.5.7 (published)", "over λ",
                 "active vs inactive", "Cold vs warm on amazon-toys", "LumenRec vs RecBole",
                 "Other results files", "ann_20000.json"):  # fmt: skip
        assert part in text, part


def test_privacy_utility_curve():
    record = {
        "benchmark": "p7_privacy",
        "protocol": "P7",
        "created_at": "2026-01-01",
        "dataset": "ml-1m-processed",
        "rows": [{"model": "PrivateEASE", "epsilon": e, "level": "user",
                  "ndcg@10": {"mean": v, "std": 0.01}}
                 for e, v in ((1, 0.1), (8, 0.2), ("inf", 0.25))],
    }  # fmt: skip
    assert detect_kind(record) == "p7"
    text = build_report(record)
    assert "P7 privacy–utility on ml-1m-processed" in text and "∞ (non-private)" in text
    assert text.count("<svg") == 1 and "0.2000" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "results file not found: {path}"),
        ("{not json", "not a LumenRec results file: {path} (invalid JSON at line 1)"),
        ('{"hello": 1}', "not a LumenRec results file: {path}"),
        ("[1, 2]", "not a LumenRec results file: {path}"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as err:
        load_results([path])
    assert str(err.value) == expected.format(path=path)
    cli = typer.Typer()
    cli.command("report", help=REPORT_HELP)(report_command)
    cli.command("noop")(lambda: None)  # keep the subcommand name
    result = CliRunner().invoke(cli, ["report", str(path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: " + expected.format(path=path)
    assert not (tmp_path / "r.html").exists()


def test_report_command_writes_the_page(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(compare_record()))
    cli = typer.Typer()
    cli.command("report", help=REPORT_HELP)(report_command)
    cli.command("noop")(lambda: None)
    out = tmp_path / "sub" / "page.html"
    result = CliRunner().invoke(cli, ["report", str(src), "--out", str(out), "--title", "T<1>"])
    assert result.exit_code == 0, result.output
    assert "<title>T&lt;1&gt;</title>" in out.read_text()


def test_evaluate_report_option(tmp_path):
    data = block_clusters(n_topics=3, n_users=60, n_items=40, random_state=0)
    csv = tmp_path / "ratings.csv"
    data.to_frame().to_csv(csv, index=False)
    page, out = tmp_path / "r.html", tmp_path / "r.json"
    argv = ["evaluate", "-d", str(csv), "-m", "pop,itemknn", "--seeds", "0,1",
            "--json", str(out), "--report", str(page)]  # fmt: skip
    result = CliRunner().invoke(lumenrec_app, argv)
    assert result.exit_code == 0, result.output
    runs = json.loads(out.read_text())["runs"]
    shares = runs[0]["long_tail"]["exposure_share"]
    assert len(shares) == 10 and sum(shares) == pytest.approx(1.0, abs=1e-5)
    text = page.read_text()
    assert "P1 on ratings" in text and "Long tail" in text and "paired t-test" in text
    assert write_report(json.loads(out.read_text()), tmp_path / "again.html").is_file()
