"""Runs you can find (issue 16): `report latest` is the latest run with data, `--any` the last
tick; `report --plot` has a default file name; `status` shows run ids."""

from __future__ import annotations

import os
from pathlib import Path

from driftwatch.cli import DEFAULT_PLOT, main
from driftwatch.monitor.result import Decision, MonitorResult
from tests.test_config_limits import small_config


def stored(runs: Path, run_id: str, started: str, rows: int) -> None:
    action = "no_drift" if rows else "no_data"
    MonitorResult(
        run_id=run_id,
        started=started,
        files=["a.parquet"] if rows else [],
        rows=rows,
        labelled_rows=0,
        decision=Decision(action=action, reason="no drift" if rows else "no new data"),
    ).save(runs)


def test_latest_is_the_latest_run_with_data(tmp_path: Path, capsys, monkeypatch) -> None:
    config = small_config(tmp_path)
    runs = tmp_path / "state" / "runs"
    runs.mkdir(parents=True)
    stored(runs, "aaaaaaaa1111", "2024-01-02T00:00:00+00:00", 120)
    stored(runs, "bbbbbbbb2222", "2024-01-02T01:00:00+00:00", 0)
    stored(runs, "cccccccc3333", "2024-01-02T02:00:00+00:00", 0)
    assert main(["report", "latest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("(the latest run with data; 2 later run(s) had none: --any)\n")
    assert "run aaaaaaaa1111 at" in out
    assert main(["report", "--any", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("run cccccccc3333 at")

    monkeypatch.chdir(tmp_path)
    assert main(["report", "--plot", "--config", os.fspath(config)]) == 0
    assert (tmp_path / DEFAULT_PLOT).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "aaaaaaaa1111" in out and "cccccccc3333" in out and " run " in out
