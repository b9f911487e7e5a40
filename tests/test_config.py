"""config.yaml: defaults that work, errors that name the setting, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from driftwatch.config import load_settings
from driftwatch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, raw: dict) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def shipped() -> dict:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["paths"]["reference"] = str(ROOT / raw["paths"]["reference"])
    return raw


def test_shipped_config_loads_and_resolves_paths_against_the_file() -> None:
    s = load_settings(ROOT / "config.yaml", environ={})
    assert s.paths.state == (ROOT / "state").resolve()
    assert s.model.task == "regression" and s.quality_metric == "rmse"
    assert s.tracking_uri == f"sqlite:///{(ROOT / 'state' / 'mlflow.db').resolve()}"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    raw = shipped()
    raw["drift"]["drift_shar"] = 0.3
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, raw), environ={})
    msg = str(err.value)
    assert "drift.drift_shar" in msg and "did you mean 'drift_share'" in msg


def test_out_of_range_and_wrong_type_name_the_setting(tmp_path: Path) -> None:
    raw = shipped()
    raw["drift"]["drift_share"] = 1.5
    raw["retrain"]["window_days"] = "a month"
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, raw), environ={})
    msg = str(err.value)
    assert "drift.drift_share: Input should be less than or equal to 1 (got 1.5)" in msg
    assert "retrain.window_days" in msg and "'a month'" in msg


def test_unknown_test_name_lists_the_allowed_ones(tmp_path: Path) -> None:
    raw = shipped()
    raw["drift"]["columns"] = {"temp": {"test": "kolmogorov"}}
    with pytest.raises(ConfigError, match=r"drift.columns.temp.test: .*'ks'.*'anderson'"):
        load_settings(write(tmp_path, raw), environ={})


def test_override_for_an_unknown_column_is_refused(tmp_path: Path) -> None:
    raw = shipped()
    raw["drift"]["columns"] = {"tmp": {"threshold": 0.2}}
    with pytest.raises(ConfigError, match=r"'tmp' is not a model feature.*did you mean 'temp'"):
        load_settings(write(tmp_path, raw), environ={})


def test_metric_must_fit_the_task(tmp_path: Path) -> None:
    raw = shipped()
    raw["quality"]["metric"] = "roc_auc"
    with pytest.raises(ConfigError, match="not a regression metric"):
        load_settings(write(tmp_path, raw), environ={})


def test_missing_reference_file_is_named(tmp_path: Path) -> None:
    raw = shipped()
    raw["paths"]["reference"] = "nowhere/ref.parquet"
    with pytest.raises(
        ConfigError, match=r"paths.reference: file not found: .*nowhere/ref.parquet"
    ):
        load_settings(write(tmp_path, raw), environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "DRIFTWATCH_DRIFT__DRIFT_SHARE": "0.25",
        "DRIFTWATCH_MLFLOW__TRACKING_URI": "http://127.0.0.1:5000",
    }
    s = load_settings(write(tmp_path, shipped()), environ=env)
    assert s.drift.drift_share == 0.25
    assert s.tracking_uri == "http://127.0.0.1:5000"
    with pytest.raises(ConfigError, match=r"drift\.drift_share"):
        load_settings(write(tmp_path, shipped()), environ={"DRIFTWATCH_DRIFT__DRIFT_SHARE": "2"})


def test_unsafe_yaml_is_not_executed(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("paths: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(p, environ={})


def test_estimator_factory_that_cannot_be_imported(tmp_path: Path) -> None:
    raw = shipped()
    raw["model"]["estimator"] = "no_such_pkg.models:make"
    with pytest.raises(
        ConfigError, match=r"model\.estimator: cannot import 'no_such_pkg\.models:make'"
    ):
        load_settings(write(tmp_path, raw), environ={})
    raw["model"]["estimator"] = "sklearn.linear_model:NoSuchModel"
    with pytest.raises(ConfigError, match="has no attribute 'NoSuchModel'"):
        load_settings(write(tmp_path, raw), environ={})
    raw["model"]["estimator"] = "gradient_boosting"  # refused at load, before anything runs
    with pytest.raises(ConfigError, match="unknown estimator 'gradient_boosting'"):
        load_settings(write(tmp_path, raw), environ={})


def test_p_value_methods_refuse_distance_tests(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["paths"]["reference"] = str(ROOT / raw["paths"]["reference"])
    raw["drift"]["method"] = "bonferroni"
    raw["drift"]["columns"] = {"temp": {"test": "wasserstein"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError, match=r"drift\.columns\.temp\.test: 'wasserstein' is a distance"
    ):
        load_settings(path)
    raw["drift"]["columns"] = {"temp": {"test": "ks", "threshold": 0.001}}
    path.write_text(yaml.safe_dump(raw))
    assert load_settings(path).drift.method == "bonferroni"
    raw["drift"]["method"] = "share"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"drift\.method: Input should be 'calibrated'"):
        load_settings(path)


def test_environment_overrides_nested_keys_typed_like_the_file(tmp_path: Path) -> None:
    env = {
        "DRIFTWATCH_DRIFT__COLUMNS__TEMP__THRESHOLD": "0.2",
        "DRIFTWATCH_MODEL__PARAMS__MAX_ITER": "60",  # untyped: YAML, an int like in the file
        "DRIFTWATCH_MODEL__NAME": "2013",  # a name stays a name
        "DRIFTWATCH_LANDING__WINDOW_HOURS": "null",
        "DRIFTWATCH_DRIFT__IGNORE": "[dewp, humid]",
        "DRIFTWATCH_CONFIG": "elsewhere.yaml",  # names the file, not a setting
        "DRIFTWATCH_PAUSE_AT": "after-claim:1",
    }
    raw = shipped()
    raw["landing"]["window_hours"] = 6
    s = load_settings(write(tmp_path, raw), environ=env)
    assert s.drift.columns["temp"].threshold == 0.2
    assert s.model.params["max_iter"] == 60
    assert s.model.params["learning_rate"] == raw["model"]["params"]["learning_rate"]  # merged
    assert s.model.name == "2013" and s.landing.window_hours is None
    assert s.drift.ignore == ["dewp", "humid"]


def test_environment_typos_name_the_dotted_path(tmp_path: Path) -> None:
    path = write(tmp_path, shipped())
    for env, expected in [
        ({"DRIFTWATCH_DRIFT__COLUMNS__TEMP__THRESHLD": "0.2"}, "drift.columns.temp.threshld"),
        ({"DRIFTWATCH_DRIFT__DRIFT_SHAR": "0.3"}, "did you mean 'drift_share'"),
        ({"DRIFTWATCH_DRFT__DRIFT_SHARE": "0.3"}, "drft: unknown setting (did you mean 'drift'?)"),
        ({"DRIFTWATCH_DRIFT__COLUMNS__TEMP__THRESHOLD": "-1"}, "drift.columns.temp.threshold"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_settings(path, environ=env)
        assert expected in str(err.value) and next(iter(env)) in str(err.value)


def test_overrides_by_dotted_path_win_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, shipped())
    env = {"DRIFTWATCH_DRIFT__METHOD": "bh", "DRIFTWATCH_DRIFT__FALSE_ALARM_RATE": "0.05"}
    s = load_settings(
        path,
        environ=env,
        overrides={"drift.method": "evidently", "drift.columns.temp.threshold": "0.3"},
    )
    assert s.drift.method == "evidently"  # override > environment
    assert s.drift.false_alarm_rate == 0.05  # environment > file, key by key
    assert s.drift.columns["temp"].threshold == 0.3
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={}, overrides={"drift.drift_shar": "0.3"})
    assert "drift.drift_shar: unknown setting (did you mean 'drift_share'?)" in str(err.value)
    with pytest.raises(ConfigError, match=r"drift\.drift_share: .* \(got '2'\)"):
        load_settings(path, environ={}, overrides={"drift.drift_share": "2"})


def test_report_html_alarm_skips_evidently_on_quiet_runs() -> None:
    from driftwatch.orchestration.reporting import wants_html

    assert not wants_html("alarm", "no_drift", 50)  # the quiet hourly tick: no Evidently page
    assert not wants_html("alarm", "no_verdict", 50)  # nothing judged: nothing to show
    assert all(wants_html("alarm", a, 50) for a in ("retrain", "no_retrain", "bootstrap"))
    assert wants_html(True, "no_drift", 50) and not wants_html(False, "retrain", 50)
    assert not wants_html(True, "no_data", 0)
