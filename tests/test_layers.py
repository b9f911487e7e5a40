"""The package's layers, checked from the code's own imports (lazy ones included).

engine (statistics) <- config (the settings' schema checks test names) <- model <- monitor (plan, policy, pipeline, backtest) <- store, report, alerts <-
orchestration <- cli, demo. Imports only point down; Prefect only in orchestration, MLflow
only in the registry store, Evidently only in the HTML report.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "driftwatch"
LAYER = {
    "errors": 0, "faults": 0, "files": 0, "yamlio": 0, "__init__": 0,
    "engine": 1, "config": 1.5, "model": 2, "monitor": 3, "store": 4, "report": 4, "alerts": 4,
    "orchestration": 5, "cli": 6, "demo": 6, "__main__": 6,
}  # fmt: skip


def layer_of(module: str) -> float:
    parts = module.split(".")
    return LAYER[parts[1] if len(parts) > 1 else "__init__"]


def imports() -> list[tuple[str, str]]:
    out = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.append((module, node.module))
            elif isinstance(node, ast.Import):
                out.extend((module, a.name) for a in node.names)
    return out


def test_imports_only_point_down() -> None:
    up = [
        (src, dst)
        for src, dst in imports()
        if dst.startswith("driftwatch.") and layer_of(dst) > layer_of(src)
    ]
    assert up == []


def test_servers_are_talked_to_from_their_own_modules_only() -> None:
    where = {"prefect": "driftwatch.orchestration", "mlflow": "driftwatch.store.registry",
             "evidently": "driftwatch.report.html",
             # the server-less notifier sends its webhooks and Apprise messages by itself
             "httpx": "driftwatch.alerts.notify", "apprise": "driftwatch.alerts.notify",
             # big batches: the cluster and the flow's Dask task runner (issue 19)
             "dask": "driftwatch.orchestration", "distributed": "driftwatch.orchestration",
             "prefect_dask": "driftwatch.orchestration"}  # fmt: skip
    wrong = [
        (src, dst)
        for src, dst in imports()
        for lib, home in where.items()
        if dst.split(".")[0] == lib and not src.startswith(home)
    ]
    assert wrong == []


def test_flows_dir_imports_driftwatch_and_not_the_reverse() -> None:
    assert not [(s, d) for s, d in imports() if d.split(".")[0] == "flows"]
