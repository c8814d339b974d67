"""Findings -> Verdict, through a policy (a shipped preset in rules/policies/ or a user's file).

A policy is validated against rules/policy.schema.yaml. Besides the severity thresholds it can
override rule severities, refuse licenses, license terms, jurisdictions and file formats, require
pinning, a signature, and (for models of sensitive origins) supported claims. Each unmet requirement
becomes a POLICY-* finding, so it is listed, reported and waivable like any other finding.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from collections import Counter
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from auditor import rules
from auditor.errors import AuditorError
from auditor.facts import Facts, LicenseFacts, PickleFacts, ProvenanceFacts
from auditor.judge import regions, waivers
from auditor.model import Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot, Verdict
from auditor.record import field, record, replace

IGNORE = "ignore"
MAX_REASONS = 50


@record(frozen=True)
class Policy:
    name: str
    fail_on: Severity
    warn_on: Severity
    source: str
    settings: dict[str, Any] = field(default_factory=dict)   # the whole policy file, for scanners to read
    waivers: tuple[waivers.Waiver, ...] = ()

    @property
    def overrides(self) -> dict[str, str]:
        return dict(self.settings.get("overrides") or {})


def presets() -> list[str]:
    return sorted(p.stem for p in (rules.rules_dir() / "policies").glob("*.yaml"))


def load(name_or_path: str) -> Policy:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise AuditorError(f"policy file not found: {name_or_path}")
        try:
            data, source = rules.load_file(path), str(path)
        except AuditorError as exc:
            raise AuditorError(f"policy {exc}") from None
        except ValueError as exc:      # PyYAML's impossible dates (a waiver's expires: 2030-02-31)
            raise AuditorError(f"policy {path}: {exc} (dates are YYYY-MM-DD)") from None
    elif name_or_path in presets():
        data, source = rules.load(f"policies/{name_or_path}.yaml"), f"preset:{name_or_path}"
    else:
        raise AuditorError(f"unknown policy {name_or_path!r}: use one of {', '.join(presets())} or a YAML file")
    return _parse(data, source)


def check_schema(data: Any, source: str) -> None:
    """Validate against rules/policy.schema.yaml; the first problem is one line naming the key."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise AuditorError(f"policy {source}: {_explain(errors[0])}")


@functools.cache
def _validator() -> Any:
    return rules.validator(rules.load("policy.schema.yaml"))


def _parse(data: Any, source: str) -> Policy:
    if not isinstance(data, dict):
        raise AuditorError(f"policy {source}: expected a mapping at the top level")
    if not source.startswith("preset:"):
        # The shipped presets are validated against the same schema by the tests.
        check_schema(data, source)
    fail_on = Severity.parse(data.get("fail_on", "high"))
    warn_on = Severity.parse(data.get("warn_on", "medium"))
    if warn_on > fail_on:
        raise AuditorError(f"policy {source}: warn_on ({warn_on.label}) is above fail_on ({fail_on.label})")
    for pattern in data.get("overrides") or {}:
        waivers.check_rule_pattern(pattern, f"policy {source}: overrides")
    known_claims = {c["id"] for c in rules.load("claims.yaml")["claims"]}
    for claim in data.get("require_claims") or []:
        if claim not in known_claims:
            raise AuditorError(f"policy {source}: require_claims: unknown claim {claim!r} "
                               f"(known: {', '.join(sorted(known_claims))})")
    own_waivers = waivers.parse(data.get("waivers") or [], f"in policy {source}")
    return Policy(name=str(data.get("name") or Path(source).stem), source=source, fail_on=fail_on,
                  warn_on=warn_on, settings=dict(data), waivers=own_waivers)


def _explain(error: Any) -> str:
    """One line naming the bad key and value, from the first jsonschema error."""
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f" in {key}" if key else ""
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}{where}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{key or 'value'}: {error.instance!r} is not one of {allowed}"
    if error.validator == "pattern" and error.validator_value.startswith("^([A-Z]{2}"):
        return f"{key}: {error.instance!r} is not an ISO country code (two capital letters, US-CA) or EU"
    if error.validator == "pattern":
        return f"{key}: {error.instance!r} is not a rule id or glob (capitals, digits, -, *)"
    return f"{key or 'policy'}: {error.message}"


# -- overrides --------------------------------------------------------------------------------

def apply_overrides(policy: Policy, findings: Iterable[Finding]) -> list[Finding]:
    """Rule-level severity overrides; `ignore` keeps the finding but marks it waived by the policy."""
    overrides = policy.overrides
    if not overrides:
        return list(findings)
    out = []
    for f in findings:
        action = _override_for(f.rule, overrides)
        if action is None:
            out.append(f)
        elif action == IGNORE:
            out.append(f if f.waived else replace(f, waived=True, waiver=f"ignored by policy {policy.name}"))
        else:
            out.append(replace(f, severity=Severity.parse(action)))
    return out


def _override_for(rule: str, overrides: dict[str, str]) -> str | None:
    if rule in overrides:
        return overrides[rule]
    globs = [p for p in overrides if fnmatchcase(rule, p)]
    return overrides[max(globs, key=len)] if globs else None   # the most specific glob wins


# -- requirements -----------------------------------------------------------------------------

def requirements(policy: Policy, *, snapshot: Snapshot, files: Iterable[FileRecord], facts: Facts,
                 claims: Iterable[Claim], findings: Iterable[Finding]) -> list[Finding]:
    """POLICY-* findings for every requirement of the policy the audit does not meet."""
    s = policy.settings
    findings = list(findings)
    out: list[Finding] = []
    out += _formats(s.get("formats") or {}, list(files), facts)
    if s.get("require_pinning") and not snapshot.resolved_revision:
        out.append(rules.finding("POLICY-UNPINNED", evidence=f"target {snapshot.target!r} ({snapshot.kind}) has no "
                                 "resolved commit", title="Model not pinned to a commit (policy requires pinning)"))
    if s.get("require_signature"):
        provenance = facts.get(ProvenanceFacts)
        signature = provenance.signature if provenance else {}
        status = signature.get("status") or "not checked"
        if status != "valid":
            out.append(rules.finding("POLICY-UNSIGNED", evidence=f"signature {status}: {signature.get('detail', '')}"
                                     .rstrip(": "), title=f"Model signature {status} (policy requires a valid one)"))
    license_record = facts.get(LicenseFacts)
    license_facts = license_record.data if license_record else {}
    out += _licenses(s.get("licenses") or {}, license_facts, findings)
    out += _jurisdiction(s.get("allowed_jurisdictions") or [], license_facts)
    out += _claims(s.get("require_claims") or [], regions.of(s).sensitive_origins, facts, list(claims))
    floor = policy.fail_on
    return [f if f.severity >= floor or f.rule == "POLICY-ORIGIN-UNKNOWN" else replace(f, severity=floor)
            for f in out]


def _formats(spec: dict[str, Any], files: list[FileRecord], facts: Facts) -> list[Finding]:
    """Files whose content is a denied format. "pickle" means what the pickle scanner found, wherever it sits."""
    denied = {d.lower() for d in spec.get("deny") or []}
    if not denied:
        return []
    pickles = facts.get(PickleFacts)
    pickled = {path for path, info in (pickles.files if pickles else {}).items() if info.get("pickles")}
    out = []
    for rec in files:
        kinds = {rec.format} | ({"pickle"} if rec.path in pickled else set())
        hit = sorted(kinds & denied)
        if hit:
            out.append(rules.finding(
                "POLICY-FORMAT-DENIED", file=rec.path,
                evidence=f"content {rec.format}{', carries a pickle' if rec.path in pickled else ''}; "
                         f"denied: {', '.join(hit)}",
                title=f"File format {hit[0]} not allowed by the policy"))
    return out


def _licenses(spec: dict[str, Any], facts: dict[str, Any], findings: list[Finding]) -> list[Finding]:
    return _license_lists(spec, facts) + _license_terms(spec, facts, findings)


def _license_lists(spec: dict[str, Any], facts: dict[str, Any]) -> list[Finding]:
    """licenses.deny / licenses.allow against the model's license and every ancestor's."""
    model = facts.get("model") or {}
    named = [("the model", _license_ids(model))]
    named += [(f"ancestor {a.get('repo_id', '?')}", _license_ids({"id": a.get("license_id")}))
              for a in facts.get("lineage") or []]
    deny = {x.lower() for x in spec.get("deny") or []}
    allow = {x.lower() for x in spec.get("allow") or []}
    out = []
    for who, ids in named:
        shown = "/".join(sorted(ids)) or "unidentified"
        if deny and ids & deny:
            out.append(rules.finding("POLICY-LICENSE-DENIED", evidence=f"{who}: license {shown} is on licenses.deny",
                                     title=f"License {shown} of {who} is denied by the policy"))
        elif allow and not ids & allow:
            out.append(rules.finding("POLICY-LICENSE-DENIED", evidence=f"{who}: license {shown} is not on "
                                     f"licenses.allow ({', '.join(sorted(allow))})",
                                     title=f"License {shown} of {who} is not on the policy's allow list"))
    return out


def _license_terms(spec: dict[str, Any], facts: dict[str, Any], findings: list[Finding]) -> list[Finding]:
    """licenses.fail_on: each refused term the license scanner reported (or, unreported, its facts state)."""
    active = [f for f in findings if not f.waived]
    seen_rules = {f.rule for f in findings}
    obligations = facts.get("obligations") or []
    out = []
    for term in spec.get("fail_on") or []:
        rule = "LICENSE-" + term.upper()
        hits = [f for f in active if f.rule == rule]
        evidence = [f"{f.rule}{' in ' + f.file if f.file else ''}: {f.evidence or f.title}" for f in hits]
        if rule not in seen_rules:
            # No finding at all for the term (not even a waived one): fall back to the obligations facts.
            evidence += [f"{o.get('source', 'license')}: {o.get('summary', '')}" for o in obligations
                         if str(o.get("term", "")).replace("_", "-").lower() == term]
        if evidence:
            out.append(rules.finding("POLICY-LICENSE-TERM", file=hits[0].file if hits else "",
                                     evidence="; ".join(evidence[:5]),
                                     title=f"License term {term} is refused by the policy"))
    return out


def _license_ids(entry: dict[str, Any]) -> set[str]:
    return {str(entry[k]).lower() for k in ("id", "spdx") if entry.get(k) and str(entry[k]).lower() != "unknown"}


_PLACE_CODE = re.compile(r"(?:^|\()([A-Z]{2}(?:-[A-Z0-9]{1,3})?|EU)\)?\s*$")


def _jurisdiction(allowed: list[str], facts: dict[str, Any]) -> list[Finding]:
    """The license's governing law ("China (CN)", a code, or unplaced text) against allowed_jurisdictions."""
    if not allowed:
        return []
    law = str(facts.get("governing_law") or "")
    if not law:
        law = next((str(o.get("summary", "")) for o in facts.get("obligations") or []
                    if str(o.get("term", "")).replace("_", "-") == "governing-law"), "")
    if not law:
        return []
    match = _PLACE_CODE.search(law.strip())
    code = match.group(1) if match else ""
    if code and any(_within(a, code) for a in allowed):
        return []
    where = f"{law}; venue: {facts.get('venue') or '-'}; allowed: {', '.join(allowed)}"
    if not code:
        return [rules.finding("POLICY-JURISDICTION", evidence=f"could not place the governing law: {where}",
                              title="Governing law could not be placed in an allowed jurisdiction")]
    return [rules.finding("POLICY-JURISDICTION", evidence=f"governing law: {where}",
                          title=f"Governing law {code} is not an allowed jurisdiction")]


def _within(outer: str, inner: str) -> bool:
    """EU contains DE, US contains US-CA: the license scanner's region catalog when it is there."""
    try:
        from auditor.parsers import licensetext
        return bool(licensetext.catalog().contains(outer, inner))
    except (ImportError, AttributeError, KeyError):
        return outer.upper() == inner.upper() or inner.upper().split("-")[0] == outer.upper()


def _origin(facts: Facts) -> str:
    provenance = facts.get(ProvenanceFacts)
    # only the effective origin: a re-uploader's own country is not the model's origin
    country = provenance.effective_origin.get("country") if provenance else ""
    return str(country or "").upper()


def _claims(required: list[str], sensitive: frozenset[str], facts: Facts, claims: list[Claim]) -> list[Finding]:
    if not required:
        return []
    why = "for every model"
    if sensitive:
        origin = _origin(facts)
        if not origin:
            return [rules.finding("POLICY-ORIGIN-UNKNOWN", evidence=f"policy requires claims {', '.join(required)} "
                                  f"for origins {', '.join(sorted(sensitive))}; the model's origin is unknown")]
        if origin not in sensitive:
            return []
        why = f"for models of origin {origin}"
    by_id = {c.id: c for c in claims}
    out = []
    for cid in required:
        claim = by_id.get(cid)
        status = claim.status.value if claim else "not assessed"
        if claim is not None and claim.status == ClaimStatus.SUPPORTED:
            continue
        reason = claim.reason if claim else "the claim was not evaluated"
        out.append(rules.finding("POLICY-CLAIM-UNMET", location=f"claim:{cid}", evidence=f"{status}: {reason}",
                                 title=f"Claim {cid} is {status}; the policy requires it supported {why}"))
    return out


# -- the decision -----------------------------------------------------------------------------

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
    reasons = [_reason(f) for f in why[:MAX_REASONS]]
    if len(why) > MAX_REASONS:
        reasons.append(f"... and {len(why) - MAX_REASONS} more")
    return Verdict(decision=decision, policy=policy.name, reasons=tuple(reasons),
                   counts={s.label: counts.get(s.label, 0) for s in Severity})


def _reason(f: Finding) -> str:
    where = f" {f.file}" if f.file else ""
    return f"{f.severity.label}: {f.rule}{where}: {f.title}"


@record(frozen=True)
class Gated:
    findings: list[Finding]
    claims: tuple[Claim, ...]
    verdict: Verdict
    waivers_used: frozenset[waivers.Waiver]


def gate(policy: Policy, findings: list[Finding], *, snapshot: Snapshot, files: tuple[FileRecord, ...],
         facts: Facts, scanners_ran: set[str], extra_waivers: Iterable[waivers.Waiver] = (),
         today: dt.date | None = None) -> Gated:
    """overrides -> waivers -> claims -> the policy's requirements (also overridable and waivable) -> verdict."""
    from auditor.judge import claims as claim_rules

    all_waivers = (*policy.waivers, *extra_waivers)
    first = waivers.apply(apply_overrides(policy, findings), all_waivers, snapshot, today)
    claims = claim_rules.build(snapshot, files, first.findings, scanners_ran, facts)
    unmet = requirements(policy, snapshot=snapshot, files=files, facts=facts, claims=claims, findings=first.findings)
    second = waivers.apply(apply_overrides(policy, unmet), all_waivers, snapshot, today)
    already = {f.location for f in first.expired}       # one WAIVER-EXPIRED per waiver, even if it hit both
    gated = first.findings + first.expired + second.findings + [f for f in second.expired if f.location not in already]
    gated.sort(key=Finding.order)
    return Gated(findings=gated, claims=claims, verdict=decide(policy, gated),
                 waivers_used=frozenset(first.used | second.used))
