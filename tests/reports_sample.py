"""Audit results for the report tests: a hand-built hostile one (every untrusted field carries HTML,
Markdown, SARIF placeholders, control characters and an RTL override) and the real demo repos."""
from __future__ import annotations

from auditor.model import Ancestor, AuditResult, Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot, Verdict

# One string that breaks every format if rendered raw.
HOSTILE = ('<script>alert(1)</script><img src=x onerror=alert(2)> **bold** [link](https://evil.example) '
           '| cell | @everyone #1 {0} {{1}} `tick` \x1b[31mred\x07 \u202etxt.exe\u202c end')
RTL = "\u202e"


def hostile_result() -> AuditResult:
    files = (
        FileRecord(path="model.safetensors", size=4096, sha256="a" * 64, format="safetensors",
                   extension_format="safetensors", publisher_sha256="a" * 64),
        FileRecord(path="modeling_evil.py", size=812, sha256="b" * 64, format="text", extension_format="python",
                   publisher_git_sha1="c" * 40),
        FileRecord(path="weird <name> & co.bin", size=17, sha256="d" * 64, format="pickle",
                   extension_format="pytorch"),
        FileRecord(path="README.md", size=300, sha256="e" * 64, format="text", extension_format="markdown"),
    )
    findings = (
        Finding(rule="CODE-NETWORK-CALL", severity=Severity.HIGH, title="Code calls the network at import",
                file="modeling_evil.py", location="line 12", evidence="urllib.request.urlopen(" + HOSTILE + ")",
                scanner="code"),
        Finding(rule="FORMAT-DISGUISED-EXECUTABLE", severity=Severity.CRITICAL, title="Executable disguised as weights",
                file="weird <name> & co.bin", location="member data.pkl, opcode #5 @ byte 40", evidence=HOSTILE,
                scanner="inventory"),
        Finding(rule="INVENTORY-UNREADABLE", severity=Severity.MEDIUM, title="File could not be read",
                file="model.safetensors", location="", evidence="permission denied", scanner="inventory"),
        Finding(rule="LICENSE-REGISTRATION", severity=Severity.LOW, title="License requires registration",
                file="README.md", location="line 3", evidence=HOSTILE, scanner="license"),
        Finding(rule="INVENTORY-EMPTY-FILE", severity=Severity.INFO, title="Empty file", file="",
                scanner="inventory", waived=True, waiver="accepted by sec-team " + HOSTILE),
    )
    snapshot = Snapshot(
        root="/tmp/models/evil", kind="hub", target="hf://evil-org/evil-model@main", repo_id="evil-org/evil-model",
        requested_revision="main", resolved_revision="0123456789abcdef0123456789abcdef01234567",
        endpoint="https://mirror.internal.example", hosts_contacted=("mirror.internal.example",),
        fetched_at="2026-11-29T10:00:00+00:00",
        ancestors=(Ancestor(repo_id="base-org/base-model", relation="finetune", depth=1,
                            commit="fedcba9876543210fedcba9876543210fedcba98"),))
    facts = {
        "provenance": {
            "publisher": {"org": "Evil Org " + HOSTILE, "entity": "Evil Org Ltd", "country": "XX", "kind": "company"},
            "lineage": [{"repo_id": "base-org/base-model", "relation": "finetune", "depth": 1, "org": "Base Org",
                         "entity": "Base Org Inc", "country": "US", "license": "apache-2.0", "error": ""}],
            "effective_origin": {"org": "Base Org", "entity": "Base Org Inc", "country": "US"},
            "signature": {"status": "absent", "detail": "no model signature file " + HOSTILE},
        },
        "license": {
            "model": {"id": "other", "name": "Evil Community License " + HOSTILE, "spdx": "", "confidence": 0.7,
                      "sources": ["README.md"]},
            "obligations": [{"term": "registration", "summary": "Register before use " + HOSTILE,
                             "source": "LICENSE", "from": "evil-org/evil-model"}],
            "governing_law": "Nowhereland", "venue": "Nowhere City",
            "lineage": [{"repo_id": "base-org/base-model", "license_id": "apache-2.0", "name": "Apache 2.0"}],
            "summary": ["registration: Register before use " + HOSTILE],
        },
        "model_card": {"card": {"pipeline_tag": "text-generation", "datasets": ["evil-org/evil-data"]},
                       "config": {"architectures": ["EvilForCausalLM"], "model_type": "evil", "hidden_size": 16},
                       "limitations": "Hallucinates on long inputs " + HOSTILE},
    }
    claims = (
        Claim("integrity", "Files are pinned to a commit and match the publisher's hashes", ClaimStatus.SUPPORTED,
              "4 file(s) at commit 0123 match", ("commit:0123456789abcdef0123456789abcdef01234567",
                                                 "sha256:" + "a" * 64 + " model.safetensors")),
        Claim("route", "Files came through an endpoint outside the origin's jurisdiction", ClaimStatus.SUPPORTED,
              "fetched through https://mirror.internal.example", ("host:mirror.internal.example",)),
        Claim("passive-weights", "No file runs code when it is loaded", ClaimStatus.REFUTED,
              "FORMAT-DISGUISED-EXECUTABLE in weird <name> & co.bin: " + HOSTILE,
              ("FORMAT-DISGUISED-EXECUTABLE:weird <name> & co.bin",)),
        Claim("runtime", "A sandboxed load showed zero network attempts", ClaimStatus.NOT_ASSESSED,
              "the check behind it did not run (runtime)"),
    )
    verdict = Verdict(decision="fail", policy="default", reasons=("1 critical finding " + HOSTILE,),
                      counts={"info": 0, "low": 1, "medium": 1, "high": 1, "critical": 1})
    return AuditResult(target="hf://evil-org/evil-model@main", snapshot=snapshot, files=files, findings=findings,
                       verdict=verdict, claims=claims, facts=facts, timings={"total": 0.5}, tool_version="0.1.0",
                       started_at="2026-11-29T10:00:00+00:00")
