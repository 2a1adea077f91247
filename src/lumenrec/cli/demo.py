"""``lumenrec demo``: an offline tour on planted topic data — evaluate EASE, show its lists."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from lumenrec.cli._common import (
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    out_console,
)

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["DEMO_HELP", "DEMO_SIZES", "demo_command", "demo_data", "run_demo"]

#: (n_users, n_items) of the demo data, full and ``--smoke``.
DEMO_SIZES = {"full": (1000, 400), "smoke": (240, 120)}
_EASE = {"regularization": 50.0}
_SHOW_USERS = ("u0", "u1", "u2")
DEMO_HELP = "\n\n".join(
    [
        "Offline demo: synthetic topic data, EASE vs popularity, and lists that make sense.",
        "Builds the bundled synthetic catalogue (8 topics, titled items), evaluates popularity "
        "and EASE on a P1-style split, then prints the top-10 for three users next to their "
        "topic and recent history, so you can see the recommendations stay on topic. "
        "Then (with the serve extra) it publishes the model to a temporary registry, starts "
        "the HTTP service on 127.0.0.1 at a free port, prints a curl command with its actual "
        "answer, and shuts the service down. Needs no network and no files.",
    ]
)


def demo_data(smoke: bool = False, seed: int = 0) -> Dataset:
    """The bundled synthetic catalogue: 8 topics, titled items, users with one topic each."""
    from lumenrec.data.synthetic import block_clusters

    n_users, n_items = DEMO_SIZES["smoke" if smoke else "full"]
    return block_clusters(
        n_topics=8,
        n_users=n_users,
        n_items=n_items,
        density=0.2,
        noise=0.005,
        random_state=seed,
        name="lumenrec-demo",
    )


def run_demo(
    console: Any, *, smoke: bool = False, seed: int = 0, serve: bool = False
) -> dict[str, Any]:
    """Build the demo data, evaluate popularity and EASE (P1 split), print lists for 3 users.

    Parameters
    ----------
    console : rich Console
    smoke : bool
        Smaller data (CI, install checks).
    seed : int
    serve : bool
        Also serve the fitted model over HTTP once (see :func:`serve_once`).

    Returns
    -------
    dict
        ``{"metrics": {model: {metric: value}}, "seconds": float}`` for scripts and tests,
        plus ``"service"`` (the curl command, its status and JSON answer) when ``serve``.
    """
    from rich.table import Table
    from rich.text import Text

    from lumenrec.cli._registry import make_model
    from lumenrec.data.split import protocol_split
    from lumenrec.evaluation.protocol import evaluate

    start = time.perf_counter()
    data = demo_data(smoke, seed)
    console.print(
        f"Demo data: {data.n_users} users, {data.n_items} items, {data.n_events} interactions "
        "in 8 topics (synthetic, offline)."
    )
    split = protocol_split(data, protocol="p1", seed=seed)
    console.print(Text(f"Split: {split.description}."))
    table = Table(title=f"P1-style evaluation, seed {seed}")
    for column in ("model", "NDCG@10", "P@10", "R@10", "HR@10", "fit s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    metrics: dict[str, dict[str, float]] = {}
    for name, params in (("pop", {}), ("ease", _EASE)):
        result = evaluate(make_model(name, params), split, k=10, ks=(10,))
        metrics[name] = result.metrics
        values = [result.summary[f"{m}@10"] for m in ("ndcg", "precision", "recall", "hr")]
        table.add_row(name, *(f"{v:.4f}" for v in values), f"{result.fit_time:.2f}")
    console.print(table)

    model = make_model("ease", _EASE).fit(data)
    users = data.users.index(list(_SHOW_USERS))
    recs = model.recommend(users, k=10)
    catalog = data.catalog
    titles = catalog["title"].to_numpy(dtype=object)
    topics = catalog["topic"].to_numpy(dtype=object)
    user_topics = data.user_attributes["topic"].to_numpy(dtype=object)
    console.print("Top-10 from EASE fitted on all interactions (seen items removed):")
    for row, user in enumerate(users):
        topic = user_topics[user]
        events = np.flatnonzero(data.user_idx == user)
        recent = events[np.argsort(data.timestamps[events], kind="stable")[::-1][:3]]
        items = recs.items[row][recs.items[row] >= 0]
        in_topic = int((topics[items] == topic).sum())
        heading = f"user {data.users.ids[user]} · topic {topic} · {in_topic}/{len(items)} on topic"
        recently = "recently: " + "; ".join(titles[data.item_idx[recent]])
        user_table = Table(title=Text(heading), caption=Text(recently))
        for column in ("#", "title", "topic", "score", "because you liked (share of score)"):
            user_table.add_column(column, justify="right" if column in ("#", "score") else "left")
        history = data.matrix[user]
        for rank, (item, score) in enumerate(zip(items, recs.scores[row], strict=False), 1):
            # EASE is linear in the history: these contributions sum exactly to the score
            cited, contrib = model.explain_contributions(history, int(item))
            share = contrib[0] / score if score > 0 else 0.0
            reason = f"{titles[cited[0]]} ({share:.0%})" if len(cited) else "-"
            user_table.add_row(
                str(rank), Text(titles[item]), Text(topics[item]), f"{score:.3f}", Text(reason)
            )
        console.print(user_table)
    out: dict[str, Any] = {"metrics": metrics}
    if serve:
        out["service"] = serve_once(console, data, model, user=_SHOW_USERS[0])
    seconds = time.perf_counter() - start
    console.print(f"Done in {seconds:.1f}s.")
    if serve:
        console.print(
            Text(
                f"Dashboard (answered {out['service']['dashboard_status']} while the demo served): "
                f"{out['service']['dashboard']}; with `lumenrec serve` it is "
                "http://127.0.0.1:8000/dashboard"
            )
        )
    return {**out, "seconds": seconds}


def serve_once(console: Any, data: Dataset, model: Any, *, user: str) -> dict[str, Any]:
    """Publish ``model`` to a temporary registry, serve it on 127.0.0.1, ask it once, stop.

    The service is the real one (``create_app`` under uvicorn, SQLite event store, loopback
    only, no key needed for reads); the answer printed is what ``curl`` gets.

    Returns
    -------
    dict
        ``{"curl": str, "status": int, "answer": dict, "dashboard": str,
        "dashboard_status": int}`` (the dashboard URL and what it answered, from loopback).
    """
    import json
    import socket
    import tempfile
    import threading
    from pathlib import Path

    from rich.text import Text

    from lumenrec.errors import missing_dependency
    from lumenrec.pipeline import RecommendPipeline

    try:
        import httpx
        import uvicorn

        from lumenrec.serving import ModelRegistry, ServiceSettings, create_app
    except ImportError as err:
        raise missing_dependency(err.name or "fastapi", "serve") from err
    with tempfile.TemporaryDirectory(prefix="lumenrec-demo-") as tmp, socket.socket() as sock:
        root = Path(tmp)
        pipeline = RecommendPipeline(model, data.users, data.items, data.catalog)
        registry = ModelRegistry(root / "models")
        registry.publish(pipeline)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        settings = ServiceSettings(
            model_dir=root / "models", db=root / "events.sqlite", host="127.0.0.1", port=port
        )
        app = create_app(settings, pipeline=registry.load())
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
        server = uvicorn.Server(config)
        sock.close()  # the port stays free for uvicorn (loopback; a race is possible, not likely)
        thread = threading.Thread(target=server.run, name="lumenrec-demo-server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    msg = f"the demo service did not start on 127.0.0.1:{port}"
                    raise RuntimeError(msg)
                time.sleep(0.02)
            url = f"http://127.0.0.1:{port}/recommend/{user}?k=3"
            curl = f"curl -s '{url}'"
            response = httpx.get(url, timeout=10)
            answer = response.json()
            dashboard = f"http://127.0.0.1:{port}/dashboard"
            dashboard_status = httpx.get(dashboard, timeout=10).status_code  # loopback: no key
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    console.print(
        Text(f"Service: the model above, served on http://127.0.0.1:{port} (docs at /docs):")
    )
    console.print(Text(f"$ {curl}"))
    console.print(Text(json.dumps(answer, indent=2)))
    titles = data.catalog["title"]
    history = data.matrix[data.users.index([user])[0]]
    for item in answer.get("items", []):
        idx = int(data.items.index([item["item_id"]])[0])
        cited, contrib = model.explain_contributions(history, idx)
        why = f"because you liked {titles.iloc[cited[0]]}" if len(cited) else ""
        console.print(
            Text(f"  #{item['rank']} {titles.iloc[idx]} (route {item['route']}) {why}".rstrip())
        )
    console.print(Text("The service has been shut down; `lumenrec serve` runs it for real."))
    return {
        "curl": curl,
        "status": response.status_code,
        "answer": answer,
        "dashboard": dashboard,
        "dashboard_status": dashboard_status,
    }


def demo_command(
    smoke: Annotated[
        bool, typer.Option("--smoke", help="A smaller, faster run (for CI and install checks).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Data and split seed.")] = 0,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Serve the model once on 127.0.0.1 and print a curl with its answer "
            "(needs lumenrec[serve]; skipped with a note when it is not installed).",
        ),
    ] = True,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Offline demo (see ``DEMO_HELP``)."""
    import importlib.util

    configure_logging(verbose, quiet)
    console = out_console()
    if serve and importlib.util.find_spec("uvicorn") is None:
        console.print("(pip install 'lumenrec[serve]' to see the model served over HTTP too)")
        serve = False
    with cli_errors(debug):
        run_demo(console, smoke=smoke, seed=seed, serve=serve)
