"""Findings -> Verdict, through a policy (a shipped preset in rules/policies/ or a user's file)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import rules
from auditor.errors import AuditorError
from auditor.model import Finding, Severity, Verdict

_KEYS = {"name", "description", "fail_on", "warn_on", "user_region", "allowed_jurisdictions",
         "sensitive_origins"}


@dataclass(frozen=True)
class Policy:
    name: str
    fail_on: Severity
    warn_on: Severity
    source: str
    settings: dict[str, Any] = field(default_factory=dict)   # the whole policy file, for scanners to read


def presets() -> list[str]:
    return sorted(p.stem for p in (rules.rules_dir() / "policies").glob("*.yaml"))


def load(name_or_path: str) -> Policy:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise AuditorError(f"policy file not found: {name_or_path}")
        data, source = rules.load_file(path), str(path)
    elif name_or_path in presets():
        data, source = rules.load(f"policies/{name_or_path}.yaml"), f"preset:{name_or_path}"
    else:
        raise AuditorError(f"unknown policy {name_or_path!r}: use one of {', '.join(presets())} or a YAML file")
    return _parse(data, source)


def _parse(data: Any, source: str) -> Policy:
    if not isinstance(data, dict):
        raise AuditorError(f"policy {source}: expected a mapping at the top level")
    unknown = set(data) - _KEYS
    if unknown:
        raise AuditorError(f"policy {source}: unknown keys {', '.join(sorted(unknown))}")
    try:
        return Policy(name=str(data.get("name") or Path(source).stem), source=source,
                      fail_on=Severity.parse(data.get("fail_on", "high")),
                      warn_on=Severity.parse(data.get("warn_on", "medium")), settings=dict(data))
    except ValueError as exc:
        raise AuditorError(f"policy {source}: {exc}") from None


def decide(policy: Policy, findings: list[Finding]) -> Verdict:
    active = [f for f in findings if not f.waived]
    counts = Counter(f.severity.label for f in active)
    failing = [f for f in active if f.severity >= policy.fail_on]
    warning = [f for f in active if policy.warn_on <= f.severity < policy.fail_on]
    if failing:
        decision, why = "fail", failing
    elif warning:
        decision, why = "warn", warning
    else:
        decision, why = "pass", []
    reasons = tuple(f"{f.severity.label}: {f.rule} {f.file}".rstrip() for f in why[:50])
    return Verdict(decision=decision, policy=policy.name, reasons=reasons,
                   counts={s.label: counts.get(s.label, 0) for s in Severity})
