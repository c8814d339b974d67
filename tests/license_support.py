"""Helpers for the license tests: model folders, a scan through the real inventory, the corpus."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from auditor import inventory, sources
from auditor import record as records
from auditor.facts import Facts
from auditor.judge import regions
from auditor.model import Ancestor, Finding, Options
from auditor.scanners import ScanContext
from auditor.scanners import license as license_scanner

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "licenses"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/licenses")


def card(**front: Any) -> str:
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n# A model\n\nSome words about it.\n"


def make_model(folder: Path, front: dict[str, Any] | None = None, files: dict[str, str | bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    if front is not None:
        (folder / "README.md").write_text(card(**front))
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


@dataclasses.dataclass
class Scan:
    findings: list[Finding]
    facts: dict[str, Any]
    all_facts: dict[str, Any]

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def of(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    @property
    def model_id(self) -> str:
        return self.facts["model"]["id"]

    def terms(self) -> set[str]:
        return {ob["term"] for ob in self.facts["obligations"]}


def scan(folder: Path, *, ancestors: tuple[Ancestor, ...] = (), facts: dict[str, Any] | None = None,
         settings: dict[str, Any] | None = None) -> Scan:
    options = Options()
    snapshot = sources.open_snapshot(str(folder), options)
    if ancestors:
        snapshot = records.replace(snapshot, ancestors=ancestors)
    inv = inventory.build(snapshot, options)
    ctx = ScanContext(snapshot=snapshot, files=tuple(inv.files), options=options,
                      regions=regions.of(dict(settings or {})), facts=Facts.from_dict(dict(facts or {})))
    findings = list(license_scanner.scan(ctx))
    published = ctx.facts.to_dict()
    return Scan(findings, published["license"], published)


def corpus_index() -> list[dict[str, str]]:
    """Rows of the corpus INDEX.md: file, repository, path, commit, expected."""
    rows = []
    for line in (CORPUS / "INDEX.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("file", "") and not set(cells[0]) <= {"-"}:
            rows.append(dict(zip(("file", "repo", "path", "commit", "expected"), cells, strict=True)))
    return rows


def rewrap(text: str, width: int) -> str:
    """The same words, wrapped at another width (what a copy re-flowed by an editor looks like)."""
    out, line = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        for word in paragraph.split():
            if len(line) + len(word) + 1 > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
        out.append("")
        line = ""
    return "\n".join(out)
