"""Poison-proof configuration: checked fully before anything runs, read within limits.

Every config here is a real file loaded by ``load_settings``; the daemon test uses the real
``Daemon`` and its last-good file; the CLI tests run ``main`` as a user would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from driftwatch.cli import main
from driftwatch.config import load_settings
from driftwatch.errors import ConfigError
from tests.test_config import shipped, write


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    return str(err.value)


# -- 1. the whole config is checked before anything runs -----------------------------------


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("99 * * * *", "the last value (99) is higher than the maximum value (59)"),
        ("*/0 * * * *", "Increment must be higher than 0"),
        ("0 0 31 2 *", "never fires (no such date)"),
    ],
)
def test_schedule_is_parsed_by_the_daemons_own_cron(tmp_path: Path, cron: str, why: str) -> None:
    raw = shipped()
    raw["orchestration"]["schedule"] = cron
    msg = refused(write(tmp_path, raw))
    assert f"  orchestration.schedule: Value error, {cron!r}" in msg
    assert why in msg and f"(got {cron!r})" in msg


def test_grace_seconds_the_daemon_cannot_take_are_refused(tmp_path: Path) -> None:
    raw = shipped()
    raw["orchestration"]["misfire_grace_seconds"] = 0.5  # APScheduler would get int(0.5) == 0
    raw["orchestration"]["shutdown_grace_seconds"] = float("inf")
    msg = refused(write(tmp_path, raw))
    assert (
        "orchestration.misfire_grace_seconds: Input should be greater than or equal to 1"
        " (got 0.5)" in msg
    )
    assert "orchestration.shutdown_grace_seconds: Input should be a finite number (got inf)" in msg
    raw["orchestration"]["misfire_grace_seconds"] = 1e12
    raw["orchestration"]["shutdown_grace_seconds"] = 30
    assert "orchestration.misfire_grace_seconds: Input should be less than or equal to 86400" in (
        refused(write(tmp_path, raw))
    )


def test_grace_seconds_at_the_limits_are_taken_by_apscheduler(tmp_path: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    raw = shipped()
    raw["orchestration"].update(misfire_grace_seconds=1, shutdown_grace_seconds=3600)
    s = load_settings(write(tmp_path, raw), environ={})
    scheduler = BackgroundScheduler()  # not started: add_job validates the job and keeps it
    for grace in (1, 86_400):
        job = scheduler.add_job(
            print,
            CronTrigger.from_crontab(s.orchestration.schedule),
            misfire_grace_time=int(grace),  # as Daemon.run passes it
        )
        assert job.misfire_grace_time == grace


def test_unknown_model_param_names_the_key_and_the_allowed_ones(tmp_path: Path) -> None:
    raw = shipped()
    raw["model"]["params"] = {"max_iters": 200}
    from sklearn.ensemble import HistGradientBoostingRegressor

    allowed = sorted(HistGradientBoostingRegressor().get_params())
    assert refused(write(tmp_path, raw)) == (
        "model.params.max_iters: not a parameter of HistGradientBoostingRegressor"
        " (model.estimator 'hist_gradient_boosting', task 'regression')"
        f" (did you mean 'max_iter'?); allowed: {allowed}"
    )
    # The linear pipeline's final step is Ridge for regression: its own parameters.
    raw["model"].update(estimator="linear", params={"C": 1.0})
    msg = refused(write(tmp_path, raw))
    assert msg == (
        "model.params.C: not a parameter of Ridge (model.estimator 'linear', task 'regression');"
        " allowed: ['alpha', 'copy_X', 'fit_intercept', 'max_iter', 'positive', 'random_state',"
        " 'solver', 'tol']"
    )
    raw["model"]["params"] = {"alpha": 0.5}
    assert load_settings(write(tmp_path, raw), environ={}).model.params == {"alpha": 0.5}


def test_model_param_values_are_checked_like_fit_would(tmp_path: Path) -> None:
    raw = shipped()
    raw["model"]["params"] = {"max_iter": -1}
    assert refused(write(tmp_path, raw)) == (
        "model.params.max_iter: The 'max_iter' parameter of HistGradientBoostingRegressor must"
        " be an int in the range [1, inf). Got -1 instead."
    )


def test_unknown_builtin_estimator_is_refused_at_load(tmp_path: Path) -> None:
    raw = shipped()
    raw["model"]["estimator"] = "hist_gradient_bosting"
    assert refused(write(tmp_path, raw)) == (
        "model.estimator: unknown estimator 'hist_gradient_bosting'"
        " (did you mean 'hist_gradient_boosting'?); use one of"
        " ['hist_gradient_boosting', 'linear'] or 'package.module:factory'"
    )


def test_a_config_without_features_is_refused(tmp_path: Path) -> None:
    raw = shipped()
    raw["model"]["numerical"] = []
    raw["model"]["categorical"] = []
    raw["drift"].pop("columns", None)
    raw["drift"]["report_only"] = []
    path = write(tmp_path, raw)
    assert refused(path) == (
        f"{path}: model: no features; list the model's input columns in model.numerical"
        " and/or model.categorical"
    )


def test_daemon_keeps_only_a_config_that_passed_the_full_check(make_config) -> None:
    from driftwatch.orchestration.daemon import Daemon

    config = make_config()
    daemon = Daemon(config)
    assert daemon.reload() == config.resolve()
    last_good = daemon._last_good_path()
    kept = last_good.read_bytes()
    raw = yaml.safe_load(config.read_text())
    raw["model"]["params"] = {"max_iters": 5}  # valid YAML and types: only the full check sees it
    config.write_text(yaml.safe_dump(raw))
    assert daemon.reload() == last_good
    assert last_good.read_bytes() == kept
    good = load_settings(last_good, environ={})  # what the tick runs with passes the check too
    assert good.model.params == {"max_iter": 60}
    assert daemon.settings.model.params == {"max_iter": 60}


# -- 2. YAML read within limits --------------------------------------------------------------


def test_a_config_over_1_mib_is_refused_unread(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("# padding\n" * 110_000)
    assert refused(p) == f"{p}: larger than 1024 KiB; refused unread (a config is small)"


def test_a_config_not_in_utf8_says_to_resave_it(tmp_path: Path) -> None:
    head = yaml.safe_dump(shipped()).encode() + b"# m"
    p = tmp_path / "config.yaml"
    p.write_bytes(head + "étéo\n".encode("latin-1"))
    assert refused(p) == (
        f"{p}: not UTF-8 text (byte 0xe9 at offset {len(head)}); re-save as UTF-8"
    )


def test_a_utf8_config_with_a_bom_and_a_few_anchors_loads(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    text = f"""
paths: {{reference: {shipped()["paths"]["reference"]}}}
model:
  name: flights
  target: air_time
  numerical: &weather [temp, wind_speed]
  categorical: [origin]
drift:
  report_only: *weather
  horizons: []
"""
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    s = load_settings(p, environ={})
    assert s.drift.report_only == s.model.numerical == ["temp", "wind_speed"]


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")  # 81 aliases, 9**10 nodes
    p = tmp_path / "config.yaml"
    p.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    assert refused(p) == (
        f"{p}: refused: its aliases expand to more than 100,000 values (an alias bomb or a"
        " cyclic alias)"
    )
    assert time.monotonic() - started < 2
    p.write_text("model: &m\n  params: *m\n")
    assert "its aliases expand to more than 100,000 values" in refused(p)
    p.write_text("".join(f"k{i}: &k{i} 1\n" for i in range(60)) + "l: [" + "*k0, " * 101 + "]\n")
    assert refused(p) == f"{p}: refused: more than 100 aliases (*name)"


def test_a_50k_deep_document_is_one_line_not_a_recursion_error(tmp_path: Path, capsys) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("model: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert refused(p) == f"{p}: refused: nested deeper than 64 levels (line 1, column 71)"
    assert main(["config", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"driftwatch: error: {p}: refused: nested deeper than 64 levels (line 1, column 71)\n"
    )


def test_an_alias_bomb_in_an_environment_variable_is_only_an_invalid_value(
    tmp_path: Path,
) -> None:
    levels = ["&l0 [" + ", ".join(["x"] * 9) + "]"]
    for i in range(1, 7):  # 54 aliases, 9**7 values expanded
        levels.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    environ = {"DRIFTWATCH_DRIFT__IGNORE": "[" + ", ".join(levels) + "]"}
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"drift\.ignore: Input should be a valid list"):
        load_settings(write(tmp_path, shipped()), environ=environ)
    assert time.monotonic() - started < 2


# -- 3. every failure is one line and an exit code; the traceback only with --debug ----------


def small_config(tmp_path: Path) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "paths": {
                    "reference": shipped()["paths"]["reference"],
                    "state": str(tmp_path / "state"),
                    "landing": str(tmp_path / "landing"),
                },
                "model": {
                    "name": "flights-air-time",
                    "target": "air_time",
                    "timestamp": "time_hour",
                    "numerical": ["temp"],
                    "categorical": ["origin"],
                },
            }
        )
    )
    return p


def test_a_corrupt_ledger_is_one_line_and_exit_3(tmp_path: Path, capsys) -> None:
    config = small_config(tmp_path)
    ledger = tmp_path / "state" / "ledger.sqlite"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"this is not a sqlite database\n" * 200)
    assert main(["status", "--config", str(config)]) == 3
    out = capsys.readouterr()
    assert out.err == (
        f"driftwatch: error: {ledger}: file is not a database (DatabaseError);"
        " run with --debug for the traceback\n"
    )
    for argv in (["--debug", "status"], ["status", "--debug"]):  # before or after the command
        assert main([*argv, "--config", str(config)]) == 3
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):\n")
        assert err.endswith(
            f"driftwatch: error: {ledger}: file is not a database (DatabaseError)\n"
        )


def test_a_truncated_run_result_is_skipped_with_one_warning_line(tmp_path: Path, capsys) -> None:
    from driftwatch.monitor.result import Decision, MonitorResult

    config = small_config(tmp_path)
    runs = tmp_path / "state" / "runs"
    runs.mkdir(parents=True)
    good = MonitorResult(
        run_id="0123456789",
        started="2024-01-02T00:00:00+00:00",
        files=[],
        rows=0,
        labelled_rows=0,
        decision=Decision(action="no_data", reason="no new data"),
    )
    good.save(runs)
    (runs / "20240101T000000Z-abcdef12.json").write_text('{"run_id": "abcdef12", "star')
    (runs / "20240103T000000Z-bbbbbbbb.json").write_text('{"not": "a run"}')
    warning = (
        f"warning: skipped 2 unreadable run result(s) in {runs}:"
        " 20240101T000000Z-abcdef12.json (Unterminated string starting at: line 1 column 24"
        " (char 23)); 20240103T000000Z-bbbbbbbb.json ("
    )
    assert main(["report", "--any", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert out.err.startswith(warning) and out.err.count("\n") == 1
    assert out.out.startswith("run 0123456789 at 2024-01-02T00:00:00+00:00")
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr()
    lines = out.err.splitlines()  # (and MLflow's own log lines as it creates its database)
    assert lines[0].startswith(warning) and sum("unreadable" in line for line in lines) == 1
    assert "no-data" in out.out and "Traceback" not in out.err


def test_bad_input_stays_exit_2_and_debug_adds_the_traceback(tmp_path: Path, capsys) -> None:
    p = tmp_path / "config.yaml"
    p.write_bytes("model: {name: caf\xe9}\n".encode("latin-1"))
    line = f"driftwatch: error: {p}: not UTF-8 text (byte 0xe9 at offset 17); re-save as UTF-8\n"
    assert main(["config", "--config", str(p)]) == 2
    assert capsys.readouterr().err == line
    assert main(["--debug", "config", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n") and err.endswith(line)


# -- 4. file names cannot forge lines in warnings, logs and tables -----------------------------


def test_a_landing_name_with_a_newline_cannot_inject_lines(make_config, capsys) -> None:
    from driftwatch.monitor.plan import Plan
    from driftwatch.store.landing import LandingFiles

    config = make_config(landing={"max_attempts": 1})
    plan = Plan.load(config)
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    name = "evil\nERROR driftwatch: forged line\x1b[31m.csv"
    bad = landing / name
    bad.write_text("not,a\nbatch,file\n")
    assert bad.is_file() and "\n" in bad.name  # a real file, named as Linux allows
    batch = LandingFiles(plan).collect("run-1")
    quarantined = plan.settings.paths.state / "quarantine" / name
    assert batch.files == [] and quarantined.is_file()
    assert len(batch.warnings) == 1
    (warning,) = batch.warnings
    assert warning.startswith(f"quarantined: column 'distance' in {str(bad)!r}: ")
    assert "\n" not in warning
    assert "\x1b" not in warning and "\\x1b[31m" in warning
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and not any(line.startswith("ERROR") for line in out.splitlines())
    assert f"{str(landing)!r}"[:-1] in out  # the name, quoted and escaped in the table
    assert main(["requeue", "--config", str(config), str(quarantined)]) == 0
    assert capsys.readouterr().out == (
        f"requeued {str(bad)!r} (moved back from {str(quarantined)!r}): pending, attempts 0"
        " (was quarantined)\n"
    )


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_final_step_table_matches_build_estimator(task: str) -> None:
    import importlib

    from driftwatch.config import BUILTIN_FINAL_STEPS, ModelSettings
    from driftwatch.model.estimators import BUILTIN_ESTIMATORS, build_estimator

    assert sorted(BUILTIN_FINAL_STEPS) == sorted(BUILTIN_ESTIMATORS)
    for name, steps in BUILTIN_FINAL_STEPS.items():
        spec = ModelSettings(
            name="m", target="y", estimator=name, task=task, numerical=["a"], categorical=["b"]
        )
        final = build_estimator(spec).steps[-1][1]
        module, _, cls = steps[task].partition(":")
        assert getattr(importlib.import_module(module), cls) is type(final)
