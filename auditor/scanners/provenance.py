"""Provenance: pinning, publisher and effective origin, lineage, route, signature.
(Hash verification against the publisher and the lock file is the integrity scanner's.)

Reads the Snapshot (what the hub source recorded) and the inventory; never the network. For a local
folder the card's base_model references are reported as unresolved rather than guessed.

facts["provenance"] = {publisher, lineage (parent first, root last), effective_origin, signature,
pinning, route, verification, remote_files}; see the shapes in the docstrings below.
"""
from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from auditor import rules
from auditor.facts import ProvenanceFacts
from auditor.model import Ancestor, Finding, Snapshot
from auditor.parsers import hosts, lineage, repoid
from auditor.scanners import ScanContext, _origin
from auditor.scanners import _signatures as signing

NAME = "provenance"


def scan(ctx: ScanContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    for path in snap.facts.get("unsafe_paths", []):
        yield _finding("HUB-UNSAFE-PATH", evidence=f"listing entry {path!r} at {snap.resolved_revision}")
    yield from _listing_findings(snap)
    yield from _pinning(snap)
    publisher_id = snap.repo_id or ctx.options.repo_id
    publisher = origin_of(publisher_id) if publisher_id else _unknown("")
    chain = _lineage(ctx)
    card = snap.facts.get("card") if snap.kind == "hub" else lineage.read_card(ctx.root, {f.path for f in ctx.files},
                                                                               ctx.read_bytes)
    signals = _origin.collect(ctx, card if isinstance(card, dict) else {}, chain)
    effective = _effective_origin(publisher, chain, signals, ctx.regions.sensitive_origins)
    yield from _origin_findings(ctx, publisher_id, publisher, chain, effective)
    route = _route(snap, effective, ctx.regions.sensitive_origins)
    yield from route.pop("findings")
    signature = yield from _signature(ctx)
    remote = snap.facts.get("remote_files", [])
    if snap.metadata_only and remote:
        yield _finding("HUB-METADATA-ONLY", evidence=f"{len(remote)} file(s) listed with their publisher hashes "
                                                      f"but not downloaded: {', '.join(r['path'] for r in remote)}")
    ctx.facts.publish(ProvenanceFacts(
        publisher=publisher,
        lineage=list(chain),
        effective_origin=effective,
        signature=signature,
        pinning={"requested": snap.requested_revision, "resolved": snap.resolved_revision,
                 "kind": snap.facts.get("revision_kind", "")},
        route=route,
        remote_files=remote,
    ))


def _finding(rule: str, **kwargs: Any) -> Finding:
    return rules.finding(rule, scanner=NAME, **kwargs)


def _listing_findings(snap: Snapshot) -> Iterator[Finding]:
    """What the hub source found when it cross-checked the listing, the card and the ancestors' files."""
    for path in snap.facts.get("listing_missing", []):
        yield _finding("HUB-LISTING-INCOMPLETE", file=path,
                       evidence=f"in the model info's siblings at {snap.resolved_revision} but not in the tree listing")
    for note in snap.facts.get("card_conflicts", []):
        yield _finding("HUB-CARD-MISMATCH", file="README.md", evidence=note)
    for note in snap.facts.get("unverified_sources", []):
        yield _finding("LINEAGE-UNVERIFIED", evidence=note)


def _pinning(snap: Snapshot) -> Iterator[Finding]:
    if snap.kind != "hub":
        return
    kind = snap.facts.get("revision_kind", "")
    requested = snap.requested_revision or "main (default)"
    if kind == "tag":
        yield _finding("PROVENANCE-UNPINNED-TAG", evidence=f"tag {requested} -> commit {snap.resolved_revision}")
    elif kind != "commit":
        yield _finding("PROVENANCE-UNPINNED", evidence=f"{kind or 'revision'} {requested} -> commit "
                                                       f"{snap.resolved_revision}")


# --- origin and lineage -------------------------------------------------------------------------

def origin_of(repo_id: str) -> dict[str, Any]:
    """{org, entity, country, kind, evidence, known} for the org of a repo id (rules/origins.yaml)."""
    return _origin.org_info(repoid.org_of(repo_id))


def _unknown(org: str) -> dict[str, Any]:
    return {"org": org, "entity": "", "country": "", "kind": "", "evidence": "", "known": False}


def _lineage(ctx: ScanContext) -> list[dict[str, Any]]:
    """One entry per ancestor, parent first, root last."""
    snap = ctx.snapshot
    if snap.kind == "hub":
        return [_entry(a) for a in snap.ancestors]
    accepted = {f.path for f in ctx.files if not f.error}
    refs = lineage.local_refs(ctx.root, accepted, ctx.read_bytes) if not snap.single_file else []
    return [{"repo_id": r.repo_id, "relation": r.relation, "depth": 1, "parent": snap.repo_id or "(this model)",
             **_origin_part(r.repo_id if r.valid else ""), "license": "", "commit": "",
             "error": f"not resolved: {'local target, no endpoint to look it up' if r.valid else 'not a Hub id'}"
                      f" (from {r.source})"}
            for r in refs]


def _origin_part(repo_id: str) -> dict[str, Any]:
    o = origin_of(repo_id) if repo_id else _unknown("")
    return {"org": o["org"], "entity": o["entity"], "country": o["country"], "kind": o["kind"]}


def _entry(a: Ancestor) -> dict[str, Any]:
    license_id = a.card.get("license", "") if isinstance(a.card, dict) else ""
    if license_id == "other" and a.card.get("license_name"):
        license_id = f"other ({a.card.get('license_name')})"
    return {"repo_id": a.repo_id, "relation": a.relation, "depth": a.depth, "parent": a.parent,
            **_origin_part(a.repo_id), "license": str(license_id or ""), "commit": a.commit, "error": a.error}


def _effective_origin(publisher: dict[str, Any], chain: list[dict[str, Any]], signals: list[dict[str, Any]],
                      sensitive: frozenset[str]) -> dict[str, Any]:
    """The origin from the strongest signal (a resolved lineage root first), with every signal beside it."""
    parents = {e["parent"].lower() for e in chain}
    roots = [e for e in chain if e["repo_id"].lower() not in parents]
    best, conflicts = _origin.decide(signals, sensitive)
    out: dict[str, Any] = {"org": "", "entity": "", "country": "", "repo_id": "", "source": "", "strength": "",
                           "resolved": not any(e["error"] for e in chain), "roots": [e["repo_id"] for e in roots]}
    if best is not None:
        out.update(org=best["org"], entity=best["entity"], country=best["country"], source=best["source"],
                   strength=best["strength"], repo_id=best["value"] if "/" in best["value"] else "")
    elif not chain:
        out.update(org=publisher["org"], entity=publisher["entity"])
    if not out["country"]:
        out["resolved"] = False
    out["signals"] = signals
    out["conflicts"] = [f"{_origin.describe(a)} vs {_origin.describe(b)}" for a, b in conflicts]
    return out


def _origin_findings(ctx: ScanContext, publisher_id: str, publisher: dict[str, Any], chain: list[dict[str, Any]],
                     effective: dict[str, Any]) -> Iterator[Finding]:
    # a bare folder that claims no identity at all is left to the policy (POLICY-ORIGIN-UNKNOWN)
    if not effective["country"] and (publisher_id or chain or effective["signals"]):
        seen = "; ".join(_origin.describe(s) for s in effective["signals"][:5]) or "no origin signal in the files"
        who = f"publisher org {publisher['org']!r} is not in the origin registry; " if publisher_id and \
            not publisher["known"] else ""
        yield _finding("PROVENANCE-ORIGIN-UNKNOWN", evidence=f"{who}no signal names a country of origin ({seen})")
    for conflict in effective["conflicts"]:
        yield _finding("PROVENANCE-ORIGIN-CONFLICT", evidence=conflict)
    yield from _originator_findings(publisher_id, publisher, chain, effective)
    yield from _lineage_findings(chain, effective)
    flagged = _sensitive_places(ctx.regions.sensitive_origins, publisher, chain, effective)
    if flagged:
        yield _finding("PROVENANCE-SENSITIVE-ORIGIN", evidence="; ".join(flagged))


def _originator_findings(publisher_id: str, publisher: dict[str, Any], chain: list[dict[str, Any]],
                         effective: dict[str, Any]) -> Iterator[Finding]:
    if publisher["known"] and publisher["kind"] not in ("originator", ""):
        yield _finding("PROVENANCE-NOT-ORIGINATOR",
                       evidence=f"{publisher['org']} is a {publisher['kind']} ({publisher['entity']}); "
                                f"effective origin: {effective.get('repo_id') or effective.get('org') or 'unknown'}")
    elif chain and publisher_id:
        relations = sorted({e["relation"] or "derived" for e in chain if e["depth"] == 1})
        yield _finding("PROVENANCE-NOT-ORIGINATOR", severity="info",
                       evidence=f"{publisher_id} is a {'/'.join(relations)} of "
                                f"{', '.join(e['repo_id'] for e in chain if e['depth'] == 1)}")


def _lineage_findings(chain: list[dict[str, Any]], effective: dict[str, Any]) -> Iterator[Finding]:
    for e in chain:
        if e["error"].startswith("cycle"):
            yield _finding("LINEAGE-CYCLE", evidence=f"{e['repo_id']}: {e['error']}")
        elif e["error"].startswith("depth limit"):
            yield _finding("LINEAGE-DEPTH-LIMIT", evidence=f"{e['repo_id']}: {e['error']}")
        elif e["error"]:
            yield _finding("LINEAGE-UNRESOLVED", evidence=f"{e['repo_id']} (named by {e['parent']}): {e['error']}")
        elif not origin_of(e["repo_id"])["known"] and e["repo_id"] == effective.get("repo_id"):
            yield _finding("PROVENANCE-ORIGIN-UNKNOWN",
                           evidence=f"lineage root {e['repo_id']}: org {e['org']!r} is not in the origin registry")


def _sensitive_places(sensitive: frozenset[str], publisher: dict[str, Any], chain: list[dict[str, Any]],
                      effective: dict[str, Any]) -> list[str]:
    flagged = []
    if effective.get("country") and effective["country"].upper() in sensitive:
        flagged.append(f"effective origin {effective.get('repo_id') or effective['org']} "
                       f"({effective['entity']}, {effective['country']}; from {effective['source']})")
    if publisher.get("country") and publisher["country"].upper() in sensitive and \
            publisher["org"] != effective.get("org"):
        flagged.append(f"publisher {publisher['org']} ({publisher['entity']}, {publisher['country']})")
    for e in chain:
        if e["country"] and e["country"].upper() in sensitive and e["repo_id"] != effective.get("repo_id"):
            flagged.append(f"ancestor {e['repo_id']} ({e['entity']}, {e['country']})")
    return flagged


# --- route -------------------------------------------------------------------------------------

def host_country(host: str) -> str:
    """The country whose infrastructure a host belongs to (the one classifier, auditor/parsers/hosts.py)."""
    return hosts.country_of(host)


def _route(snap: Snapshot, effective: dict[str, Any], sensitive_list: Iterable[str]) -> dict[str, Any]:
    """Every host of the fetch classified: {host, country, kind, known, sensitive, listed} (listed = the
    endpoint or its own service); judge/claims.py decides the route claim from these facts."""
    findings: list[Finding] = []
    contacted = list(snap.hosts_contacted)
    if snap.endpoint and snap.endpoint not in contacted:
        contacted.insert(0, snap.endpoint)
    endpoint_origin = _origin_tuple(snap.endpoint)
    origin_country = (effective.get("country") or "").upper()
    sensitive = {str(c).upper() for c in sensitive_list}
    described = []
    for url in contacted:
        host = urlsplit(url).hostname or ""
        info = hosts.classifier().classify(host)
        country = info.country.upper()
        listed = not snap.endpoint or _origin_tuple(url) == endpoint_origin or _companion(endpoint_origin[1], host)
        described.append({"host": url, "country": info.country, "kind": info.kind, "operator": info.operator,
                          "known": info.known, "sensitive": country in sensitive, "listed": listed})
        if country and country == origin_country:
            findings.append(_finding("PROVENANCE-ROUTE-ORIGIN", evidence=f"{url} is {country} infrastructure, the "
                                     f"country of origin of {effective.get('repo_id') or effective.get('org')}"))
        elif country in sensitive:
            findings.append(_finding("PROVENANCE-ROUTE-SENSITIVE", evidence=f"{url} is {country} infrastructure"))
        if not listed:
            findings.append(_finding("PROVENANCE-OFF-ENDPOINT-HOST", evidence=f"{url} (endpoint {snap.endpoint})"))
    return {"endpoint": snap.endpoint, "hosts": described, "origin_country": origin_country,
            "sensitive_origins": sorted(sensitive), "findings": findings}


def _companion(endpoint_host: str, host: str) -> bool:
    """A host run by the endpoint's own service (the public Hub's CDN), from rules/hub.yaml."""
    domains = (rules.load("hub.yaml").get("endpoint_companions") or {}).get(endpoint_host, [])
    host = host.lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _origin_tuple(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


# --- lock file ---------------------------------------------------------------------------------

# --- signature ---------------------------------------------------------------------------------

def _signature(ctx: ScanContext) -> Generator[Finding, None, dict[str, str]]:
    """Yields findings; returns {status, detail, file}."""
    snap = ctx.snapshot
    present = signing.find_signatures([f.path for f in ctx.files])
    remote = signing.find_signatures(snap.facts.get("signature_files", []))
    if not present and not remote:
        if snap.single_file or not ctx.files:
            return {"status": "not checked", "detail": "single file" if ctx.files else "no files", "file": ""}
        yield _finding("SIGNATURE-ABSENT", evidence="no model.sig or *.sigstore.json at the model's root")
        return {"status": "absent", "detail": "no signature file", "file": ""}
    name = (present or remote)[0]
    if not present or (snap.metadata_only and snap.facts.get("remote_files")):
        detail = "weights not downloaded (metadata-only): the signature covers files that are not here"
        yield _finding("SIGNATURE-NOT-VERIFIED", file=name, evidence=detail)
        return {"status": "not checked", "detail": detail, "file": name}
    key = ctx.options.verify_key
    if not key:
        detail = "no key or certificate given (--verify-key)"
        yield _finding("SIGNATURE-NOT-VERIFIED", file=name, evidence=detail)
        return {"status": "not checked", "detail": detail, "file": name}
    check = signing.verify(ctx.root, name, key, [p for p in present if p != name])
    if check.status == "valid":
        yield _finding("SIGNATURE-VALID", file=name, evidence=check.detail)
    elif check.status == "invalid":
        yield _finding("SIGNATURE-INVALID", file=name, evidence=check.detail)
    else:
        yield _finding("SIGNATURE-NOT-VERIFIED", file=name, evidence=check.detail)
    return {"status": check.status, "detail": check.detail, "file": name}
