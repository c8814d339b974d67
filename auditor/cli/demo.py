"""`auditor demo [DIR]`: build the sample repos, audit them, write every report format into DIR."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.argument("directory", default="auditor-demo", type=click.Path(file_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Only print where the reports are.")
def command(directory: str, quiet: bool) -> int:
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
            click.echo(output.summary(result))
            click.echo("")
    click.echo(f"reports written to {root.resolve()}")
    return 0
