"""License terms of the model and of every model in its lineage, as facts and policy findings.

Signals: the card front matter (license, license_name, license_link), shipped license / notice /
use-policy files, safetensors `__metadata__` and GGUF `general.license` (from the formats scanners'
facts), and the lineage (snapshot.ancestors from the hub source, facts["provenance"]["lineage"],
the card's base_model). Each is resolved against rules/licenses.yaml (auditor.licensetext); the
obligations of all of them are combined, because a derivative stays bound by its ancestors' terms.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from auditor import rules
from auditor.facts import FileFacts, GgufFacts, LicenseFacts, ProvenanceFacts, SafetensorsFacts
from auditor.model import FileRecord, Finding, Severity
from auditor.parsers import licensetext, yamlsafe
from auditor.parsers.licensetext import Entry, Match
from auditor.scanners import ScanContext

NAME = "license"

MAX_FRONT_MATTER = 256 * 1024     # bytes of card YAML parsed
MAX_LICENSE_FILES = 64            # license-like files read per model
MAX_DEPTH = 2                     # folders below the root searched for license files
SIMILAR_TEXT = 0.6                # word 5-gram Jaccard similarity at which two texts are one agreement
MAX_PDF_BYTES = 20 * 1024 * 1024  # a PDF license larger than this is not parsed
MAX_PDF_PAGES = 80
MAX_PDF_SECONDS = 30.0
THIS_MODEL = "this model"
_TEXT_KINDS = ("file", "notice", "use_policy", "metadata")
_WEIGHT_FORMATS = ("safetensors", "gguf", "pickle", "zip", "onnx", "hdf5", "numpy", "protobuf", "tar", "7z",
                   "lfs-pointer")

# Confidence of a resolution by each kind of signal (a text match carries its own).
_CONFIDENCE = {"card-license": 0.9, "card-license_name": 0.85, "card-license_link": 0.8, "metadata": 0.8,
               "lineage-fact": 0.7}

# Term key -> the rule a policy acts on; venue is reported with the governing law.
_TERM_RULES = {
    "registration": "LICENSE-REGISTRATION", "user_threshold": "LICENSE-USER-THRESHOLD",
    "naming_duty": "LICENSE-NAMING-DUTY", "territory_exclusion": "LICENSE-TERRITORY-EXCLUSION",
    "governing_law": "LICENSE-GOVERNING-LAW", "remote_restriction": "LICENSE-REMOTE-RESTRICTION",
    "reporting": "LICENSE-REPORTING", "acceptable_use": "LICENSE-USE-POLICY", "revocable": "LICENSE-REVOCABLE",
    "attribution": "LICENSE-ATTRIBUTION", "redistribution": "LICENSE-REDISTRIBUTION",
}
_TERM_LABELS = {
    "commercial": "Commercial use", "user_threshold": "Threshold", "attribution": "Attribution",
    "naming_duty": "Naming duty", "acceptable_use": "Use policy", "registration": "Registration",
    "output_training": "Output training", "territory_exclusion": "Territory", "governing_law": "Governing law",
    "venue": "Venue", "remote_restriction": "Remote restriction", "redistribution": "Redistribution",
    "reporting": "Reporting", "revocable": "Revocable",
}


@dataclass
class Signal:
    kind: str                      # card-license, card-license_name, card-license_link, file, notice,
    where: str                     # use_policy, metadata, lineage-fact; where = file or card field
    value: str                     # the id, link, or the opening words of a text
    entry: Entry | None = None
    confidence: float = 0.0
    terms: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    is_text: bool = False          # a license text (file or long metadata value), not an id or link
    stated: dict[str, dict[str, Any]] = field(default_factory=dict)   # facts the text states itself
    shingles: frozenset[int] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "value": self.value[:200],
                "license_id": self.entry.id if self.entry else "", "confidence": self.confidence,
                "matched": list(self.evidence)}


@dataclass
class ModelLicense:
    """What one model (the audited one or an ancestor) is licensed under."""
    repo_id: str
    relation: str = ""
    depth: int = 0
    signals: list[Signal] = field(default_factory=list)
    license: Entry | None = None
    confidence: float = 0.0
    # license key (entry id, or "unknown:<where>") -> (display name, terms)
    licenses: dict[str, tuple[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
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
    return Signal(kind=kind, where=where, value=value, entry=entry,
                  confidence=_CONFIDENCE.get(kind, 0.8) if entry else 0.0,
                  terms={k: dict(v, source=f"{v.get('source', '')} (via {where} = {value[:60]})")
                         for k, v in entry.terms.items()} if entry else {})


def _text_signal(kind: str, where: str, text: str) -> Signal:
    norm = licensetext.normalize(text)
    match: Match | None = licensetext.identify(text, normalized=norm)
    facts = licensetext.extract_facts(text, normalized=norm)
    terms = licensetext.terms_for(match, facts, where)
    return Signal(kind=kind, where=where, value=" ".join(norm.split()[:12]),
                  entry=match.entry if match else None, confidence=match.confidence if match else 0.0,
                  terms=terms, evidence=match.evidence if match else (), is_text=True, stated=facts,
                  shingles=licensetext.shingles(norm))


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


def _front_matter(text: str) -> dict[str, Any]:
    """The YAML between the leading `---` lines of a model card ({} when there is none)."""
    stripped = text.lstrip("\ufeff")
    if not stripped.startswith("---"):
        return {}
    end = stripped.find("\n---", 3)
    if end < 0:
        raise ValueError("front matter is not closed")
    block = stripped[3:end]
    if len(block.encode("utf-8", "replace")) > MAX_FRONT_MATTER:
        raise ValueError(f"front matter larger than {MAX_FRONT_MATTER} bytes")
    data = yamlsafe.load(block)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("front matter is not a mapping")
    return data


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


# ---------------------------------------------------------------------------------------- models

def _summarise(model: ModelLicense, signals: list[Signal]) -> ModelLicense:
    """Choose the binding license of one model and collect the terms of every license it carries."""
    model.signals = signals
    identified = [s for s in signals if s.entry is not None]
    from_text: set[str] = set()
    for s in identified:
        assert s.entry is not None
        if s.entry.priority < 10 and any(o.entry is not s.entry and _compatible(o.entry, s.entry)
                                         for o in identified):
            continue      # a family fallback when the exact version is known from another signal
        is_text = s.kind in _TEXT_KINDS and bool(s.evidence)
        # the terms of a shipped text (refined by what it says) beat the catalog's via a card id
        if s.entry.id not in model.licenses or (is_text and s.entry.id not in from_text):
            model.licenses[s.entry.id] = (s.entry.name, s.terms)
            if is_text:
                from_text.add(s.entry.id)
    for s in signals:
        if s.entry is None and s.kind in ("file", "metadata") and s.terms:
            model.licenses[f"unknown:{s.where}"] = (f"unrecognised license in {s.where}", s.terms)
        if s.entry is None and s.kind == "use_policy":
            model.licenses[f"unknown:{s.where}"] = (f"unrecognised use policy in {s.where}", {
                "acceptable_use": {"summary": "A use policy of unknown content is shipped with the model",
                                   "source": s.where}})
    declared = [s for s in identified if s.kind.startswith("card-")]
    binding = [s for s in identified if _speaks_for_model(s)]
    pool = declared + [s for s in binding if not declared or _more_restrictive(s, declared)]
    if not pool:
        pool = [s for s in identified]
    # a family fallback named by one signal gives way to the exact version another signal names
    exact = [s for s in identified if s.entry and s.entry.priority >= 10]
    pool = [next((x for x in exact if s.entry and s.entry.priority < 10 and _compatible(x.entry, s.entry)), s)
            for s in pool]
    if pool:
        best = max(pool, key=lambda s: (s.entry.restrictiveness if s.entry else 0, s.confidence))
        model.license = best.entry
        agreeing = [s for s in identified if s.entry is best.entry]
        model.confidence = min(0.99, max(s.confidence for s in agreeing) + 0.03 * (len(agreeing) - 1))
        if best.entry and best.kind in _TEXT_KINDS and not best.entry.permissive:
            # a permissive id on the card that a shipped agreement contradicts imposes nothing itself
            for s in declared:
                if s.entry and s.entry.permissive and not _compatible(s.entry, best.entry):
                    model.licenses.pop(s.entry.id, None)
    return model


def _speaks_for_model(signal: Signal) -> bool:
    """File metadata and root-level license files speak for the model; a license file in a subfolder
    (third-party code, a tokenizer) adds its obligations but neither binds the model nor conflicts."""
    return signal.kind == "metadata" or (signal.kind == "file" and "/" not in signal.where)


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


def _audited_model(ctx: ScanContext) -> tuple[ModelLicense, dict[str, Any], list[Finding]]:
    cat = licensetext.catalog()
    findings: list[Finding] = []
    signals: list[Signal] = []
    card: dict[str, Any] = {}
    root_files = [f for f in ctx.files if "/" not in f.path]
    card_rec = next((f for f in root_files if f.path.lower() == "readme.md"), None)
    if card_rec is not None:
        try:
            text, truncated = ctx.read_text(card_rec)
            card = _front_matter(text)
        except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:
            findings.append(rules.finding("LICENSE-UNVERIFIED", file=card_rec.path, scanner=NAME,
                                          evidence=f"model card front matter unreadable: {_one_line(exc)}"))
        card_signals, problems = _card_signals(card, card_rec.path, ctx.snapshot.repo_id)
        signals += card_signals
        for problem in problems:
            findings.append(rules.finding("LICENSE-UNVERIFIED", file=card_rec.path, scanner=NAME,
                                          evidence=f"card {problem}"))

    candidates = [(f, cat.file_role(f.path)) for f in ctx.files if f.path.count("/") <= MAX_DEPTH]
    candidates = [(f, role) for f, role in candidates if role]
    candidates.sort(key=lambda fr: (fr[0].path.count("/"), fr[0].path))
    if len(candidates) > MAX_LICENSE_FILES:
        findings.append(rules.finding("LICENSE-UNVERIFIED", scanner=NAME, evidence=(
            f"{len(candidates)} license-like files; only the first {MAX_LICENSE_FILES} were read")))
        candidates = candidates[:MAX_LICENSE_FILES]
    for rec, role in candidates:
        if rec.error or rec.format not in ("text", "script", "unknown", "empty"):
            findings.append(rules.finding("LICENSE-UNVERIFIED", file=rec.path, scanner=NAME, evidence=(
                f"license file not readable as text (format {rec.format}{', ' + rec.error if rec.error else ''})")))
            continue
        try:
            if _is_pdf(ctx, rec):
                text, problem = _pdf_text(ctx, rec)
                if problem:
                    findings.append(rules.finding("LICENSE-UNVERIFIED", file=rec.path, scanner=NAME,
                                                  evidence=f"PDF license: {problem}"))
                if not text.strip():
                    continue
                truncated = False
            else:
                text, truncated = ctx.read_text(rec)
        except OSError as exc:
            findings.append(rules.finding("LICENSE-UNVERIFIED", file=rec.path, scanner=NAME,
                                          evidence=f"cannot read: {_one_line(exc)}"))
            continue
        if truncated or len(text) > licensetext.MAX_TEXT_CHARS:
            limit = min(ctx.options.limits.max_text_bytes, licensetext.MAX_TEXT_CHARS)
            findings.append(rules.finding("LICENSE-UNVERIFIED", file=rec.path, scanner=NAME, evidence=(
                f"longer than {limit:,} characters; only the beginning was read")))
        signals.append(_text_signal("file" if role == "license" else role, rec.path, text))
    signals += _metadata_signals(ctx)
    model = _summarise(ModelLicense(repo_id=ctx.snapshot.repo_id or THIS_MODEL), signals)
    return model, card, findings


def _is_pdf(ctx: ScanContext, rec: FileRecord) -> bool:
    with open(ctx.path(rec), "rb") as fh:
        return fh.read(5) == b"%PDF-"


def _pdf_text(ctx: ScanContext, rec: FileRecord) -> tuple[str, str]:
    """The text of a PDF license (Baichuan ships one), within size, page and time limits; and a problem
    when it could not be read completely ("" when it was)."""
    try:
        import pypdf
    except ImportError:
        return "", "not read: the PDF reader is not installed (pip install 'auditor[pdf]')"
    if rec.size > MAX_PDF_BYTES:
        return "", f"not read: {rec.size:,} bytes is over the {MAX_PDF_BYTES:,}-byte limit for a PDF license"
    deadline = time.monotonic() + min(ctx.options.limits.seconds_per_file, MAX_PDF_SECONDS)
    parts: list[str] = []
    try:
        reader = pypdf.PdfReader(str(ctx.path(rec)), strict=False)
        pages = reader.pages
        for number, page in enumerate(pages):
            if number >= MAX_PDF_PAGES or time.monotonic() > deadline:
                return "\n".join(parts), f"only the first {number} of {len(pages)} pages were read"
            parts.append(page.extract_text() or "")
            if sum(map(len, parts)) > licensetext.MAX_TEXT_CHARS:
                return "\n".join(parts), "text longer than the limit; only the beginning was read"
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is "not verified"
        return "\n".join(parts), f"unparseable ({type(exc).__name__}: {_one_line(exc)})"
    return "\n".join(parts), ""


def _ancestor_model(repo_id: str, relation: str, depth: int, card: dict[str, Any],
                    texts: dict[str, str], error: str) -> ModelLicense:
    cat = licensetext.catalog()
    signals, _ = _card_signals(card, f"{repo_id} card", repo_id)
    for name, text in texts.items():
        role = cat.file_role(name) or "file"
        if isinstance(text, str):
            signals.append(_text_signal("file" if role == "license" else role, f"{repo_id}/{name}", text))
    return _summarise(ModelLicense(repo_id=repo_id, relation=relation, depth=depth, error=error), signals)


def _lineage(ctx: ScanContext, card: dict[str, Any]) -> list[ModelLicense]:
    """Every ancestor with its license, parent first, root last."""
    cat = licensetext.catalog()
    models: list[ModelLicense] = []
    seen: set[str] = set()
    for anc in sorted(ctx.snapshot.ancestors, key=lambda a: a.depth):
        if anc.repo_id in seen:
            continue
        seen.add(anc.repo_id)
        models.append(_ancestor_model(anc.repo_id, anc.relation, anc.depth, anc.card or {},
                                      dict(anc.license_texts or {}), anc.error))
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
    base = card.get("base_model")
    bases = base if isinstance(base, list) else [base] if base else []
    relation = card.get("base_model_relation") if isinstance(card.get("base_model_relation"), str) else ""
    for name in bases:
        if isinstance(name, str) and name.strip() and name.strip() not in seen:
            seen.add(name.strip())
            models.append(ModelLicense(repo_id=name.strip(), relation=relation or "", depth=1,
                                       error="not resolved (no ancestor data: audited without the hub source)"))
    models.sort(key=lambda m: m.depth)
    return models


# ---------------------------------------------------------------------------------------- findings

def scan(ctx: ScanContext) -> Iterator[Finding]:
    if not ctx.files:
        return            # nothing to license; the inventory reports the empty target
    model, card, findings = _audited_model(ctx)
    yield from findings
    lineage = _lineage(ctx, card)
    model = _resolve_by_similarity(model, lineage)
    yield from _conflicts(model)
    yield from _unknowns(model)
    for anc in lineage:
        if anc.license is None and not any(k.startswith("unknown:") for k in anc.licenses):
            named = ", ".join(repr(s.value[:60]) for s in anc.signals)
            why = anc.error or (f"its license {named} is not in the catalog" if named
                                else "no license id or text found for it")
            yield rules.finding("LICENSE-LINEAGE-UNRESOLVED", scanner=NAME, location=f"lineage: {anc.repo_id}",
                                evidence=f"{anc.repo_id} ({anc.relation or 'ancestor'}): {why}")
    if not model.signals:
        looks_like_model = card or any(f.format in _WEIGHT_FORMATS for f in ctx.files)
        yield rules.finding("LICENSE-MISSING", scanner=NAME, severity=None if looks_like_model else Severity.LOW,
                            evidence="no license in the card front matter, no license file, no license in "
                                     "file metadata" + ("" if looks_like_model else
                                                        " (no weights or model card either)"))
    elif model.license is not None:
        sources = sorted({s.where for s in model.signals if s.entry is model.license})
        yield rules.finding("LICENSE-IDENTIFIED", scanner=NAME, file=_file_of(model, model.license.id),
                            evidence=f"{model.license.name} ({model.license.id}, confidence "
                                     f"{model.confidence:.2f}) from {', '.join(sources)}")

    obligations = _obligations(model, lineage)
    yield from _obligation_findings(ctx, obligations)
    ctx.facts.publish(LicenseFacts(_facts(model, lineage, obligations)))


def _resolve_by_similarity(model: ModelLicense, lineage: list[ModelLicense]) -> ModelLicense:
    """An unrecognised text that is (nearly) the same text as a recognised one in this model or its
    lineage, e.g. a fine-tune's renamed copy of its base's agreement, is that agreement."""
    known = [s for m in (model, *lineage) for s in m.signals if s.is_text and s.entry and s.shingles]
    changed = False
    for s in model.signals:
        if s.entry is not None or not s.is_text or not s.shingles or not known:
            continue
        score, ref = max(((licensetext.similarity(s.shingles, k.shingles), k) for k in known),
                         key=lambda pair: pair[0])
        if score >= SIMILAR_TEXT and ref.entry is not None:
            s.entry = ref.entry
            s.confidence = round(0.5 + 0.45 * score, 2)
            s.evidence = (f"same text as {ref.where} (word 5-gram similarity {score:.2f})",)
            s.terms = licensetext.terms_for(Match(ref.entry, s.confidence, s.evidence), s.stated, s.where)
            changed = True
    if not changed:
        return model
    return _summarise(ModelLicense(repo_id=model.repo_id), model.signals)


def _file_of(model: ModelLicense, license_key: str) -> str:
    for s in model.signals:
        if (s.entry and s.entry.id == license_key or f"unknown:{s.where}" == license_key) \
                and s.kind in ("file", "notice", "use_policy"):
            return s.where
    return ""


def _conflicts(model: ModelLicense) -> Iterator[Finding]:
    declared = [s for s in model.signals if s.entry and s.kind.startswith("card-")]
    shipped = [s for s in model.signals if s.entry and s.kind == "file" and _speaks_for_model(s)]
    metadata = [s for s in model.signals if s.entry and s.kind == "metadata"]
    declared_is_shipped = any(_compatible(o.entry, d.entry) for o in shipped for d in declared)
    pairs: list[tuple[Signal, Signal]] = []
    for s in shipped:
        if not declared or any(_compatible(s.entry, d.entry) for d in declared):
            continue
        if declared_is_shipped and not _more_restrictive(s, declared):
            continue      # the declared license is shipped too; this one is a code or extra license
        pairs += [(d, s) for d in declared]
    for s in metadata:
        references = declared or shipped
        if references and not any(_compatible(s.entry, r.entry) for r in references):
            pairs += [(r, s) for r in references]
    reported: set[frozenset[str]] = set()
    for d, s in pairs:
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
    resolved_any = any(s.entry for s in model.signals if s.kind not in ("notice", "use_policy"))
    named = [o for o in model.signals if o.kind in ("card-license_name", "card-license_link")]
    for s in model.signals:
        if s.entry is not None or s.kind in ("notice", "use_policy"):
            continue
        file = s.where.split(":")[0]
        if s.is_text:
            stated = ", ".join(_TERM_LABELS.get(k, k) for k in s.terms) or "no recognisable terms"
            yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file,
                                evidence=f"text not recognised (starts: {s.value[:100]!r}); "
                                         f"terms read from the text: {stated}")
        elif licensetext.fold_id(s.value) == "other":
            if not resolved_any and not named:
                yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file, evidence=(
                    f"{s.where} says 'other' and no license name, link or recognised license text says which"))
        elif s.kind == "card-license" or not resolved_any:
            # an explicit unknown id is reported even next to known ones; a loose name or link only
            # when nothing else identifies the license
            yield rules.finding("LICENSE-UNKNOWN", scanner=NAME, file=file,
                                evidence=f"{s.where} = {s.value[:120]!r} is not in the license catalog")


def _obligations(model: ModelLicense, lineage: list[ModelLicense]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in [model, *lineage]:
        origin = THIS_MODEL if m is model else m.repo_id
        for key, (name, terms) in m.licenses.items():
            for term, details in terms.items():
                if term == "commercial" and details.get("allowed") is not False:
                    continue    # "commercial use allowed" is not an obligation
                out.append({"term": term, "summary": details.get("summary", ""), "source": details.get("source", ""),
                            "from": origin, "license_id": "" if key.startswith("unknown:") else key,
                            "license": name, "details": {k: v for k, v in details.items()
                                                         if k not in ("summary", "source", "clause")},
                            "file": _file_of(m, key) if m is model else ""})
    return out


def _obligation_findings(ctx: ScanContext, obligations: list[dict[str, Any]]) -> Iterator[Finding]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for ob in obligations:
        rule = _rule_for(ob)
        if rule:
            detail = ob["details"].get("jurisdiction", "") if ob["term"] == "governing_law" else ""
            grouped.setdefault((rule, ob["license"], detail), []).append(ob)
    venues = {(ob["license"], ob["from"]): ob for ob in obligations if ob["term"] == "venue"}
    for (rule, license_name, _), obs in grouped.items():
        first = obs[0]
        origins = list(dict.fromkeys(ob["from"] for ob in obs))
        inherited = [o for o in origins if o != THIS_MODEL]
        where = "from " + ", ".join(origins)
        evidence = f"{license_name}: {first['summary']} ({where}; source: {first['source'][:160]})"
        severity: Severity | None = None
        if rule == "LICENSE-TERRITORY-EXCLUSION":
            severity, note = _territory_severity(ctx, first["details"])
            evidence += note
        elif rule == "LICENSE-GOVERNING-LAW":
            code = first["details"].get("jurisdiction", "")
            if code:
                evidence += f"; jurisdiction: {licensetext.catalog().place_name(code)} ({code})"
            venue = venues.get((license_name, first["from"]))
            if venue:
                evidence += f"; venue: {venue['summary']}"
            severity, note = _law_severity(ctx, first["details"].get("jurisdiction", ""),
                                           venue["details"].get("jurisdiction", "") if venue else "")
            evidence += note
        own_file = next((ob["file"] for ob in obs if ob["from"] == THIS_MODEL and ob["file"]), "")
        yield rules.finding(rule, scanner=NAME, severity=severity, file=own_file,
                            location="lineage: " + ", ".join(inherited) if inherited else "", evidence=evidence)


def _rule_for(ob: dict[str, Any]) -> str:
    term, details = ob["term"], ob["details"]
    if term == "commercial":
        return "LICENSE-NON-COMMERCIAL" if details.get("allowed") is False else ""
    if term == "output_training":
        return "LICENSE-OUTPUT-TRAINING-BAN" if details.get("rule") in ("banned", "compete-ban") else ""
    return _TERM_RULES.get(term, "")


def _territory_severity(ctx: ScanContext, details: dict[str, Any]) -> tuple[Severity, str]:
    cat = licensetext.catalog()
    regions = [str(r) for r in details.get("regions", ())]
    multimodal_only = details.get("scope") == "multimodal"
    user_region = ctx.regions.user_region
    if not user_region:
        return Severity.MEDIUM, f"; excluded: {', '.join(regions)}; no user_region in the policy"
    hit = [r for r in regions if cat.contains(r, user_region) or cat.contains(user_region, r)]
    if not hit:
        return Severity.LOW, f"; excluded: {', '.join(regions)}; user_region {user_region} is not excluded"
    if multimodal_only:
        return Severity.MEDIUM, f"; user_region {user_region} is excluded for multimodal models"
    return Severity.HIGH, f"; user_region {user_region} is excluded ({', '.join(hit)})"


def _law_severity(ctx: ScanContext, law: str, venue: str) -> tuple[Severity, str]:
    allowed_codes = list(ctx.regions.allowed_jurisdictions)
    if not allowed_codes:
        return Severity.INFO, ""
    cat = licensetext.catalog()
    outside = [j or "unplaced" for j in dict.fromkeys((law, venue)) if (j or law == "")
               and not any(cat.contains(a, j) for a in allowed_codes if j)]
    if outside:
        return Severity.MEDIUM, f"; outside allowed_jurisdictions {allowed_codes}: {', '.join(outside)}"
    return Severity.INFO, f"; within allowed_jurisdictions {allowed_codes}"


# ---------------------------------------------------------------------------------------- facts

def _facts(model: ModelLicense, lineage: list[ModelLicense], obligations: list[dict[str, Any]]) -> dict[str, Any]:
    cat = licensetext.catalog()
    lic = model.license
    merged = _merged_obligations(obligations)
    summary = [f"{_TERM_LABELS.get(ob['term'], ob['term'])}: {ob['summary']} [{ob['license']}; {ob['from']}]"
               for ob in merged]
    return {
        "model": {"id": lic.id if lic else "", "name": lic.name if lic else "",
                  "spdx": (lic.spdx or "") if lic else "", "confidence": model.confidence,
                  "url": next((s.value for s in model.signals if s.kind == "card-license_link"
                               and s.value.startswith(("https://", "http://"))), ""),
                  "sources": [s.to_dict() for s in model.signals]},
        "obligations": merged,
        "governing_law": _along_lineage(model, lineage, "governing_law", lambda t: _place(cat, t)),
        "venue": _along_lineage(model, lineage, "venue", lambda t: str(t.get("summary", ""))),
        "lineage": [{"repo_id": m.repo_id, "relation": m.relation, "depth": m.depth,
                     "license_id": m.license.id if m.license else "",
                     "name": m.license.name if m.license else "not resolved",
                     "confidence": m.confidence, "error": m.error} for m in lineage],
        "summary": summary,
    }


def _merged_obligations(obligations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (term, license, summary) with every model it comes from, the weightiest first
    (so a short report that shows the first lines shows the non-commercial root's terms)."""
    catalog = rules.catalog()
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    weight: dict[tuple[str, str, str], int] = {}
    for ob in obligations:
        key = (ob["term"], ob["license"], ob["summary"])
        if key not in merged:
            merged[key] = {k: v for k, v in ob.items() if k != "details"} | {"origins": []}
            rule = _rule_for(ob)
            weight[key] = -int(catalog[rule].severity) if rule else 1
        entry = merged[key]
        if ob["from"] not in entry["origins"]:
            entry["origins"].append(ob["from"])
        entry["file"] = entry["file"] or ob["file"]
    out = [merged[key] for key in sorted(merged, key=lambda k: weight[k])]
    for ob in out:
        ob["from"] = ", ".join(ob["origins"])
    return out


def _along_lineage(model: ModelLicense, lineage: list[ModelLicense], term: str,
                   show: Callable[[dict[str, Any]], str]) -> str:
    """The model's own value of a term; when its license states none, the ancestors' (a derivative is
    bound by them), each marked with the model it comes from."""
    own = model.licenses.get(model.license.id, ("", {}))[1] if model.license else {}
    if own.get(term):
        return show(own[term])
    found: dict[str, list[str]] = {}
    for m in [model, *lineage]:
        for _key, (_name, terms) in m.licenses.items():
            if terms.get(term) and show(terms[term]):
                found.setdefault(show(terms[term]), []).append(THIS_MODEL if m is model else m.repo_id)
    return "; ".join(f"{value} (via {', '.join(dict.fromkeys(origins))})" for value, origins in found.items())


def _place(cat: licensetext.Catalog, term: dict[str, Any]) -> str:
    if not term:
        return ""
    code = term.get("jurisdiction", "")
    return f"{cat.place_name(code)} ({code})" if code else term.get("summary", "")


def _unwrap(value: str) -> str:
    """`other (deepseek)`, as the provenance facts spell a card's license_name, is `deepseek`."""
    inner = value.strip()
    if inner.lower().startswith("other (") and inner.endswith(")"):
        return inner[7:-1]
    return inner


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
