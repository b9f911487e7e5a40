"""driftwatch.files: all-or-nothing writes, and a full disk named as such."""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.files import atomic_write, atomic_write_bytes, file_hash


def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "result.json"
    atomic_write_bytes(path, b"old")
    assert path.read_bytes() == b"old"

    def half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]

    frame = pd.DataFrame({"a": [1, 2]})
    out = atomic_write(tmp_path / "ref.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    assert pd.read_parquet(out).equals(frame)
    assert len(file_hash(out)) == 64


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError("IOError: No space left on device. Detail: [errno 28]"),  # pyarrow: no errno
    ],
)
def test_disk_full_names_the_file(tmp_path: Path, error: OSError) -> None:
    def full(tmp: Path) -> None:
        raise error

    path = tmp_path / "runs" / "r.json"
    with pytest.raises(OSError, match=rf"disk full: cannot write {path}") as err:
        atomic_write(path, full)
    assert err.value.errno == errno.ENOSPC
    assert not list(path.parent.iterdir())
