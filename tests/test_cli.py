"""The driftwatch command: instant --help, and `check` as a CI gate (exit codes, JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from driftwatch.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('prefect', 'mlflow', 'evidently', 'sklearn', 'pandas') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.choice(list("xyz"), 3000)})
    quiet = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.choice(list("xyz"), 2000)})
    moved = pd.DataFrame({"a": rng.normal(1, size=2000), "b": rng.choice(list("xxxz"), 2000)})
    out = {}
    for name, frame in (("ref", ref), ("quiet", quiet), ("moved", moved)):
        out[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(out[name])
    out["bad"] = tmp_path / "bad.csv"
    quiet.assign(a="oops").to_csv(out["bad"], index=False)
    return out


def test_check_prints_a_table_and_exits_0(files, capsys) -> None:
    assert main(["check", "--reference", str(files["ref"]), "--current", str(files["quiet"])]) == 0
    out = capsys.readouterr().out
    assert "wasserstein" in out and "no dataset drift: 0/2 columns drifted" in out


def test_check_json_and_fail_on_drift(files, capsys) -> None:
    code = main(
        [
            "check",
            "--reference",
            str(files["ref"]),
            "--current",
            str(files["moved"]),
            "--json",
            "--fail-on-drift",
        ]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["dataset_drift"] is True and data["drifted_columns"] == ["a", "b"]
    assert {c["column"]: c["test"] for c in data["columns"]} == {
        "a": "wasserstein",
        "b": "jensenshannon",
    }


def test_check_bad_input_exits_2_naming_file_and_column(files, capsys) -> None:
    code = main(["check", "--reference", str(files["ref"]), "--current", str(files["bad"])])
    assert code == 2
    err = capsys.readouterr().err
    assert "column 'a'" in err and "bad.csv" in err and "'oops'" in err


def test_check_missing_file_exits_2(files, capsys, tmp_path) -> None:
    assert (
        main(["check", "--reference", str(files["ref"]), "--current", str(tmp_path / "x.parquet")])
        == 2
    )
    assert "x.parquet: file not found" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "driftwatch"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "check" in out.stdout and "demo" in out.stdout and "rollback" in out.stdout


def test_calibrate_writes_thresholds_with_provenance_and_check_uses_them(
    make_config, tmp_path: Path, january: pd.DataFrame, july: pd.DataFrame, capsys
) -> None:
    import yaml

    from driftwatch.store.batches import file_hash

    # Random-row calibration (drift.calibration.quiet: rows), for data without time structure.
    config = make_config(drift={"calibration": {"batches": 300, "quiet": "rows"}})
    reference = ROOT / "reference_data" / "flights_2013_01.parquet"
    args = ["calibrate", "--config", str(config), "--reference", str(reference)]
    assert main([*args, "--batch-rows", "1500"]) == 0
    out = capsys.readouterr().out
    assert "calibrating for 1448 rows" in out  # rounded down like the monitor does
    assert "300 resampled batches of 1448 rows" in out and "wrote" in out
    written = yaml.safe_load((tmp_path / "calibration.yaml").read_text())
    assert written["reference_sha256"] == file_hash(reference)
    assert written["batch_rows"] == 1448 and written["false_alarm_rate"] == 0.01
    assert set(written["columns"]) == {
        *yaml.safe_load(config.read_text())["model"]["numerical"],
        *yaml.safe_load(config.read_text())["model"]["categorical"],
    }
    # `check --config`: a quiet January sample passes, July does not (calibrated on the fly).
    quiet = tmp_path / "quiet.parquet"
    january.sample(1500, random_state=3).to_parquet(quiet)
    moved = tmp_path / "moved.parquet"
    july.sample(1500, random_state=3).to_parquet(moved)
    check = ["check", "--config", str(config), "--reference", str(reference), "--json"]
    assert main([*check, "--current", str(quiet), "--fail-on-drift"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "calibrated"
    assert main([*check, "--current", str(moved), "--fail-on-drift"]) == 1
    assert main(["calibrate", "--config", str(config)]) == 2  # no size given anywhere
    assert "--batch-rows" in capsys.readouterr().err
    # Several sizes: the first to the file, every one where the monitor and check look.
    assert main([*args, "--batch-rows", "40", "1500"]) == 0
    assert yaml.safe_load((tmp_path / "calibration.yaml").read_text())["batch_rows"] == 40
    cached = [yaml.safe_load(p.read_text()) for p in (tmp_path / "state").glob("calibration/*")]
    assert 1448 in {c["batch_rows"] for c in cached}


def test_backtest_compare_overrides_are_validated_before_any_replay(make_config, capsys) -> None:
    from driftwatch.cli import _overrides

    assert _overrides("drift.method=evidently, drift.columns.temp.threshold=0.2") == {
        "drift.method": "evidently",
        "drift.columns.temp.threshold": "0.2",
    }
    config = make_config()
    code = main(["backtest", "--config", str(config), "--compare", "drift.drift_shar=0.3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "drift.drift_shar: unknown setting (did you mean 'drift_share'?)" in err
    code = main(["backtest", "--config", str(config), "--compare", "quality.relative_tolerance=-1"])
    assert code == 2
    assert "quality.relative_tolerance" in capsys.readouterr().err


def test_drift_table_is_plain_text_with_names_verbatim(files) -> None:
    from driftwatch.engine.drift import DriftDetector
    from driftwatch.report.text import drift_table

    ref = pd.read_parquet(files["ref"]).rename(columns={"a": "temp[C]"})
    cur = pd.read_parquet(files["moved"]).rename(columns={"a": "temp[C]"})
    text = drift_table(DriftDetector().fit(ref).check(cur))
    lines = text.splitlines()
    assert lines[0].split() == [
        "column", "type", "test", "score", "threshold", "drifted", "rows", "note",
    ]  # fmt: skip
    assert set(lines[1]) == {"-"}
    assert lines[2].split()[:3] == ["temp[C]", "numerical", "wasserstein"]  # not rich markup
    assert "\x1b" not in text and all(line == line.rstrip() for line in lines)
    assert lines[-1].startswith("DATASET DRIFT: 2/2 columns drifted")


def test_calibrate_on_time_blocks_writes_every_horizon_and_the_monitor_uses_it(
    make_config, tmp_path: Path, capsys
) -> None:
    import yaml

    from driftwatch.monitor.plan import Plan
    from driftwatch.store.calibrations import CalibrationStore
    from driftwatch.store.references import ReferenceFiles

    config = make_config(
        model={"timezone": "America/New_York"}, drift={"horizons": ["1h", "6h", "1D"]}
    )
    reference = ROOT / "reference_data" / "flights_2013_01.parquet"
    assert main(["calibrate", "--config", str(config), "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    assert "1h: " in out and "6h: " in out and "1d: " in out and "conservative rule" in out
    written = yaml.safe_load((tmp_path / "calibration.yaml").read_text())
    assert written["kind"] == "time_blocks"
    assert [h["span"] for h in written["horizons"]] == ["1h", "6h", "1d"]
    day = written["horizons"][2]
    assert day["days"] == 31 and day["blocks"] == 31 and "temp:resid" in day["components"]
    assert day["supported_rate"] > 0.05  # 31 days cannot show a 1% rate: said, not hidden
    # The monitor finds the file's thresholds by key: nothing recalibrated under the state dir.
    plan = Plan.load(config)
    store = CalibrationStore(plan, ReferenceFiles(plan))
    ref = ReferenceFiles(plan).locate(None)
    import pandas as pd

    got = store.block_thresholds(ref, pd.Timedelta("1D"))
    assert got.n_blocks == 31
    assert not (plan.settings.paths.state / "calibration").exists()


def strict_json(text: str) -> dict:
    """json.loads that refuses Infinity / NaN (not JSON: jq and JSON.parse reject them)."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_check_at_edge_sizes_is_strict_json_a_verdict_or_a_reason_and_reuses_calibrations(
    make_config, tmp_path: Path, january: pd.DataFrame, capsys
) -> None:
    config = make_config(drift={"calibration": {"batches": 1000, "quiet": "rows"}})
    reference = ROOT / "reference_data" / "flights_2013_01.parquet"
    check = ["check", "--config", str(config), "--reference", str(reference), "--json"]
    cache = tmp_path / "state" / "calibration"
    for n in (0, 1, 29, 30, 31, 64):
        current = tmp_path / f"quiet-{n}.parquet"
        january.sample(n, random_state=n).to_parquet(current)
        code = main([*check, "--current", str(current), "--fail-on-drift"])
        out = strict_json(capsys.readouterr().out)
        assert out["verdict"] in ("drift", "no_drift", "no_verdict"), n
        if n < 30:  # every column has fewer than drift.min_rows rows: nothing to judge
            assert out["verdict"] == "no_verdict" and out["dataset_drift"] is None, n
            assert out["reason"] and code == 4, n
        else:  # every column judged or not judged with its reason: never a silent pass
            assert all(c["threshold"] is not None or c["note"] for c in out["columns"]), n
    # A 30-row batch (an hour of flights) with an obvious shift alarms.
    rows = january.dropna(subset=["dep_delay"]).sample(30, random_state=1)
    shifted = tmp_path / "shifted.parquet"
    rows.assign(hour=12, dep_delay=rows["dep_delay"] + 300).to_parquet(shifted)
    assert main([*check, "--current", str(shifted), "--fail-on-drift"]) == 1
    out = strict_json(capsys.readouterr().out)
    assert out["verdict"] == "drift" and {"hour", "dep_delay"} & set(out["drifted_columns"])
    # The 30-row calibration was made once and reused (the cache file is not rewritten).
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("calibration-*.yaml")}
    assert main([*check, "--current", str(shifted)]) == 0
    capsys.readouterr()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("calibration-*.yaml")} == before


def test_check_on_time_blocks_calibrates_once_per_reference_and_span(
    make_config, tmp_path: Path, january: pd.DataFrame, capsys
) -> None:
    from driftwatch.store.flights import FLIGHTS_TZ

    config = make_config()  # quiet: time_blocks, one horizon: the file's own span
    reference = ROOT / "reference_data" / "flights_2013_01.parquet"
    day = tmp_path / "day.parquet"
    local = january["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.day
    january[local == 20].to_parquet(day)
    check = ["check", "--config", str(config), "--reference", str(reference), "--json"]
    assert main([*check, "--current", str(day)]) in (0, 1)
    first = strict_json(capsys.readouterr().out)
    cached = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "state" / "calibration").glob("*")}
    assert len(cached) == 1 and first["span"] == "1d"
    assert main([*check, "--current", str(day)]) in (0, 1)
    assert strict_json(capsys.readouterr().out)["verdict"] == first["verdict"]
    again = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "state" / "calibration").glob("*")}
    assert again == cached  # read back, not recalibrated


def test_check_without_config_skips_timestamps_and_the_target(tmp_path: Path, capsys) -> None:
    """Issue 16: a csv's timestamp was tested as a categorical (DRIFT, "89 categories unseen")
    and the target as a feature."""
    rng = np.random.default_rng(1)

    def frame(start: str, n: int = 500) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time_hour": pd.date_range(start, periods=n, freq="h").astype(str),
                "a": rng.normal(size=n),
                "air_time": rng.normal(100 if start < "2013-06" else 150, 10, size=n),
            }
        )

    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    frame("2013-01-01").to_csv(ref, index=False)
    frame("2013-07-01").to_csv(cur, index=False)
    argv = ["check", "--reference", str(ref), "--current", str(cur), "--json"]
    assert main([*argv, "--target", "air_time"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [c["column"] for c in data["columns"]] == ["a"] and not data["dataset_drift"]
    assert "not tested: time_hour (a timestamp), air_time (the target)" in captured.err
