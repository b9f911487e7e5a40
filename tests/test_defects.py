"""Defects found in the architecture read (issue: one monitor pipeline), one test each.

Each of these failed before its fix: an override the config refused, errors a user can act on
that surfaced as tracebacks, and a file that failed the run the same way every hour forever
(since issue 14 counted only over its runs alone, with other files' runs succeeding between:
see tests/test_isolation.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.cli import main
from driftwatch.errors import DriftwatchError, NotEnoughData, StateError
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.monitor.window import split_holdout
from driftwatch.store.landing import LandingFiles, ledger_for
from driftwatch.store.references import active_reference


def test_the_prediction_override_in_drift_columns_is_reachable(
    make_config: Callable[..., Path],
) -> None:
    # Before: "drift column 'prediction' is not a model feature" (ConfigError).
    plan = Plan.load(
        make_config(drift={"columns": {"prediction": {"test": "ks", "threshold": 1e-3}}})
    )
    rule = plan.prediction_detector().tests["prediction"]
    assert (rule.test, rule.threshold) == ("ks", 1e-3)
    assert "prediction" not in plan.detector().tests  # not a feature column


def test_errors_a_user_can_act_on_are_driftwatch_errors(
    make_config: Callable[..., Path], january: pd.DataFrame, tmp_path: Path
) -> None:
    plan = Plan.load(make_config())
    # Before: FileNotFoundError, ValueError, ValueError.
    with pytest.raises(StateError, match="missing from the state dir"):
        active_reference(plan, str(tmp_path / "gone.parquet"))
    with pytest.raises(NotEnoughData, match="only 1 labelled rows"):
        split_holdout(january.head(1), plan.settings)
    with pytest.raises(NotEnoughData, match="cannot calibrate"):
        plan.calibrate_rows(january.head(10), "x", 100)
    assert issubclass(NotEnoughData, DriftwatchError) and issubclass(StateError, DriftwatchError)


def test_a_too_small_reference_is_one_line_and_exit_code_2(
    make_config: Callable[..., Path],
    january: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tiny = tmp_path / "tiny.parquet"
    january.head(10).to_parquet(tiny)
    config = make_config()
    code = main(
        ["calibrate", "--config", str(config), "--reference", str(tiny), "--batch-rows", "100"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("driftwatch: error: cannot calibrate") and "\n" not in err


def test_the_same_failure_of_a_file_alone_again_and_again_quarantines_the_file(
    make_config: Callable[..., Path], tmp_path: Path
) -> None:
    plan = Plan.load(make_config(landing={"max_same_failures": 3}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    f = landing / "always-breaks.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(f)
    ledger = ledger_for(plan.settings.paths.state)
    ledger.scan(landing)
    batch = Batch(pd.DataFrame(), [str(f)], True)
    source = LandingFiles(plan)

    def other_run_succeeds(n: int) -> None:  # the runs in between go through: not MLflow down
        g = landing / f"fine-{n}.parquet"
        pd.DataFrame({"x": [10 + n]}).to_parquet(g)
        ledger.scan(landing)
        ledger.claim([str(g)], f"other-{n}")
        ledger.finish([str(g)], "no-drift")

    ledger.claim([str(f)], "run")  # its first failure isolates it: the count starts there
    source.fail(batch, RuntimeError("the retrain raised on this file"))
    for n in range(2):
        other_run_succeeds(n)
        ledger.claim([str(f)], "run")
        source.fail(batch, RuntimeError("the retrain raised on this file"))
        assert ledger.get(f).status == "failed"
    # A different error in between would reset the streak; the third identical one does not.
    other_run_succeeds(2)
    ledger.claim([str(f)], "run")
    source.fail(batch, RuntimeError("the retrain raised on this file"))
    rec = ledger.get(f)
    assert (
        rec.status == "quarantined" and "the same failure in 3 runs of this file alone" in rec.error
    )
    assert (plan.settings.paths.state / "quarantine" / f.name).exists()
