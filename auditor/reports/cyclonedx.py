"""CycloneDX ML-BOM (spec 1.6 by default; `cyclonedx-1.7` for 1.7) with the "no direct connection"
declarations (shared/reference/standards.md §1-2).

The core (metadata, the model as a `machine-learning-model` component with hashes, licenses,
supplier/manufacturer, pedigree, the files as nested `file` components, findings as vulnerabilities)
is built with cyclonedx-python-lib. What the library cannot express (`modelCard`, `definitions.standards`
as our policy, `declarations`) is added to the serialised JSON as plain dicts. Our own output is never
re-loaded through the library: it silently drops those parts.
"""
from __future__ import annotations

import json
import re
import uuid
import warnings
from typing import Any
from urllib.parse import urlparse

from auditor import inventory, rules
from auditor.model import AuditResult, ClaimStatus, Finding, Severity
from auditor.parsers import repoid
from auditor.reports import view

EXTENSION = ".cdx.json"
DEFAULT_SPEC = "1.6"
SPECS = ("1.6", "1.7")
PROPERTY_NS = "auditor"
PUBLIC_HUB = "huggingface.co"
_MAX_EVIDENCE_ITEMS = 200


def render(result: AuditResult, spec: str = DEFAULT_SPEC) -> str:
    return json.dumps(to_dict(result, spec), indent=2, ensure_ascii=False) + "\n"


def manifest_digest(result: AuditResult) -> str:
    """One digest for the whole model: inventory.manifest_digest over the result's files."""
    return inventory.manifest_digest(result.files)


def _c(value: Any, limit: int = 0) -> str:
    return view.clean(value, limit)


def _prop(name: str, value: Any):  # type: ignore[no-untyped-def]
    from cyclonedx.model import Property
    return Property(name=f"{PROPERTY_NS}:{name}", value=_c(value, 4000))


def _split_repo(repo_id: str) -> tuple[str | None, str]:
    if "/" in repo_id:
        group, name = repo_id.split("/", 1)
        return _c(group) or None, _c(name) or _c(repo_id)
    return None, _c(repo_id) or "model"


def _purl(repo_id: str, rev: str, endpoint: str):  # type: ignore[no-untyped-def]
    from packageurl import PackageURL
    if not repo_id or "/" not in repo_id:
        return None
    namespace, name = repo_id.split("/", 1)
    qualifiers = {}
    host = urlparse(endpoint).hostname if endpoint else None
    if host and host not in (PUBLIC_HUB, "hf.co"):
        qualifiers["repository_url"] = endpoint.rstrip("/")
    try:
        return PackageURL(type="huggingface", namespace=namespace, name=name,
                          version=rev.lower() if rev else None, qualifiers=qualifiers or None)
    except ValueError:
        return None


def _entity(org: dict[str, Any]):  # type: ignore[no-untyped-def]
    from cyclonedx.model.contact import OrganizationalEntity, PostalAddress
    name = org.get("org") or org.get("entity")
    if not name:
        return None
    country = str(org.get("country") or "")
    return OrganizationalEntity(name=_c(name, 200),
                                address=PostalAddress(country=_c(country, 60)) if country else None)


def _licenses(spdx: str, name: str, url: str = "") -> list[Any]:
    """An SPDX id when it is one (case fixed), otherwise a named license; nothing when unknown."""
    from cyclonedx.model import XsUri
    from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement
    from cyclonedx.spdx import fixup_id
    for candidate in (spdx, name):
        fixed = fixup_id(str(candidate)) if candidate else None
        if fixed:
            return [DisjunctiveLicense(id=fixed, acknowledgement=LicenseAcknowledgement.DECLARED)]
    label = name or spdx
    if not label or label.lower() in ("other", "unknown"):
        return []
    link = XsUri(url) if url.startswith(("https://", "http://")) and " " not in url else None
    return [DisjunctiveLicense(name=_c(label, 200), url=link, acknowledgement=LicenseAcknowledgement.DECLARED)]


_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$")


def _external_references(repo_id: str, rev: str, endpoint: str) -> list[Any]:
    """Where the files were taken from (the endpoint actually used) and their model card there."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri
    base = endpoint.rstrip("/")
    if not (repo_id and repoid.is_repo_id(repo_id) and _SAFE_URL.match(base)):
        return []
    at = rev if re.fullmatch(r"[0-9a-f]{40}", rev or "") else "main"
    return [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(f"{base}/{repo_id}"),
                              comment="the endpoint the audited files were fetched from"),
            ExternalReference(type=ExternalReferenceType.MODEL_CARD,
                              url=XsUri(f"{base}/{repo_id}/blob/{at}/README.md"))]


def _severity(sev: Severity):  # type: ignore[no-untyped-def]
    from cyclonedx.model.vulnerability import VulnerabilitySeverity
    return {Severity.CRITICAL: VulnerabilitySeverity.CRITICAL, Severity.HIGH: VulnerabilitySeverity.HIGH,
            Severity.MEDIUM: VulnerabilitySeverity.MEDIUM, Severity.LOW: VulnerabilitySeverity.LOW,
            Severity.INFO: VulnerabilitySeverity.INFO}[sev]


def _vulnerability(index: int, f: Finding, affects: str):  # type: ignore[no-untyped-def]
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySource,
    )
    info = rules.catalog().get(f.rule)
    props = [_prop("rule", f.rule), _prop("scanner", f.scanner), _prop("engine", f.engine)]
    if f.location:
        props.append(_prop("location", f.location))
    if f.waived:
        props += [_prop("waived", "true"), _prop("waiver", f.waiver)]
    return Vulnerability(
        bom_ref=f"finding-{index}", id=_c(f.rule, 200), source=VulnerabilitySource(name="auditor"),
        ratings=[VulnerabilityRating(severity=_severity(f.severity), method=VulnerabilityScoreSource.OTHER,
                                     justification="auditor rule severity (risk to the user)")],
        description=_c(f.title, 1000), detail=_c(f.evidence) or None,
        recommendation=_c(info.remediation) if info else None,
        affects=[BomTarget(ref=affects)], properties=props)


def _core(result: AuditResult, spec: str) -> dict[str, Any]:
    from cyclonedx.model import HashAlgorithm, HashType, XsUri
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    snap = result.snapshot
    rev = view.revision(result)
    pub = view.publisher(result)
    lic = view.model_license(result)
    files = []
    file_refs: dict[str, str] = {}
    for i, r in enumerate(sorted(result.files, key=lambda r: r.path)):
        ref = f"file-{i}"
        file_refs[r.path] = ref
        props = [_prop("file:format", r.format), _prop("file:size", r.size)]
        if r.extension_format and r.extension_format != r.format:
            props.append(_prop("file:extension-format", r.extension_format))
        if r.publisher_sha256:
            props.append(_prop("file:publisher-sha256", r.publisher_sha256))
        if r.publisher_git_sha1:
            props.append(_prop("file:publisher-git-sha1", r.publisher_git_sha1))
        if r.error:
            props.append(_prop("file:error", r.error))
        files.append(Component(type=ComponentType.FILE, name=_c(r.path, 1000), bom_ref=ref,
                               hashes=[HashType(alg=HashAlgorithm.SHA_256, content=r.sha256)] if r.sha256 else None,
                               properties=props))
    ancestors = []
    notes = []
    for i, e in enumerate(view.lineage(result)):
        group, name = _split_repo(e.repo_id)
        ancestors.append(Component(
            type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=f"ancestor-{i}", group=group, name=name,
            version=_c(e.commit) or None, purl=_purl(e.repo_id, e.commit, snap.endpoint),
            manufacturer=_entity({"org": e.org, "entity": e.entity, "country": e.country}),
            licenses=_licenses("", e.license),
            properties=[_prop("lineage:relation", e.relation or "unknown"), _prop("lineage:depth", e.depth)]
            + ([_prop("lineage:error", e.error)] if e.error else [])))
        notes.append(f"{e.repo_id}: {e.relation or 'unknown relation'} (depth {e.depth})")
    group, name = _split_repo(snap.repo_id or view.model_name(result))
    supplier = None
    if snap.endpoint:
        host = urlparse(snap.endpoint).hostname or snap.endpoint
        supplier = OrganizationalEntity(name=_c(host, 200), urls=[XsUri(snap.endpoint)]
                                        if " " not in snap.endpoint else None)
    model_props = [_prop("verdict", result.verdict.decision), _prop("policy", result.verdict.policy),
                   _prop("target", result.target), _prop("source:kind", snap.kind),
                   _prop("manifest-sha256", manifest_digest(result))]
    model_props += [_prop("host-contacted", h) for h in snap.hosts_contacted]
    if snap.requested_revision:
        model_props.append(_prop("requested-revision", snap.requested_revision))
    if not lic:
        model_props.append(_prop("license", view.NOT_ASSESSED))
    origin = view.effective_origin(result)
    if origin:
        model_props.append(_prop("effective-origin", view.origin_line(origin)))
    sig = view.signature(result)
    model_props.append(_prop("signature", sig.get("status") or view.NOT_ASSESSED))
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref="model", group=group, name=name,
        external_references=_external_references(snap.repo_id, rev, snap.endpoint),
        version=_c(rev) or None, purl=_purl(snap.repo_id, rev, snap.endpoint),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=manifest_digest(result))],
        licenses=_licenses(*view.declared_license(result), str(lic.get("url") or "")),
        manufacturer=_entity(pub), supplier=supplier or _entity(pub),
        pedigree=Pedigree(ancestors=ancestors, notes=_c("; ".join(notes))) if ancestors else None,
        components=files, properties=model_props)
    findings = view.ordered(result.findings)
    vulns = [_vulnerability(i, f, file_refs.get(f.file, "model")) for i, f in enumerate(findings)]
    tool = Component(type=ComponentType.APPLICATION, name="auditor", version=result.tool_version)
    bom = Bom(components=[model], vulnerabilities=vulns,
              serial_number=uuid.uuid5(uuid.NAMESPACE_URL,
                                       f"auditor:{result.target}:{result.started_at}:{manifest_digest(result)}"),
              metadata=BomMetaData(timestamp=view.started(result)))
    bom.metadata.tools.components.add(tool)
    version = SchemaVersion.V1_7 if spec == "1.7" else SchemaVersion.V1_6
    with warnings.catch_warnings():   # the library warns that the BOM's subject has no dependencies
        warnings.simplefilter("ignore")
        text = make_outputter(bom, OutputFormat.JSON, version).output_as_string()
    doc: dict[str, Any] = json.loads(text)
    return doc


def _model_card(result: AuditResult) -> dict[str, Any]:
    card: dict[str, Any] = {}
    params: dict[str, Any] = {}
    meta = result.facts.get("card") if isinstance(result.facts.get("card"), dict) else {}
    config = result.facts.get("config") if isinstance(result.facts.get("config"), dict) else {}
    task = meta.get("pipeline_tag") if isinstance(meta, dict) else None
    if task:
        params["task"] = _c(task, 200)
    archs = config.get("architectures") if isinstance(config, dict) else None
    if isinstance(archs, list) and archs:
        params["modelArchitecture"] = _c(", ".join(map(str, archs)), 200)
    if params:
        card["modelParameters"] = params
    limitations = [f"{c.title}: {c.status.value} ({c.reason})" for c in result.claims
                   if c.status is not ClaimStatus.SUPPORTED]
    limitations += [f"{f.rule} ({f.severity.label}) in {f.file or 'the repository'}: {f.title}"
                    for f in view.ordered(view.active(result)) if f.severity >= Severity.HIGH][:50]
    considerations: dict[str, Any] = {}
    if limitations:
        considerations["technicalLimitations"] = [_c(x, 1000) for x in limitations]
    risks = [{"name": _c(o.get("term") or "license term", 200), "mitigationStrategy": _c(o.get("summary"), 1000)}
             for o in view.obligations(result)]
    if risks:
        considerations["ethicalConsiderations"] = risks
    if considerations:
        card["considerations"] = considerations
    facts = view.license_facts(result)
    law, venue = view.law_and_venue(result)
    props = [{"name": f"{PROPERTY_NS}:license:governing-law", "value": _c(law)},
             {"name": f"{PROPERTY_NS}:license:venue", "value": _c(venue)}] if facts else []
    props += [{"name": f"{PROPERTY_NS}:license:obligation", "value": _c(line, 1000)}
              for line in facts.get("summary", []) if isinstance(line, str)] if facts else []
    props.append({"name": f"{PROPERTY_NS}:claims", "value": ", ".join(f"{c.id}={c.status.value}"
                                                                      for c in result.claims)})
    card["properties"] = props
    return card


_CONFORMANCE = {ClaimStatus.SUPPORTED: 1, ClaimStatus.REFUTED: 0, ClaimStatus.NOT_ASSESSED: 0}


def _declarations(result: AuditResult, model_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    requirements, evidence, claims, mapping = [], [], [], []
    for c in result.claims:
        req, claim_ref, ev_ref = f"req-{c.id}", f"claim-{c.id}", f"ev-{c.id}"
        requirements.append({"bom-ref": req, "identifier": f"NDC-{c.id}", "title": _c(c.title, 500),
                             "text": _c(c.title, 500)})
        payload = {"claim": c.id, "status": c.status.value, "reason": _c(c.reason),
                   "evidence": [_c(e) for e in c.evidence[:_MAX_EVIDENCE_ITEMS]]}
        evidence.append({
            "bom-ref": ev_ref, "propertyName": f"{PROPERTY_NS}:evidence:{c.id}", "description": _c(c.reason, 2000),
            "data": [{"name": f"{c.id}-evidence.json",
                      "contents": {"attachment": {"contentType": "application/json",
                                                  "content": json.dumps(payload, ensure_ascii=False)}}}],
            "created": view.started(result).isoformat(), "author": {"name": "auditor"}})
        entry: dict[str, Any] = {"bom-ref": claim_ref, "target": "target-model", "predicate": _c(c.title, 500),
                                 "reasoning": _c(f"{c.status.value}: {c.reason}", 2000)}
        entry["counterEvidence" if c.status is ClaimStatus.REFUTED else "evidence"] = [ev_ref]
        claims.append(entry)
        rationale = {ClaimStatus.SUPPORTED: "the checks behind the claim ran and no finding contradicts it",
                     ClaimStatus.REFUTED: "a finding contradicts the claim",
                     ClaimStatus.NOT_ASSESSED: "the check behind the claim did not run or could not verify"}[c.status]
        item: dict[str, Any] = {"requirement": req, "conformance": {"score": _CONFORMANCE[c.status], "rationale": rationale},
                                "confidence": {"score": 0 if c.status is ClaimStatus.NOT_ASSESSED else 1,
                                               "rationale": _c(c.reason, 1000)}}
        item["counterClaims" if c.status is ClaimStatus.REFUTED else "claims"] = [claim_ref]
        mapping.append(item)
    tally = {s: sum(1 for c in result.claims if c.status is s) for s in ClaimStatus}
    summary = (f"No direct connection: {tally[ClaimStatus.SUPPORTED]} supported, {tally[ClaimStatus.REFUTED]} refuted, "
               f"{tally[ClaimStatus.NOT_ASSESSED]} not assessed (verdict {result.verdict.decision}, "
               f"policy {_c(result.verdict.policy, 200)})")
    standard = {"bom-ref": "std-ndc", "name": "No direct connection", "version": "1",
                "description": "Running the model needs nothing from, and sends nothing to, the origin's infrastructure.",
                "owner": "auditor", "requirements": requirements}
    declarations = {
        "assessors": [{"bom-ref": "assessor-auditor", "thirdParty": False,
                       "organization": {"name": f"auditor {_c(result.tool_version)} (automated)"}}],
        "attestations": [{"summary": summary, "assessor": "assessor-auditor", "map": mapping}],
        "claims": claims, "evidence": evidence,
        "targets": {"components": [{"type": "machine-learning-model", "bom-ref": "target-model",
                                    "name": model_name}]},
        "affirmation": {"statement": "Produced automatically by auditor from the audit result; it is not a human "
                                     "affirmation. The BOM may be signed as a whole (DSSE envelope)."},
    }
    return standard, declarations


def to_dict(result: AuditResult, spec: str = DEFAULT_SPEC) -> dict[str, Any]:
    if spec not in SPECS:
        raise ValueError(f"CycloneDX spec {spec!r} is not supported (use one of {', '.join(SPECS)})")
    doc = _core(result, spec)
    model = doc["components"][0]
    model["modelCard"] = _model_card(result)
    standard, declarations = _declarations(result, model["name"])
    doc.setdefault("definitions", {}).setdefault("standards", []).append(standard)
    doc["declarations"] = declarations
    return doc


def validate(text: str, spec: str = DEFAULT_SPEC) -> list[str]:
    """Schema errors (the library's offline validator) plus bom-ref integrity; [] when valid."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    validator = JsonStrictValidator(SchemaVersion.V1_7 if spec == "1.7" else SchemaVersion.V1_6)
    errors = [str(getattr(e, "data", e))[:300] for e in (validator.validate_str(text, all_errors=True) or [])]
    return errors + reference_errors(json.loads(text))


def reference_errors(doc: dict[str, Any]) -> list[str]:
    """The schema checks neither bom-ref uniqueness nor that refs resolve; this does."""
    defined: list[str] = []
    used: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "bom-ref" and isinstance(v, str):
                    defined.append(v)
                elif k in ("ref", "target", "requirement", "assessor") and isinstance(v, str):
                    used.append(v)
                elif k in ("claims", "counterClaims", "evidence", "counterEvidence") and isinstance(v, list) \
                        and all(isinstance(x, str) for x in v):
                    used.extend(v)
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
    walk(doc)
    errors = [f"duplicate bom-ref {r}" for r in sorted({r for r in defined if defined.count(r) > 1})]
    known = set(defined)
    errors += [f"unresolved reference {r}" for r in sorted(set(used) - known)]
    return errors
