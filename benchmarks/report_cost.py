"""What reporting costs per monitor run: the same 100k-row batch with no HTML, with driftwatch's
own page (``report.html``), and with Evidently's page too (``report.evidently``).

Runs the real monitor flow (Prefect ephemeral API, MLflow sqlite in a temp dir): one bootstrap
run, then the measured runs on a 100k-row batch of 2013 flights (Feb-Jul), taking the three
settings in turn. The drift verdict is the same either way; only the wall time and the files
written differ. Also times rendering driftwatch's page alone from the stored result.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/report_cost.py [--rows 100000] [--repeat 3]

Writes benchmarks/results/report_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for handler in ("CONSOLE", "CONSOLE_FLOW_RUNS", "CONSOLE_TASK_RUNS"):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler}_LEVEL", "WARNING")

    from driftwatch.config import load_settings
    from driftwatch.demo.run import write_demo_config
    from driftwatch.orchestration.runner import run_once
    from driftwatch.store.flights import load_flights, local_month

    work = Path(tempfile.mkdtemp(prefix="driftwatch-report-cost-"))
    sections: dict[str, dict] = {}
    flights = load_flights()
    jan = flights[local_month(flights) == 1].sample(3000, random_state=0)
    later = flights[local_month(flights).between(2, 7)].sample(args.rows, random_state=1)
    jan.to_parquet(work / "bootstrap.parquet")
    later.to_parquet(work / "batch.parquet")

    settings_of = {
        "no HTML": {"html": False, "evidently": False},
        "driftwatch page": {"html": True, "evidently": False},
        "page + Evidently": {"html": True, "evidently": True},
    }

    def config(which: str) -> Path:
        return write_demo_config(
            ROOT / "config.yaml", work / "state", report=settings_of[which], **sections
        )

    run_once(str(config("no HTML")), str(work / "bootstrap.parquet"))  # champion + warm-up
    # keep the champion: measure monitor runs alike
    sections["retrain"] = {"promotion_margin": 0.99}
    sections["quality"] = {"relative_tolerance": 10.0}
    sections["drift"] = {"drift_share": 1.0}
    times: dict[str, list[float]] = {k: [] for k in settings_of}
    sizes: dict[str, list[int]] = {k: [] for k in settings_of}
    for _ in range(args.repeat):
        for which in settings_of:
            t0 = time.perf_counter()
            state, result = run_once(str(config(which)), str(work / "batch.parquet"))
            times[which].append(time.perf_counter() - t0)
            assert state.is_completed(), state.message
            written = [p for p in (result["html_report"], result["evidently_report"]) if p]
            sizes[which].append(sum(Path(p).stat().st_size for p in written))

    from driftwatch.monitor.result import MonitorResult
    from driftwatch.report.page import render_page

    settings = load_settings(config("driftwatch page"))
    stored = sorted((work / "state" / "runs").glob("*.json"))[-1]
    res = MonitorResult.from_dict(json.loads(stored.read_text()))
    render_page(res, settings)  # jinja2 import and template compile, once per process
    t0 = time.perf_counter()
    for _ in range(20):
        render_page(res, settings)
    render_ms = (time.perf_counter() - t0) / 20 * 1000

    out: dict = {
        "run_s": {k: round(statistics.median(v), 2) for k, v in times.items()},
        # on a shared, loaded machine the fastest run is the steadier figure
        "fastest_run_s": {k: round(min(v), 2) for k, v in times.items()},
        "all_runs_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "html_bytes": {k: max(v) for k, v in sizes.items()},
    }
    base = out["fastest_run_s"]["no HTML"]
    out["cost_s"] = {
        k: round(v - base, 2) for k, v in out["fastest_run_s"].items() if k != "no HTML"
    }
    out["render_page_ms"] = round(render_ms, 1)
    out["rows"] = args.rows
    out["repeat"] = args.repeat
    out["html_sample_rows"] = settings.report.html_sample_rows
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "report_cost.json").write_text(json.dumps(out, indent=2))
    print(f"load average {out['load_average']}")
    head = (
        f"{'setting':<18} {'median (s)':>10} {'fastest (s)':>11} {'cost (s)':>9} {'HTML bytes':>11}"
    )
    print(head)
    for k in settings_of:
        cost = out["cost_s"].get(k, 0.0)
        print(
            f"{k:<18} {out['run_s'][k]:>10.2f} {out['fastest_run_s'][k]:>11.2f} {cost:>9.2f}"
            f" {out['html_bytes'][k]:>11,}"
        )
    print(f"rendering driftwatch's page from the stored result: {render_ms:.1f} ms")


if __name__ == "__main__":
    main()
