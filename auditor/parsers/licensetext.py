"""Recognise model licenses from card ids, links and license texts; read the facts a text states.

Pure functions over the catalog in rules/licenses.yaml. Texts are never compared with stored
copies: an entry is recognised by its agreement title near the start of the text plus short
distinctive facts (licensor names, venue, thresholds) chosen for the catalog, so other versions
and copies of the same agreement are recognised too. The facts that change between versions
(thresholds, law, venue, territory) are read from the text itself by the `extract` patterns.
Two texts can also be compared by their word 5-grams (`shingles`, `similarity`), derived at run time
from the texts being audited, e.g. a fine-tune's renamed copy of its base model's agreement.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from auditor import rules

HEAD_CHARS = 600            # the opening of a normalised text where an agreement title counts as a title
MAX_TEXT_CHARS = 1_000_000  # identification and extraction read at most this much text (licenses: < 100 KB)
MAX_ID_CHARS = 200          # a card id longer than this is treated as text, not an id
SHINGLE_WORDS = 5           # word n-grams compared between two texts
MAX_SHINGLED_WORDS = 50_000 # words of a text that take part in a comparison

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "＂": '"'})
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_ID_FOLD = re.compile(r"[^a-z0-9]+")
_NUM = r"(?<![0-9])([0-9]{1,3}(?: [0-9]{3})+|[0-9]+)"
_SCALE = r"(million|billion|m\b|b\b)?"
_SCALES = {"million": 1_000_000, "m": 1_000_000, "billion": 1_000_000_000, "b": 1_000_000_000}


def normalize(text: str) -> str:
    """Lower case, compatibility forms folded, every run of punctuation/space to one space."""
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).translate(_QUOTES).lower()
    return _NON_WORD.sub(" ", text).strip()


def fold_id(value: str) -> str:
    """How card ids are compared: `Tongyi-Qianwen`, `tongyi_qianwen` and `tongyi qianwen` are one id."""
    return _ID_FOLD.sub("-", unicodedata.normalize("NFKC", value).lower()).strip("-")


class Phrase:
    """A whole-word phrase over normalised text. The literal comes first in the regex so `re` can use
    its fast literal search (a leading look-behind disables it); the left boundary is checked by hand."""

    def __init__(self, pattern: str, raw: bool = False) -> None:
        self.raw = raw
        self.pattern = pattern
        self._re = re.compile(("(?<![0-9a-z])(?:" + pattern + ")" if raw else re.escape(pattern)) + r"(?![0-9a-z])")

    def search(self, text: str) -> re.Match[str] | None:
        for m in self._re.finditer(text):
            start = m.start()
            if self.raw or start == 0 or not ("0" <= text[start - 1] <= "9" or "a" <= text[start - 1] <= "z"):
                return m
        return None


def _phrase(phrase: str) -> Phrase:
    """A catalog phrase as a whole-word matcher; `re:` starts a raw regex over normalised text."""
    if phrase.startswith("re:"):
        return Phrase(phrase[3:], raw=True)
    return Phrase(normalize(phrase))


@dataclass(frozen=True)
class Matcher:
    """One way to recognise an entry's text (an entry may have several: full text, short notice)."""
    titles: tuple[Phrase, ...] = ()
    all: tuple[Phrase, ...] = ()
    any: tuple[Phrase, ...] = ()
    none: tuple[Phrase, ...] = ()
    priority: int = 10
    head_only: bool = False        # the title counts only in the opening of the text

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Matcher:
        return cls(titles=tuple(_phrase(p) for p in spec.get("titles", ())),
                   all=tuple(_phrase(p) for p in spec.get("all", ())),
                   any=tuple(_phrase(p) for p in spec.get("any", ())),
                   none=tuple(_phrase(p) for p in spec.get("none", ())),
                   priority=int(spec.get("priority", 10)), head_only=bool(spec.get("head_only")))


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    family: str
    version: str
    spdx: str | None
    licensor: str
    kind: str
    hf_ids: tuple[str, ...]
    links: tuple[str, ...]
    terms: dict[str, dict[str, Any]]
    orgs: tuple[str, ...] = ()
    matchers: tuple[Matcher, ...] = ()
    priority: int = 10

    @property
    def permissive(self) -> bool:
        return self.kind == "permissive"

    @property
    def restrictiveness(self) -> int:
        """A rough order for choosing the binding license among conflicting signals."""
        score = sum(1 for key in self.terms if key not in ("commercial", "attribution", "redistribution"))
        if self.terms.get("commercial", {}).get("allowed") is False:
            score += 10
        return score + (0 if self.permissive else 1)


@dataclass(frozen=True)
class Match:
    entry: Entry
    confidence: float
    evidence: tuple[str, ...]           # the catalog phrases found


@dataclass
class Catalog:
    entries: dict[str, Entry]
    aliases: dict[str, str]             # folded id -> entry id
    extract: dict[str, list[re.Pattern[str]]]
    anchors: dict[str, tuple[str, ...]]
    places: list[tuple[Phrase, str]]
    region_words: list[tuple[Phrase, str]]
    regions: dict[str, set[str]]
    jurisdiction_names: dict[str, str]
    license_files: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)

    def by_id(self, value: str) -> Entry | None:
        """The entry a card `license` / `license_name` value names, after alias folding."""
        if not value or len(value) > MAX_ID_CHARS:
            return None
        key = self.aliases.get(fold_id(value))
        return self.entries[key] if key else None

    def exact_for_org(self, entry: Entry, repo_id: str) -> Entry:
        """The exact variant a family fallback means in this publisher's repo (itself otherwise)."""
        org = repo_id.split("/", 1)[0].lower() if "/" in repo_id else ""
        if entry.priority >= 10 or not org:
            return entry
        return next((e for e in self.entries.values() if org in e.orgs and e.family == entry.family), entry)

    def by_link(self, link: str) -> Entry | None:
        """The entry a card `license_link` URL names (None for a relative path or an unknown URL)."""
        if "://" not in link:
            return None
        low = link.lower()
        best: tuple[int, Entry] | None = None
        for entry in self.entries.values():
            for fragment in entry.links:
                if fragment.lower() in low and (best is None or len(fragment) > best[0]):
                    best = (len(fragment), entry)
        return best[1] if best else None

    def file_role(self, name: str) -> str:
        """'license', 'notice', 'use_policy' or '' for a file name."""
        low = name.rsplit("/", 1)[-1].lower()
        for role, patterns in self.license_files.items():
            if any(p.match(low) for p in patterns):
                return role
        return ""

    def contains(self, outer: str, inner: str) -> bool:
        """Whether region/jurisdiction `inner` lies within `outer` (EU contains DE; US contains US-CA)."""
        outer, inner = outer.upper(), inner.upper()
        if inner == outer or inner.split("-")[0] == outer:
            return True
        return inner.split("-")[0] in self.regions.get(outer, set())

    def place_name(self, code: str) -> str:
        return self.jurisdiction_names.get(code, code)


@functools.cache
def catalog() -> Catalog:
    data = rules.load("licenses.yaml")
    entries: dict[str, Entry] = {}
    aliases: dict[str, str] = {}
    for raw in data["licenses"]:
        specs = raw.get("match") or []
        specs = specs if isinstance(specs, list) else [specs]
        entry = Entry(
            id=raw["id"], name=raw["name"], family=raw.get("family", ""), version=str(raw.get("version") or ""),
            spdx=raw.get("spdx"), licensor=raw.get("licensor") or "", kind=raw.get("kind", "custom"),
            hf_ids=tuple(raw.get("hf_ids") or ()), links=tuple(raw.get("links") or ()),
            orgs=tuple(str(o).lower() for o in raw.get("orgs") or ()),
            terms={k: dict(v) for k, v in (raw.get("terms") or {}).items()},
            matchers=tuple(Matcher.parse(spec) for spec in specs),
            priority=min((int(spec.get("priority", 10)) for spec in specs), default=10))
        entries[entry.id] = entry
        for alias in (entry.id, *entry.hf_ids, *((entry.spdx,) if entry.spdx else ())):
            aliases.setdefault(fold_id(alias), entry.id)
    extract = {key: [re.compile(p.replace("{num}", _NUM).replace("{scale}", _SCALE)) for p in patterns]
               for key, patterns in data["extract"].items()}
    return Catalog(
        entries=entries, aliases=aliases, extract=extract,
        anchors={k: tuple(v) for k, v in (data.get("extract_anchors") or {}).items()},
        places=[(_phrase(word), code) for word, code in data["places"]],
        region_words=[(_phrase(word), code) for word, code in data["region_words"]],
        regions={k: set(v) for k, v in data["regions"].items()},
        jurisdiction_names=dict(data["jurisdiction_names"]),
        license_files={role: [re.compile(p) for p in pats] for role, pats in data["license_files"].items()})


def identify(text: str, *, normalized: str | None = None) -> Match | None:
    """The catalog entry a license text is, with a confidence in [0, 1]; None when nothing fits."""
    norm = normalized if normalized is not None else normalize(text)
    if not norm:
        return None
    head = norm[:HEAD_CHARS]
    ranked: list[tuple[float, int, int, Match]] = []
    for entry in catalog().entries.values():
        for matcher in entry.matchers:
            scored = _score(matcher, norm, head)
            if scored is not None:
                score, title_len, found = scored
                ranked.append((score, matcher.priority, title_len, Match(entry, score, found)))
    if not ranked:
        return None
    ranked.sort(key=lambda r: (r[0], r[1], r[2]), reverse=True)
    return ranked[0][3]


def _score(m: Matcher, norm: str, head: str) -> tuple[float, int, tuple[str, ...]] | None:
    if not (m.titles or m.all):
        return None
    if any(p.search(norm) for p in m.none) or not all(p.search(norm) for p in m.all):
        return None
    title_in_head = [p for p in m.titles if p.search(head)]
    title_anywhere = title_in_head or ([] if m.head_only else [p for p in m.titles if p.search(norm)])
    if title_in_head:
        score = 0.85
    elif title_anywhere:
        score = 0.6
    elif m.titles:
        score = 0.5 if m.all and not m.head_only else 0.0
    else:
        score = 0.7
    if not score:
        return None
    supporting = [p for p in m.any if p.search(norm)]
    score = min(0.99, score + 0.04 * len(supporting) + (0.04 if m.all else 0.0))
    found = tuple(_plain(p) for p in (*title_anywhere, *m.all, *supporting))
    title_len = max((len(_plain(p)) for p in title_anywhere), default=0)
    return round(score, 2), title_len, found


def _plain(phrase: Phrase) -> str:
    return phrase.pattern


def _number(digits: str, scale: str | None) -> int:
    value = int(digits.replace(" ", ""))
    return value * _SCALES.get((scale or "").strip(), 1)


def _patterns(key: str, norm: str) -> list[re.Pattern[str]]:
    cat = catalog()
    anchors = cat.anchors.get(key)
    if anchors and not any(a in norm for a in anchors):
        return []
    return cat.extract[key]


def _first_number(key: str, norm: str) -> tuple[int, str] | None:
    for pattern in _patterns(key, norm):
        m = pattern.search(norm)
        if m:
            return _number(m.group(1), m.group(2) if m.lastindex and m.lastindex >= 2 else None), m.group(0)
    return None


def _first(key: str, norm: str) -> re.Match[str] | None:
    for pattern in _patterns(key, norm):
        m = pattern.search(norm)
        if m:
            return m
    return None


def place(phrase: str) -> str:
    """Jurisdiction code for a clause's place words ('' when none is known)."""
    for pattern, code in catalog().places:
        if pattern.search(phrase):
            return code
    return ""


def extract_facts(text: str, *, normalized: str | None = None) -> dict[str, dict[str, Any]]:
    """Terms a text states by itself, keyed like catalog terms; each with the `clause` it came from."""
    norm = normalized if normalized is not None else normalize(text)
    cat = catalog()
    facts: dict[str, dict[str, Any]] = {}

    threshold: dict[str, Any] = {}
    clauses = []
    for key in ("mau", "dau", "monthly_revenue_usd", "annual_revenue_usd"):
        found = _first_number(key, norm)
        if found:
            threshold[key], clause = found
            clauses.append(clause)
    if threshold:
        facts["user_threshold"] = {**threshold, "summary": threshold_summary(threshold), "clause": " / ".join(clauses)}

    law = _first("governing_law", norm)
    if law:
        words = law.group(1).strip()
        code = place(words) or place(law.group(0))
        facts["governing_law"] = {"jurisdiction": code, "summary": f"Laws of {cat.place_name(code) if code else words.title()}",
                                  "clause": law.group(0)}
    venue = _first("venue", norm)
    if venue:
        words = venue.group(1).strip()
        code = place(words) or (facts.get("governing_law", {}).get("jurisdiction", "") if "arbitration" not in words else "")
        facts["venue"] = {"jurisdiction": code, "summary": words, "clause": venue.group(0)}

    regions: list[str] = []
    clause = ""
    for pattern in _patterns("territory", norm):
        for hit in pattern.finditer(norm):
            for word, code in cat.region_words:
                if word.search(hit.group(1)) and code not in regions:
                    regions.append(code)
            clause = clause or hit.group(0)
    if regions:
        facts["territory_exclusion"] = {"regions": regions, "summary": "Not licensed in " + ", ".join(
            cat.place_name(r) for r in regions), "clause": clause}

    simple = {"remote_restriction": "The licensor reserves a right to restrict use remotely",
              "registration": "Registration or an application is required before (commercial) use",
              "reporting": "The licensee must report to the licensor",
              "naming_duty": "A name or label must be displayed or used in derived models"}
    for key, summary in simple.items():
        m = _first("naming" if key == "naming_duty" else key, norm)
        if m:
            facts[key] = {"summary": summary, "clause": m.group(0)}
    m = _first("output_training", norm)
    if m:
        facts["output_training"] = {"rule": "banned", "summary": "The model or its outputs may not be used to "
                                    "improve other models", "clause": m.group(0)}
    m = _first("non_commercial", norm)
    if m:
        facts["commercial"] = {"allowed": False, "summary": "Non-commercial or research use only", "clause": m.group(0)}
    return facts


def threshold_summary(t: dict[str, Any]) -> str:
    parts = []
    if t.get("mau"):
        parts.append(f"{_human(t['mau'])} monthly active users")
    if t.get("dau"):
        parts.append(f"{_human(t['dau'])} daily active users")
    if t.get("monthly_revenue_usd"):
        parts.append(f"US${_human(t['monthly_revenue_usd'])} monthly revenue")
    if t.get("annual_revenue_usd"):
        parts.append(f"US${_human(t['annual_revenue_usd'])} annual revenue")
    return "Above " + " or ".join(parts)


def _human(n: int) -> str:
    if n >= 1_000_000_000 and n % 1_000_000_000 == 0:
        return f"{n // 1_000_000_000}B"
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n:,}"


def shingles(normalized: str) -> frozenset[int]:
    """The text's word 5-grams (hashed): what two copies of one agreement share, whatever the layout."""
    words = normalized.split()[:MAX_SHINGLED_WORDS]
    return frozenset(hash(" ".join(words[i:i + SHINGLE_WORDS])) for i in range(len(words) - SHINGLE_WORDS + 1))


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """Jaccard similarity of two shingle sets (0 when either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# Which text-derived facts may refine an identified catalog entry: the quantities and places that
# change between versions, and the licensor-facing duties a new version may add (its text is the
# truth at that revision). Other duties the catalog does not list are only taken from unknown texts.
REFINABLE = ("user_threshold", "governing_law", "venue", "territory_exclusion", "remote_restriction",
             "registration", "reporting")


def terms_for(match: Match | None, facts: dict[str, dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    """The terms of one license text: the catalog's, refined by what the text itself says."""
    if match is None:
        return {k: {**v, "source": f"{source} (read from the text)"} for k, v in facts.items()}
    terms = {k: dict(v) for k, v in match.entry.terms.items()}
    for key in REFINABLE:
        if key not in facts:
            continue
        stated = facts[key]
        if key in ("governing_law", "venue") and not stated.get("jurisdiction") and key in terms:
            continue    # the text names a place we do not know; keep the catalog's
        merged = {**terms.get(key, {}), **{k: v for k, v in stated.items() if k != "clause"}}
        if key == "user_threshold" and key in terms:
            merged = {k: v for k, v in merged.items() if k in stated or k in ("summary", "source")}
            merged["summary"] = terms[key].get("summary", "") if _same_threshold(terms[key], stated) \
                else stated["summary"]
        elif key in terms:
            merged["summary"] = terms[key].get("summary", stated["summary"]) if _same_place(terms[key], stated) \
                else stated["summary"]
        merged["source"] = f"{source}: \"{stated['clause'][:120]}\""
        terms[key] = merged
    return terms


def _same_threshold(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("mau", "dau", "monthly_revenue_usd", "annual_revenue_usd")
    return all(a.get(k) == b.get(k) for k in keys if b.get(k))


def _same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if "regions" in b:
        return set(a.get("regions", ())) == set(b.get("regions", ()))
    return a.get("jurisdiction") == b.get("jurisdiction") or not b.get("jurisdiction")
