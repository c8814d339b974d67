"""Who made the model: every origin signal a repo carries, each with its source and strength.

Signals (data in rules/origins.yaml): the Hub repo id or the HF cache path or a declared `--repo-id`
(the publisher); the resolved lineage root; the card's base_model, model_creator, license_name and
license_link; `_name_or_path` in config.json and tokenizer_config.json; GGUF general.organization,
general.author and general.base_model.*; string values of safetensors metadata; the licensor a license
text names; copyright lines of shipped code; links to a publisher's own site. Only files the inventory
accepted (or headers the hub source read) are looked at.

The effective origin is the country of the strongest origin signal (a lineage root first, then a
country in the policy's sensitive list, so a tie never resolves to "outside"); two signals of at least
medium strength that name different countries are a conflict, reported naming both.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import PurePosixPath
from typing import Any

from auditor import rules
from auditor.facts import GgufFacts, SafetensorsFacts
from auditor.model import FileRecord
from auditor.parsers import licensetext, lineage, repoid
from auditor.scanners import ScanContext

RANK = {"strong": 3, "medium": 2, "weak": 1}
MAX_LICENSE_BYTES = 64 * 1024
MAX_CODE_HEADER_BYTES = 4096
MAX_CODE_FILES = 64
MAX_CONFIG_BYTES = 1024 * 1024
_URL = re.compile(r"https?://([A-Za-z0-9.-]{1,253})")
_EMAIL_HOST = re.compile(r"[\w.+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_COPYRIGHT = re.compile(r"copyright[^\n]{0,200}", re.IGNORECASE)
_CONFIGS = ("config.json", "tokenizer_config.json")
_NAME_KEYS = ("_name_or_path", "name_or_path")


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("origins.yaml")


@functools.cache
def _orgs() -> dict[str, tuple[str, dict[str, Any]]]:
    return {k.lower(): (k, v) for k, v in (_data().get("orgs") or {}).items()}


@functools.cache
def _licensors() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(e["pattern"], re.IGNORECASE), e["org"]) for e in _data().get("licensors") or []]


def org_info(org: str) -> dict[str, Any]:
    """{org, entity, country, kind, evidence, known} for an org (rules/origins.yaml `orgs`)."""
    hit = _orgs().get(org.lower())
    if not hit:
        return {"org": org, "entity": "", "country": "", "kind": "", "evidence": "", "known": False}
    _name, info = hit
    return {"org": org, "entity": info.get("entity", ""), "country": str(info.get("country", "") or ""),
            "kind": info.get("kind", ""), "evidence": info.get("evidence", ""), "known": True}


def org_by_name(name: str) -> str:
    """The org an organization/author name stands for ("Alibaba Cloud" -> Qwen), or ""."""
    key = name.strip().lower()
    if not key:
        return ""
    if key in _orgs():
        return _orgs()[key][0]
    return str((_data().get("names") or {}).get(key, ""))


def _signal(kind: str, source: str, value: str, org: str, role: str = "origin") -> dict[str, Any]:
    info = org_info(org) if org else org_info("")
    if role == "origin" and info["kind"] in ("re-uploader", "mirror"):
        role = "publisher"       # a quantizer's org names who copied the weights, not who made them
    return {"kind": kind, "source": source, "value": str(value)[:200], "org": info["org"] if org else "",
            "entity": info["entity"], "country": info["country"],
            "strength": str((_data().get("strengths") or {}).get(kind, "weak")), "role": role}


def _repo_signal(kind: str, source: str, value: str) -> list[dict[str, Any]]:
    text, valid = lineage._as_id(value)
    return [_signal(kind, source, value, repoid.org_of(text))] if valid and org_info(repoid.org_of(text))["known"] \
        else []


# --- collecting --------------------------------------------------------------------------------

def collect(ctx: ScanContext, card: dict[str, Any], chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    signals = _identity(ctx) + _lineage_root(chain) + _card(card)
    accepted = {f.path: f for f in ctx.files if not f.error}
    signals += _configs(ctx, accepted) + _gguf(ctx) + _safetensors(ctx)
    signals += _licenses(ctx, accepted) + _code(ctx, accepted)
    return signals


def _identity(ctx: ScanContext) -> list[dict[str, Any]]:
    snap = ctx.snapshot
    out = []
    declared = getattr(ctx.options, "repo_id", "")
    if declared:
        out.append(_signal("declared-repo-id", "--repo-id", declared, repoid.org_of(declared), _role(declared)))
    if snap.repo_id:
        kind = "hub-repo-id" if snap.kind == "hub" else "hf-cache-path" if snap.kind == "hf-cache" else ""
        if kind:
            out.append(_signal(kind, snap.endpoint or snap.root, snap.repo_id, repoid.org_of(snap.repo_id),
                               _role(snap.repo_id)))
    return out


def _role(repo_id: str) -> str:
    """A repo id names the origin only when its org trains its own weights."""
    return "origin" if org_info(repoid.org_of(repo_id))["kind"] == "originator" else "publisher"


def _lineage_root(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not chain:
        return []
    parents = {e["parent"].lower() for e in chain}
    roots = [e for e in chain if not e["error"] and e["repo_id"].lower() not in parents and e.get("commit")]
    return [_signal("lineage-root", f"lineage ({e['parent']} -> {e['repo_id']})", e["repo_id"],
                    repoid.org_of(e["repo_id"])) for e in roots]


def _card(card: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ref in lineage.card_refs(card):
        if ref.valid and org_info(repoid.org_of(ref.repo_id))["known"]:
            out.append(_signal("card-base-model", "README.md base_model", ref.repo_id, repoid.org_of(ref.repo_id)))
    creator = card.get("model_creator")
    if isinstance(creator, str) and org_by_name(creator):
        out.append(_signal("card-model-creator", "README.md model_creator", creator, org_by_name(creator)))
    for key in ("license_name", "license"):
        value = card.get(key)
        org = (_data().get("license_names") or {}).get(str(value).lower()) if isinstance(value, str) else None
        if org:
            out.append(_signal("card-license-name", f"README.md {key}", str(value), org))
    link = card.get("license_link")
    if isinstance(link, str):
        out += _repo_signal("card-license-link", "README.md license_link", link)
        out += _site_signals("README.md license_link", link)
    return out


def _site_signals(source: str, text: str) -> list[dict[str, Any]]:
    sites = {k.lower(): v for k, v in (_data().get("sites") or {}).items()}
    found: dict[str, str] = {}
    for host in [m.group(1) for m in _URL.finditer(text)] + [m.group(1) for m in _EMAIL_HOST.finditer(text)]:
        labels = host.lower().rstrip(".").split(".")
        for i in range(len(labels) - 1):
            org = sites.get(".".join(labels[i:]))
            if org:
                found.setdefault(org, host)
                break
    return [_signal("publisher-site-link", source, host, org) for org, host in sorted(found.items())]


def _read(ctx: ScanContext, rec: FileRecord, limit: int) -> str:
    return ctx.read_bytes(rec, limit).decode("utf-8", "replace")


def _configs(ctx: ScanContext, accepted: dict[str, FileRecord]) -> list[dict[str, Any]]:
    out = []
    for name in _CONFIGS:
        rec = accepted.get(name)
        if rec is None or rec.size > MAX_CONFIG_BYTES:
            continue
        try:
            data = json.loads(_read(ctx, rec, MAX_CONFIG_BYTES))
        except (OSError, ValueError, RecursionError):
            continue
        for key in _NAME_KEYS if isinstance(data, dict) else ():
            if isinstance(data.get(key), str):
                out += _repo_signal("config-name-or-path", f"{name} {key}", data[key])
    return out


def _gguf(ctx: ScanContext) -> list[dict[str, Any]]:
    record = ctx.facts.get(GgufFacts)
    headers = dict(record.files) if record else {}
    for path, meta in (ctx.snapshot.facts.get("remote_headers") or {}).items():
        headers.setdefault(f"{path} (ranged header read, not hash-verified)", meta)
    out: list[dict[str, Any]] = []
    for path, meta in headers.items():
        if not isinstance(meta, dict):
            continue
        for key in ("general.organization", "general.author"):
            value = meta.get(key)
            if isinstance(value, str) and org_by_name(value):
                out.append(_signal("gguf-organization", f"{path} {key}", value, org_by_name(value)))
        for ref in lineage.gguf_metadata_refs(meta, path):
            if ref.valid and org_info(repoid.org_of(ref.repo_id))["known"]:
                out.append(_signal("gguf-base-model", f"{path} general.base_model", ref.repo_id,
                                   repoid.org_of(ref.repo_id)))
    return out


def _safetensors(ctx: ScanContext) -> list[dict[str, Any]]:
    record = ctx.facts.get(SafetensorsFacts)
    out: list[dict[str, Any]] = []
    for path, info in (record.files if record else {}).items():
        meta = info.get("metadata") if isinstance(info, dict) else None
        for key, value in (meta or {}).items() if isinstance(meta, dict) else ():
            if not isinstance(value, str):
                continue
            signals = _repo_signal("safetensors-metadata", f"{path} __metadata__.{key}", value)
            if not signals and any(w in str(key).lower() for w in ("author", "organization", "creator")):
                org = org_by_name(value)
                signals = [_signal("safetensors-metadata", f"{path} __metadata__.{key}", value, org)] if org else []
            out += signals
    return out


def _licensor_orgs(text: str) -> list[tuple[str, str]]:
    """(org, matched text) for every licensor named in `text`, first match per org."""
    found: dict[str, str] = {}
    for pattern, org in _licensors():
        match = pattern.search(text)
        if match:
            found.setdefault(org, match.group(0))
    return list(found.items())


def _licenses(ctx: ScanContext, accepted: dict[str, FileRecord]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path, rec in sorted(accepted.items()):
        if "/" in path or not licensetext.file_role(path):
            continue
        text = _read(ctx, rec, MAX_LICENSE_BYTES)
        out += [_signal("license-licensor", path, value, org) for org, value in _licensor_orgs(text)]
        out += _site_signals(path, text)
    readme = accepted.get("README.md")
    if readme is not None:
        out += _site_signals("README.md", _read(ctx, readme, MAX_LICENSE_BYTES))
    return out


def _code(ctx: ScanContext, accepted: dict[str, FileRecord]) -> list[dict[str, Any]]:
    code = [r for p, r in sorted(accepted.items()) if PurePosixPath(p).suffix in (".py", ".cu", ".cpp", ".h")]
    out: list[dict[str, Any]] = []
    for rec in code[:MAX_CODE_FILES]:
        # The model's code sits at the root (auto_map names root modules); a folder's code is tools or vendored
        # code whose copyright may credit its upstream (InternLM's agent/: "modified from ToRA ... Microsoft").
        kind = "code-copyright" if "/" not in rec.path else "code-copyright-nested"
        for line in _COPYRIGHT.findall(_read(ctx, rec, MAX_CODE_HEADER_BYTES)):
            out += [_signal(kind, rec.path, value, org) for org, value in _licensor_orgs(line)]
    return out


# --- deciding ----------------------------------------------------------------------------------

def decide(signals: list[dict[str, Any]], sensitive: frozenset[str]) -> tuple[dict[str, Any] | None,
                                                                                 list[tuple[dict, dict]]]:
    """The winning origin signal (or None) and the conflicting pairs of origin signals."""
    candidates = [s for s in signals if s["role"] == "origin" and s["country"]]
    if not candidates:
        return None, []
    best = max(candidates, key=lambda s: (RANK[s["strength"]], s["kind"] == "lineage-root",
                                          s["country"].upper() in sensitive))
    conflicts = []
    firm = [s for s in candidates if RANK[s["strength"]] >= RANK["medium"]]
    for other in firm:
        if other["country"] != best["country"]:
            conflicts.append((best, other))
    return best, conflicts[:10]


def describe(signal: dict[str, Any]) -> str:
    return (f"{signal['kind']} {signal['value']!r} in {signal['source']} -> {signal['org']} "
            f"({signal['entity'] or 'entity unknown'}, {signal['country'] or 'country unknown'}; {signal['strength']})")

