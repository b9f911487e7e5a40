"""driftwatch's own HTML page of a run agrees with driftwatch (issue 16): its verdict, rule and
thresholds, the drifted columns first, the target by name, RMSE and the champion's holdout
score; self-contained; written again from the stored result by `driftwatch report --html`.

Real results: the monitor use case on real flights days (a January champion, then July), on
in-memory ports; the servers' side is in test_server.py and test_mlflow_server.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.config import load_settings
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult
from driftwatch.report.page import column_rows, render_page, severity
from tests.test_pipeline import FAST, WHOLE, batches, memory_cycle


@pytest.fixture(scope="module")
def july_run(
    tmp_path_factory: pytest.TempPathFactory, january: pd.DataFrame, july: pd.DataFrame
) -> tuple[Path, MonitorResult]:
    """A January champion (bootstrap), then a July day: drift, quality and a retrain."""
    import yaml

    from tests.conftest import REFERENCE, base_config

    tmp = tmp_path_factory.mktemp("page")
    raw = base_config()
    raw["paths"] = {"reference": str(REFERENCE), "state": str(tmp / "state")}
    raw["model"].update(FAST)
    raw["drift"].update(WHOLE)
    raw["quality"]["baseline"] = "holdout"
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    days = batches(january, july)
    cycle, _ = memory_cycle(Plan.load(config), [days[0], days[2]])
    cycle.run(run_id="boot")
    result = cycle.run(run_id="july-run")
    # what the page is rendered from: the stored JSON, read back
    return config, MonitorResult.from_dict(result.to_dict())


def table_columns(page: str, heading: str) -> list[str]:
    """The first cell (bold column name) of each row of the table under ``heading``."""
    part = page[page.index(heading) :]
    part = part[: part.index("</table>")]
    return re.findall(r"<tr class=\"[a-z ]*\"><td><b>([^<]+)</b>", part)


def test_the_page_shows_drift_when_driftwatch_alarmed_and_the_drifted_column_first(
    july_run: tuple[Path, MonitorResult],
) -> None:
    config, result = july_run
    assert result.drift is not None and result.drift.dataset_drift  # driftwatch alarmed
    page = render_page(result, load_settings(config))
    assert '<div class="badge bad">DRIFT</div>' in page
    assert result.decision.reason in page.replace("&#39;", "'")
    order = table_columns(page, "Per-column tests")
    drifted = set(result.drift.drifted_columns)
    assert drifted and set(order) == {c.column for c in result.drift.columns}
    assert set(order[: len(drifted)]) == drifted  # drifted columns first
    # then by how far past (or short of) the threshold
    rest = [r.severity for r in column_rows(result.drift)[len(drifted) :] if r.severity is not None]
    assert rest == sorted(rest, reverse=True)
    # the rule and its false-alarm rate, as driftwatch judged, with each column's threshold
    assert result.drift.summary() in page
    for c in result.drift.columns:
        if c.threshold is not None:
            assert f"{c.threshold:.4g}" in page


def test_the_quality_section_names_the_target_and_shows_rmse_and_the_holdout_score(
    july_run: tuple[Path, MonitorResult],
) -> None:
    config, result = july_run
    page = render_page(result, load_settings(config))
    assert "Model quality: target <code>air_time</code> (regression), RMSE" in page
    assert result.quality is not None and result.quality.metric == "rmse"
    assert f"{result.quality.value:.4g}" in page  # RMSE of the champion on this batch
    holdout = result.champion_holdout["rmse"]  # the champion's holdout, not its training rows
    assert f'<td class="n">{holdout:.4g}</td>' in page
    assert "champion on its holdout" in page and "Target: 'target'" not in page
    # the estimate made without the labels, beside the realised metric (issue 18)
    assert result.estimated is not None
    assert "Without labels: estimated rmse" in page
    # the retrain that followed: challenger vs champion on the same holdout
    assert result.retrain is not None
    assert f"challenger v{result.retrain.challenger_version}" in page


def test_the_page_is_small_self_contained_and_links_nothing_local(
    july_run: tuple[Path, MonitorResult],
) -> None:
    config, result = july_run
    page = render_page(result, load_settings(config))
    assert len(page.encode()) < 100_000  # Evidently's page is 4-5 MB
    assert "<script" not in page.lower()  # renders in MLflow's sandboxed preview
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", page)
    assert "file://" not in page


def test_column_names_from_the_data_are_escaped(july_run: tuple[Path, MonitorResult]) -> None:
    config, result = july_run
    assert result.drift is not None
    first = result.drift.columns[0].model_copy(update={"column": "<img src=x onerror=alert(1)>"})
    drift = result.drift.model_copy(update={"columns": [first, *result.drift.columns[1:]]})
    page = render_page(result.model_copy(update={"drift": drift}), load_settings(config))
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_report_html_writes_the_page_again_from_the_stored_result(
    july_run: tuple[Path, MonitorResult], capsys: pytest.CaptureFixture[str]
) -> None:
    from driftwatch.cli import main

    config, result = july_run
    settings = load_settings(config)
    result.save(settings.paths.state / "runs")
    assert main(["report", "july-r", "--config", str(config), "--html"]) == 0
    written = settings.paths.state / "reports" / f"{result.stem}.html"
    assert capsys.readouterr().out.strip() == f"wrote {written}"
    assert written.read_text() == render_page(result, settings)
    out = Path(str(config)).parent / "again.html"
    assert main(["report", "july-r", "--config", str(config), "--html", str(out)]) == 0
    assert "DRIFT" in out.read_text()


def test_severity_reads_p_values_and_distances_the_right_way_round(
    july_run: tuple[Path, MonitorResult],
) -> None:
    _, result = july_run
    assert result.drift is not None
    base = result.drift.columns[0]
    p = base.model_copy(update={"p_value": 0.001, "score": 0.001, "threshold": 0.05})
    d = base.model_copy(update={"p_value": None, "score": 0.2, "threshold": 0.1})
    assert severity(p) == pytest.approx(50) and severity(d) == pytest.approx(2)


def test_evidently_page_opens_under_a_banner_naming_driftwatchs_verdict(tmp_path: Path) -> None:
    from driftwatch.report.html import add_banner

    page = tmp_path / "x-evidently.html"
    page.write_text('<html><head></head><body class="e"><div>Dataset Drift is NOT detected</div>')
    add_banner(page, "DRIFT, 2/14 columns drifted", "x.html")
    text = page.read_text()
    assert text.index("not driftwatch's verdict") < text.index("Dataset Drift is NOT detected")
    assert "<b>DRIFT, 2/14 columns drifted</b>" in text and 'href="x.html"' in text


def test_the_markdown_summary_gives_the_page_as_a_path_never_a_file_link(
    july_run: tuple[Path, MonitorResult],
) -> None:
    from driftwatch.report.text import markdown, verdict_line

    _, result = july_run
    md = markdown(result.model_copy(update={"html_report": "/srv/state/reports/r.html"}))
    assert result.drift is not None and f"- {verdict_line(result.drift)}" in md
    assert ": DRIFT (" in verdict_line(result.drift)
    assert "report page (on the machine that ran it): `/srv/state/reports/r.html`" in md
    assert "file://" not in md and "| column | type |" in md


def test_evidently_pages_are_kept_and_pruned_with_their_runs(
    make_config: Callable[..., Path],
) -> None:
    from driftwatch.store.retention import prune_reports

    settings = load_settings(make_config(report={"html_keep_last": 1}))
    state = settings.paths.state
    (state / "runs").mkdir(parents=True)
    (state / "reports").mkdir(parents=True)
    import os

    for i, stem in enumerate(["r1", "r2"]):
        (state / "runs" / f"{stem}.json").write_text("{}")
        for name in (f"{stem}.html", f"{stem}-evidently.html"):
            (state / "reports" / name).write_text("<html/>")
            os.utime(state / "reports" / name, (1000 + i, 1000 + i))
    prune_reports(settings)
    assert sorted(p.name for p in (state / "reports").iterdir()) == ["r2-evidently.html", "r2.html"]


def test_a_quiet_tick_whose_newest_hour_was_not_judged_shows_the_judged_horizon(
    july_run: tuple[Path, MonitorResult],
) -> None:
    config, result = july_run
    assert result.drift is not None
    empty = result.drift.model_copy(update={"span": "1h", "n_tested": 0, "dataset_drift": False})
    quiet = result.drift.model_copy(update={"span": "6h", "dataset_drift": False})
    tick = result.model_copy(update={"drift": empty, "horizons": [empty, quiet]})
    page = render_page(tick, load_settings(config))
    assert '<div class="badge ok">no drift</div>' in page
    assert "Per-column tests (6h)" in page and "Per-column tests at 1h (no verdict)" in page


def test_a_segment_verdict_is_named_by_its_segment(july_run: tuple[Path, MonitorResult]) -> None:
    """Segments (issue 19) are verdicts of one horizon on one segment's rows: the page names
    the segment, and the main table is the alarming segment's, not the horizon's overall one."""
    config, result = july_run
    overall = result.drift
    assert overall is not None
    segment = overall.model_copy(update={"segment": "origin=EWR"})
    quiet = overall.model_copy(update={"verdict": "no_drift", "dataset_drift": False})
    staged = result.model_copy(update={"horizons": [quiet, segment], "drift": segment})
    page = render_page(staged, load_settings(config))
    span = overall.span or "batch"
    assert f"<td>{span} origin=EWR</td>" in page
    assert f"Per-column tests ({span} origin=EWR)" in page or overall.span is None
    assert f"Per-column tests at {span} (" in page  # the overall verdict folded underneath
