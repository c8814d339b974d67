"""The terms of a license as one model carries them: catalog facts refined by the shipped texts, merged
across the signals that name the same license (one obligation per term per license, every source kept),
turned into findings and into the `license` facts record.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from auditor import rules
from auditor.model import Finding, Severity
from auditor.parsers import licensetext
from auditor.parsers.licensetext import Entry
from auditor.record import field, record
from auditor.scanners import ScanContext

NAME = "license"
THIS_MODEL = "this model"
FULL_TEXT_CHARS = 2000     # a shipped text this long is the agreement itself, not a notice or a summary
MAX_SOURCES = 6            # sources quoted in one finding's evidence
# Terms a shipped text of a known agreement may add to the catalog's (a new version adds them; the text is
# the truth at that revision). Commercial, naming and output-training rules are only taken from the text of
# an unknown agreement: the catalog knows how the known ones qualify them.
ADDABLE = ("user_threshold", "governing_law", "venue", "territory_exclusion", "remote_restriction", "registration",
           "reporting", "revocable", "acceptable_use", "security_use")
_PLACE_TERMS = ("governing_law", "venue", "territory_exclusion")
_THRESHOLD_KEYS = ("mau", "dau", "monthly_revenue_usd", "annual_revenue_usd")
_TEXT_KEYS = ("clause", "sentence", "line", "page")


@record
class Term:
    key: str
    details: dict[str, Any]               # summary plus the term's facts (jurisdiction, mau, rule, scope ...)
    sources: list[str] = field(default_factory=list)
    stated: bool = False                  # read from a shipped text (not only the catalog)
    secondary: bool = False               # only a secondary source says so

    @property
    def summary(self) -> str:
        return str(self.details.get("summary", ""))


@record
class LicenseTerms:
    """One license one model carries, with its merged terms."""
    key: str                              # entry id, or "unknown:<where>" / "card"
    license_id: str
    name: str
    terms: dict[str, Term] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def cite(where: str, fact: dict[str, Any]) -> str:
    """`FILE line N: "sentence"` (page N for a PDF), or the clause when the sentence was not found."""
    if fact.get("sentence"):
        return licensetext.Quote(str(fact["sentence"]), int(fact.get("line") or 0), int(fact.get("page") or 0)).cite(where)
    return f'{where}: "{str(fact.get("clause", ""))[:160]}"'


def terms_for(entry: Entry | None, facts: dict[str, dict[str, Any]], where: str, *, full_text: bool = False,
              via: str = "") -> dict[str, Term]:
    """The terms of one signal: the catalog's for its entry, refined by what its text states."""
    if entry is None:
        return {k: Term(k, _plain(v), [cite(where, v)], stated=True) for k, v in facts.items()}
    terms = {k: Term(k, _plain(v), [f"catalog {v.get('source', '')}" + (f" (via {via})" if via else "")],
                     secondary=v.get("evidence") == "secondary") for k, v in entry.terms.items()}
    for key, stated in facts.items():
        if key in terms:
            _refine(terms[key], stated, where)
        elif key in ADDABLE:
            terms[key] = Term(key, _plain(stated), [cite(where, stated)], stated=True)
    if full_text:
        terms = {k: t for k, t in terms.items() if t.stated or not t.secondary}
    return terms


def _refine(term: Term, stated: dict[str, Any], where: str) -> None:
    """A catalog term the text also states: the text's numbers and places win, the quote comes first."""
    key = term.key
    if key in ("governing_law", "venue") and not stated.get("jurisdiction"):
        term.sources.insert(0, cite(where, stated))   # a place we cannot code: keep the catalog's
        term.stated = True
        return
    if key == "user_threshold":
        same = all(term.details.get(k) == stated.get(k) for k in _THRESHOLD_KEYS if stated.get(k))
        numbers = {k: stated[k] for k in _THRESHOLD_KEYS if stated.get(k)}
        summary = term.summary if same else stated["summary"]
        term.details = {**{k: v for k, v in term.details.items() if k not in _THRESHOLD_KEYS}, **numbers,
                        "summary": summary}
    elif key in _PLACE_TERMS:
        same = (set(term.details.get("regions", ())) == set(stated.get("regions", ())) if "regions" in stated
                else term.details.get("jurisdiction") == stated.get("jurisdiction"))
        summary = term.summary if same else stated["summary"]
        term.details = {**term.details, **_plain(stated), "summary": summary}
    term.sources.insert(0, cite(where, stated))
    term.stated = True
    term.secondary = False


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k not in ("source", "evidence", *_TEXT_KEYS)}


def merge(into: LicenseTerms, terms: dict[str, Term]) -> None:
    """Another signal naming the same license: one term each, the sources of both."""
    for key, new in terms.items():
        old = into.terms.get(key)
        if old is None:
            into.terms[key] = Term(key, dict(new.details), list(new.sources), new.stated, new.secondary)
            continue
        if new.stated and not old.stated:
            old.details, old.stated = dict(new.details), True
            old.sources[:0] = [s for s in new.sources if s not in old.sources]
        else:
            old.sources += [s for s in new.sources if s not in old.sources]
        old.secondary = old.secondary and new.secondary


# ---------------------------------------------------------------------------------------- obligations

@record
class Obligation:
    term: Term
    license: LicenseTerms
    origin: str                         # THIS_MODEL or an ancestor's repo id

    @property
    def rule(self) -> str:
        kind = licensetext.catalog().term_kinds.get(self.term.key)
        return kind.rule_for(self.term.details) if kind else ""


def obligations(models: list[tuple[str, dict[str, LicenseTerms]]]) -> list[Obligation]:
    """Every term of every license of the model and its lineage (commercial use allowed is no obligation)."""
    out = []
    for origin, licenses in models:
        for lic in licenses.values():
            for term in lic.terms.values():
                if term.key == "commercial" and term.details.get("allowed") is not False:
                    continue
                out.append(Obligation(term, lic, origin))
    return out


def findings(ctx: ScanContext, obs: list[Obligation], model_kind: str) -> Iterator[Finding]:
    """One finding per rule per license, whatever number of models and sources state it."""
    grouped: dict[tuple[str, str], list[Obligation]] = {}
    for ob in obs:
        if ob.rule:
            grouped.setdefault((ob.rule, ob.license.license_id or ob.license.key), []).append(ob)
    venues = {(ob.license.key, ob.origin): ob for ob in obs if ob.term.key == "venue"}
    for (rule, _), group in grouped.items():
        first = group[0]
        details = first.term.details
        severity: Severity | None = None
        note = ""
        if rule == "LICENSE-TERRITORY-EXCLUSION":
            applies, severity, note = territory(ctx, details, model_kind)
            if not applies:
                continue
        elif rule == "LICENSE-GOVERNING-LAW":
            severity, note = _law(ctx, details, venues.get((first.license.key, first.origin)))
        origins = list(dict.fromkeys(ob.origin for ob in group))
        inherited = [o for o in origins if o != THIS_MODEL]
        evidence = _evidence(group, note, origins)
        own_file = next((f for ob in group if ob.origin == THIS_MODEL for f in ob.license.files), "")
        yield rules.finding(rule, scanner=NAME, severity=severity, file=own_file,
                            location="lineage: " + ", ".join(inherited) if inherited else "", evidence=evidence)


def _evidence(group: list[Obligation], note: str, origins: list[str]) -> str:
    first = group[0]
    sources = list(dict.fromkeys(s for ob in group for s in ob.term.sources))
    secondary = " (secondary source only: not read in a shipped text)" if all(
        ob.term.secondary for ob in group) else ""
    return (f"{first.license.name}: {first.term.summary}{secondary}{note} (from {', '.join(origins)}); "
            f"sources: {'; '.join(sources[:MAX_SOURCES])}")


def territory(ctx: ScanContext, details: dict[str, Any], model_kind: str) -> tuple[bool, Severity, str]:
    """Whether an exclusion applies to this model, its severity and a note. An exclusion scoped to
    multimodal models does not apply to a text-only model; when the kind is unknown it still does."""
    cat = licensetext.catalog()
    regions = [str(r) for r in details.get("regions", ())]
    multimodal_only = details.get("scope") == "multimodal"
    if multimodal_only and model_kind == "text":
        return False, Severity.INFO, "; covers only multimodal models and this model is text-only"
    scope_note = "" if not multimodal_only else (
        "; covers multimodal models (this model is multimodal)" if model_kind == "multimodal"
        else "; covers multimodal models (whether this model is one is unknown: no config.json or card says)")
    user_region = ctx.regions.user_region
    if not user_region:
        return True, Severity.MEDIUM, f"; excluded: {', '.join(regions)}; no user_region in the policy{scope_note}"
    hit = [r for r in regions if cat.contains(r, user_region) or cat.contains(user_region, r)]
    if not hit:
        return True, Severity.LOW, f"; excluded: {', '.join(regions)}; user_region {user_region} is not excluded"
    if multimodal_only and model_kind != "multimodal":
        return True, Severity.MEDIUM, f"; user_region {user_region} is excluded for multimodal models{scope_note}"
    return True, Severity.HIGH, f"; user_region {user_region} is excluded ({', '.join(hit)}){scope_note}"


def _law(ctx: ScanContext, details: dict[str, Any], venue: Obligation | None) -> tuple[Severity, str]:
    cat = licensetext.catalog()
    law = str(details.get("jurisdiction", ""))
    where = str(venue.term.details.get("jurisdiction", "")) if venue else ""
    note = f"; jurisdiction: {cat.place_name(law)} ({law})" if law else ""
    if venue:
        note += f"; venue: {venue.term.summary}"
    allowed = list(ctx.regions.allowed_jurisdictions)
    if not allowed:
        return Severity.INFO, note
    outside = [j or "unplaced" for j in dict.fromkeys((law, where)) if (j or law == "")
               and not any(cat.contains(a, j) for a in allowed if j)]
    if outside:
        return Severity.MEDIUM, note + f"; outside allowed_jurisdictions {allowed}: {', '.join(outside)}"
    return Severity.INFO, note + f"; within allowed_jurisdictions {allowed}"


# ---------------------------------------------------------------------------------------- facts

def obligation_facts(obs: list[Obligation], ctx: ScanContext, model_kind: str) -> list[dict[str, Any]]:
    """One entry per (term, license, summary) with every model it comes from, the weightiest first."""
    catalog = rules.catalog()
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    weight: dict[tuple[str, str, str], int] = {}
    for ob in obs:
        key = (ob.term.key, ob.license.key, ob.term.summary)
        entry = merged.get(key)
        if entry is None:
            applies = True
            if ob.term.key == "territory_exclusion":
                applies = territory(ctx, ob.term.details, model_kind)[0]
            entry = merged[key] = {
                "term": ob.term.key, "rule": ob.rule, "summary": ob.term.summary,
                "licensor_control": _controls(ob.term.key),
                "source": ob.term.sources[0] if ob.term.sources else "", "sources": [],
                "license": ob.license.name, "license_id": ob.license.license_id, "origins": [],
                "file": "", "secondary": ob.term.secondary, "applies": applies,
                "details": {k: v for k, v in ob.term.details.items() if k != "summary"}}
            weight[key] = -int(catalog[ob.rule].severity) if ob.rule else 1
        if ob.origin not in entry["origins"]:
            entry["origins"].append(ob.origin)
        entry["sources"] += [s for s in ob.term.sources if s not in entry["sources"]]
        entry["secondary"] = entry["secondary"] and ob.term.secondary
        if ob.origin == THIS_MODEL and not entry["file"] and ob.license.files:
            entry["file"] = ob.license.files[0]
    out = [merged[key] for key in sorted(merged, key=lambda k: weight[k])]
    for entry in out:
        entry["from"] = ", ".join(entry["origins"])
    return out


def _controls(term: str) -> bool:
    kind = licensetext.catalog().term_kinds.get(term)
    return bool(kind and kind.licensor_control)


def summary_lines(merged: list[dict[str, Any]]) -> list[str]:
    kinds = licensetext.catalog().term_kinds
    return [f"{kinds[ob['term']].label if ob['term'] in kinds else ob['term']}: {ob['summary']} "
            f"[{ob['license']}; {ob['from']}]" for ob in merged]


def along_lineage(own: dict[str, Term], models: list[tuple[str, dict[str, LicenseTerms]]], term: str,
                  show: Callable[[Term], str]) -> str:
    """The model's own value of a term; when its license states none, the ancestors' (a derivative is
    bound by them), each marked with the model it comes from."""
    if own.get(term):
        return show(own[term])
    found: dict[str, list[str]] = {}
    for origin, licenses in models:
        for lic in licenses.values():
            value = lic.terms.get(term)
            if value and show(value):
                found.setdefault(show(value), []).append(origin)
    return "; ".join(f"{value} (via {', '.join(dict.fromkeys(origins))})" for value, origins in found.items())


def place(term: Term) -> str:
    code = term.details.get("jurisdiction", "")
    return f"{licensetext.catalog().place_name(code)} ({code})" if code else term.summary
