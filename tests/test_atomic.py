"""atomic.write's temporary file: new, private and never an existing name, like tempfile.mkstemp's."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from auditor import atomic


def test_a_taken_temporary_name_is_skipped_and_the_new_file_is_private(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([b"\x00" * 8, b"\x00" * 8, b"\x01" * 8])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    taken = tmp_path / f".r.json.1.{'00' * 8}.tmp"
    taken.write_text("someone else's")
    fd, name = atomic.exclusive_temp(tmp_path, ".r.json.1.", ".tmp")
    os.close(fd)
    assert name == str(tmp_path / f".r.json.1.{'01' * 8}.tmp")
    assert taken.read_text() == "someone else's"                       # never opened, never truncated
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600


def test_a_symlink_at_the_temporary_name_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([b"\x02" * 8, b"\x03" * 8])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / f".r.json.1.{'02' * 8}.tmp").symlink_to(target)
    fd, name = atomic.exclusive_temp(tmp_path, ".r.json.1.", ".tmp")
    os.close(fd)
    assert name.endswith(f"{'03' * 8}.tmp") and target.read_text() == "keep"


def test_write_replaces_the_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old")
    atomic.write(out, ["{", '"a": 1', "}"])
    assert out.read_text() == '{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
