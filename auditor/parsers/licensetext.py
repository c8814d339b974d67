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
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.record import field, record

HEAD_CHARS = 600            # the opening of a normalised text where an agreement title counts as a title
MAX_TEXT_CHARS = 1_000_000  # identification and extraction read at most this much text (licenses: < 100 KB)
MAX_ID_CHARS = 200          # a card id longer than this is treated as text, not an id
SHINGLE_WORDS = 5           # word n-grams compared between two texts
MAX_SHINGLED_WORDS = 50_000 # words of a text that take part in a comparison
MAX_QUOTE = 300            # characters of a quoted sentence on each side of the match
MAX_HITS = 64              # matches of one pattern examined (negated ones are skipped)

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "＂": '"'})
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_ID_FOLD = re.compile(r"[^a-z0-9]+")
_NUM = r"(?<![0-9])([0-9]{1,3}(?: [0-9]{3})+|[0-9]+)"
_SCALE = r"(million|billion|m\b|b\b)?"
_CSCALE = r"(万|亿|百万|千万)"
_SCALES = {"million": 1_000_000, "m": 1_000_000, "billion": 1_000_000_000, "b": 1_000_000_000,
           "万": 10_000, "百万": 1_000_000, "千万": 10_000_000, "亿": 100_000_000}


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

    @functools.cached_property
    def _re(self) -> re.Pattern[str]:   # compiled on first use: most of the catalog's phrases never are
        return re.compile(("(?<![0-9a-z])(?:" + self.pattern + ")" if self.raw else re.escape(self.pattern))
                          + r"(?![0-9a-z])")

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


@record(frozen=True)
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


@record(frozen=True)
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


@record(frozen=True)
class Match:
    entry: Entry
    confidence: float
    evidence: tuple[str, ...]           # the catalog phrases found


@record(frozen=True)
class TermKind:
    """What a term key means to the scanner (rules/licenses.yaml `term_keys`)."""
    label: str
    rule: str = ""
    only_when: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    licensor_control: bool = False

    def rule_for(self, details: dict[str, Any]) -> str:
        """The rule a term with these details raises ('' when it raises none)."""
        if any(details.get(key) not in values for key, values in self.only_when.items()):
            return ""
        return self.rule


@record
class Catalog:
    entries: dict[str, Entry]
    aliases: dict[str, str]             # folded id -> entry id
    extract: dict[str, Group]
    simple_terms: dict[str, str]        # extract group -> the term it states (one fact per hit)
    places: list[tuple[Phrase, str]]
    region_words: list[tuple[Phrase, str]]
    regions: dict[str, set[str]]
    jurisdiction_names: dict[str, str]
    term_kinds: dict[str, TermKind] = field(default_factory=dict)
    signal_confidence: dict[str, float] = field(default_factory=dict)

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

    def contains(self, outer: str, inner: str) -> bool:
        """Whether region/jurisdiction `inner` lies within `outer` (EU contains DE; US contains US-CA)."""
        outer, inner = outer.upper(), inner.upper()
        if inner == outer or inner.split("-")[0] == outer:
            return True
        return inner.split("-")[0] in self.regions.get(outer, set())

    def place_name(self, code: str) -> str:
        return self.jurisdiction_names.get(code, code)

    def named_in(self, phrase: str) -> Entry | None:
        """The catalog entry a sentence names by one of its ids or its name ("licensed under Apache-2.0",
        "the Tongyi Qianwen LICENSE AGREEMENT"): the longest name found, None when there is none."""
        folded = "-" + fold_id(phrase) + "-"
        best: tuple[int, Entry] | None = None
        for alias, entry_id in self.aliases.items():
            if len(alias) >= 3 and f"-{alias}-" in folded and (best is None or len(alias) > best[0]):
                best = (len(alias), self.entries[entry_id])
        return best[1] if best else None


def _entry(raw: dict[str, Any]) -> Entry:
    specs = raw.get("match") or []
    specs = specs if isinstance(specs, list) else [specs]
    return Entry(
        id=raw["id"], name=raw["name"], family=raw.get("family", ""), version=str(raw.get("version") or ""),
        spdx=raw.get("spdx"), licensor=raw.get("licensor") or "", kind=raw.get("kind", "custom"),
        hf_ids=tuple(raw.get("hf_ids") or ()), links=tuple(raw.get("links") or ()),
        orgs=tuple(str(o).lower() for o in raw.get("orgs") or ()),
        terms={k: dict(v) for k, v in (raw.get("terms") or {}).items()},
        matchers=tuple(Matcher.parse(spec) for spec in specs),
        priority=min((int(spec.get("priority", 10)) for spec in specs), default=10))


@functools.cache
def catalog() -> Catalog:
    data = rules.load("licenses.yaml")
    entries: dict[str, Entry] = {}
    aliases: dict[str, str] = {}
    for raw in data["licenses"]:
        entry = _entry(raw)
        entries[entry.id] = entry
        for alias in (entry.id, *entry.hf_ids, *((entry.spdx,) if entry.spdx else ())):
            aliases.setdefault(fold_id(alias), entry.id)
    for entry in entries.values():
        aliases.setdefault(fold_id(entry.name), entry.id)
    extract = {key: Group.parse(spec) for key, spec in data["extract"].items()}
    return Catalog(
        entries=entries, aliases=aliases, extract=extract,
        simple_terms={key: str(spec["term"]) for key, spec in data["extract"].items() if spec.get("term")},
        places=[(_phrase(word), code) for word, code in data["places"]],
        region_words=[(_phrase(word), code) for word, code in data["region_words"]],
        regions={k: set(v) for k, v in data["regions"].items()},
        jurisdiction_names=dict(data["jurisdiction_names"]),
        term_kinds={key: TermKind(label=str(spec["label"]), rule=str(spec.get("rule") or ""),
                                  only_when={k: tuple(v) for k, v in (spec.get("only_when") or {}).items()},
                                  licensor_control=bool(spec.get("licensor_control")))
                    for key, spec in data["term_keys"].items()},
        signal_confidence={k: float(v) for k, v in data["signal_confidence"].items()})


def file_role(name: str) -> str:
    """The role of a file by its name (rules/licenses.yaml `license_files`): 'model' (the weights'
    license), 'code', 'license' (which one it binds is decided by the scanner), 'notice',
    'use_policy', or '' for a file that carries no license terms. The first role in the table wins."""
    match = _file_roles().match(name.rsplit("/", 1)[-1].lower())
    if match is None:
        return ""
    return next(role for role, text in match.groupdict().items() if text is not None)


@functools.cache
def _file_roles() -> re.Pattern[str]:
    """Every role's patterns in one alternation, a named group per role in the table's order: one match
    per file name (a repo's every name is asked), and no need for the whole catalog to ask it."""
    table = rules.load("licenses.yaml")["license_files"]
    return re.compile("|".join(f"(?P<{role}>" + "|".join(f"(?:{p})" for p in patterns) + ")"
                               for role, patterns in table.items()))


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
    score = _title_score(m, bool(title_in_head), bool(title_anywhere))
    if not score:
        return None
    supporting = [p for p in m.any if p.search(norm)]
    score = min(0.99, score + 0.04 * len(supporting) + (0.04 if m.all else 0.0))
    found = tuple(_plain(p) for p in (*title_anywhere, *m.all, *supporting))
    title_len = max((len(_plain(p)) for p in title_anywhere), default=0)
    return round(score, 2), title_len, found


def _title_score(m: Matcher, in_head: bool, anywhere: bool) -> float:
    """How much the title alone says: in the first lines, anywhere, or no title but the required facts."""
    if in_head:
        return 0.85
    if anywhere:
        return 0.6
    if m.titles:
        return 0.5 if m.all and not m.head_only else 0.0
    return 0.7


def _plain(phrase: Phrase) -> str:
    return phrase.pattern


def _number(digits: str, scale: str | None) -> int:
    value = int(digits.replace(" ", ""))
    return value * _SCALES.get((scale or "").strip(), 1)


@record(frozen=True)
class Quote:
    """The sentence of the original text a fact was read from, with its line (and page for a PDF)."""
    sentence: str
    line: int
    page: int = 0

    def cite(self, file: str) -> str:
        where = f"page {self.page}" if self.page else f"line {self.line}"
        return f'{file} {where}: "{self.sentence}"'


_SENTENCE_END = re.compile(r"(?:[.;!?](?=\s)|[。；！？]|\n\s*\n|\f)")


class Located:
    """A text kept in its original form (compatibility-folded) so that a match found in the
    normalised text can be quoted back as the sentence it sits in."""

    def __init__(self, text: str) -> None:
        self.original = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).translate(_QUOTES)

    def quote(self, clause: str) -> Quote | None:
        words = clause.split()[:12]
        if not words:
            return None
        pattern = re.compile(r"[\W_]+".join(re.escape(w) for w in words), re.IGNORECASE)
        m = pattern.search(self.original)
        if m is None:
            return None
        start = m.start()
        back = self.original[max(0, start - MAX_QUOTE):start]
        ends = list(_SENTENCE_END.finditer(back))
        begin = start - len(back) + (ends[-1].end() if ends else 0)
        after = _SENTENCE_END.search(self.original, m.end(), m.end() + MAX_QUOTE)
        stop = after.end() if after else min(len(self.original), m.end() + MAX_QUOTE)
        sentence = " ".join(self.original[begin:stop].split())
        page = self.original.count("\f", 0, start) + 1 if "\f" in self.original else 0
        line = self.original.count("\n", self.original.rfind("\f", 0, start) + 1 if page else 0, start) + 1
        return Quote(sentence[:2 * MAX_QUOTE], line, page)


@record(frozen=True)
class Group:
    """One `extract` group of rules/licenses.yaml: patterns for one fact, with its cheap anchors
    (plain substrings, one must occur) and negations (a hit whose sentence matches one is skipped).
    The patterns are compiled on first use: most audits pass the anchors of few groups, and compiling
    all ~100 took longer than the rest of a small repo's license scan."""
    pattern_texts: tuple[str, ...]
    anchors: tuple[str, ...] = ()
    negation_texts: tuple[str, ...] = ()
    summary: str = ""

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Group:
        def expanded(items: list[str]) -> tuple[str, ...]:
            return tuple(p.replace("{num}", _NUM).replace("{scale}", _SCALE).replace("{cscale}", _CSCALE)
                         for p in items)
        return cls(pattern_texts=expanded(spec.get("patterns") or []), anchors=tuple(spec.get("anchors") or ()),
                   negation_texts=expanded(spec.get("negations") or []), summary=str(spec.get("summary") or ""))

    @functools.cached_property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p) for p in self.pattern_texts)

    @functools.cached_property
    def negations(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p) for p in self.negation_texts)


@record
class Hit:
    match: re.Match[str]
    quote: Quote | None

    @property
    def clause(self) -> str:
        return self.match.group(0)

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"clause": self.clause}
        if self.quote is not None:
            out.update(sentence=self.quote.sentence, line=self.quote.line, page=self.quote.page)
        return out


def _hits(key: str, norm: str, located: Located | None) -> Iterator[Hit]:
    """Every hit of a group's patterns, in pattern order, whose sentence is not negated."""
    group = catalog().extract.get(key)
    if group is None or (group.anchors and not any(a in norm for a in group.anchors)):
        return
    for pattern in group.patterns:
        for n, m in enumerate(pattern.finditer(norm)):
            if n >= MAX_HITS:
                break
            quote = located.quote(m.group(0)) if located is not None else None
            if group.negations:
                context = normalize(quote.sentence) if quote else norm[max(0, m.start() - 200):m.end() + 200]
                if any(neg.search(context) for neg in group.negations):
                    continue
            yield Hit(m, quote)


def _first(key: str, norm: str, located: Located | None = None) -> Hit | None:
    return next(_hits(key, norm, located), None)


def place(phrase: str) -> str:
    """Jurisdiction code for a clause's place words ('' when none is known)."""
    for pattern, code in catalog().places:
        if pattern.search(phrase):
            return code
    return ""


def extract_facts(text: str, *, normalized: str | None = None) -> dict[str, dict[str, Any]]:
    """Terms a text states by itself, keyed like catalog terms; each with the `clause` it came from
    and, where it can be found again in the original, the `sentence`, `line` and `page`."""
    norm = normalized if normalized is not None else normalize(text)
    located = Located(text)
    facts: dict[str, dict[str, Any]] = {}
    threshold = _threshold(norm, located)
    if threshold:
        facts["user_threshold"] = threshold
    facts.update(_places(norm, located))
    territory = _territory(norm, located)
    if territory:
        facts["territory_exclusion"] = territory
    cat = catalog()
    for key, term in cat.simple_terms.items():
        hit = _first(key, norm, located)
        if hit:
            facts[term] = {"summary": cat.extract[key].summary, **hit.details()}
            if key == "output_training":
                facts[term]["rule"] = "banned"
            if key == "non_commercial":
                facts[term]["allowed"] = False
    return facts


def _threshold(norm: str, located: Located) -> dict[str, Any]:
    threshold: dict[str, Any] = {}
    first: Hit | None = None
    clauses = []
    for key in ("mau", "dau", "monthly_revenue_usd", "annual_revenue_usd"):
        hit = _first(key, norm, located)
        if hit:
            m = hit.match
            threshold[key] = _number(m.group(1), m.group(2) if m.lastindex and m.lastindex >= 2 else None)
            clauses.append(hit.clause)
            first = first or hit
    if not threshold or first is None:
        return {}
    return {**threshold, "summary": threshold_summary(threshold), **first.details(), "clause": " / ".join(clauses)}


def _places(norm: str, located: Located) -> dict[str, dict[str, Any]]:
    cat = catalog()
    out: dict[str, dict[str, Any]] = {}
    law = _first("governing_law", norm, located)
    if law:
        words = law.match.group(1).strip()
        code = place(words) or place(law.clause)
        out["governing_law"] = {"jurisdiction": code, "summary": f"Laws of {cat.place_name(code) if code else words.title()}",
                                **law.details()}
    venue = _first("venue", norm, located)
    if venue:
        words = venue.match.group(1).strip()
        arbitration = "arbitrat" in words or "仲裁" in words
        code = place(words) or (out.get("governing_law", {}).get("jurisdiction", "") if not arbitration else "")
        out["venue"] = {"jurisdiction": code, "summary": words, **venue.details()}
    return out


def _territory(norm: str, located: Located) -> dict[str, Any]:
    cat = catalog()
    regions: list[str] = []
    first: Hit | None = None
    for hit in _hits("territory", norm, located):
        for word, code in cat.region_words:
            if word.search(hit.match.group(1)) and code not in regions:
                regions.append(code)
        first = first or hit
    if not regions or first is None:
        return {}
    return {"regions": regions, "summary": "Not licensed in " + ", ".join(cat.place_name(r) for r in regions),
            **first.details()}


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
