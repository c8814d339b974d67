"""CycloneDX ML-BOM (spec 1.6 by default; `cyclonedx-1.7` for 1.7) with the "no direct connection"
declarations (shared/reference/standards.md §1-2).

The document is built directly as JSON (linear in files and findings; cyclonedx-python-lib's model
sorts and re-validates its sets on every insert, which is quadratic at 100k files) and validated with
the library's strict JSON validator in the tests (`validate`). What the BOM says:
- `metadata.component` is the model (`machine-learning-model`): purl and version (a Hub commit; a local
  folder gets its manifest digest as version and a `pkg:generic` purl), the manifest SHA-256, licenses,
  manufacturer/supplier with country, `pedigree.ancestors` for the lineage, and a `modelCard` whose
  `modelParameters` come from config.json and the card and whose `considerations` hold only the model's own
  limitations (from its card);
- `components` are the model's files (`file`, SHA-256);
- `vulnerabilities` are the findings at low severity and above, each with its own id (AUDITOR-<digest of
  what the finding is>), its rule as a reference, and a waiver as the standard VEX `analysis`
  (exploitable, will_not_fix, the waiver's reason); info findings are facts, listed as properties;
- properties use the `auditor:` namespace (documented in README, "CycloneDX properties").
"""
from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from auditor import model, rules
from auditor.model import AuditResult, ClaimStatus, FileRecord, Finding, Severity
from auditor.parsers import repoid
from auditor.reports import purl, view

EXTENSION = ".cdx.json"
DEFAULT_SPEC = "1.6"
SPECS = ("1.6", "1.7")
PROPERTY_NS = "auditor"
PUBLIC_HUB = "huggingface.co"
INFORMATION_URI = "https://github.com/auditor-project/auditor"
_MAX_EVIDENCE_ITEMS = 200
_MAX_FACTS = 1000


def render(result: AuditResult, spec: str = DEFAULT_SPEC) -> str:
    return "".join(iter_render(result, spec))


_STREAMED = ("components", "vulnerabilities")     # the lists that grow with the files and findings


def iter_render(result: AuditResult, spec: str = DEFAULT_SPEC) -> Iterator[str]:
    """The BOM as json.dumps(to_dict(), indent=2) writes it, except that each file component and each
    vulnerability is one line (the C encoder: indent= makes json use its pure-Python one), made and written
    one at a time (each list's place is marked in the rest of the document)."""
    doc = _document(result, spec)
    lists = {key: doc[key] for key in _STREAMED if key in doc}
    for key in lists:
        doc[key] = [f"\x00{key}\x00"]
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    line = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode   # what json.dumps makes per call
    for key, items in lists.items():
        before, text = text.split(json.dumps(f"\x00{key}\x00"), 1)
        first = True
        for item in items:          # a file's component comes as its line already (_files)
            yield (before if first else ",\n    ") + (item if type(item) is str else line(item))
            first = False
        if first:                          # an empty list: `[]`, as json.dumps writes it
            yield before.rstrip()[:-1] + "[]"
            text = text.lstrip()[1:]
    yield text


def manifest_digest(result: AuditResult) -> str:
    """One digest for the whole model: model.manifest_digest over the result's files."""
    return model.manifest_digest(result.files)


def _c(value: Any, limit: int = 0) -> str:
    return view.clean(value, limit)


def _prop(name: str, value: Any) -> dict[str, str]:
    return {"name": f"{PROPERTY_NS}:{name}", "value": _c(value, 4000)}


def _split_repo(repo_id: str) -> tuple[str | None, str]:
    if "/" in repo_id:
        group, name = repo_id.split("/", 1)
        return _c(group) or None, _c(name) or _c(repo_id)
    return None, _c(repo_id) or "model"


def _purl(repo_id: str, rev: str, endpoint: str) -> str | None:
    if not repo_id or "/" not in repo_id:
        return None
    namespace, name = repo_id.split("/", 1)
    qualifiers = {}
    host = urlparse(endpoint).hostname if endpoint else None
    if host and host not in (PUBLIC_HUB, "hf.co"):
        qualifiers["repository_url"] = endpoint.rstrip("/")
    return purl.package_url("huggingface", name, namespace, rev or "", qualifiers)


def _local_purl(name: str, version: str) -> str | None:
    return purl.package_url("generic", name or "model", version=version or "")


def _entity(org: dict[str, Any]) -> dict[str, Any] | None:
    name = org.get("org") or org.get("entity")
    if not name:
        return None
    out: dict[str, Any] = {"name": _c(name, 200)}
    country = str(org.get("country") or "")
    if country:
        out["address"] = {"country": _c(country, 60)}
    return out


@functools.cache
def _spdx_fixup() -> Callable[[str], str | None]:
    """spdx.fixup_id (an SPDX id with its case fixed, None when it is not one) over the SPDX schema the BOM is
    validated against; importing the library's spdx module builds license_expression's whole index instead
    (40 ms of every BOM), which fixup_id does not use."""
    try:
        from cyclonedx.schema._res import SPDX_JSON
        with open(SPDX_JSON, "rb") as fh:
            ids = {str(i).lower(): str(i) for i in json.load(fh)["enum"]}
    except (ImportError, OSError, ValueError, KeyError, TypeError):     # the library moved its data
        from cyclonedx.spdx import fixup_id
        return fixup_id
    return lambda value: ids.get(value.lower())


def _licenses(spdx: str, name: str, url: str = "") -> list[dict[str, Any]]:
    """An SPDX id when it is one (case fixed), otherwise a named license; nothing when unknown."""
    fixup = _spdx_fixup()
    for candidate in (spdx, name):
        fixed = fixup(str(candidate)) if candidate else None
        if fixed:
            return [{"license": {"id": fixed, "acknowledgement": "declared"}}]
    label = name or spdx
    if not label or label.lower() in ("other", "unknown"):
        return []
    entry: dict[str, Any] = {"name": _c(label, 200), "acknowledgement": "declared"}
    if url.startswith(("https://", "http://")) and " " not in url:
        entry["url"] = url
    return [{"license": entry}]


_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$")


def _external_references(repo_id: str, rev: str, endpoint: str) -> list[dict[str, Any]]:
    """Where the files were taken from (the endpoint actually used) and their model card there."""
    base = endpoint.rstrip("/")
    if not (repo_id and repoid.is_repo_id(repo_id) and _SAFE_URL.match(base)):
        return []
    at = rev if re.fullmatch(r"[0-9a-f]{40}", rev or "") else "main"
    return [{"type": "distribution", "url": f"{base}/{repo_id}",
             "comment": "the endpoint the audited files were fetched from"},
            {"type": "model-card", "url": f"{base}/{repo_id}/blob/{at}/README.md"}]


def _vulnerability(f: Finding, vid: str, ref: str, affects: str) -> dict[str, Any]:
    info = rules.catalog().get(f.rule)
    vuln: dict[str, Any] = {
        "bom-ref": ref, "id": vid, "source": {"name": "auditor", "url": INFORMATION_URI},
        "references": [{"id": _c(f.rule, 200), "source": {"name": "auditor rules", "url": INFORMATION_URI}}],
        "ratings": [{"source": {"name": "auditor"}, "severity": f.severity.label, "method": "other",
                     "justification": "auditor rule severity (risk to the user)"}],
        "description": _c(f.title, 1000),
        "affects": [{"ref": affects}],
        "properties": [_prop("rule", f.rule), _prop("scanner", f.scanner), _prop("engine", f.engine)]
        + ([_prop("location", f.location)] if f.location else []) + ([_prop("file", f.file)] if f.file else []),
    }
    if f.evidence:
        vuln["detail"] = _c(f.evidence)
    if info and info.remediation:
        vuln["recommendation"] = _c(info.remediation)
    if f.waived:
        vuln["analysis"] = {"state": "exploitable", "response": ["will_not_fix"],
                            "detail": _c(f"waived: {f.waiver or 'accepted'}", 2000)}
    return vuln


def _vulnerability_id(f: Finding, used: set[str]) -> str:
    from auditor.reports.sarif import fingerprint
    base = "AUDITOR-" + fingerprint(f, f.file)[:16].upper()
    vid, n = base, 1
    while vid in used:
        n += 1
        vid = f"{base}-{n}"
    used.add(vid)
    return vid


def _file_refs(result: AuditResult) -> tuple[list[FileRecord], dict[str, str]]:
    ordered = sorted(result.files, key=operator.attrgetter("path"))
    return ordered, {r.path: f"file-{i}" for i, r in enumerate(ordered)}


# The string escaper JSONEncoder(ensure_ascii=False) itself uses (the C one): a line written with it is the
# line the encoder would write for the same dict, byte for byte.
_json_string = json.encoder.encode_basestring


def _file_prop(name: str, value: Any) -> str:
    """A file's property as JSON text."""
    text = value if type(value) is str and len(value) <= 4000 and value.isprintable() else _c(value, 4000)
    return f'{{"name": "{PROPERTY_NS}:file:{name}", "value": {_json_string(text)}}}'


class _SharedProps(dict[tuple[str, str], str]):
    """_file_prop() made once per (name, value) and shared: a format takes a few values over all the files."""

    def __missing__(self, key: tuple[str, str]) -> str:
        prop = self[key] = _file_prop(*key)
        return prop

    def of(self, name: str, value: Any) -> str:
        return self[name, value] if type(value) is str else _file_prop(name, value)   # hostile: maybe unhashable


def _files(ordered: list[FileRecord]) -> Iterator[str]:
    """Each file's component as its JSON line, written directly: the dict and the encoder cost 3x as much
    (to_dict() parses the lines back). The paths and hashes are cleaned and escaped a column at a time."""
    shared = _SharedProps()
    for first in range(0, len(ordered), _COLUMN):
        chunk = ordered[first:first + _COLUMN]
        names = _json_column([r.path for r in chunk], 1000)
        hashes = _json_column([r.sha256 for r in chunk], 4000)
        for i, (r, name, sha) in enumerate(zip(chunk, names, hashes, strict=True), first):
            fmt, size = r.format, r.size
            line = [shared.of("format", fmt), _SIZE.format(size) if type(size) is int else _file_prop("size", size)]
            if r.extension_format and r.extension_format != fmt:
                line.append(shared.of("extension-format", r.extension_format))
            if r.publisher_sha256 or r.publisher_git_sha1 or r.error:
                line += _rare_props(r)
            hashed = f', "hashes": [{{"alg": "SHA-256", "content": {sha}}}]' if r.sha256 else ""
            yield f'{{"type": "file", "bom-ref": "file-{i}", "name": {name}{hashed}, "properties": [{", ".join(line)}]}}'


_COLUMN = 4096      # files whose paths and hashes are escaped together
_SIZE = f'{{{{"name": "{PROPERTY_NS}:file:size", "value": "{{}}"}}}}'     # an int's digits need no cleaning


def _json_column(values: list[Any], limit: int) -> list[str]:
    """_json_string(_c(v, limit)) of each value; a printable str within the limit (which view.clean returns
    unchanged) by the escaper alone."""
    return [_json_string(v if type(v) is str and len(v) <= limit and v.isprintable() else _c(v, limit))
            for v in values]


def _rare_props(r: FileRecord) -> list[str]:
    return [_file_prop(name, value) for name, value in (("publisher-sha256", r.publisher_sha256),
                                                        ("publisher-git-sha1", r.publisher_git_sha1),
                                                        ("error", r.error)) if value]


def _ancestors(result: AuditResult) -> tuple[list[dict[str, Any]], list[str]]:
    ancestors, notes = [], []
    for i, e in enumerate(view.lineage(result)):
        group, name = _split_repo(e.repo_id)
        comp: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": f"ancestor-{i}", "name": name}
        if group:
            comp["group"] = group
        if e.commit:
            comp["version"] = _c(e.commit)
        purl = _purl(e.repo_id, e.commit, result.snapshot.endpoint)
        if purl:
            comp["purl"] = purl
        maker = _entity({"org": e.org, "entity": e.entity, "country": e.country})
        if maker:
            comp["manufacturer"] = maker
        lic = _licenses("", e.license)
        if lic:
            comp["licenses"] = lic
        comp["properties"] = [_prop("lineage:relation", e.relation or "unknown"), _prop("lineage:depth", e.depth)] \
            + ([_prop("lineage:error", e.error)] if e.error else [])
        ancestors.append(comp)
        notes.append(f"{e.repo_id}: {e.relation or 'unknown relation'} (depth {e.depth})")
    return ancestors, notes


def _model_properties(result: AuditResult, digest: str) -> list[dict[str, str]]:
    snap = result.snapshot
    props = [_prop("verdict", result.verdict.decision), _prop("policy", result.verdict.policy),
             _prop("target", view.shareable_path(result.target)), _prop("source:kind", snap.kind),
             _prop("manifest-sha256", digest)]
    props += [_prop("host-contacted", h) for h in snap.hosts_contacted]
    if snap.requested_revision:
        props.append(_prop("requested-revision", snap.requested_revision))
    if not view.model_license(result):
        props.append(_prop("license", view.NOT_ASSESSED))
    origin = view.effective_origin(result)
    if origin:
        props.append(_prop("effective-origin", view.origin_line(origin)))
    props.append(_prop("signature", view.signature(result).get("status") or view.NOT_ASSESSED))
    facts = [f for f in view.ordered(result.findings) if f.severity is Severity.INFO]
    props += [_prop("fact", f"{f.rule}: {f.title}" + (f" ({f.file})" if f.file else "")
                    + (f": {f.evidence}" if f.evidence else "")) for f in facts[:_MAX_FACTS]]
    return props


def _model(result: AuditResult, digest: str) -> dict[str, Any]:
    snap = result.snapshot
    rev = view.revision(result)
    group, name = _split_repo(snap.repo_id or view.model_name(result))
    model: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": "model", "name": name}
    if group:
        model["group"] = group
    version = _c(rev) if rev else f"sha256:{digest}"
    model["version"] = version
    purl = _purl(snap.repo_id, rev, snap.endpoint) if snap.repo_id else _local_purl(name, version)
    if purl:
        model["purl"] = purl
    model["hashes"] = [{"alg": "SHA-256", "content": digest}]
    lic = _licenses(*view.declared_license(result), str(view.model_license(result).get("url") or ""))
    if lic:
        model["licenses"] = lic
    maker = _entity(view.publisher(result))
    if maker:
        model["manufacturer"] = maker
    supplier = maker
    if snap.endpoint:
        host = urlparse(snap.endpoint).hostname or snap.endpoint
        supplier = {"name": _c(host, 200), **({"url": [snap.endpoint]} if _SAFE_URL.match(snap.endpoint) else {})}
    if supplier:
        model["supplier"] = supplier
    refs = _external_references(snap.repo_id, rev, snap.endpoint)
    if refs:
        model["externalReferences"] = refs
    ancestors, notes = _ancestors(result)
    if ancestors:
        model["pedigree"] = {"ancestors": ancestors, "notes": _c("; ".join(notes))}
    model["properties"] = _model_properties(result, digest)
    model["modelCard"] = _model_card(result)
    return model


def _core(result: AuditResult, spec: str) -> dict[str, Any]:
    """The document with its two long lists as iterators (to_dict() makes them lists, iter_render() streams)."""
    ordered, file_refs = _file_refs(result)
    digest = model.manifest_digest(ordered)       # in path order already: its own sort is one pass
    used: set[str] = set()
    vulns = (_vulnerability(f, _vulnerability_id(f, used), f"finding-{i}", file_refs.get(f.file, "model"))
             for i, f in enumerate(f for f in view.ordered(result.findings) if f.severity > Severity.INFO))
    serial = purl.uuid5_urn(f"auditor:{result.target}:{result.started_at}:{digest}")
    doc: dict[str, Any] = {
        "$schema": f"http://cyclonedx.org/schema/bom-{spec}.schema.json",
        "bomFormat": "CycloneDX", "specVersion": spec, "serialNumber": serial, "version": 1,
        "metadata": {"timestamp": view.started(result).isoformat(),
                     "tools": {"components": [{"type": "application", "name": "auditor",
                                               "version": _c(result.tool_version)}]},
                     "component": _model(result, digest)},
        "components": _files(ordered),
        "dependencies": [{"ref": "model", "dependsOn": []}],
    }
    if any(f.severity > Severity.INFO for f in result.findings):
        doc["vulnerabilities"] = vulns
    return doc


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _model_card(result: AuditResult) -> dict[str, Any]:
    """modelParameters from config.json and the card; considerations only for the model's own limitations."""
    facts = _mapping(result.facts.get("model_card"))
    config = _mapping(facts.get("config"))
    card_meta = _mapping(facts.get("card"))
    params: dict[str, Any] = {}
    if card_meta.get("pipeline_tag"):
        params["task"] = _c(card_meta["pipeline_tag"], 200)
    if config.get("model_type"):
        params["architectureFamily"] = _c(config["model_type"], 200)
    archs = config.get("architectures")
    if isinstance(archs, list) and archs:
        params["modelArchitecture"] = _c(", ".join(map(str, archs)), 200)
    datasets = card_meta.get("datasets")
    if isinstance(datasets, str):
        datasets = [datasets]
    if isinstance(datasets, list) and datasets:
        params["datasets"] = [{"type": "dataset", "name": _c(d, 200)} for d in datasets[:50]]
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    own = facts.get("limitations")
    if isinstance(own, str) and own.strip():
        card["considerations"] = {"technicalLimitations": [_c(own, 4000)]}
    props = [_prop(f"config:{k}", json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
             for k, v in config.items() if k not in ("architectures", "model_type")]
    if view.license_facts(result):
        law, venue = view.law_and_venue(result)
        props += [_prop("license:governing-law", law), _prop("license:venue", venue)]
        props += [_prop("license:obligation", f"{o.get('term')}: {o.get('summary')}") for o in view.obligations(result)]
    props.append(_prop("claims", ", ".join(f"{c.id}={c.status.value}" for c in result.claims)))
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


def _document(result: AuditResult, spec: str) -> dict[str, Any]:
    if spec not in SPECS:
        raise ValueError(f"CycloneDX spec {spec!r} is not supported (use one of {', '.join(SPECS)})")
    doc = _core(result, spec)
    model = doc["metadata"]["component"]
    standard, declarations = _declarations(result, model["name"])
    doc.setdefault("definitions", {}).setdefault("standards", []).append(standard)
    doc["declarations"] = declarations
    return doc


def to_dict(result: AuditResult, spec: str = DEFAULT_SPEC) -> dict[str, Any]:
    doc = _document(result, spec)
    for key in _STREAMED:
        if key in doc:
            doc[key] = [json.loads(item) if type(item) is str else item for item in doc[key]]
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
