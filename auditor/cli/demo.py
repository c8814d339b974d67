"""`auditor demo [DIR]`: build the sample repos, audit them, write every report format into DIR."""
from __future__ import annotations

import argparse
from pathlib import Path

from auditor.cli.args import Command, echo, folder_path


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", nargs="?", default="auditor-demo", type=folder_path, metavar="DIRECTORY")
    p.add_argument("--quiet", "-q", action="store_true", help="Only print where the reports are.")


def run(directory: str, quiet: bool) -> int:
    """Build small sample model repos with the real libraries, audit them, write the reports to DIRECTORY."""
    from auditor import atomic, reports
    from auditor.cli import output
    from auditor.errors import AuditorError
    from auditor.pipeline import audit
    from auditor.workflows import demo

    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise AuditorError(f"{directory} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    repos = demo.build_all(root)
    for name, folder in repos.items():
        result = audit(str(folder))
        stem = name.replace("/", "__")
        for fmt in reports.FORMATS:
            module = reports.get(fmt)
            atomic.write(root / f"{stem}{module.EXTENSION}", module.render(result))
        if not quiet:
            echo(output.summary(result))
            echo("")
    echo(f"reports written to {root.resolve()}")
    return 0


command = Command("demo", run, _arguments)
