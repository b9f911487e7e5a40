"""What reporting costs per monitor run: the same 100k-row batch with and without Evidently's HTML.

Runs the real monitor flow (Prefect ephemeral API, MLflow sqlite in a temp dir): one bootstrap
run, then the measured runs on a 100k-row batch of 2013 flights (Feb-Jul), alternating HTML on
and off. The drift verdict is the same either way; only the wall time differs.

    .venv/bin/python benchmarks/report_cost.py [--rows 100000] [--repeat 2]

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
    ap.add_argument("--repeat", type=int, default=2)
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

    def config(html: bool) -> Path:
        return write_demo_config(
            ROOT / "config.yaml", work / "state", report={"html": html}, **sections
        )

    run_once(str(config(False)), str(work / "bootstrap.parquet"))  # champion + warm-up
    # keep the champion: measure monitor runs alike
    sections["retrain"] = {"promotion_margin": 0.99}
    sections["quality"] = {"relative_tolerance": 10.0}
    sections["drift"] = {"drift_share": 1.0}
    times: dict[str, list[float]] = {"without HTML": [], "with HTML": []}
    for _ in range(args.repeat):
        for html in (False, True):
            t0 = time.perf_counter()
            state, _ = run_once(str(config(html)), str(work / "batch.parquet"))
            times["with HTML" if html else "without HTML"].append(time.perf_counter() - t0)
            assert state.is_completed(), state.message
    out = {k: round(statistics.median(v), 2) for k, v in times.items()}
    out["html_cost_s"] = round(out["with HTML"] - out["without HTML"], 2)
    out["rows"] = args.rows
    out["html_sample_rows"] = load_settings(config(True)).report.html_sample_rows
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "report_cost.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
