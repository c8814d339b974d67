"""The wheel ships rules/ and reports/, and the installed package finds them there."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_rules_and_reports(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                            str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = tmp_path.glob("auditor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "rules").rglob("*.yaml"):
        assert f"auditor/_data/rules/{path.relative_to(ROOT / 'rules').as_posix()}" in names
    assert any(n.startswith("auditor/_data/reports/") for n in names)
    # The unpacked wheel (first on sys.path, ahead of the editable checkout) finds its data inside itself.
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = ("import auditor.rules as r; print(r.rules_dir()); print(len(r.catalog()))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(unpacked)}).stdout.split()
    assert out[0].startswith(str(unpacked)) and int(out[1]) > 0
