"""`driftwatch check` imports what a drift check needs and nothing else (issue 20).

Each case runs in a fresh interpreter and inspects ``sys.modules`` afterwards: import checks,
not timings. scikit-learn (~1 s with scipy.stats), MLflow (~5 s), Evidently (~6 s) and Prefect
(~2 s) cost more than the check itself, and scipy.stats (~0.4 s) is for the tests and
calibrations that use its distributions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference_data" / "flights_2013_01.parquet"
HEAVY = ("sklearn", "mlflow", "evidently", "prefect", "dask", "distributed")

PROBE = """
import contextlib, io, json, sys
from driftwatch.cli import main
argv = json.loads(sys.argv[1])
code = None
if argv:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
loaded = {m.split(".")[0] for m in sys.modules}
print(json.dumps({
    "code": code,
    "heavy": sorted(loaded & set(json.loads(sys.argv[2]))),
    "scipy_stats": "scipy.stats" in sys.modules,
    "scipy": "scipy" in sys.modules,
}))
"""


def probe(argv: list[str]) -> dict:
    """Run ``driftwatch`` with ``argv`` in a fresh interpreter; what it imported."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One day of real flights (12 February 2013, local time), as a landing file would hold."""
    frame = pd.read_parquet(ROOT / "reference_data" / "flights_2013_01_02.parquet")
    local = frame["time_hour"].dt.tz_convert("America/New_York")
    path = tmp_path_factory.mktemp("imports") / "2013-02-12.parquet"
    frame[(local.dt.month == 2) & (local.dt.day == 12)].to_parquet(path, index=False)
    return path


def check(current: Path, config: Path | None = None) -> list[str]:
    argv = ["check", "--reference", str(REFERENCE), "--current", str(current), "--json"]
    return argv + (["--config", str(config)] if config else [])


def test_import_cli_loads_no_heavy_library() -> None:
    seen = probe([])
    assert seen["heavy"] == [] and not seen["scipy_stats"]


def test_check_without_config_imports_no_heavy_library(current: Path) -> None:
    seen = probe(check(current))
    assert seen["code"] == 0
    assert seen["heavy"] == []
    assert not seen["scipy_stats"], "no p-value test runs: Evidently's tests above 1000 rows"
    # W1 and Jensen-Shannon are computed in numpy: no scipy at all (~0.2-0.5 s of imports)
    assert not seen["scipy"]


def test_check_with_config_distance_tests_imports_no_heavy_library(
    current: Path, make_config: Callable[..., Path]
) -> None:
    seen = probe(check(current, make_config(drift={"method": "evidently"})))
    assert seen["code"] == 0
    assert seen["heavy"] == []
    assert not seen["scipy_stats"]


def test_check_with_config_p_value_tests_imports_scipy_stats_only(
    current: Path, make_config: Callable[..., Path]
) -> None:
    seen = probe(check(current, make_config(drift={"method": "bonferroni"})))
    assert seen["code"] == 0
    assert seen["heavy"] == []
    assert seen["scipy_stats"], "K-S and chi-square p-values come from scipy.stats"


def test_check_with_shipped_calibrated_config_imports_no_heavy_library(
    current: Path, make_config: Callable[..., Path]
) -> None:
    # Time-block calibration (run here on the fly) uses scipy.stats' distributions: allowed.
    seen = probe(check(current, make_config()))
    assert seen["code"] == 0
    assert seen["heavy"] == []
