"""modelscan as a second engine: its scanners run on the same files through its Python API, and
its issues become findings tagged engine="modelscan", so a report shows where the two engines
agree and where only one fired. Its absence or failure is reported, never fatal.

modelscan routes files by extension only, so it sees fewer files than the auditor engine does;
the auditor never lowers its own findings because modelscan found nothing.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import ModelscanFacts, PickleFacts
from auditor.model import Finding, Severity
from auditor.scanners._formats_util import seed_platform_processor

NAME = "modelscan"
ENGINE = "modelscan"


_SEVERITY = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM,
             "LOW": Severity.LOW}


# A superset of the extensions modelscan's DEFAULT_SETTINGS scan (a test keeps it one): checked before any import.
MAYBE_MODELSCAN = (".npz", ".npy", ".pth", ".joblib", ".zip", ".keras", ".h5", ".pkl", ".pickle", ".dat", ".data",
                   ".pt", ".bin", ".ckpt", ".pb", ".dill")


def _wanted(ctx: Any) -> bool:
    """The engine is asked for and some file could be one it reads (importing even modelscan.settings costs
    ~70 ms, so this is decided from the names first)."""
    return "modelscan" in ctx.options.engines and any(rec.path.lower().endswith(MAYBE_MODELSCAN)
                                                      for rec in ctx.files)


def scan(ctx: Any) -> Iterator[Finding]:
    if not _wanted(ctx):
        return
    seed_platform_processor()   # before modelscan imports h5py
    try:
        from modelscan.settings import DEFAULT_SETTINGS
        extensions = _extensions(DEFAULT_SETTINGS)
        candidates = [rec for rec in ctx.files if not rec.error and rec.format not in ("empty", "lfs-pointer")
                      and rec.path.lower().endswith(extensions)]
        if not candidates:   # importing modelscan itself costs ~0.4 s (h5py, numpy): only when needed
            return
        from modelscan.modelscan import ModelScan
    except Exception as exc:  # noqa: BLE001 - any import failure means the engine is unavailable
        yield rules.finding("MODELSCAN-UNAVAILABLE", scanner=NAME, engine=ENGINE,
                            evidence=f"{type(exc).__name__}: {exc}; install modelscan (a dependency of auditor)")
        return
    import logging
    logging.getLogger("modelscan").setLevel(logging.CRITICAL)
    probe = ModelScan(settings=DEFAULT_SETTINGS)
    summary: dict[str, Any] = {"version": _version(), "scanned": [], "skipped": [], "errors": 0, "issues": 0}
    pickle_facts = ctx.facts.get(PickleFacts)
    unbounded = {path: info.get("unbounded") for path, info in (pickle_facts.files if pickle_facts else {}).items()
                 if info.get("unbounded")}
    for rec in candidates:
        if not probe.is_compatible(rec.path):
            continue
        if rec.path in unbounded:
            # modelscan's zip reader has no caps: feed it only files the bounded reader found safe to read
            summary["skipped"].append(rec.path)
            yield rules.finding("MODELSCAN-SKIPPED", file=rec.path, scanner=NAME, engine=ENGINE,
                                evidence="; ".join(unbounded[rec.path][:3]))
            continue
        try:
            report = ModelScan(settings=DEFAULT_SETTINGS).scan(ctx.path(rec))
        except Exception as exc:  # noqa: BLE001 - the second engine must never break the audit
            summary["errors"] += 1
            yield rules.finding("MODELSCAN-ERROR", file=rec.path, scanner=NAME, engine=ENGINE,
                                evidence=f"{type(exc).__name__}: {exc}")
            continue
        for finding in findings_from_report(report, rec.path):
            summary["issues" if finding.rule == "MODELSCAN-ISSUE" else "errors"] += 1
            yield finding
        if report.get("summary", {}).get("scanned", {}).get("total_scanned"):
            summary["scanned"].append(rec.path)
        elif report.get("summary", {}).get("skipped", {}).get("total_skipped"):
            summary["skipped"].append(rec.path)
    ctx.facts.publish(ModelscanFacts(summary))


def findings_from_report(report: dict[str, Any], rel: str) -> Iterator[Finding]:
    """modelscan's JSON report for one file -> findings (issues and errors)."""
    for issue in report.get("issues") or ():
        source = str(issue.get("source", ""))
        member = source.split(":", 1)[1] if ":" in source else ""
        severity = _SEVERITY.get(str(issue.get("severity", "")).upper(), Severity.HIGH)
        operator = f"{issue.get('module', '')}.{issue.get('operator', '')}".strip(".")
        yield rules.finding("MODELSCAN-ISSUE", file=rel, location=f"member {member}" if member else "",
                            severity=severity, scanner=NAME, engine=ENGINE,
                            evidence=f"{operator}: {issue.get('description', '')}")
    for error in report.get("errors") or ():
        yield rules.finding("MODELSCAN-ERROR", file=rel, scanner=NAME, engine=ENGINE,
                            evidence=f"{error.get('category', '')}: {error.get('description', '')}"[:500])


def _extensions(settings: dict[str, Any]) -> tuple[str, ...]:
    """Every extension modelscan routes to one of its scanners (it picks files by extension only)."""
    found = set(settings.get("supported_zip_extensions") or ())
    for scanner in (settings.get("scanners") or {}).values():
        found.update(scanner.get("supported_extensions") or ())
    return tuple(e.lower() for e in found)


def _version() -> str:
    try:
        from modelscan._version import __version__
        return str(__version__)
    except Exception:  # noqa: BLE001
        return ""
