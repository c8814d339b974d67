"""`auditor report RESULT.json --format F`: re-render any format from a saved JSON result."""
from __future__ import annotations

import json
from pathlib import Path

import click

from auditor import reports

MAX_RESULT_BYTES = 512 * 1024 * 1024


@click.command("report")
@click.argument("result_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(reports.FORMATS)), help="Report format.")
@click.option("--output", "-o", default="-", show_default=True, help="Report file, or - for stdout.")
def command(result_file: str, fmt: str, output: str) -> int:
    """Render RESULT_FILE (a saved `auditor scan --format json` result) in another format."""
    from auditor.cli import output as out
    from auditor.errors import AuditorError
    from auditor.reports import json_report

    path = Path(result_file)
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise AuditorError(f"{result_file} is larger than {MAX_RESULT_BYTES // (1024 * 1024)} MiB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuditorError(f"cannot read {result_file}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditorError(f"{result_file} is not JSON: {exc}") from None
    try:
        result = json_report.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditorError(f"{result_file} is not an auditor JSON result: {type(exc).__name__}: {exc}") from None
    out.emit(out.render(result, fmt), output)
    return 0
