"""The "no direct connection" claims: nothing is supported unless the check behind it ran."""
from __future__ import annotations

from auditor import rules
from auditor.facts import Facts
from auditor.judge import claims as evidence
from auditor.model import ClaimStatus, FileRecord, Finding, Severity, Snapshot

ALL_SCANNERS = {s for spec in rules.load("claims.yaml")["claims"] for s in spec.get("requires", [])}
SHA = "ab" * 32


def _files(publisher: str = SHA) -> tuple[FileRecord, ...]:
    return (FileRecord(path="model.safetensors", size=10, sha256=SHA, format="safetensors", publisher_sha256=publisher),
            FileRecord(path="config.json", size=2, sha256="cd" * 32, format="text", publisher_git_sha1="1" * 40))


def _hub(**kw) -> Snapshot:
    base = dict(root="/m", kind="hub", target="org/m", repo_id="org/m", resolved_revision="c" * 40,
                endpoint="https://mirror.example", hosts_contacted=("mirror.example",))
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def _by_id(claims) -> dict:
    return {c.id: c for c in claims}


def test_nothing_is_supported_when_no_check_ran():
    claims = evidence.build(_hub(), _files(), [], set())
    assert {c.status for c in claims} == {ClaimStatus.NOT_ASSESSED}
    assert all("did not run" in c.reason for c in claims)


def _route_facts(country: str = "US") -> Facts:
    from auditor.facts import ProvenanceFacts, RuntimeFacts
    facts = Facts()
    facts.publish(ProvenanceFacts(effective_origin={"country": country}, route={"hosts": [
        {"host": "https://mirror.example", "country": "DE", "kind": "hub", "known": True, "sensitive": False,
         "listed": True}]}))
    facts.publish(RuntimeFacts({"status": "completed", "all_loaded": True, "forward": True,
                                "steps": [{"kind": "transformers", "path": "."}]}))
    return facts


def test_every_claim_supported_only_when_its_checks_ran_on_a_pinned_verified_fetch():
    claims = _by_id(evidence.build(_hub(), _files(), [], ALL_SCANNERS, _route_facts()))
    assert all(c.status is ClaimStatus.SUPPORTED for c in claims.values()), claims
    # the runtime claim needs the sandboxed load's own record, not just "the stage ran"
    without = _by_id(evidence.build(_hub(), _files(), [], ALL_SCANNERS))["runtime"]
    assert without.status is ClaimStatus.NOT_ASSESSED
    assert f"commit:{'c' * 40}" in claims["integrity"].evidence
    assert "host:https://mirror.example" in claims["route"].evidence
    assert "check:pickle" in claims["passive-weights"].evidence


def test_a_finding_refutes_even_when_waived_and_even_if_a_check_is_missing():
    waived = Finding(rule="CODE-NETWORK-CALL", severity=Severity.HIGH, title="calls home", file="m.py",
                     location="line 3", waived=True, waiver="accepted")
    claims = _by_id(evidence.build(_hub(), _files(), [waived], set()))
    assert claims["code"].status is ClaimStatus.REFUTED
    assert "waived" in claims["code"].reason and claims["code"].evidence == ("CODE-NETWORK-CALL:m.py:line 3 (waived)",)


def test_below_the_claims_severity_floor_does_not_refute():
    low = Finding(rule="PICKLE-GLOBAL-UNKNOWN", severity=Severity.MEDIUM, title="unknown global")
    claims = _by_id(evidence.build(_hub(), _files(), [low], ALL_SCANNERS))
    assert claims["passive-weights"].status is ClaimStatus.SUPPORTED     # passive-weights refutes from high


def test_unverifiable_files_make_a_claim_not_assessed():
    broken = Finding(rule="SAFETENSORS-UNPARSEABLE", severity=Severity.MEDIUM, title="cannot parse",
                     file="model.safetensors")
    claims = _by_id(evidence.build(_hub(), _files(), [broken], ALL_SCANNERS))
    assert claims["passive-weights"].status is ClaimStatus.NOT_ASSESSED
    assert "could not be verified" in claims["passive-weights"].reason


def test_integrity_needs_a_commit_and_publisher_hashes_and_compares_them():
    local = _by_id(evidence.build(_hub(resolved_revision="", kind="local-folder"), _files(), [], ALL_SCANNERS))
    assert local["integrity"].status is ClaimStatus.NOT_ASSESSED
    no_hash = (FileRecord(path="x.bin", size=1, sha256=SHA, format="pickle"),)
    assert _by_id(evidence.build(_hub(), no_hash, [], ALL_SCANNERS))["integrity"].status is ClaimStatus.NOT_ASSESSED
    tampered = _by_id(evidence.build(_hub(), _files(publisher="ef" * 32), [], set()))
    assert tampered["integrity"].status is ClaimStatus.REFUTED
    assert "model.safetensors" in tampered["integrity"].reason


def test_route_needs_a_fetch_log_and_weights_need_downloading():
    claims = _by_id(evidence.build(_hub(hosts_contacted=()), _files(), [], ALL_SCANNERS))
    assert claims["route"].status is ClaimStatus.NOT_ASSESSED
    meta = _by_id(evidence.build(_hub(metadata_only=True), _files(), [], ALL_SCANNERS))
    assert meta["passive-weights"].status is ClaimStatus.NOT_ASSESSED and "metadata-only" in meta["passive-weights"].reason


def test_license_claim_records_governing_law_and_venue():
    facts = {"license": {"model": {"id": "llama3.1", "name": "Llama 3.1 Community License"},
                         "governing_law": "California", "venue": "Santa Clara County"}}
    claims = _by_id(evidence.build(_hub(), _files(), [], ALL_SCANNERS, Facts.from_dict(facts)))
    assert claims["license"].status is ClaimStatus.SUPPORTED
    assert "governing-law:California" in claims["license"].evidence
    assert "venue:Santa Clara County" in claims["license"].evidence


def test_license_claim_without_scanner_facts_claims_no_more_than_the_check():
    claim = _by_id(evidence.build(_hub(), _files(), [], ALL_SCANNERS))["license"]
    assert claim.status is ClaimStatus.SUPPORTED and claim.evidence == ("check:license",)
    assert "governing" not in claim.reason
