"""Every task type: regression, binary and multiclass, on scikit-learn's bundled datasets.

Issue 16: a 3-class wine config validated, then failed every retrain with ``Target is
multiclass but average='binary'``; a champion with a perfect holdout score could never be
replaced, so every drift alarm retrained again for ever.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from driftwatch.config import ModelSettings, load_settings
from driftwatch.errors import ConfigError
from driftwatch.model.estimators import predict, train
from driftwatch.model.quality import score
from driftwatch.monitor.policy import promotion_decision


def bundled(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loader = {
        "wine": datasets.load_wine,
        "cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    frame = loader(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def spec(frame: pd.DataFrame, task: str) -> ModelSettings:
    return ModelSettings(
        name="m",
        task=task,
        target="target",
        timestamp=None,
        numerical=[c for c in frame.columns if c != "target"],
        params={"max_iter": 30},
    )


@pytest.mark.parametrize(
    ("data", "task", "expected"),
    [
        ("diabetes", "regression", {"rmse", "mae"}),
        ("cancer", "binary", {"accuracy", "f1", "roc_auc"}),
        ("wine", "multiclass", {"accuracy", "f1", "roc_auc"}),
    ],
)
def test_each_task_trains_and_scores_with_its_metrics(data: str, task: str, expected) -> None:
    frame = bundled(data)
    s = spec(frame, task)
    model = train(frame.iloc[:120], s)
    scores = score(model, frame.iloc[120:], s)
    assert set(scores) == expected
    if task == "multiclass":
        # The monitored output is the predicted class; ROC AUC one-vs-rest from probabilities.
        assert set(np.unique(predict(model, frame, s))) <= {0.0, 1.0, 2.0}
        assert 0.8 < scores["roc_auc"] <= 1.0 and 0.5 < scores["f1"] <= 1.0


def test_classification_is_the_old_name_of_binary() -> None:
    assert ModelSettings(name="m", target="y", task="classification").task == "binary"


def test_a_binary_task_on_three_classes_names_the_setting() -> None:
    frame = bundled("wine")
    with pytest.raises(ConfigError, match=r"3 classes .*model.task: multiclass"):
        train(frame, spec(frame, "binary"))


def test_target_threshold_only_with_binary() -> None:
    with pytest.raises(ValueError, match=r"model\.target_threshold"):
        ModelSettings(name="m", target="y", task="multiclass", target_threshold=1.0)


def write_config(tmp_path: Path, **model) -> Path:
    (tmp_path / "ref.parquet").write_bytes(b"")
    raw = {
        "paths": {"reference": "ref.parquet"},
        "model": {"name": "m", "target": "y", "numerical": ["a"], **model},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_multiclass_roc_auc_quality_metric_is_refused_at_validation(tmp_path: Path) -> None:
    path = write_config(tmp_path, task="multiclass")
    path.write_text(path.read_text() + "quality: {metric: roc_auc}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    text = str(err.value)
    assert "quality.metric 'roc_auc' is not a multiclass metric (model.task 'multiclass')" in text
    assert "allowed: f1, accuracy" in text and "got {" not in text


def test_multiclass_defaults_to_macro_f1(tmp_path: Path) -> None:
    assert (
        load_settings(write_config(tmp_path, task="multiclass"), environ={}).quality_metric == "f1"
    )


def test_tie_at_the_ceiling_promotes_only_when_the_reference_is_stale() -> None:
    perfect = {"roc_auc": 1.0}
    kept = promotion_decision("roc_auc", perfect, perfect, 0.01)
    assert not kept.promote
    tied = promotion_decision("roc_auc", perfect, perfect, 0.01, stale=True)
    assert tied.promote and "ceiling" in tied.reason
    # Below the ceiling a tie is still no reason to change models.
    assert not promotion_decision(
        "roc_auc", {"roc_auc": 0.9}, {"roc_auc": 0.9}, 0.01, stale=True
    ).promote
    # A challenger below a perfect champion is not promoted.
    assert not promotion_decision("roc_auc", {"roc_auc": 0.99}, perfect, 0.01, stale=True).promote
    assert promotion_decision("rmse", {"rmse": 0.0}, {"rmse": 0.0}, 0.01, stale=True).promote


def test_a_metric_missing_on_the_holdout_keeps_the_champion() -> None:
    d = promotion_decision("roc_auc", {"accuracy": 1.0}, {"accuracy": 1.0}, 0.01)
    assert not d.promote and "undefined" in d.reason


def test_a_binary_config_on_a_three_class_reference_is_refused_at_validation(
    tmp_path: Path,
) -> None:
    bundled("wine").to_parquet(tmp_path / "ref.parquet")
    raw = {
        "paths": {"reference": "ref.parquet"},
        "model": {"name": "wine", "task": "binary", "target": "target", "numerical": ["alcohol"]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"model.target 'target' holds 3 classes \(0, 1, 2\)"):
        load_settings(tmp_path / "config.yaml", environ={})


def test_a_copied_config_names_the_setting_and_never_dumps_the_config(tmp_path: Path) -> None:
    """Issue 16: `<root>: Value error, ... (got {...the whole config...})`, flights defaults for
    omitted keys, and `drift column 'temp' is not a model feature` without the setting."""
    (tmp_path / "ref.parquet").write_bytes(b"")
    raw = {
        "paths": {"reference": "ref.parquet"},
        "model": {"numerical": ["a"], "task": "multiclas"},
        "drift": {"report_only": ["temp"]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    text = str(err.value)
    assert "model.name: required setting, not set" in text
    assert "model.target: required setting, not set" in text
    assert "model.task: " in text and "did you mean 'multiclass'?" in text
    assert "{" not in text and "flights" not in text and "<root>" not in text
    raw["model"] = {"name": "mine", "target": "y", "numerical": ["a"]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    text = str(err.value)
    assert "drift.report_only: 'temp' is not a model feature (model.numerical" in text
    assert "{" not in text and "<root>" not in text
    del raw["drift"]
    path.write_text(yaml.safe_dump(raw))
    settings = load_settings(path, environ={})
    assert settings.model.timestamp is None  # neutral, not time_hour
