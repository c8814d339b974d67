"""License scanner: catalog ids, real license files, family look-alikes, conflicts, unknowns, lineage."""
from __future__ import annotations

import re

import pytest
from license_support import CORPUS, corpus_index, make_model, rewrap, scan

from auditor import rules
from auditor.model import Ancestor, Severity
from auditor.parsers import licensetext
from auditor.scanners import license_terms

# ------------------------------------------------------------------------------------------------
# Every catalog entry is recognised from every card id spelling it lists (and from wrong casing).

ALIASES = [(e.id, alias) for e in licensetext.catalog().entries.values() for alias in (e.id, *e.hf_ids)]


@pytest.mark.parametrize(("entry_id", "alias"), ALIASES, ids=[f"{e}:{a}" for e, a in ALIASES])
def test_catalog_id_resolves(tmp_path, entry_id, alias):
    cat = licensetext.catalog()
    assert cat.by_id(alias).id == entry_id
    assert cat.by_id(alias.upper().replace("-", "_")).id == entry_id      # wrong casing, other separator
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": alias.upper()}))
    assert result.model_id == entry_id
    assert "LICENSE-UNKNOWN" not in result.rules()
    assert "LICENSE-IDENTIFIED" in result.rules()


def test_every_entry_has_documented_terms_with_sources():
    cat = licensetext.catalog()
    keys = set(rules.load("licenses.yaml")["term_keys"])
    for entry in cat.entries.values():
        assert entry.terms, entry.id
        for key, term in entry.terms.items():
            assert key in keys, (entry.id, key)
            assert term.get("summary") and term.get("source"), (entry.id, key)


def test_every_rule_the_scanner_can_emit_is_documented():
    source = (licensetext.__file__.replace("parsers/licensetext.py", "scanners/license.py"))
    emitted = set(re.findall(r'"(LICENSE-[A-Z-]+)"', open(source).read()))
    assert emitted <= set(rules.catalog()), emitted - set(rules.catalog())


# ------------------------------------------------------------------------------------------------
# Real license files (shared/corpus/licenses): identified with the right terms from the file alone.

needs_corpus = pytest.mark.skipif(not (CORPUS / "INDEX.md").is_file(),
                                  reason=f"license corpus not present at {CORPUS}")

# file -> (entry id, facts the text must yield: term -> expected detail subset)
EXPECTED = {
    "QwenLM__Qwen__Tongyi_Qianwen_LICENSE_AGREEMENT": ("tongyi-qianwen", {
        "user_threshold": {"mau": 100_000_000}, "governing_law": {"jurisdiction": "CN"},
        "venue": {"jurisdiction": "CN"}, "output_training": {"rule": "banned"}}),
    "deepseek-ai__DeepSeek-V3__LICENSE-MODEL": ("deepseek-license-1.0", {
        "remote_restriction": {}, "governing_law": {"jurisdiction": "CN"}, "venue": {"jurisdiction": "CN"},
        "acceptable_use": {}}),
    "meta-llama__llama-models__models__llama2__LICENSE": ("llama2", {
        "user_threshold": {"mau": 700_000_000}, "governing_law": {"jurisdiction": "US-CA"},
        "output_training": {"rule": "banned"}}),
    "meta-llama__llama-models__models__llama3__LICENSE": ("llama3", {
        "user_threshold": {"mau": 700_000_000}, "naming_duty": {}, "output_training": {"rule": "banned"}}),
    "meta-llama__llama-models__models__llama3_1__LICENSE": ("llama3.1", {
        "user_threshold": {"mau": 700_000_000}, "naming_duty": {}, "output_training": {"rule": "attribution"}}),
    "meta-llama__llama-models__models__llama4__LICENSE": ("llama4", {
        "naming_duty": {}, "territory_exclusion": {"regions": ["EU"]}, "governing_law": {"jurisdiction": "US-CA"}}),
    "MoonshotAI__Kimi-K2__LICENSE": ("kimi-k2-modified-mit", {
        "user_threshold": {"mau": 100_000_000, "monthly_revenue_usd": 20_000_000}, "naming_duty": {}}),
    "MiniMax-AI__MiniMax-01__LICENSE-MODEL": ("minimax-model-license", {
        "governing_law": {"jurisdiction": "SG"}, "venue": {"jurisdiction": "SG"}, "acceptable_use": {}}),
    "THUDM__ChatGLM3__MODEL_LICENSE": ("chatglm-6b-license", {
        "registration": {}, "governing_law": {"jurisdiction": "CN"}, "venue": {"jurisdiction": "CN"},
        "revocable": {}}),
    "01-ai__Yi__MODEL_LICENSE_AGREEMENT.v2.1@90fe567.txt": ("yi-license", {
        "registration": {}, "governing_law": {"jurisdiction": "CN"}, "venue": {"jurisdiction": "CN"}}),
    "LG-AI-EXAONE__EXAONE-3.5__LICENSE": ("exaone-1.1-nc", {
        "commercial": {"allowed": False}, "naming_duty": {}, "output_training": {"rule": "banned"},
        "governing_law": {"jurisdiction": "KR"}, "venue": {"jurisdiction": "KR"}}),
    "Tencent-Hunyuan__Hunyuan-A13B__LICENSE": ("tencent-hunyuan-community", {
        "territory_exclusion": {"regions": ["EU", "GB", "KR"]}, "governing_law": {"jurisdiction": "HK"},
        "venue": {"jurisdiction": "HK"}, "user_threshold": {"mau": 100_000_000},
        "output_training": {"rule": "banned"}}),
    "openai__gpt-oss__LICENSE": ("apache-2.0", {"attribution": {}}),
    "zai-org__GLM-4.5__LICENSE": ("apache-2.0", {"attribution": {}}),
}

CORPUS_ROWS = corpus_index() if (CORPUS / "INDEX.md").is_file() else []


def _terms_for(match, facts, where):
    """term -> details of one text's terms (catalog refined by the text), as the scanner reads them."""
    entry = match.entry if match is not None else None
    return {k: t.details for k, t in license_terms.terms_for(entry, facts, where).items()}


def _obligation(result, term):
    return [ob for ob in result.facts["obligations"] if ob["term"] == term]


def _check_terms(terms: dict, expected: dict) -> None:
    for term, details in expected.items():
        assert term in terms, (term, sorted(terms))
        for key, value in details.items():
            got = terms[term].get(key)
            assert (sorted(got) if isinstance(value, list) else got) == value, (term, key, got)


@needs_corpus
@pytest.mark.parametrize("row", CORPUS_ROWS, ids=[r["file"] for r in CORPUS_ROWS])
def test_corpus_file_identified_from_the_file_alone(tmp_path, row):
    text = (CORPUS / row["file"]).read_text(encoding="utf-8")
    # the shipped name, as in the publisher's repository; no card, nothing else in the folder
    name = row["path"].rsplit("/", 1)[-1]
    folder = make_model(tmp_path / "m", None, {name: text})
    result = scan(folder)
    entry = licensetext.catalog().entries[result.model_id]
    # the INDEX's own description names the same license (any file added there is checked too)
    expected_words = licensetext.normalize(row["expected"])
    assert any(w and licensetext.normalize(w) in expected_words for w in (
        entry.family, entry.name.split()[0], entry.spdx or "")), (entry.id, row["expected"])
    assert "LICENSE-UNKNOWN" not in result.rules()
    assert result.facts["model"]["confidence"] >= 0.8
    if row["file"] in EXPECTED:
        expected_id, expected_terms = EXPECTED[row["file"]]
        assert result.model_id == expected_id
        terms = {ob["term"]: ob for ob in result.facts["obligations"]}
        match = licensetext.identify(text)
        _check_terms(_terms_for(match, licensetext.extract_facts(text), name), expected_terms)
        assert set(expected_terms) - {"commercial"} <= set(terms) | {"commercial"}


def _variants(text: str) -> dict[str, str]:
    """Copies of the same agreement as they circulate: re-flowed, re-cased, marked up, CRLF, BOM."""
    lines = text.strip().splitlines()
    return {
        "rewrapped": rewrap(text, 58),
        "crlf-upper": text.upper().replace("\n", "\r\n"),
        "markdown": "# " + lines[0].strip() + "\n\n" + "\n".join(
            f"**{ln.strip()}**" if ln.strip()[:2].rstrip(".").isdigit() else ln for ln in lines[1:]),
        "bom-and-preface": "\ufeffCopy distributed with this model, see below.\n\n" + text,
        "straight-quotes": text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'"),
    }


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_copies_and_reflows_still_identified(name):
    if not (CORPUS / name).is_file():
        pytest.skip(f"{name} not in the corpus")
    text = (CORPUS / name).read_text(encoding="utf-8")
    expected_id, expected_terms = EXPECTED[name]
    for label, variant in _variants(text).items():
        match = licensetext.identify(variant)
        assert match is not None and match.entry.id == expected_id, label
        _check_terms(_terms_for(match, licensetext.extract_facts(variant), "LICENSE"), expected_terms)


@needs_corpus
def test_a_new_version_is_reported_with_its_own_numbers_and_places():
    """Another revision of an agreement: same title, different threshold and venue. The text wins."""
    text = (CORPUS / "QwenLM__Qwen__Tongyi_Qianwen_LICENSE_AGREEMENT").read_text()
    revised = re.sub(r"100 million", "50 million", text).replace("Hangzhou", "Beijing")
    revised = re.sub(r"laws of China", "laws of Singapore", revised)
    match = licensetext.identify(revised)
    assert match is not None and match.entry.id == "tongyi-qianwen"
    terms = _terms_for(match, licensetext.extract_facts(revised), "LICENSE")
    assert terms["user_threshold"]["mau"] == 50_000_000
    assert terms["governing_law"]["jurisdiction"] == "SG"
    assert "50M" in terms["user_threshold"]["summary"]


# ------------------------------------------------------------------------------------------------
# Look-alikes written for these tests: each family's distinctive facts (titles, licensors,
# thresholds, venues), with card ids in odd spellings. Our own words, no license text.

MIT_GRANT = ("Permission is hereby granted, free of charge, to any person obtaining a copy of these files, "
             "to deal in them without restriction. The above copyright notice and this permission notice "
             "shall be included in all copies.\n")

LOOKALIKES: dict[str, tuple[dict, str, str, dict[str, dict]]] = {
    # entry id: (card front matter, file name, file text, expected obligation terms)
    "qwen-research": ({"license": "other", "license_name": "Qwen-Research"}, "LICENSE", (
        "Qwen RESEARCH LICENSE AGREEMENT\n\nRelease Date: January 10, 2026\n\n"
        "Licensor: Hangzhou Tongyi Laboratory Technology Co., Ltd.\n"
        "1. You may use the Materials for non-commercial research only.\n"
        "2. A model you build with them shows \"Built with Qwen\" in its documentation.\n"),
        {"commercial": {"allowed": False}, "naming_duty": {}}),
    "qwen": ({"license": "other", "license_name": "QWEN"}, "LICENSE", (
        "Qwen LICENSE AGREEMENT\nQwen Release Date: September 19, 2024\n"
        "Alibaba Cloud grants you these rights. If your product has more than 100 million monthly active "
        "users you must ask us for a license. Show \"Improved using Qwen\" when you distribute a model.\n"),
        {"user_threshold": {"mau": 100_000_000}, "naming_duty": {}}),
    "tongyi-qianwen-research": ({"license": "other", "license_name": "tongyi_qianwen_research"}, "LICENSE", (
        "Tongyi Qianwen RESEARCH LICENSE AGREEMENT\nRelease Date: November 30, 2023\n"
        "Alibaba Cloud permits research and evaluation use only, non-commercial.\n"),
        {"commercial": {"allowed": False}, "output_training": {"rule": "banned"}}),
    "llama3.2": ({"license": "LLAMA3.2"}, "LICENSE.txt", (
        "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024\n"
        "Meta Platforms, Inc. grants a license. Display \"Built with Llama\". Above 700 million monthly "
        "active users a separate license is needed. This Agreement will be governed and construed under "
        "the laws of the State of California without regard to conflicts rules.\n"),
        {"territory_exclusion": {"regions": ["EU"]}, "naming_duty": {}, "user_threshold": {"mau": 700_000_000},
         "governing_law": {"jurisdiction": "US-CA"}}),
    "llama3.3": ({"license": "llama3.3"}, "LICENSE", (
        "LLAMA 3.3 COMMUNITY LICENSE AGREEMENT\nMeta Platforms, Inc.; greater than 700 million monthly active "
        "users requires a license.\n"), {"naming_duty": {}}),
    "tencent-hunyuan-community": ({"license": "other", "license_name": "Tencent-Hunyuan-Community"},
                                  "LICENSE.txt", (
        "TENCENT HUNYUAN COMMUNITY LICENSE AGREEMENT\nTencent Hunyuan Large Release Date: November 5, 2024\n"
        "THIS LICENSE AGREEMENT DOES NOT APPLY IN THE EUROPEAN UNION AND IS EXPRESSLY LIMITED TO THE TERRITORY.\n"
        "Products above 100 million monthly active users need a license from Tencent. You must not use the "
        "outputs to improve any other large language model. This Agreement is governed by the laws of the "
        "Hong Kong Special Administrative Region of the People's Republic of China, without regard to conflict "
        "rules.\n"),
        {"territory_exclusion": {"regions": ["EU"]}, "governing_law": {"jurisdiction": "HK"},
         "output_training": {"rule": "banned"}}),
    "exaone-1.2-nc": ({"license": "other", "license_name": "EXAONE-1.2-NC"}, "LICENSE", (
        "EXAONE AI Model License Agreement 1.2 - NC\n\nBetween you and LG Management Development Institute "
        "Co., Ltd. Disputes go to arbitration administered by the Korean Commercial Arbitration Board in "
        "Seoul. The seat of arbitration shall be Seoul.\n"),
        {"commercial": {"allowed": False}, "naming_duty": {}, "output_training": {"rule": "compete-ban"},
         "venue": {"jurisdiction": "KR"}}),
    "gemma": ({"license": "gemma"}, "LICENSE", (
        "Gemma Terms of Use\nLast modified: April 1, 2024\nGoogle provides Gemma. Model Derivatives and any "
        "Hosted Service are covered; see ai.google.dev/gemma/terms.\n"),
        {"acceptable_use": {}, "output_training": {"rule": "inherits"}, "remote_restriction": {}}),
    "nvidia-open-model-license": ({"license": "other", "license_name": "NVIDIA-Open-Model-License"}, "LICENSE", (
        "NVIDIA Open Model License Agreement\nNVIDIA Corporation offers this model. This Agreement is governed "
        "in all respects by the laws of the United States and the laws of the State of Delaware, without "
        "regard to conflict rules. The courts of Santa Clara County, California will have exclusive "
        "jurisdiction.\n"),
        {"governing_law": {"jurisdiction": "US-DE"}, "venue": {"jurisdiction": "US-CA"}}),
    "mistral-mrl": ({"license": "other", "license_name": "MRL", "license_link":
                     "https://mistral.ai/licenses/MRL-0.1.md"}, "LICENSE.md", (
        "# Mistral AI Research License\n\nMistral AI grants use for research purposes only.\n"),
        {"commercial": {"allowed": False}, "registration": {}}),
    "chatglm-6b-license": ({"license": "other"}, "MODEL_LICENSE", (
        "The ChatGLM2-6B License\n\nCommercial users must register at open.bigmodel.cn first. Any dispute goes "
        "to the Haidian District People's Court in Beijing.\n"),
        {"registration": {}, "venue": {"jurisdiction": "CN"}, "revocable": {}}),
    "glm-4": ({"license": "other", "license_name": "glm-4"}, "LICENSE", (
        "The glm-4-9b License\n\nRegister at open.bigmodel.cn before commercial use; contact license@zhipuai.cn.\n"),
        {"registration": {}, "naming_duty": {}}),
    "baichuan-community": ({"license": "other"}, "Community License for Baichuan 2 Model.txt", (
        "Community License for Baichuan 2 Model\n\nIf your daily active users are less than 1 million and you "
        "are not a cloud provider, email opensource@baichuan-inc.com for a free commercial license.\n"),
        {"user_threshold": {"dau": 1_000_000}, "registration": {}}),
    "minimax-m2-modified-mit": ({"license": "other", "license_name": "modified-mit"}, "LICENSE", (
        "Modified MIT License\n\nCopyright (c) 2025 MiniMax\n\n" + MIT_GRANT +
        "Our only modification: a product with more than 100 million monthly active users or more than "
        "30 million US dollars in annual recurring revenue must prominently display \"MiniMax M2\".\n"),
        {"user_threshold": {"mau": 100_000_000, "annual_revenue_usd": 30_000_000}, "naming_duty": {}}),
    "deepseek-license-1.0": ({"license": "other", "license_name": "DeepSeek"}, "LICENSE-MODEL", (
        "DEEPSEEK LICENSE AGREEMENT\nVersion 1.0, 23 October 2023\n\nHangzhou DeepSeek Artificial Intelligence "
        "Fundamental Technology Research Co., Ltd. may restrict (remotely or otherwise) usage in violation. "
        "Use restrictions are in Attachment A. This agreement will be governed and construed under PRC laws.\n"),
        {"remote_restriction": {}, "acceptable_use": {}, "governing_law": {"jurisdiction": "CN"}}),
    "yi-license": ({"license": "other", "license_name": "yi-license"}, "MODEL_LICENSE_AGREEMENT.txt", (
        "Yi Series Models Community License Agreement\nVersion: 2.0\n\nLicensor: Beijing Lingyiwanwu Information "
        "Technology Co., Ltd. Commercial users fill the registration form first.\n"),
        {"registration": {}, "output_training": {"rule": "inherits"}}),
    "falcon-llm-license": ({"license": "other", "license_name": "falcon-llm-license"}, "LICENSE", (
        "TII Falcon License 2.0\n\nTechnology Innovation Institute, Abu Dhabi. The Acceptable Use Policy applies.\n"),
        {"acceptable_use": {}, "governing_law": {"jurisdiction": "AE"}}),
    "cc-by-nc-4.0": ({"license": "CC-BY-NC-4.0"}, "LICENSE", (
        "Creative Commons\nAttribution-NonCommercial 4.0 International\n\nYou may share and adapt for "
        "non-commercial purposes with credit.\n"),
        {"commercial": {"allowed": False}, "attribution": {}}),
    "internlm-license": ({"license": "other", "license_name": "InternLM"}, "LICENSE", (
        "InternLM model weights\n\nOpen for academic research; free commercial usage after you submit the "
        "application form at wj.qq.com.\n"), {"registration": {}}),
    "minicpm-community": ({"license": "other", "license_name": "MiniCPM-Model-License"}, "LICENSE", (
        "MiniCPM Model Community License\n\nOpenBMB / ModelBest. Show Built with MiniCPM.\n"),
        {"naming_duty": {}, "output_training": {"rule": "banned"}}),
    "mit": ({"license": "MIT"}, "LICENSE", "MIT License\n\nCopyright (c) 2025 Someone\n\n" + MIT_GRANT, {}),
    "apache-2.0": ({"license": "Apache-2.0"}, "LICENSE", (
        "Apache License\nVersion 2.0, January 2004\n\nTERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n"
        "3. Grant of Patent License. Each contributor grants you a patent license.\n"), {"attribution": {}}),
}


@pytest.mark.parametrize("entry_id", sorted(LOOKALIKES))
def test_family_lookalike_resolves_with_its_obligations(tmp_path, entry_id):
    front, name, text, expected = LOOKALIKES[entry_id]
    result = scan(make_model(tmp_path / "m", front, {name: text}))
    assert result.model_id == entry_id
    assert not {"LICENSE-UNKNOWN", "LICENSE-CONFLICT", "LICENSE-MISSING"} & result.rules()
    # the same text alone (no card) says the same thing
    alone = licensetext.identify(text)
    assert alone is not None and alone.entry.id == entry_id
    by_term: dict[str, dict] = {}
    for ob in result.facts["obligations"]:
        by_term.setdefault(ob["term"], ob)
    assert set(expected) <= set(by_term), (sorted(expected), sorted(by_term))
    entry_terms = _terms_for(alone, licensetext.extract_facts(text), name)
    _check_terms(entry_terms, expected)
    if expected.get("commercial", {}).get("allowed") is False:
        assert result.of("LICENSE-NON-COMMERCIAL")[0].severity == Severity.HIGH
    assert len(result.facts["summary"]) == len({(o["term"], o["license"], o["summary"])
                                                for o in result.facts["obligations"]})


# ------------------------------------------------------------------------------------------------
# Conflicts, unknowns, missing.

def test_card_apache_but_shipped_custom_agreement_is_a_high_conflict(tmp_path):
    _, _, deepseek_text, _ = LOOKALIKES["deepseek-license-1.0"]
    result = scan(make_model(tmp_path / "m", {"license": "apache-2.0"}, {"LICENSE": deepseek_text}))
    conflict = result.of("LICENSE-CONFLICT")
    assert len(conflict) == 1 and conflict[0].severity == Severity.HIGH
    assert "apache-2.0" in conflict[0].evidence and "DeepSeek" in conflict[0].evidence
    assert result.model_id == "deepseek-license-1.0"          # the more restrictive one binds
    assert "LICENSE-REMOTE-RESTRICTION" in result.rules()


def test_code_license_next_to_the_declared_weights_license_is_not_a_conflict(tmp_path):
    _, _, glm_text, _ = LOOKALIKES["chatglm-6b-license"]
    _, _, apache_text, _ = LOOKALIKES["apache-2.0"]
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": "chatglm2-6b-license"},
                             {"LICENSE": apache_text, "MODEL_LICENSE": glm_text}))
    assert "LICENSE-CONFLICT" not in result.rules()
    assert result.model_id == "chatglm-6b-license"


def test_two_permissive_licenses_disagreeing_is_a_low_conflict(tmp_path):
    _, _, apache_text, _ = LOOKALIKES["apache-2.0"]
    result = scan(make_model(tmp_path / "m", {"license": "mit"}, {"LICENSE": apache_text}))
    assert [f.severity for f in result.of("LICENSE-CONFLICT")] == [Severity.LOW]


def test_unknown_text_is_a_finding_and_its_stated_terms_are_still_reported(tmp_path):
    text = ("ORBITAL WIDGETS MODEL AGREEMENT\n\n1. You must register with Orbital Widgets before any use.\n"
            "2. Orbital Widgets may remotely restrict the model at any time.\n"
            "3. Products with more than 2,500,000 monthly active users need our written consent.\n"
            "4. This agreement is governed by the laws of Ruritania.\n")
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": "orbital-widgets-1.0"},
                             {"LICENSE": text}))
    assert result.model_id == ""
    unknown = result.of("LICENSE-UNKNOWN")
    assert {f.file for f in unknown} == {"LICENSE", "README.md"}
    assert all(f.severity >= Severity.MEDIUM for f in unknown)
    assert {"LICENSE-REGISTRATION", "LICENSE-REMOTE-RESTRICTION", "LICENSE-USER-THRESHOLD",
            "LICENSE-GOVERNING-LAW"} <= result.rules()
    threshold = next(ob for ob in result.facts["obligations"] if ob["term"] == "user_threshold")
    assert "2,500,000" in threshold["summary"]
    assert "Ruritania" in result.of("LICENSE-GOVERNING-LAW")[0].evidence


def test_card_other_without_name_or_text_is_unknown(tmp_path):
    result = scan(make_model(tmp_path / "m", {"license": "other"}))
    assert [f.file for f in result.of("LICENSE-UNKNOWN")] == ["README.md"]


def test_unrecognised_card_id_is_unknown_and_card_list_is_combined(tmp_path):
    result = scan(make_model(tmp_path / "m", {"license": ["CC-BY-NC-4.0", "made-up-license-9"]}))
    assert result.model_id == "cc-by-nc-4.0"
    assert "made-up-license-9" in result.of("LICENSE-UNKNOWN")[0].evidence
    assert "LICENSE-NON-COMMERCIAL" in result.rules()


def test_no_license_anywhere_is_missing(tmp_path):
    result = scan(make_model(tmp_path / "m", {"library_name": "transformers"}))
    assert [f.severity for f in result.of("LICENSE-MISSING")] == [Severity.MEDIUM]
    assert result.model_id == ""


@pytest.mark.parametrize("front", ["license: [unclosed", "license: " + "[" * 5_000 + "]" * 5_000,
                                   "- just\n- a list", "license: {a: 1}"])
def test_broken_card_front_matter_is_not_verified(tmp_path, front):
    folder = make_model(tmp_path / "m", None, {"README.md": f"---\n{front}\n---\n# x\n"})
    result = scan(folder)
    assert "LICENSE-UNVERIFIED" in result.rules()
    assert "LICENSE-MISSING" in result.rules()


def test_use_policy_file_is_recognised_or_reported(tmp_path):
    known = scan(make_model(tmp_path / "a", {"license": "llama3.2"}, {"USE_POLICY.md": (
        "# Llama 3.2 Acceptable Use Policy\n\nMeta Platforms, Inc. lists prohibited uses here.\n")}))
    assert known.model_id == "llama3.2" and "LICENSE-UNKNOWN" not in known.rules()
    unknown = scan(make_model(tmp_path / "b", {"license": "mit"}, {"USE_POLICY.md": "# House rules\n\nBe nice.\n"}))
    assert any("use policy" in f.evidence for f in unknown.of("LICENSE-USE-POLICY"))


# ------------------------------------------------------------------------------------------------
# Policy settings: territory against user_region, governing law against allowed_jurisdictions.

def _hunyuan(tmp_path, settings):
    _, name, text, _ = LOOKALIKES["tencent-hunyuan-community"]
    return scan(make_model(tmp_path / "m", {"license": "other", "license_name": "tencent-hunyuan-community"},
                           {name: text}), settings=settings)


@pytest.mark.parametrize(("region", "severity"), [
    ("DE", Severity.HIGH), ("EU", Severity.HIGH), ("US", Severity.LOW), (None, Severity.MEDIUM)])
def test_territory_exclusion_severity_follows_user_region(tmp_path, region, severity):
    result = _hunyuan(tmp_path, {"user_region": region} if region else {})
    assert [f.severity for f in result.of("LICENSE-TERRITORY-EXCLUSION")] == [severity]


def test_governing_law_is_info_unless_outside_allowed_jurisdictions(tmp_path):
    plain = _hunyuan(tmp_path / "a", {})
    law = plain.of("LICENSE-GOVERNING-LAW")[0]
    assert law.severity == Severity.INFO and "Hong Kong" in law.evidence
    outside = _hunyuan(tmp_path / "b", {"allowed_jurisdictions": ["US", "EU"]})
    assert outside.of("LICENSE-GOVERNING-LAW")[0].severity == Severity.MEDIUM
    inside = _hunyuan(tmp_path / "c", {"allowed_jurisdictions": ["HK"]})
    assert inside.of("LICENSE-GOVERNING-LAW")[0].severity == Severity.INFO
    assert plain.facts["governing_law"].endswith("(HK)")


# ------------------------------------------------------------------------------------------------
# Lineage: base -> fine-tune -> quantized, built as Snapshot ancestors.

def test_three_level_lineage_combines_obligations(tmp_path):
    _, _, research_text, _ = LOOKALIKES["qwen-research"]
    _, _, llama_text, _ = LOOKALIKES["llama3.2"]
    ancestors = (
        Ancestor(repo_id="acme/chat-ft", relation="finetune", depth=1, parent="acme/chat-ft-gguf",
                 card={"license": "apache-2.0", "base_model": "Qwen/Qwen2.5-3B"}),
        Ancestor(repo_id="Qwen/Qwen2.5-3B", relation="base", depth=2, parent="acme/chat-ft",
                 card={"license": "other", "license_name": "qwen-research"},
                 license_texts={"LICENSE": research_text}),
    )
    folder = make_model(tmp_path / "quant", {"license": "apache-2.0", "base_model": "acme/chat-ft",
                                             "base_model_relation": "quantized"})
    result = scan(folder, ancestors=ancestors)
    # the quantized copy says Apache, the fine-tune says Apache, the root is research-only: still research-only
    non_commercial = result.of("LICENSE-NON-COMMERCIAL")
    assert len(non_commercial) == 1 and non_commercial[0].severity == Severity.HIGH
    assert "Qwen/Qwen2.5-3B" in non_commercial[0].location
    lineage = result.facts["lineage"]
    assert [(e["repo_id"], e["license_id"]) for e in lineage] == [
        ("acme/chat-ft", "apache-2.0"), ("Qwen/Qwen2.5-3B", "qwen-research")]
    origins = {(ob["term"], origin) for ob in result.facts["obligations"] for origin in ob["origins"]}
    assert ("attribution", "this model") in origins and ("attribution", "acme/chat-ft") in origins
    assert ("commercial", "Qwen/Qwen2.5-3B") in origins and ("naming_duty", "Qwen/Qwen2.5-3B") in origins
    assert "Commercial use" in result.facts["summary"][0] and "Qwen/Qwen2.5-3B" in result.facts["summary"][0]
    assert result.facts["obligations"][0]["term"] == "commercial"          # the weightiest first
    assert "LICENSE-LINEAGE-UNRESOLVED" not in result.rules()

    # Llama 3.2 at the root: its naming duty reaches the quantized grandchild
    llama = (Ancestor(repo_id="acme/llama-ft", relation="finetune", depth=1, card={"license": "mit"}),
             Ancestor(repo_id="meta-llama/Llama-3.2-1B", depth=2, card={"license": "llama3.2"},
                      license_texts={"LICENSE.txt": llama_text}))
    result = scan(make_model(tmp_path / "q2", {"license": "mit"}), ancestors=llama)
    naming = result.of("LICENSE-NAMING-DUTY")
    assert naming and "meta-llama/Llama-3.2-1B" in naming[0].location and "Llama" in naming[0].evidence
    assert result.facts["model"]["id"] == "mit"


def test_local_base_model_is_an_unresolved_lineage_entry(tmp_path):
    result = scan(make_model(tmp_path / "m", {"license": "mit", "base_model": ["org/base-a", "org/base-b"]}))
    assert [(e["repo_id"], e["license_id"], e["name"]) for e in result.facts["lineage"]] == [
        ("org/base-a", "", "not resolved"), ("org/base-b", "", "not resolved")]
    assert len(result.of("LICENSE-LINEAGE-UNRESOLVED")) == 2


def test_provenance_lineage_fact_license_is_used(tmp_path):
    facts = {"provenance": {"lineage": [{"repo_id": "deepseek-ai/DeepSeek-V3", "relation": "finetune",
                                         "depth": 1, "license": "other (deepseek)", "error": ""},
                                        {"repo_id": "org/llama", "relation": "base", "depth": 2,
                                         "license": "llama3.1", "error": ""}]}}
    result = scan(make_model(tmp_path / "m", {"license": "mit"}), facts=facts)
    lineage = {e["repo_id"]: e["license_id"] for e in result.facts["lineage"]}
    assert lineage["org/llama"] == "llama3.1"
    assert lineage["deepseek-ai/DeepSeek-V3"] == "deepseek-license-1.0"
    assert "LICENSE-NAMING-DUTY" in result.rules()


# ------------------------------------------------------------------------------------------------
# Other forms of the same agreements: sibling titles, short notices, use policies, Chinese titles.

OTHER_FORMS = [
    ("TENCENT HUNYUAN 3D 2.0 COMMUNITY LICENSE AGREEMENT\nTencent Hunyuan 3D 2.0 Release Date: January 21, 2025\n"
     "THIS LICENSE AGREEMENT DOES NOT APPLY IN THE EUROPEAN UNION, UNITED KINGDOM AND SOUTH KOREA AND IS "
     "EXPRESSLY LIMITED TO THE TERRITORY.\n", "tencent-hunyuan-community"),
    ("Copyright 2025 Example Corp\n\nLicensed under the Apache License, Version 2.0 (the \"License\");\n"
     "you may not use this file except in compliance with the License.\n", "apache-2.0"),
    ("# Meta Llama 3 Acceptable Use Policy\n\nMeta is committed to safe use of Meta Llama 3.\n", "llama3"),
    ("Gemma 3 Terms of Use\n\nGoogle LLC. Model Derivatives; Hosted Service.\n", "gemma"),
    ("The CodeGeeX2-6B License\n\n1. 定义 ... open.bigmodel.cn\n", "chatglm-6b-license"),
    ("Baichuan 2 模型社区许可协议\n\n百川智能 ... opensource@baichuan-inc.com\n", "baichuan-community"),
    ("EXAONE AI Model License Agreement 1.3 - NC\n\nLG Management Development Institute Co., Ltd.\n", "exaone-family"),
    ("LLAMA 5 COMMUNITY LICENSE AGREEMENT\n\n\"Llama Materials\" ... Meta Platforms, Inc. ... greater than "
     "900 million monthly active users.\n", "llama-community"),
]


@pytest.mark.parametrize(("text", "entry_id"), OTHER_FORMS, ids=[e for _, e in OTHER_FORMS])
def test_other_forms_of_known_agreements(text, entry_id):
    match = licensetext.identify(text)
    assert match is not None and match.entry.id == entry_id


def test_a_new_llama_version_keeps_the_family_terms_with_its_own_threshold():
    text = OTHER_FORMS[-1][0]
    match = licensetext.identify(text)
    terms = _terms_for(match, licensetext.extract_facts(text), "LICENSE")
    assert terms["user_threshold"]["mau"] == 900_000_000
    assert terms["governing_law"]["jurisdiction"] == "US-CA"      # from the family entry


@pytest.mark.parametrize("text", [
    "", "Hello world. This repository has some files.\n",
    "Everything here may be used by anyone for anything, says the author.\n",
])
def test_texts_that_are_no_license_are_not_identified(text):
    assert licensetext.identify(text) is None


def test_oversized_license_text_is_not_verified_but_still_identified(tmp_path):
    _, _, text, _ = LOOKALIKES["deepseek-license-1.0"]
    huge = text + ("filler words of an endless appendix " * 40_000)
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": "deepseek"}, {"LICENSE": huge}))
    assert [f.file for f in result.of("LICENSE-UNVERIFIED")] == ["LICENSE"]
    assert result.model_id == "deepseek-license-1.0"


def test_a_known_card_id_with_an_unlisted_link_is_not_unknown(tmp_path):
    result = scan(make_model(tmp_path / "m", {
        "license": "llama3.1", "license_link": "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/LICENSE"}))
    assert result.model_id == "llama3.1" and "LICENSE-UNKNOWN" not in result.rules()
    gguf_other = scan(make_model(tmp_path / "n", {"license": "other", "license_link": "https://example.org/terms"}))
    assert [f.evidence for f in gguf_other.of("LICENSE-UNKNOWN")] == [
        "README.md: license_link = 'https://example.org/terms' is not in the license catalog"]


def test_use_policy_eu_clause_is_read_from_the_text():
    text = ("# Llama 3.2 Acceptable Use Policy\n\nWith respect to any multimodal models included in Llama 3.2, "
            "the rights granted are not being granted to you if you are an individual domiciled in, or a "
            "company with a principal place of business in, the European Union.\n")
    facts = licensetext.extract_facts(text)
    assert facts["territory_exclusion"]["regions"] == ["EU"]
    terms = _terms_for(licensetext.identify(text), facts, "USE_POLICY.md")
    assert terms["territory_exclusion"]["scope"] == "multimodal"


def test_governing_law_of_a_derivative_comes_from_its_ancestors(tmp_path):
    _, _, hunyuan_text, _ = LOOKALIKES["tencent-hunyuan-community"]
    ancestors = (Ancestor(repo_id="tencent/Hunyuan-A13B", depth=1, card={"license": "other"},
                          license_texts={"LICENSE": hunyuan_text}),)
    result = scan(make_model(tmp_path / "m", {"license": "mit"}), ancestors=ancestors)
    assert result.facts["governing_law"] == "Hong Kong SAR (HK) (via tencent/Hunyuan-A13B)"
    assert result.of("LICENSE-TERRITORY-EXCLUSION")[0].location == "lineage: tencent/Hunyuan-A13B"


def test_pdf_license_is_read(tmp_path):
    pytest.importorskip("pypdf", reason="the PDF reader (auditor[pdf]) is not installed")
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    _, _, text, _ = LOOKALIKES["baichuan-community"]
    pdf.multi_cell(0, 6, text)
    folder = make_model(tmp_path / "m", {"license": "other"})
    pdf.output(str(folder / "Community License for Baichuan2 Model.pdf"))
    result = scan(folder)
    assert result.model_id == "baichuan-community"
    assert "LICENSE-REGISTRATION" in result.rules() and "LICENSE-UNVERIFIED" not in result.rules()
    broken = make_model(tmp_path / "b", {"license": "other"}, {"LICENSE.pdf": b"%PDF-1.7\n1 0 obj <<\n"})
    assert "LICENSE-UNVERIFIED" in scan(broken).rules()


def test_modified_mit_titled_plain_mit_is_still_the_modified_variant():
    text = ("MIT License\n\nCopyright (c) 2025 MiniMax\n\n" + MIT_GRANT +
            "Our only modification part is that a product with more than 100 million monthly active users or more "
            "than 30 million US dollars in annual recurring revenue shall prominently display \"MiniMax M2\".\n")
    match = licensetext.identify(text)
    assert match is not None and match.entry.id == "minimax-m2-modified-mit" and match.confidence >= 0.8
    generic = text.replace("MiniMax M2", "Acme Model").replace("MiniMax", "Acme")
    assert licensetext.identify(generic).entry.id == "modified-mit"


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_copies_without_their_title_still_resolve_to_the_family(name):
    if not (CORPUS / name).is_file():
        pytest.skip(f"{name} not in the corpus")
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    expected = licensetext.catalog().entries[EXPECTED[name][0]]
    match = licensetext.identify("\n".join(lines[4:]))
    assert match is not None and match.entry.family == expected.family


def test_renamed_copy_of_the_base_agreement_is_recognised_by_text_similarity(tmp_path):
    _, _, hunyuan, _ = LOOKALIKES["tencent-hunyuan-community"]
    clauses = "".join(f"Clause {i}. The licensee keeps a record of deployment number {i} and tells its users "
                      f"which version {i * 7} of the model they reach.\n" for i in range(40))
    base_text = hunyuan + clauses
    ancestors = (Ancestor(repo_id="tencent/Hunyuan-X", depth=1,
                          card={"license": "other", "license_name": "tencent-hunyuan-community"},
                          license_texts={"LICENSE": base_text}),)
    copy = base_text.replace("TENCENT HUNYUAN COMMUNITY LICENSE AGREEMENT", "ACME DERIVATIVE MODEL TERMS")
    copy = copy.replace("Tencent Hunyuan", "the Model").replace("Tencent", "the Licensor")
    assert licensetext.identify(copy) is None            # alone, nothing in it names a catalog entry
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": "acme-terms"},
                             {"LICENSE": copy}), ancestors=ancestors)
    assert result.model_id == "tencent-hunyuan-community"
    assert "LICENSE-UNKNOWN" not in result.rules()
    source = next(s for s in result.facts["model"]["sources"] if s["where"] == "LICENSE")
    assert "tencent/Hunyuan-X/LICENSE" in source["matched"][0]
    # the copy's own text still decides the numbers and places it states
    assert result.of("LICENSE-TERRITORY-EXCLUSION") and result.of("LICENSE-TERRITORY-EXCLUSION")[0].file == "LICENSE"
    unrelated = scan(make_model(tmp_path / "u", {"license": "other"}, {"LICENSE": clauses[:400]}),
                     ancestors=ancestors)
    assert "LICENSE-UNKNOWN" in unrelated.rules()


def test_a_new_version_adding_a_licensor_facing_duty_is_reported():
    """A later revision of a known agreement that adds reporting and remote restriction clauses."""
    _, _, text, _ = LOOKALIKES["llama3.3"]
    revised = text + ("You shall report to Meta every quarter the number of your users. Meta may remotely "
                      "restrict any deployment.\n")
    match = licensetext.identify(revised)
    assert match is not None and match.entry.id == "llama3.3"
    terms = _terms_for(match, licensetext.extract_facts(revised), "LICENSE")
    assert "reporting" not in licensetext.catalog().entries["llama3.3"].terms
    assert {"reporting", "remote_restriction"} <= set(terms)


@needs_corpus
def test_no_corpus_license_is_read_as_demanding_reports_or_non_commercial_wrongly():
    """None of the real texts obliges reporting to the licensor; only EXAONE 1.1 is non-commercial."""
    for name in EXPECTED:
        if not (CORPUS / name).is_file():
            continue
        facts = licensetext.extract_facts((CORPUS / name).read_text(encoding="utf-8"))
        assert "reporting" not in facts, (name, facts.get("reporting"))
        assert ("commercial" in facts) == (name.startswith("LG-AI-EXAONE")), name


def test_third_party_license_in_a_subfolder_neither_binds_nor_conflicts(tmp_path):
    result = scan(make_model(tmp_path / "m", {"license": "llama3.1"}, {
        "licenses/tiktoken-LICENSE": "MIT License\n\nCopyright (c) 2022 Someone\n\n" + MIT_GRANT}))
    assert result.model_id == "llama3.1"
    assert "LICENSE-CONFLICT" not in result.rules()
    assert any(ob["license_id"] == "mit" for ob in result.facts["obligations"])


def test_family_card_id_in_a_known_publishers_repo_is_the_exact_variant(tmp_path):
    ancestors = (Ancestor(repo_id="moonshotai/Kimi-K2-Instruct", depth=1,
                          card={"license": "other", "license_name": "modified-mit"}),
                 Ancestor(repo_id="someone/other-model", depth=2,
                          card={"license": "other", "license_name": "modified-mit"}))
    result = scan(make_model(tmp_path / "m", {"license": "mit"}), ancestors=ancestors)
    lineage = {e["repo_id"]: e["license_id"] for e in result.facts["lineage"]}
    assert lineage == {"moonshotai/Kimi-K2-Instruct": "kimi-k2-modified-mit", "someone/other-model": "modified-mit"}
    naming = result.of("LICENSE-NAMING-DUTY")
    assert any("Kimi K2" in f.evidence for f in naming)


@pytest.mark.parametrize("text, venue, jurisdiction", [
    ("This Agreement is governed by the laws of Nowhereland; disputes go to the courts of Nowhere City.",
     "nowhere city", ""),
    ("Any disputes shall be submitted to arbitration at the Singapore International Arbitration Centre.",
     "singapore international arbitration centre", "SG"),
    ("This Agreement is subject to the exclusive jurisdiction of the courts of England and Wales.", "england", "GB"),
])
def test_venue_phrasings_of_other_agreements(text: str, venue: str, jurisdiction: str) -> None:
    found = licensetext.extract_facts(text)["venue"]
    assert found["summary"] == venue and found["jurisdiction"] == jurisdiction
