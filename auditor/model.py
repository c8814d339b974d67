"""The data that flows through the pipeline: frozen, typed, JSON-ready.

target -> Snapshot -> Inventory (FileRecords) -> Findings -> Verdict + Claims -> AuditResult
"""
from __future__ import annotations

import enum
import operator
from collections.abc import Iterable
from typing import Any

from auditor.record import asdict, field, record


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r} (expected one of: "
                             f"{', '.join(s.label for s in cls)})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@record(frozen=True)
class Ancestor:
    """One model in the lineage, as resolved by a source (root last)."""
    repo_id: str
    relation: str = ""            # finetune, quantized, adapter, merge, ...
    depth: int = 1                # 1 = direct parent
    parent: str = ""              # repo id of the child that named it
    commit: str = ""
    card: dict[str, Any] = field(default_factory=dict)   # card front matter
    license_texts: dict[str, str] = field(default_factory=dict)  # file name -> text
    error: str = ""               # why it could not be resolved, if so


@record(frozen=True)
class Snapshot:
    """A local folder of files plus how it was obtained."""
    root: str                      # absolute path of the local folder
    kind: str                      # "local-folder", "local-file", "hf-cache", "hub"
    target: str                    # what the user typed
    single_file: str = ""          # relative path when the target was one file
    repo_id: str = ""
    requested_revision: str = ""
    resolved_revision: str = ""    # commit SHA when known
    endpoint: str = ""
    hosts_contacted: tuple[str, ...] = ()
    publisher_hashes: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {sha256|git_sha1, size}
    metadata_only: bool = False
    fetched_at: str = ""
    ancestors: tuple[Ancestor, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)  # anything else a source learned

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@record(frozen=True, slots=True)   # one per file: no __dict__ per record at 100,000 files
class FileRecord:
    """One file of the snapshot as the inventory saw it: path, size, hash and detected format."""
    path: str                      # relative, POSIX separators
    size: int
    sha256: str                    # "" when the file could not be read
    format: str                    # detected by content (see inventory.FORMATS)
    extension_format: str = ""     # what the extension alone suggests
    publisher_sha256: str = ""
    publisher_git_sha1: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PATH = operator.attrgetter("path")


def manifest_digest(files: Iterable[FileRecord]) -> str:
    """The model's identity: SHA-256 over `sha256  path` lines sorted by path (sha256sum's format).

    An unreadable file counts as `-`, so a model with one is never the same as the readable original."""
    import hashlib  # here: a command that never needs it (--version) does not load OpenSSL
    digest = hashlib.sha256()
    ordered = sorted(files, key=_PATH)
    for start in range(0, len(ordered), 2048):      # 2,048 lines an update: half the time of one each, little memory
        lines = "".join([f"{r.sha256 or '-'}  {r.path}\n" for r in ordered[start:start + 2048]])
        digest.update(lines.encode("utf-8", "surrogateescape"))     # names of any bytes
    return digest.hexdigest()


@record(frozen=True)
class Finding:
    """One problem a check found: a rule id from rules/checks, where, and the evidence."""
    rule: str
    severity: Severity
    title: str
    file: str = ""
    location: str = ""
    evidence: str = ""
    scanner: str = ""
    references: tuple[str, ...] = ()
    engine: str = "auditor"        # which engine produced it (auditor, modelscan, ...)
    waived: bool = False
    waiver: str = ""               # reason (and owner) when waived

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.label
        d["references"] = list(self.references)
        return d

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule, self.file, self.location, self.evidence)

    def order(self) -> tuple[int, str, str, str, str, str, str]:
        """The one order of findings everywhere: most severe first, then by file, rule and place."""
        return (-int(self.severity), self.file, self.rule, self.location, self.evidence, self.engine, self.title)


class ClaimStatus(enum.StrEnum):
    SUPPORTED = "supported"
    REFUTED = "refuted"
    NOT_ASSESSED = "not assessed"


@record(frozen=True)
class Claim:
    """One of the "no direct connection" claims (rules/claims.yaml) with its status and evidence."""
    id: str
    title: str
    status: ClaimStatus
    reason: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status.value,
                "evidence": list(self.evidence), "reason": self.reason}


@record(frozen=True)
class Verdict:
    """The policy's decision on the findings, with the reasons that decided it."""
    decision: str                  # "pass" | "warn" | "fail"
    policy: str
    reasons: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)  # severity label -> unwaived count

    @property
    def passed(self) -> bool:
        return self.decision != "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "policy": self.policy,
                "reasons": list(self.reasons), "counts": dict(self.counts)}


@record(frozen=True)
class AuditResult:
    """Everything one audit produced; the reports render it and the JSON report is its saved form."""
    target: str
    snapshot: Snapshot
    files: tuple[FileRecord, ...]
    findings: tuple[Finding, ...]
    verdict: Verdict
    claims: tuple[Claim, ...]
    facts: dict[str, Any]          # what scanners learned: license terms, origin, lineage, metadata
    timings: dict[str, float]
    tool_version: str
    started_at: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema auditor.report/v1, README "The JSON report")."""
        from auditor.reports import json_report
        return json_report.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        """A result back from its JSON report (keys a newer version added are ignored)."""
        from auditor.reports import json_report
        return json_report.from_dict(data)


@record(frozen=True)
class Limits:
    """Bounds on the work any parser does on hostile input. Hitting one is a finding."""
    max_text_bytes: int = 16 * 1024 * 1024          # text files read for code/endpoints/license
    max_header_bytes: int = 100 * 1024 * 1024       # safetensors/GGUF headers and metadata
    max_json_depth: int = 64
    max_pickle_opcodes: int = 5_000_000
    max_pickle_memo: int = 1_000_000
    max_nesting: int = 8                            # archives in archives, pickles in pickles
    max_decompressed_bytes: int = 8 * 1024 * 1024 * 1024
    max_compression_ratio: int = 200
    max_archive_members: int = 100_000
    max_files: int = 200_000
    seconds_per_file: float = 600.0


@record(frozen=True)
class Regions:
    """The policy's geography, resolved once by judge.regions: what the scanners may grade by."""
    sensitive_origins: frozenset[str] = frozenset()  # ISO 3166-1 alpha-2 codes, upper case
    user_region: str = ""                            # where the model will be used ("" = not said)
    allowed_jurisdictions: tuple[str, ...] = ()      # governing law / venues the user accepts

    def is_sensitive(self, country: str) -> bool:
        return bool(country) and country.upper() in self.sensitive_origins


@record(frozen=True)
class Options:
    """Everything a caller can set for one audit; sources and scanners read what they need."""
    policy: str = "default"                          # preset name or path to a policy file
    waivers: str = ""                                # path to a waivers file ("" = auto-detect)
    revision: str = ""
    endpoint: str = ""
    repo_id: str = ""                                # the Hub repo id a local folder came from (declared)
    offline: bool = False                            # Hub: use only what the cache holds
    timeout: float = 0.0                             # Hub: seconds per request (0 = settings, then rules/hub.yaml)
    deadline: float = 0.0                            # Hub: seconds for the whole fetch (0 = settings, then rules)
    metadata_only: bool = False
    token: str | bool | None = None
    cache_dir: str = ""
    deployment: tuple[str, ...] = ()                 # the user's own serving configuration folders
    verify_key: str = ""
    lock_file: str = ""
    engines: tuple[str, ...] = ("auditor", "modelscan")
    workers: int = 0                                 # hashing threads; 0 = auto
    runtime: bool = False                            # also load the model in the sandbox (auditor.runtime)
    limits: Limits = field(default_factory=Limits)
