"""`auditor report RESULT.json --format F`: re-render any format from a saved JSON result."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from auditor import reports
from auditor.cli.args import Command, file_path, folder_path
from auditor.errors import AuditorError
from auditor.model import AuditResult

MAX_RESULT_BYTES = 512 * 1024 * 1024


def load(result_file: str) -> AuditResult:
    """A saved JSON result back as an AuditResult; every failure is one AuditorError line."""
    from auditor.reports import json_report
    path = Path(result_file)
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise AuditorError(f"{result_file} is larger than {MAX_RESULT_BYTES // (1024 * 1024)} MiB")
        with path.open("rb") as fh:
            return json_report.from_file(fh)
    except OSError as exc:
        raise AuditorError(f"cannot read {result_file}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise AuditorError(f"{result_file} is not JSON: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditorError(f"{result_file} is not an auditor JSON result: {type(exc).__name__}: {exc}") from None


EPILOG = """\
Examples:
  auditor report result.json -o result.pdf          # the format follows the extension
  auditor report result.json --format sarif --sarif-root . -o result.sarif

Exit codes: 0 written, 2 an error (one line on stderr)."""


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result_file", type=file_path)
    p.add_argument("--format", dest="fmt", default=None, choices=[*sorted(reports.FORMATS), "summary"],
                   help="Report format [default: from -o's extension; else summary on a terminal, json when piped].")
    p.add_argument("--output", "-o", default="-", help="Report file, or - for stdout. [default: %(default)s]")
    p.add_argument("--sarif-root", default=None, type=folder_path,
                   help="SARIF: make URIs relative to this folder (a saved result no longer knows its work tree).")


def run(result_file: str, fmt: str | None, output: str, sarif_root: str | None) -> int:
    """Render RESULT_FILE (a saved `auditor scan --format json` result) in another format."""
    from auditor.cli import output as out

    result = load(result_file)
    chosen = out.choose_format(fmt, output)
    out.emit(out.render(result, chosen, sarif_root=sarif_root), output)
    return 0


command = Command("report", run, _arguments, epilog=EPILOG)
