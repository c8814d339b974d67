"""rules/claims.yaml names real rules and scanners; claims are decided by the findings they list."""
from __future__ import annotations

from fnmatch import fnmatchcase

from auditor import rules, scanners
from auditor.judge import claims as evidence
from auditor.model import ClaimStatus, FileRecord, Finding, Severity, Snapshot


def test_every_claim_glob_matches_a_documented_rule_and_requires_real_scanners() -> None:
    catalog = set(rules.catalog())
    names = {getattr(m, "NAME", "") for m in scanners.load()} | {"runtime"}
    for claim in rules.load("claims.yaml")["claims"]:
        for key in ("refuted_by", "unverified_by"):
            for glob in claim[key]:
                assert any(fnmatchcase(r, glob) for r in catalog), f"{claim['id']}.{key}: {glob} matches no rule"
        assert set(claim["requires"]) <= names, claim["id"]


def test_a_broken_python_file_leaves_the_weights_claim_assessed() -> None:
    snap = Snapshot(root="/x", kind="local-folder", target="/x")
    files = (FileRecord(path="model.safetensors", size=10, sha256="0" * 64, format="safetensors"),
             FileRecord(path="bad.py", size=10, sha256="1" * 64, format="text"))
    broken = Finding(rule="CODE-UNPARSEABLE", severity=Severity.MEDIUM, title="cannot parse", file="bad.py")
    ran = {getattr(m, "NAME", "") for m in scanners.load()}
    claims = {c.id: c for c in evidence.build(snap, files, [broken], ran)}
    assert claims["passive-weights"].status is ClaimStatus.SUPPORTED
    assert claims["code"].status is ClaimStatus.NOT_ASSESSED


def test_claim_globs_match_exactly_what_fnmatch_matches() -> None:
    """Plain ids and `PREFIX-*` are compared as strings; the answer must be fnmatchcase's for every rule."""
    globs = {g for claim in rules.load("claims.yaml")["claims"] for key in ("refuted_by", "unverified_by")
             for g in claim[key]} | {"PICKLE-*", "*-ERROR", "A?C", "[AB]-*", "X*Y*", "*", "CODE-[!N]*", "PICKLE-"}
    ids = set(rules.catalog()) | {"", "PICKLE-", "PICKLE", "A-C", "ABC", "X-Y", "pickle-x", "CODE-NET"}
    assert any(g.endswith("*") for g in globs)
    for rule in ids:
        for glob in globs:
            assert evidence._match_one(rule, glob) == fnmatchcase(rule, glob), (rule, glob)
