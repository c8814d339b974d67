"""License terms of the model and of every model in its lineage, as facts and policy findings.

Signals: the card front matter (license, license_name, license_link), shipped license / notice /
use-policy files, safetensors `__metadata__` and GGUF `general.license` (from the formats scanners'
facts), and the lineage (snapshot.ancestors from the hub source, facts["provenance"]["lineage"],
the card's base_model). Each is resolved against rules/licenses.yaml (auditor.licensetext); the
obligations of all of them are combined, because a derivative stays bound by its ancestors' terms.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import FileFacts, GgufFacts, LicenseFacts, ProvenanceFacts, SafetensorsFacts
from auditor.model import Finding, Severity
from auditor.parsers import card as cardparser
from auditor.parsers import licensetext
from auditor.parsers.licensetext import Entry, Match
from auditor.record import field, record
from auditor.scanners import ScanContext
from auditor.scanners import license_files as lf
from auditor.scanners import license_terms as lt
from auditor.scanners.license_terms import THIS_MODEL, LicenseTerms, Term

NAME = "license"

SIMILAR_TEXT = 0.6                # word 5-gram Jaccard similarity at which two texts are one agreement
_TEXT_KINDS = ("file", "use_policy", "metadata")
_WEIGHT_FORMATS = ("safetensors", "gguf", "pickle", "zip", "onnx", "hdf5", "numpy", "protobuf", "tar", "7z",
                   "lfs-pointer")
_CODE_WORDS = re.compile(r"\b(?:code|source code|scripts?)\b|代码|코드", re.IGNORECASE)
_WEIGHT_WORDS = re.compile(r"\b(?:weights?|model weights|checkpoints?|models?)\b|权重|模型|가중치|모델", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"[;；，,]|\bwhile\b|\bwhereas\b|\bbut\b|而|但")
_LICENSE_WORDS = re.compile(r"licen[cs]|许可|协议|라이선스", re.IGNORECASE)


@record
class Signal:
    kind: str                      # card-license, card-license_name, card-license_link, card-body, file,
    where: str                     # notice, use_policy, metadata, lineage-fact; where = file or card field
    value: str                     # the id, link, or the opening words of a text
    entry: Entry | None = None
    confidence: float = 0.0
    terms: dict[str, Term] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    is_text: bool = False          # a license text (file or long metadata value), not an id or link
    stated: dict[str, dict[str, Any]] = field(default_factory=dict)   # facts the text states itself
    shingles: frozenset[int] = frozenset()
    scope: str = "model"           # model (the weights), code, notice, third_party
    role: str = ""                 # the file's role by name (rules/licenses.yaml license_files)
    full_text: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "value": self.value[:200], "scope": self.scope,
                "license_id": self.entry.id if self.entry else "", "confidence": self.confidence,
                "matched": list(self.evidence)}


@record
class ModelLicense:
    """What one model (the audited one or an ancestor) is licensed under."""
    repo_id: str
    relation: str = ""
    depth: int = 0
    signals: list[Signal] = field(default_factory=list)
    license: Entry | None = None
    confidence: float = 0.0
    code_license: Entry | None = None
    licenses: dict[str, LicenseTerms] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    error: str = ""


# ---------------------------------------------------------------------------------------- signals

def _card_signals(card: dict[str, Any], where: str, repo_id: str = "") -> tuple[list[Signal], list[str]]:
    """Signals from card front matter, and the problems found (values of the wrong type)."""
    signals, problems = _card_values(card, where)
    cat = licensetext.catalog()
    for s in signals:
        if s.entry is not None:
            exact = cat.exact_for_org(s.entry, repo_id)
            if exact is not s.entry:
                resolved = _resolved(s.kind, f"{s.where} (publisher {repo_id.split('/')[0]})", s.value, exact)
                s.entry, s.terms, s.where = resolved.entry, resolved.terms, resolved.where
    return signals, problems


def _card_values(card: dict[str, Any], where: str) -> tuple[list[Signal], list[str]]:
    cat = licensetext.catalog()
    signals: list[Signal] = []
    problems: list[str] = []
    raw = card.get("license")
    values = raw if isinstance(raw, list) else [raw] if raw is not None else []
    for value in values:
        if not isinstance(value, str | int | float):
            problems.append(f"license: unexpected {type(value).__name__}")
            continue
        value = str(value).strip()
        if value:
            entry = None if licensetext.fold_id(value) == "other" else cat.by_id(value)
            signals.append(_resolved("card-license", f"{where}: license", value, entry))
    for key in ("license_name", "license_link"):
        value = card.get(key)
        if value is None:
            continue
        if not isinstance(value, str | int | float):
            problems.append(f"{key}: unexpected {type(value).__name__}")
            continue
        value = str(value).strip()
        if not value:
            continue
        entry = cat.by_id(value) if key == "license_name" else cat.by_link(value)
        if key == "license_link" and entry is None and "://" not in value:
            continue      # a relative link names a shipped file, which is read as a file signal
        signals.append(_resolved(f"card-{key}", f"{where}: {key}", value, entry))
    return signals, problems


def _resolved(kind: str, where: str, value: str, entry: Entry | None) -> Signal:
    confidence = licensetext.catalog().signal_confidence.get(kind, 0.8) if entry else 0.0
    via = f"{where} = {value[:60]}"
    return Signal(kind=kind, where=where, value=value, entry=entry, confidence=confidence,
                  terms=lt.terms_for(entry, {}, where, via=via) if entry else {})


def _text_signal(kind: str, where: str, text: str, role: str = "") -> Signal:
    norm = licensetext.normalize(text)
    match: Match | None = licensetext.identify(text, normalized=norm)
    facts = licensetext.extract_facts(text, normalized=norm)
    entry = match.entry if match else None
    full = len(text) >= lt.FULL_TEXT_CHARS
    return Signal(kind=kind, where=where, value=" ".join(norm.split()[:12]), entry=entry,
                  confidence=match.confidence if match else 0.0,
                  terms=lt.terms_for(entry, facts, where, full_text=full), evidence=match.evidence if match else (),
                  is_text=True, stated=facts, shingles=licensetext.shingles(norm), role=role, full_text=full)


def _value_signal(kind: str, where: str, value: str) -> Signal:
    """A license value found in file metadata: an id, a URL, or a whole license text."""
    cat = licensetext.catalog()
    value = value.strip()
    if "://" in value and " " not in value:
        return _resolved(kind, where, value, cat.by_link(value))
    entry = cat.by_id(value)
    if entry is not None or len(value) <= 80:
        return _resolved(kind, where, value, entry)
    return _text_signal(kind, where, value)


# Where the formats scanners' facts carry a license: the per-file record of each format (or its "metadata" map) -> keys.
_METADATA_KEYS: tuple[tuple[type[FileFacts], tuple[str, ...]], ...] = (
    (SafetensorsFacts, ("license", "license_name", "license_link")),
    (GgufFacts, ("general.license", "general.license.name", "general.license.link")))


def _metadata_signals(ctx: ScanContext) -> list[Signal]:
    signals: list[Signal] = []
    for kind, keys in _METADATA_KEYS:
        record = ctx.facts.get(kind)
        for path, info in (record.files if record else {}).items():
            if not isinstance(info, dict):
                continue
            holder = next((h for h in (info, info.get("metadata"), info.get("__metadata__"))
                           if isinstance(h, dict) and any(k in h for k in keys)), None)
            for key in keys if holder else ():
                value = holder.get(key) if holder else None
                if isinstance(value, str) and value.strip():
                    signals.append(_value_signal("metadata", f"{path}: {key}", value))
    return signals


def _body_signals(card: cardparser.Card, where: str) -> list[Signal]:
    """What the card's prose says about the license: which license covers the code and which the weights
    ("the code is licensed under Apache-2.0, the model weights under ..."), and the terms its license
    section states (registration for commercial use, thresholds ...)."""
    cat = licensetext.catalog()
    signals: list[Signal] = []
    for _start, text in cardparser.license_sections(card) or [(card.body_line, card.body)]:
        for sentence in re.split(r"(?<=[.。;；!?])\s+|\n\s*\n", text):
            if not _LICENSE_WORDS.search(sentence):
                continue
            for part in _CLAUSE_SPLIT.split(sentence):
                entry = cat.named_in(part)
                if entry is None:
                    continue
                scope = "code" if _CODE_WORDS.search(part) and not _WEIGHT_WORDS.search(part) else \
                    "model" if _WEIGHT_WORDS.search(part) else ""
                if scope:
                    sig = _resolved("card-body", f"{where} (body)", " ".join(part.split())[:120], entry)
                    sig.scope = scope
                    signals.append(sig)
    sections = cardparser.license_sections(card)
    if sections:
        numbered = "\n" * (sections[0][0] - 1) + "\n".join(text for _, text in sections)
        facts = licensetext.extract_facts(numbered)
        if facts:
            signals.append(Signal(kind="card-body", where=where, value="license section of the card",
                                  terms=lt.terms_for(None, facts, where), stated=facts, scope="model"))
    return signals


# ---------------------------------------------------------------------------------------- models

def _assign_scopes(signals: list[Signal]) -> None:
    """Which files bind the weights: a model-license file does; a generic LICENSE is the code's when a
    model-license file exists or the card says the code is under it; notices never bind."""
    has_model_file = any(s.role == "model" for s in signals)
    code_named = [s.entry for s in signals if s.kind == "card-body" and s.scope == "code" and s.entry]
    weights_named = [s.entry for s in signals if s.kind == "card-body" and s.scope == "model" and s.entry]
    for s in signals:
        if s.role == "notice":
            s.scope = "notice"
        elif s.role == "code":
            s.scope = "code"
        elif s.role == "license" and "/" in s.where:
            s.scope = "third_party"
        elif s.role == "license":
            s.scope = _generic_scope(s, has_model_file, code_named, weights_named)


def _generic_scope(s: Signal, has_model_file: bool, code_named: list[Entry], weights_named: list[Entry]) -> str:
    if s.entry is None:
        return "code" if has_model_file else "model"
    named_code = any(_compatible(s.entry, e) for e in code_named)
    named_weights = any(_compatible(s.entry, e) for e in weights_named)
    return "code" if (has_model_file or named_code) and not named_weights else "model"


def _summarise(model: ModelLicense, signals: list[Signal]) -> ModelLicense:
    """Choose the binding license of one model's weights (and its code's) and collect the terms."""
    _assign_scopes(signals)
    model.signals = signals
    weights = [s for s in signals if s.entry is not None and s.scope == "model"]
    model.license, model.confidence = _binding(weights)
    model.code_license = _binding([s for s in signals if s.entry is not None and s.scope == "code"])[0]
    model.notices = [s.where for s in signals if s.scope == "notice"]
    model.licenses = _collect(model, signals)
    return model


def _binding(candidates: list[Signal]) -> tuple[Entry | None, float]:
    """The most restrictive license the weights' signals name; a shipped text beats a card id that it
    contradicts; a family fallback gives way to the exact version another signal names."""
    if not candidates:
        return None, 0.0
    declared = [s for s in candidates if s.kind.startswith("card-")]
    shipped = [s for s in candidates if not s.kind.startswith("card-") and s.kind != "use_policy"]
    pool = declared + [s for s in shipped if not declared or _more_restrictive(s, declared)] or candidates
    pool = _exact_versions(pool, candidates)
    best = max(pool, key=lambda s: (s.entry.restrictiveness if s.entry else 0, s.confidence))
    agreeing = [s for s in candidates if s.entry is best.entry]
    return best.entry, min(0.99, max(s.confidence for s in agreeing) + 0.03 * (len(agreeing) - 1))


def _exact_versions(pool: list[Signal], candidates: list[Signal]) -> list[Signal]:
    exact = [s for s in candidates if s.entry and s.entry.priority >= 10]
    return [next((x for x in exact if s.entry and s.entry.priority < 10 and _compatible(x.entry, s.entry)), s)
            for s in pool]


def _license_key(model: ModelLicense, s: Signal) -> str:
    """Signals naming the binding license or a family fallback of it share its key (one set of terms)."""
    if s.entry is None:
        return "" if s.scope != "model" else f"unknown:{s.where}"
    if model.license is not None and s.scope == "model" and _compatible(s.entry, model.license):
        return model.license.id
    return s.entry.id


def _collect(model: ModelLicense, signals: list[Signal]) -> dict[str, LicenseTerms]:
    """The terms of every license the weights carry (the binding one, use policies, third-party files in
    subfolders, unknown texts); the code license and notices add none."""
    licenses: dict[str, LicenseTerms] = {}
    binding_key = model.license.id if model.license else ""
    for s in signals:
        key = _collect_key(model, s, binding_key)
        if not key or (key.startswith("unknown:") and not s.terms):
            continue
        lic = licenses.get(key)
        if lic is None:
            entry = licensetext.catalog().entries.get(key)
            name = entry.name if entry else ("terms stated in the model card" if key == "card"
                                             else f"unrecognised license in {s.where}")
            lic = licenses[key] = LicenseTerms(key, entry.id if entry else "", name)
        lt.merge(lic, s.terms)
        if s.kind in ("file", "use_policy") and s.where not in lic.files:
            lic.files.append(s.where)
    if model.notices:
        target = licenses.get(binding_key) or licenses.setdefault("notices", LicenseTerms(
            "notices", "", "notices shipped with the model"))
        lt.merge(target, {"attribution": Term("attribution", {"summary": "Keep the shipped notices with every "
                                                              "copy"}, list(model.notices), stated=True)})
    return licenses


def _collect_key(model: ModelLicense, s: Signal, binding_key: str) -> str:
    """Under which license a signal's terms are collected ('' for none)."""
    if s.scope in ("code", "notice"):
        return ""
    if s.entry is not None and s.scope == "model" and model.license and s.entry.permissive \
            and not model.license.permissive and not _compatible(s.entry, model.license):
        return ""         # a permissive id a shipped agreement contradicts imposes nothing itself
    if s.kind == "card-body" and s.entry is None:
        return binding_key or "card"
    if s.kind == "use_policy" and s.entry is None:
        s.terms.setdefault("acceptable_use", Term("acceptable_use", {
            "summary": f"A use policy is shipped with the model ({s.where})"}, [s.where], stated=True))
        return binding_key or f"unknown:{s.where}"
    return _license_key(model, s)


def _more_restrictive(signal: Signal, declared: list[Signal]) -> bool:
    assert signal.entry is not None
    return all(not _compatible(signal.entry, d.entry) and signal.entry.restrictiveness >
               (d.entry.restrictiveness if d.entry else 0) for d in declared)


def _compatible(a: Entry | None, b: Entry | None) -> bool:
    """Same license, or a family fallback and a version of that family."""
    if a is None or b is None:
        return True
    return a.id == b.id or (a.family == b.family and a.family not in ("spdx", "creative-commons", "openrail")
                            and min(a.priority, b.priority) < 10)


# ---------------------------------------------------------------------------------------- the audited model

def _audited_model(ctx: ScanContext) -> tuple[ModelLicense, cardparser.Card, list[Finding]]:
    findings: list[Finding] = []
    card, card_path = lf.read_card(ctx, findings)
    signals: list[Signal] = []
    if card_path:
        card_signals, problems = _card_signals(card.front, card_path, ctx.snapshot.repo_id)
        signals += card_signals + _body_signals(card, card_path)
        findings += [lf.finding_unverified(card_path, f"card {problem}") for problem in problems]
    for rec, role in lf.license_files(ctx, card, findings):
        try:
            text, problem = lf.file_text(ctx, rec)
        except OSError as exc:
            findings.append(lf.finding_unverified(rec.path, f"cannot read: {_one_line(exc)}"))
            continue
        if problem:
            findings.append(lf.finding_unverified(rec.path, problem))
        if not text.strip():
            continue
        signal = _text_signal("use_policy" if role == "use_policy" else "file", rec.path, text, role)
        if role == "notice":      # attribution, never the model's license
            signal.entry, signal.terms, signal.confidence = None, {}, 0.0
        signals.append(signal)
    signals += _metadata_signals(ctx)
    model = _summarise(ModelLicense(repo_id=ctx.snapshot.repo_id or THIS_MODEL), signals)
    return model, card, findings


# ---------------------------------------------------------------------------------------- lineage

def _ancestor_model(repo_id: str, relation: str, depth: int, card: dict[str, Any],
                    texts: dict[str, str], error: str) -> ModelLicense:
    signals, _ = _card_signals(card, f"{repo_id} card", repo_id)
    for name, text in texts.items():
        role = licensetext.file_role(name) or "license"
        if isinstance(text, str):
            signal = _text_signal("use_policy" if role == "use_policy" else "file", f"{repo_id}/{name}", text, role)
            if role == "notice":
                signal.entry, signal.terms = None, {}
            signals.append(signal)
    return _summarise(ModelLicense(repo_id=repo_id, relation=relation, depth=depth, error=error), signals)


def _lineage(ctx: ScanContext, card: dict[str, Any]) -> list[ModelLicense]:
    """Every ancestor with its license, parent first, root last."""
    models: list[ModelLicense] = []
    seen: set[str] = set()
    for anc in sorted(ctx.snapshot.ancestors, key=lambda a: a.depth):
        if anc.repo_id in seen:
            continue
        seen.add(anc.repo_id)
        models.append(_ancestor_model(anc.repo_id, anc.relation, anc.depth, anc.card or {},
                                      dict(anc.license_texts or {}), anc.error))
    models += _provenance_models(ctx, seen)
    models += _card_bases(card, seen)
    models.sort(key=lambda m: m.depth)
    return models


def _provenance_models(ctx: ScanContext, seen: set[str]) -> list[ModelLicense]:
    cat = licensetext.catalog()
    models: list[ModelLicense] = []
    provenance = ctx.facts.get(ProvenanceFacts)
    for item in provenance.lineage if provenance else []:
        if not isinstance(item, dict) or not isinstance(item.get("repo_id"), str) or item["repo_id"] in seen:
            continue
        seen.add(item["repo_id"])
        lic = item.get("license")
        values = lic if isinstance(lic, list) else [lic] if isinstance(lic, str) and lic else []
        signals = [_resolved("lineage-fact", f"{item['repo_id']} (provenance)", str(v), cat.by_id(_unwrap(str(v))))
                   for v in values]
        models.append(_summarise(ModelLicense(
            repo_id=item["repo_id"], relation=str(item.get("relation") or ""),
            depth=int(item.get("depth") or 1) if str(item.get("depth") or "1").isdigit() else 1,
            error=str(item.get("error") or "")), signals))
    return models


def _card_bases(card: dict[str, Any], seen: set[str]) -> list[ModelLicense]:
    models: list[ModelLicense] = []
    base = card.get("base_model")
    bases = base if isinstance(base, list) else [base] if base else []
    relation = card.get("base_model_relation") if isinstance(card.get("base_model_relation"), str) else ""
    for name in bases:
        if isinstance(name, str) and name.strip() and name.strip() not in seen:
            seen.add(name.strip())
            models.append(ModelLicense(repo_id=name.strip(), relation=relation or "", depth=1,
                                       error="not resolved (no ancestor data: audited without the hub source)"))
    return models


# ---------------------------------------------------------------------------------------- findings

def scan(ctx: ScanContext) -> Iterator[Finding]:
    if not ctx.files:
        return            # nothing to license; the inventory reports the empty target
    model, card, findings = _audited_model(ctx)
    yield from findings
    lineage = _lineage(ctx, card.front)
    model = _resolve_by_similarity(model, lineage)
    yield from _conflicts(model)
    yield from _unknowns(model)
    yield from _unresolved(lineage)
    if not [s for s in model.signals if s.scope != "notice"]:
        looks_like_model = card.front or any(f.format in _WEIGHT_FORMATS for f in ctx.files)
        yield rules.finding("LICENSE-MISSING", scanner=NAME, severity=None if looks_like_model else Severity.LOW,
                            evidence="no license in the card, no license file, no license in file metadata"
                                     + ("" if looks_like_model else " (no weights or model card either)"))
    elif model.license is not None:
        yield _identified(model)
    kind = lf.model_kind(ctx, card)
    models = [(THIS_MODEL, model.licenses)] + [(m.repo_id, m.licenses) for m in lineage]
    obs = lt.obligations(models)
    yield from lt.findings(ctx, obs, kind)
    ctx.facts.publish(LicenseFacts(_facts(ctx, model, lineage, obs, kind)))


def _identified(model: ModelLicense) -> Finding:
    assert model.license is not None
    sources = sorted({s.where for s in model.signals if s.entry is model.license and s.scope == "model"})
    code = f"; code: {model.code_license.name} ({model.code_license.id})" if model.code_license else ""
    file = next((s.where for s in model.signals if s.entry is model.license and s.kind == "file"), "")
    return rules.finding("LICENSE-IDENTIFIED", scanner=NAME, file=file,
                         evidence=f"weights: {model.license.name} ({model.license.id}, confidence "
                                  f"{model.confidence:.2f}) from {', '.join(sources)}{code}")


def _unresolved(lineage: list[ModelLicense]) -> Iterator[Finding]:
    for anc in lineage:
        if anc.license is None and not any(k.startswith("unknown:") for k in anc.licenses):
            named = ", ".join(repr(s.value[:60]) for s in anc.signals)
            why = anc.error or (f"its license {named} is not in the catalog" if named
                                else "no license id or text found for it")
            yield rules.finding("LICENSE-LINEAGE-UNRESOLVED", scanner=NAME, location=f"lineage: {anc.repo_id}",
                                evidence=f"{anc.repo_id} ({anc.relation or 'ancestor'}): {why}")


def _resolve_by_similarity(model: ModelLicense, lineage: list[ModelLicense]) -> ModelLicense:
    """An unrecognised text that is (nearly) the same text as a recognised one in this model or its
    lineage, e.g. a fine-tune's renamed copy of its base's agreement, is that agreement."""
    known = [s for m in (model, *lineage) for s in m.signals if s.is_text and s.entry and s.shingles]
    changed = False
    for s in model.signals:
        if s.entry is not None or not s.is_text or not s.shingles or not known or s.scope == "notice":
            continue
        score, ref = max(((licensetext.similarity(s.shingles, k.shingles), k) for k in known),
                         key=lambda pair: pair[0])
        if score >= SIMILAR_TEXT and ref.entry is not None:
            s.entry = ref.entry
            s.confidence = round(0.5 + 0.45 * score, 2)
            s.evidence = (f"same text as {ref.where} (word 5-gram similarity {score:.2f})",)
            s.terms = lt.terms_for(ref.entry, s.stated, s.where, full_text=s.full_text)
            changed = True
    if not changed:
        return model
    return _summarise(ModelLicense(repo_id=model.repo_id), model.signals)


def _of_kind(model: ModelLicense, kinds: tuple[str, ...], scope: str = "model") -> list[Signal]:
    return [s for s in model.signals if s.entry and s.kind.startswith(kinds) and s.scope == scope]


def _conflict_pairs(model: ModelLicense) -> list[tuple[Signal, Signal]]:
    declared = _of_kind(model, ("card-",))
    shipped = [s for s in _of_kind(model, ("file",)) if s.kind == "file"]
    metadata = _of_kind(model, ("metadata",))
    declared_is_shipped = any(_compatible(o.entry, d.entry) for o in shipped for d in declared)
    pairs: list[tuple[Signal, Signal]] = []
    for s in shipped:
        if not declared or any(_compatible(s.entry, d.entry) for d in declared):
            continue
        if declared_is_shipped and not _more_restrictive(s, declared):
            continue      # the declared license is shipped too; this one is an extra license
        pairs += [(d, s) for d in declared]
    for s in metadata:
        references = declared or shipped
        if references and not any(_compatible(s.entry, r.entry) for r in references):
            pairs += [(r, s) for r in references]
    return pairs


def _conflicts(model: ModelLicense) -> Iterator[Finding]:
    reported: set[frozenset[str]] = set()
    for d, s in _conflict_pairs(model):
        assert s.entry is not None and d.entry is not None
        key = frozenset((s.entry.id, d.entry.id))
        if key in reported:
            continue
        reported.add(key)
        yield rules.finding("LICENSE-CONFLICT", scanner=NAME, file=s.where.split(":")[0],
                            severity=_conflict_severity(d.entry, s.entry),
                            evidence=f"{d.where} says {d.value!r} ({d.entry.name}); "
                                     f"{s.where} is {s.entry.name} (confidence {s.confidence:.2f})")


def _conflict_severity(declared: Entry, found: Entry) -> Severity:
    if declared.permissive and found.permissive:
        return Severity.LOW
    if declared.permissive != found.permissive:
        return Severity.HIGH if found.restrictiveness > declared.restrictiveness else Severity.MEDIUM
    return Severity.MEDIUM


def _unknowns(model: ModelLicense) -> Iterator[Finding]:
    resolved_any = any(s.entry for s in model.signals if s.kind != "use_policy" and s.scope == "model")
    named = [o for o in model.signals if o.kind in ("card-license_name", "card-license_link")]
    kinds = licensetext.catalog().term_kinds
    for s in model.signals:
        if s.entry is not None or s.kind in ("use_policy", "card-body") or s.scope in ("notice", "code"):
            continue
        file = s.where.split(":")[0]
        if s.is_text:
            stated = ", ".join(kinds[k].label if k in kinds else k for k in s.terms) or "no recognisable terms"
            yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file,
                                evidence=f"text not recognised (starts: {s.value[:100]!r}); "
                                         f"terms read from the text: {stated}")
        elif licensetext.fold_id(s.value) == "other":
            if not resolved_any and not named:
                yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file, evidence=(
                    f"{s.where} says 'other' and no license name, link or recognised license text says which"))
        elif s.kind == "card-license" or not resolved_any:
            yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file,
                                evidence=f"{s.where} = {s.value[:120]!r} is not in the license catalog")


# ---------------------------------------------------------------------------------------- facts

def _entry_dict(entry: Entry | None, confidence: float = 0.0) -> dict[str, Any]:
    return {"id": entry.id if entry else "", "name": entry.name if entry else "",
            "spdx": (entry.spdx or "") if entry else "", "confidence": confidence}


def _facts(ctx: ScanContext, model: ModelLicense, lineage: list[ModelLicense], obs: list[lt.Obligation],
           kind: str) -> dict[str, Any]:
    merged = lt.obligation_facts(obs, ctx, kind)
    models = [(THIS_MODEL, model.licenses)] + [(m.repo_id, m.licenses) for m in lineage]
    own = model.licenses[model.license.id].terms if model.license and model.license.id in model.licenses else {}
    code_file = next((s.where for s in model.signals if s.scope == "code" and s.kind == "file"), "")
    return {
        "model": {**_entry_dict(model.license, model.confidence),
                  "url": next((s.value for s in model.signals if s.kind == "card-license_link"
                               and s.value.startswith(("https://", "http://"))), ""),
                  "sources": [s.to_dict() for s in model.signals if s.scope != "notice"]},
        "code": {**_entry_dict(model.code_license), "file": code_file},
        "notices": list(model.notices),
        "model_kind": kind or "unknown",
        "obligations": merged,
        "governing_law": lt.along_lineage(own, models, "governing_law", lt.place),
        "venue": lt.along_lineage(own, models, "venue", lambda t: t.summary),
        "lineage": [{"repo_id": m.repo_id, "relation": m.relation, "depth": m.depth,
                     "license_id": m.license.id if m.license else "",
                     "name": m.license.name if m.license else "not resolved",
                     "confidence": m.confidence, "error": m.error} for m in lineage],
        "summary": lt.summary_lines(merged),
    }


def _unwrap(value: str) -> str:
    """`other (deepseek)`, as the provenance facts spell a card's license_name, is `deepseek`."""
    inner = value.strip()
    if inner.lower().startswith("other (") and inner.endswith(")"):
        return inner[7:-1]
    return inner


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
