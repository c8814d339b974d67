"""The HTML report in a real browser (headless Chromium): it reads on a phone, and its CSP is strict."""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest
from reports_sample import hostile_result

from auditor.pipeline import audit
from auditor.reports import html
from auditor.workflows import demo

PHONE = 390


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is missing: apt-get install chromium (see .ci/run)")
    return found


def _measure(page: str, tmp_path: Path, width: int) -> tuple[int, int]:
    """(document scrollWidth, viewport width) at `width` CSS pixels. Headless Chromium's window is at least
    500 px wide, so the page runs in a `width` px iframe (srcdoc: its own CSP applies); one more script,
    allowed by its hash in the page's CSP, writes the widths into the outer title that --dump-dom prints."""
    probe = ("parent.document.title='W='+document.documentElement.scrollWidth+'/'"
             "+document.documentElement.clientWidth;")
    digest = base64.b64encode(hashlib.sha256(probe.encode()).digest()).decode()
    page = page.replace("script-src '", f"script-src 'sha256-{digest}' '", 1)
    page = page.replace("</body>", f"<script>{probe}</script></body>")
    (tmp_path / f"page-{width}.html").write_text(page, encoding="utf-8")
    path = tmp_path / f"probe-{width}.html"
    path.write_text(f'<!DOCTYPE html><html><head><title>-</title><style>body{{margin:0}} iframe{{border:0}}</style>'
                    f'</head><body><iframe width="{width}" height="900" srcdoc="{escape(page, quote=True)}">'
                    '</iframe></body></html>', encoding="utf-8")
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={max(width, 800)},900", "--virtual-time-budget=3000", "--dump-dom", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"<title>W=(\d+)/(\d+)</title>", proc.stdout)
    assert match, proc.stderr[-2000:]
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("html")
    repos = demo.build_all(root)
    return {"risky": html.render(audit(str(repos[demo.RISKY]))), "hostile": html.render(hostile_result())}


@pytest.mark.parametrize("name", ["risky", "hostile"])
def test_no_horizontal_overflow_on_a_phone(pages: dict[str, str], tmp_path: Path, name: str) -> None:
    scroll, viewport = _measure(pages[name], tmp_path, PHONE)
    assert viewport <= PHONE and scroll <= viewport, (scroll, viewport)
    shot = tmp_path / "phone.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={PHONE},2400", f"--screenshot={shot}", (tmp_path / f"page-{PHONE}.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_desktop_width_and_the_page_can_fail(pages: dict[str, str], tmp_path: Path) -> None:
    scroll, viewport = _measure(pages["risky"], tmp_path, 1280)
    assert scroll <= viewport
    wide = pages["risky"].replace("<body>", '<body><div style="width:2000px">x</div>', 1)
    scroll, viewport = _measure(wide, tmp_path, PHONE)
    assert scroll > viewport                               # the probe sees an overflow when there is one


def test_csp_print_sort_facet_and_grouped_issues(pages: dict[str, str]) -> None:
    page = pages["risky"]
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert "base-uri 'none'" in csp and "form-action 'none'" in csp and "default-src 'none'" in csp
    assert "@media print" in page and "@media (max-width: 700px)" in page
    assert 'th data-sort="severity"' in page and '<select id="rule">' in page
    rows = re.findall(r'<tr data-severity="critical"[^>]*data-rule="([^"]+)"', page)
    assert rows.count("TEMPLATE-SANDBOX-ESCAPE") == 1       # two findings in one template: one issue
