"""Pruning state/reference/ and state/calibration/ against a real MLflow sqlite registry:
the champion's and the previous champion's references survive however old they are."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from driftwatch.config import Settings, load_settings
from driftwatch.model.estimators import train
from driftwatch.monitor.plan import Plan
from driftwatch.store.batches import file_hash
from driftwatch.store.references import ReferenceFiles
from driftwatch.store.registry import Registry
from driftwatch.store.retention import prune_state


def age(path: Path, minutes: int) -> Path:
    """Set the file's modification time ``minutes`` before now."""
    t = pd.Timestamp.now().timestamp() - 60 * minutes
    os.utime(path, (t, t))
    return path


def calibration(settings: Settings, name: str, reference: Path | None, minutes: int) -> Path:
    path = settings.paths.state / "calibration" / f"calibration-{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = file_hash(reference) if reference else "0" * 64
    path.write_text(yaml.safe_dump({"format": 1, "key": name, "reference_sha256": sha}))
    return age(path, minutes)


@pytest.mark.slow
def test_prune_keeps_what_the_registry_points_to_and_the_newest(
    settings: Settings, rows: pd.DataFrame
) -> None:
    reg = Registry(settings)
    refs: dict[str, Path] = {}
    # three retrains, each promoted: v3 is the champion, v2 its previous champion
    for i in (1, 2, 3):
        window = rows.sample(200, random_state=i)
        refs[f"v{i}"] = store_reference(settings, window, f"v{i}")
        _, version = reg.log_challenger(
            train(window, settings.model), {}, {}, window, window, refs[f"v{i}"]
        )
        reg.promote(version)
    assert (reg.champion().version, reg.champion().previous) == ("3", "2")
    # the registered references are the oldest files; four newer ones no version points to
    for minutes, name in ((90, "v1"), (80, "v2"), (70, "v3")):
        age(refs[name], minutes)
    for i in range(4):
        refs[f"o{i}"] = age(
            store_reference(settings, rows.sample(50, random_state=i), f"o{i}"), 60 - i
        )
    other = settings.paths.state / "reference" / "notes.txt"
    other.write_text("not a reference version")
    cals = {
        "v1": calibration(settings, "v1", refs["v1"], 100),
        "v2": calibration(settings, "v2", refs["v2"], 100),
        "v3": calibration(settings, "v3", refs["v3"], 100),
        "shipped": calibration(settings, "shipped", settings.paths.reference, 100),
        "o0": calibration(settings, "o0", refs["o0"], 100),
        "gone-a": calibration(settings, "gone-a", None, 50),
        "gone-b": calibration(settings, "gone-b", None, 40),
        "gone-c": calibration(settings, "gone-c", None, 30),
    }
    broken = settings.paths.state / "calibration" / "calibration-broken.yaml"
    broken.write_text(": not yaml [")
    age(broken, 200)

    dry = prune_state(settings, keep_last=2, registry=reg, dry_run=True)
    assert all(p.exists() for p in dry.references.deleted + dry.calibrations.deleted)

    result = prune_state(settings, keep_last=2, registry=reg)
    left = {
        p.stem.removeprefix("reference-")
        for p in (settings.paths.state / "reference").glob("*.parquet")
    }
    assert left == {"v2", "v3", "o2", "o3"}  # registry's two + the newest two
    assert {p.name for p in result.references.deleted} == {
        "reference-v1.parquet",
        "reference-o0.parquet",
        "reference-o1.parquet",
    }
    assert other.exists() and settings.paths.reference.exists()
    left_cals = {p.stem.removeprefix("calibration-") for p in cals["v1"].parent.glob("*.yaml")}
    # kept: those of kept references and the shipped one, plus the newest two
    assert left_cals == {"v2", "v3", "shipped", "gone-b", "gone-c"}
    assert dry.references.deleted == result.references.deleted
    assert sorted(dry.calibrations.deleted) == sorted(result.calibrations.deleted)

    # the champion's reference still loads, and a rollback finds its reference
    frm, to, ref = reg.rollback()
    assert (frm, to) == ("3", "2") and Path(ref).is_file()


def test_prune_without_a_champion_keeps_the_newest(settings: Settings, rows: pd.DataFrame) -> None:
    for i in range(3):
        age(store_reference(settings, rows.head(10), f"r{i}"), 10 - i)
    result = prune_state(settings, keep_last=1)
    assert [p.name for p in result.references.kept] == ["reference-r2.parquet"]
    assert len(result.references.deleted) == 2
    with pytest.raises(ValueError, match="keep_last"):
        prune_state(settings, keep_last=0)


def store_reference(settings: Settings, frame, key: str) -> Path:
    return Path(ReferenceFiles(Plan(settings=settings)).store(frame, key))


@pytest.mark.slow
def test_time_block_caches_and_profiles_are_pruned_too(make_config, tmp_path: Path) -> None:
    """The caches the monitor writes under state/ (time-block thresholds, row profiles) are
    kept for the references still in use, plus the newest keep_last; the rest go."""
    import os

    import yaml

    settings = load_settings(make_config())
    cal_dir = settings.paths.state / "calibration"
    cal_dir.mkdir(parents=True)
    shipped = file_hash(settings.paths.reference)
    for i in range(4):
        sha = shipped if i == 3 else f"gone-{i}"
        body = {"kind": "time_blocks", "horizons": [{"reference_sha256": sha}]}
        path = cal_dir / f"blocks-{i}.yaml"
        path.write_text(yaml.safe_dump(body))
        os.utime(path, (1000 + i, 1000 + i))
    profiles = settings.paths.state / "profiles"
    profiles.mkdir()
    for i in range(3):
        (profiles / f"profile-{i}.npz").write_bytes(b"x")
        os.utime(profiles / f"profile-{i}.npz", (2000 + i, 2000 + i))
    prune_state(settings, keep_last=1)  # a real (empty) registry: no champion yet
    assert sorted(p.name for p in cal_dir.iterdir()) == ["blocks-3.yaml"]
    assert sorted(p.name for p in profiles.iterdir()) == ["profile-2.npz"]


def test_html_reports_kept_for_the_newest_runs_and_none_for_failed_ones(
    settings: Settings,
) -> None:
    """Issue 16: every run with data wrote a 4-5 MB HTML with no pruning, failed runs too."""
    from driftwatch.store.retention import prune_reports

    settings = settings.model_copy(
        update={"report": settings.report.model_copy(update={"html_keep_last": 2})}
    )
    state = settings.paths.state
    (state / "reports").mkdir(parents=True)
    (state / "runs").mkdir(parents=True)
    for i, stem in enumerate(["r1", "r2", "failed", "r3"]):
        (state / "reports" / f"{stem}.html").write_text("<html/>")
        age(state / "reports" / f"{stem}.html", 10 - i)
        if stem != "failed":  # a failed run stores no result
            (state / "runs" / f"{stem}.json").write_text("{}")
    pruned = prune_reports(settings)
    assert sorted(p.name for p in pruned.kept) == ["r2.html", "r3.html"]
    assert sorted(p.name for p in pruned.deleted) == ["failed.html", "r1.html"]
    assert sorted(p.name for p in (state / "reports").iterdir()) == ["r2.html", "r3.html"]
