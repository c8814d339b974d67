"""Findings and provenance facts -> the "no direct connection" claims (rules/claims.yaml).

Nothing is `supported` unless the checks behind it ran: a claim whose scanners did not run, or whose
files could not be verified, is `not assessed`. A waiver changes the verdict, not the facts: a waived
finding still refutes the claim it contradicts (the reason says it was waived); the policy decides
whether an unmet claim matters (POLICY-CLAIM-UNMET, itself waivable).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

from auditor import rules
from auditor.facts import Facts, LicenseFacts, ProvenanceFacts, RuntimeFacts
from auditor.model import Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot

MAX_EVIDENCE = 50


def _matches(rule: str, globs: Iterable[str]) -> bool:
    return _matches_cached(rule, tuple(globs))


@functools.lru_cache(maxsize=8192)
def _matches_cached(rule: str, globs: tuple[str, ...]) -> bool:
    # Rule ids repeat across thousands of findings; each (rule, claim) pair is matched once. Plain ids and
    # `PREFIX-*` are compared as strings: they cost fnmatch no pattern compile (~50 us each at start-up).
    return any(_match_one(rule, g) for g in globs)


def _match_one(rule: str, pattern: str) -> bool:
    if not _is_glob(pattern):
        return rule == pattern
    if pattern.endswith("*") and not _is_glob(pattern[:-1]):
        return rule.startswith(pattern[:-1])
    return fnmatchcase(rule, pattern)


def _is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern or "[" in pattern


def build(snapshot: Snapshot, files: tuple[FileRecord, ...], findings: list[Finding],
          scanners_ran: set[str], facts: Facts | None = None) -> tuple[Claim, ...]:
    facts = facts or Facts()
    return tuple(_decide(spec, snapshot, files, findings, scanners_ran, facts)
                 for spec in rules.load("claims.yaml")["claims"])


def _decide(spec: dict, snapshot: Snapshot, files: tuple[FileRecord, ...], findings: list[Finding],
            scanners_ran: set[str], facts: Facts) -> Claim:
    cid, title = spec["id"], spec["title"]
    special = _SPECIAL.get(cid)
    refuted = _refutation(spec, findings) or (special.refute(snapshot, files, facts) if special else None)
    if refuted:
        return Claim(cid, title, ClaimStatus.REFUTED, refuted[0], refuted[1])
    unassessed = _why_not_assessed(spec, snapshot, files, findings, scanners_ran)
    if unassessed:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED, unassessed[0], unassessed[1])
    if special is not None:
        return special.support(cid, title, snapshot, files, facts)
    ran = sorted(s for s in spec.get("requires", []) if s in scanners_ran)
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"{len(files)} file(s) checked by {', '.join(ran) or 'the inventory'}; no finding contradicts it",
                 tuple(f"check:{s}" for s in ran))


def _refutation(spec: dict, findings: list[Finding]) -> Refutation:
    floor = Severity.parse(spec.get("min_severity", "medium"))
    refuting = [f for f in findings if _matches(f.rule, spec["refuted_by"]) and f.severity >= floor]
    return (_reason(refuting), _ids(refuting)) if refuting else None


def _why_not_assessed(spec: dict, snapshot: Snapshot, files: tuple[FileRecord, ...], findings: list[Finding],
                      scanners_ran: set[str]) -> Refutation:
    """(reason, evidence) when the checks behind the claim did not run or could not verify everything."""
    missing = [s for s in spec.get("requires", []) if s not in scanners_ran]
    if missing:
        return f"the check behind it did not run ({', '.join(missing)})", ()
    unverified = [f for f in findings if _matches(f.rule, spec.get("unverified_by", []))]
    if unverified:
        return f"{len(unverified)} item(s) could not be verified: {_reason(unverified)}", _ids(unverified)
    if not files:
        return "no files were audited", ()
    if spec.get("needs_weights") and snapshot.metadata_only:
        return "metadata-only audit: the weight files were not downloaded, so they were not checked", ()
    return None


Refutation = tuple[str, tuple[str, ...]] | None


class _Special:
    """Claims that also need snapshot facts: `refute` may contradict them outright; `support` decides the rest."""

    def __init__(self, refute: Callable[[Snapshot, tuple[FileRecord, ...], Facts], Refutation],
                 support: Callable[[str, str, Snapshot, tuple[FileRecord, ...], Facts], Claim]) -> None:
        self.refute = refute
        self.support = support


def _integrity_refute(snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Refutation:
    differ = [f for f in files if f.publisher_sha256 and f.sha256 and f.publisher_sha256 != f.sha256]
    if not differ:
        return None
    return (f"{len(differ)} file(s) differ from the publisher's SHA-256, first {differ[0].path}",
            tuple(f"sha256:{f.sha256} != publisher:{f.publisher_sha256} {f.path}" for f in differ[:MAX_EVIDENCE]))


def _integrity(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...],
               facts: Facts) -> Claim:
    if not snapshot.resolved_revision:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     "the files are not tied to a commit (a local folder with no provenance)")
    unverified = [f.path for f in files if not (f.publisher_sha256 or f.publisher_git_sha1)]
    if unverified:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"{len(unverified)} file(s) have no publisher hash to compare with",
                     tuple(unverified[:MAX_EVIDENCE]))
    source = ("the etags the Hub served when they were cached (the cache's blob names)"
              if snapshot.kind == "hf-cache" else "the publisher's hashes")
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"{len(files)} file(s) at commit {snapshot.resolved_revision} match {source}",
                 (f"commit:{snapshot.resolved_revision}",)
                 + tuple(f"sha256:{f.sha256} {f.path}" for f in files[:MAX_EVIDENCE]))


def _route_refute(snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Refutation:
    route = _provenance(facts).route
    bad = [h for h in route.get("hosts") or [] if h.get("sensitive")]
    if not bad:
        return None
    return (f"{bad[0]['host']} is infrastructure in {bad[0]['country']}, a sensitive country",
            tuple(f"host:{h['host']} ({h['country']})" for h in bad[:MAX_EVIDENCE]))


def _route(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Claim:
    """Supported only when the origin is known, every host is known and outside the sensitive countries,
    and no request left the endpoint for a host it does not list: unknown is never "outside"."""
    provenance = _provenance(facts)
    route, origin = provenance.route, provenance.effective_origin
    if not snapshot.endpoint:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     "the files were not fetched by auditor, so the route is unknown")
    if not snapshot.hosts_contacted:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"no fetch log: the hosts contacted through {snapshot.endpoint} were not recorded")
    if not route:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED, "the provenance check recorded no route")
    country = str(origin.get("country") or "")
    if not country:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     "the model's origin is unknown, so no route can be shown to be outside its jurisdiction")
    hosts = list(route.get("hosts") or [])
    unknown = [h["host"] for h in hosts if not h.get("known")]
    if unknown:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"{len(unknown)} host(s) of unknown jurisdiction: {', '.join(unknown[:5])}",
                     tuple(f"host:{h}" for h in unknown[:MAX_EVIDENCE]))
    unlisted = [h["host"] for h in hosts if not h.get("listed", True)]
    if unlisted:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"requests left {snapshot.endpoint} for {', '.join(unlisted[:5])}",
                     tuple(f"host:{h}" for h in unlisted[:MAX_EVIDENCE]))
    described = ", ".join(f"{h['host']} ({h.get('country') or h.get('kind')})" for h in hosts)
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"origin {country}; fetched through {snapshot.endpoint}; hosts contacted: {described}",
                 (f"endpoint:{snapshot.endpoint}", f"origin:{country}")
                 + tuple(f"host:{h['host']}" for h in hosts))


def _provenance(facts: Facts) -> ProvenanceFacts:
    return facts.get(ProvenanceFacts) or ProvenanceFacts()


def _license_refute(snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Refutation:
    """Refuted by any term that requires registration, reporting or remote control by the licensor,
    whatever its finding's severity or waiver: the term is in the license the model carries."""
    record = facts.get(LicenseFacts)
    control = record.licensor_control() if record else ()
    if not control:
        return None
    first = control[0]
    more = f" and {len(control) - 1} more" if len(control) > 1 else ""
    quote = f"; {first.sources[0]}" if first.sources else ""
    return (f"{first.license}: {first.summary} (from {', '.join(first.origins)}){quote}{more}",
            tuple(f"{ob.rule or ob.term}:{ob.license_id or ob.license}:{'; '.join(ob.sources[:2])}"
                  for ob in control[:MAX_EVIDENCE]))


def _license(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Claim:
    record = facts.get(LicenseFacts)
    if record is None:   # the caller passed no scanner facts: say what the check found, nothing more
        return Claim(cid, title, ClaimStatus.SUPPORTED,
                     "the license check found no registration, reporting or remote-control term", ("check:license",))
    name = record.weights_license or "unidentified"
    law = record.governing_law or "not stated"
    venue = record.venue or "not stated"
    code = f"; code license {record.code_license}" if record.code_license else ""
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"weights license {name}: no registration, reporting or remote-control term found "
                 f"(governing law {law}; venue {venue}){code}",
                 ("check:license", f"license:{name}", f"governing-law:{law}", f"venue:{venue}"))


def _runtime(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...],
             facts: Facts) -> Claim:
    """Supported only when every planned load, and the forward pass where there is a model, completed."""
    record = facts.get(RuntimeFacts)
    run = record.data if record else {}
    if run.get("status") != "completed" or not run.get("all_loaded"):
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     str(run.get("reason") or run.get("status") or "the runtime check recorded no result"))
    steps = [s for s in run.get("steps") or [] if isinstance(s, dict)]
    if any(s.get("kind") == "transformers" for s in steps) and not run.get("forward"):
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED, "the model loaded but no forward pass ran")
    loaded = ", ".join(f"{s.get('kind')} {s.get('path')}" for s in steps)
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"{len(steps)} load(s) in the sandbox ({loaded}) completed"
                 + (" with a forward pass" if run.get("forward") else "")
                 + " and made zero network, DNS, process or file-write attempts",
                 ("check:runtime", *(f"loaded:{s.get('kind')}:{s.get('path')}" for s in steps[:MAX_EVIDENCE])))


def _no_refutation(snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts) -> Refutation:
    return None


_SPECIAL = {"integrity": _Special(_integrity_refute, _integrity),
            "route": _Special(_route_refute, _route),
            "license": _Special(_license_refute, _license),
            "runtime": _Special(_no_refutation, _runtime)}


def _ids(findings: list[Finding]) -> tuple[str, ...]:
    return tuple(f"{f.rule}:{f.file}:{f.location}".rstrip(":") + (" (waived)" if f.waived else "")
                 for f in findings[:MAX_EVIDENCE])


def _reason(findings: list[Finding]) -> str:
    first = findings[0]
    more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
    where = f" in {first.file}" if first.file else ""
    waived = sum(1 for f in findings if f.waived)
    note = f" ({waived} waived by policy; a waiver does not change the fact)" if waived else ""
    return f"{first.rule}{where}: {first.title}{more}{note}"
