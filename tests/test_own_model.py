"""README "Monitor your own model", run as written on scikit-learn's bundled datasets.

The section's shell block is taken from README.md and run by bash in a temporary directory,
once per task: wine (multiclass, as written), breast cancer (binary) and diabetes
(regression), from `driftwatch init` to a promotion. Issue 16: a 3-class config validated and
then crashed at every retrain; copying config.yaml for new data took several tries.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftwatch.cli import main
from driftwatch.store.starter import infer_layout
from tests.conftest import ROOT


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Monitor your own model", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.S)[1]


VARIANTS = {
    "wine": {},
    "cancer": {
        "load_wine": "load_breast_cancer",
        "wine": "cancer",
        "--task multiclass": "--task binary",
    },
    "diabetes": {
        "load_wine": "load_diabetes",
        "wine": "diabetes",
        "--task multiclass": "--task regression",
    },
}


def tools(tmp_path: Path) -> dict[str, str]:
    """`python` and `driftwatch` on PATH as this interpreter and this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    tool = bin_dir / "driftwatch"
    tool.write_text(
        f"#!{sys.executable}\nimport sys\nfrom driftwatch.cli import main\nsys.exit(main())\n"
    )
    tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWATCH_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_readme_walkthrough_from_init_to_a_promotion(tmp_path: Path, name: str) -> None:
    script = readme_walkthrough()
    for old, new in VARIANTS[name].items():
        script = script.replace(old, new)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=tools(tmp_path),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finals = re.findall(r"^Completed: (.*)$", done.stdout, re.M)
    assert len(finals) == 2, done.stdout[-3000:]
    assert finals[0].startswith("retrained-promoted: no champion yet"), finals
    why = re.findall(r"training window: .*", done.stderr)
    assert finals[1].startswith("retrained-promoted"), (finals, why)  # v2 replaced v1
    config = yaml.safe_load((work / "config.yaml").read_text())
    assert config["model"]["task"] == {"wine": "multiclass", "cancer": "binary"}.get(
        name, "regression"
    )
    assert "target" not in config["model"]["numerical"]


def test_init_recognises_timestamp_and_id_and_cuts_by_time(tmp_path: Path, capsys) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i:05d}" for i in range(n)],
            "created_at": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
            "amount": rng.gamma(2, 10, n),
            "country": rng.choice(["fr", "de", "it"], n),
            "note": [f"free text {i}" for i in range(n)],
            "churned": rng.integers(0, 2, n),
        }
    ).sample(frac=1, random_state=1)  # shuffled: the cut must follow time, not file order
    data = tmp_path / "orders.csv"
    frame.to_csv(data, index=False)
    assert main(["init", str(data), "--target", "churned", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model.task binary" in out and "left out: note" in out
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    model = config["model"]
    assert model["timestamp"] == "created_at" and model["id_column"] == "order_id"
    assert model["numerical"] == ["amount"] and model["categorical"] == ["country"]
    ref = pd.read_parquet(tmp_path / config["paths"]["reference"])
    first = pd.read_parquet(tmp_path / "landing" / "orders-first.parquet")
    assert pd.to_datetime(ref["created_at"]).max() < pd.to_datetime(first["created_at"]).min()
    # A second init does not overwrite the config unless told to.
    assert main(["init", str(data), "--target", "churned", "--dir", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err


def test_init_names_what_it_cannot_use(tmp_path: Path) -> None:
    import pandas as pd

    from driftwatch.errors import ConfigError

    frame = pd.DataFrame({"a": range(50), "species": ["setosa", "virginica"] * 25})
    with pytest.raises(ConfigError, match="holds text labels"):
        infer_layout(frame, "species", None, "iris.csv")
    with pytest.raises(ConfigError, match=r"--target 'specie' is not a column \(did you mean"):
        infer_layout(frame, "specie", None, "iris.csv")
    with pytest.raises(ConfigError, match="pass --target"):
        infer_layout(frame, None, None, "iris.csv")
    two = pd.DataFrame({"a": [0.5 * i for i in range(50)], "y": [1, 2] * 25})
    assert infer_layout(two, "y", "binary", "f.csv").target_threshold == 1
