"""The pickle scanner's data: which files it reads (formats, extensions) and the allow-list verdict on a
global (rules/pickle-globals.yaml). Light on purpose: the scanner decides which files it wants from this
alone, and imports the pickle VM (auditor/parsers/picklevm.py) only when there is one.
"""
from __future__ import annotations

from typing import Any

from auditor import rules
from auditor.model import Severity
from auditor.record import record

NAME = "pickle"
CONTAINER_FORMATS = ("zip", "7z", "tar", "gzip", "bz2", "xz", "zstd", "lz4")
PICKLE_FORMATS = ("pickle", "numpy", *CONTAINER_FORMATS)


@record(frozen=True)
class GlobalVerdict:
    status: str                   # safe | dangerous | unknown
    severity: Severity = Severity.INFO
    why: str = ""
    match: str = ""


class GlobalsPolicy:
    def __init__(self, data: dict[str, Any]) -> None:
        self.safe = set(data.get("safe") or ())
        self.safe_class_packages = tuple(data.get("safe_class_packages") or ())
        self.resolvers = set(data.get("resolvers") or ())
        self.dangerous: dict[str, tuple[Severity, str]] = {}
        for entry in data.get("dangerous") or ():
            self.dangerous[entry["match"]] = (Severity.parse(entry.get("severity", "critical")), entry.get("why", ""))
        self.extensions = tuple(s.lower() for s in data.get("pickle_extensions") or ())
        self.torchscript_ops = tuple(data.get("torchscript_op_namespaces") or ())

    def classify(self, qualname: str) -> GlobalVerdict:
        if qualname in self.safe:      # exact names only, so a dangerous module's member is never "safe"
            return GlobalVerdict("safe")
        parts = qualname.split(".")
        best: GlobalVerdict | None = None
        for i in range(1, len(parts) + 1):
            hit = self.dangerous.get(".".join(parts[:i]))
            if hit and (best is None or hit[0] > best.severity):
                best = GlobalVerdict("dangerous", hit[0], hit[1], ".".join(parts[:i]))
        if best is not None:
            return best
        if any(p.startswith("__") for p in parts[1:]) or any(not p.isidentifier() for p in parts):
            return GlobalVerdict("dangerous", Severity.CRITICAL,
                                 "dunder or malformed name: reaches interpreter internals", qualname)
        last = parts[-1]
        for package in self.safe_class_packages:
            if qualname.startswith(package + ".") and last.lstrip("_")[:1].isupper():
                return GlobalVerdict("safe")
        return GlobalVerdict("unknown", Severity.MEDIUM)


def globals_policy() -> GlobalsPolicy:
    global _POLICY
    if _POLICY is None:
        _POLICY = GlobalsPolicy(rules.load("pickle-globals.yaml"))
    return _POLICY


_POLICY: GlobalsPolicy | None = None
