"""License terms as the shipped texts state them: scopes (weights/code/notice), PDF, Chinese texts, the card
body, multimodal-only territory, quoted sentences, one finding per obligation, and the license claim."""
from __future__ import annotations

import json

import pytest
from license_support import CORPUS, make_model, scan

from auditor.facts import Facts
from auditor.judge import claims
from auditor.model import ClaimStatus, Severity, Snapshot
from auditor.parsers import licensetext

APACHE = ("Apache License\nVersion 2.0, January 2004\n\nTERMS AND CONDITIONS FOR USE, REPRODUCTION, AND "
          "DISTRIBUTION\n3. Grant of Patent License. Each contributor grants you a patent license.\n")
# Our own words, in the shape of the code/weights split agreements (ChatGLM-like).
MODEL_NC = ("ACME-7B MODEL LICENSE\n\n1. Grant. The Licensor grants you a non-exclusive, non-transferable, "
            "revocable license to the model weights.\n2. You may use the weights for research purposes only.\n"
            "3. You shall not use the weights for any military purposes, nor in any way that endangers "
            "national security.\n4. This license is governed by the laws of the People's Republic of China.\n")
MIT_NOTICE = ("Third-party software notices\n\nMIT License\n\nPermission is hereby granted, free of charge, to any "
              "person obtaining a copy of this software, to deal in it without restriction.\n")


def _rules(result):
    return [f.rule for f in result.findings]


def _claim(result, folder):
    snapshot = Snapshot(kind="local", target=str(folder), root=folder)
    facts = Facts.from_dict(result.all_facts)
    return next(c for c in claims.build(snapshot, (), result.findings, {"license"}, facts) if c.id == "license")


def test_code_license_and_model_license_split(tmp_path):
    result = scan(make_model(tmp_path / "m", {"license": "other"}, {"LICENSE": APACHE, "MODEL_LICENSE": MODEL_NC}))
    assert result.facts["code"]["id"] == "apache-2.0" and result.facts["code"]["file"] == "LICENSE"
    assert result.model_id != "apache-2.0"
    assert {"LICENSE-NON-COMMERCIAL", "LICENSE-REVOCABLE", "LICENSE-SECURITY-USE"} <= set(_rules(result))
    assert not any(ob["license_id"] == "apache-2.0" for ob in result.facts["obligations"])
    security = next(f for f in result.findings if f.rule == "LICENSE-SECURITY-USE")
    assert 'MODEL_LICENSE line 5: "You shall not use the weights for any military purposes' in security.evidence


def test_pdf_agreement_terms_are_quoted_with_their_page(tmp_path):
    pytest.importorskip("pypdf", reason="the PDF reader (auditor[pdf]) is not installed")
    from fpdf import FPDF
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "ORBIT MODEL COMMUNITY LICENSE AGREEMENT\n\nThe Licensor claims no rights in the Output, "
                         "and you may use the Output to train any other model.\nIf you wish to use the model "
                         "commercially, you must apply for a written authorization from the Licensor by email.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "The Licensor may revoke this license at any time. This Agreement is governed by the laws "
                         "of the People's Republic of China. Disputes shall be submitted to the Haidian District "
                         "People's Court in Beijing.")
    folder = make_model(tmp_path / "m", {"license": "other"})
    pdf.output(str(folder / "Community License for Orbit Model.pdf"))
    result = scan(folder)
    rules_found = set(_rules(result))
    assert {"LICENSE-REGISTRATION", "LICENSE-REVOCABLE", "LICENSE-GOVERNING-LAW"} <= rules_found
    assert "LICENSE-OUTPUT-TRAINING-BAN" not in rules_found          # "claims no rights in the Output"
    revocable = next(f for f in result.findings if f.rule == "LICENSE-REVOCABLE")
    assert "Community License for Orbit Model.pdf page 2" in revocable.evidence
    assert _claim(result, folder).status == ClaimStatus.REFUTED
    broken = make_model(tmp_path / "b", {"license": "other"}, {"LICENSE.pdf": b"%PDF-1.7\n1 0 obj <<\n"})
    assert "LICENSE-UNVERIFIED" in _rules(scan(broken))


# Written for this test in the shape of the Chinese agreements (our words, not any publisher's text).
CHINESE = ("星河模型许可协议\n\n一、许可授予\n许可方授予您非排他性、不可转让、可撤销的许可。\n"
           "二、商业使用\n如需将本模型用于商业用途，需在许可方网站完成登记，并取得许可方的书面授权。\n"
           "若您的产品月活跃用户超过1亿，须另行申请许可。\n"
           "三、使用限制\n您不得将本模型用于任何军事用途，不得从事危害国家安全的行为。\n"
           "许可方保留远程限制违规使用的权利。\n"
           "四、争议解决\n本协议受中华人民共和国法律管辖。因本协议产生的争议应提交北京市海淀区人民法院。\n")


def test_chinese_agreement_terms(tmp_path):
    facts = licensetext.extract_facts(CHINESE)
    assert facts["user_threshold"]["mau"] == 100_000_000
    assert facts["governing_law"]["jurisdiction"] == "CN" and facts["venue"]["jurisdiction"] == "CN"
    assert {"registration", "revocable", "security_use", "remote_restriction"} <= set(facts)
    assert facts["registration"]["line"] == 6
    result = scan(make_model(tmp_path / "m", {"license": "other"}, {"MODEL_LICENSE": CHINESE}))
    assert {"LICENSE-REGISTRATION", "LICENSE-REMOTE-RESTRICTION", "LICENSE-USER-THRESHOLD",
            "LICENSE-UNKNOWN"} <= set(_rules(result))
    irrevocable = CHINESE.replace("可撤销", "不可撤销")
    assert "revocable" not in licensetext.extract_facts(irrevocable)


CARD_BODY = ("# Orbit-7B\n\nA chat model.\n\n## License\n\nThe code is licensed under Apache-2.0, while the model "
             "weights are fully open for academic research and also allow free commercial usage. To apply for a "
             "commercial license, please fill in the application form.\n\n## Citation\n\nregister nothing here\n")


def test_terms_stated_only_in_the_card_body(tmp_path):
    folder = make_model(tmp_path / "m", None, {"README.md": "---\nlicense: other\n---\n" + CARD_BODY})
    result = scan(folder)
    registration = [f for f in result.findings if f.rule == "LICENSE-REGISTRATION"]
    assert len(registration) == 1 and "README.md line 10" in registration[0].evidence
    assert result.facts["code"]["id"] == "apache-2.0"
    assert result.model_id != "apache-2.0"
    assert _claim(result, folder).status == ClaimStatus.REFUTED


LLAMA_32 = {"license": "llama3.2"}


@pytest.mark.parametrize(("config", "applies"), [
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, False),
    ({"architectures": ["MllamaForConditionalGeneration"], "model_type": "mllama", "vision_config": {}}, True),
])
def test_multimodal_only_territory_clause(tmp_path, config, applies):
    folder = make_model(tmp_path / "m", LLAMA_32)
    (folder / "config.json").write_text(json.dumps(config))
    result = scan(folder, settings={"user_region": "DE"})
    territory = [f for f in result.findings if f.rule == "LICENSE-TERRITORY-EXCLUSION"]
    assert bool(territory) is applies
    if applies:
        assert territory[0].severity == Severity.HIGH
    ob = next(o for o in result.facts["obligations"] if o["term"] == "territory_exclusion")
    assert ob["applies"] is applies
    assert result.facts["model_kind"] == ("multimodal" if applies else "text")


@pytest.mark.skipif(not (CORPUS / "INDEX.md").is_file(), reason=f"license corpus not present at {CORPUS}")
def test_notice_beside_a_real_license_is_attribution_only(tmp_path):
    text = (CORPUS / "QwenLM__Qwen__Tongyi_Qianwen_LICENSE_AGREEMENT").read_text(encoding="utf-8")
    result = scan(make_model(tmp_path / "m", {"license": "other", "license_name": "tongyi-qianwen"},
                             {"LICENSE": text, "NOTICE": MIT_NOTICE, "THIRD_PARTY_NOTICES.md": MIT_NOTICE}))
    assert result.model_id == "tongyi-qianwen"
    assert result.facts["notices"] == ["NOTICE", "THIRD_PARTY_NOTICES.md"]
    assert not any(ob["license_id"] == "mit" for ob in result.facts["obligations"])
    assert "LICENSE-CONFLICT" not in _rules(result)
    # one finding per obligation, though the card id and the text both name the license
    per_rule = [r for r in _rules(result) if r not in ("LICENSE-IDENTIFIED",)]
    assert len(per_rule) == len(set(per_rule)), per_rule
    threshold = next(f for f in result.findings if f.rule == "LICENSE-USER-THRESHOLD")
    assert "LICENSE line" in threshold.evidence and "via README.md: license_name" in threshold.evidence


@pytest.mark.skipif(not (CORPUS / "INDEX.md").is_file(), reason=f"license corpus not present at {CORPUS}")
def test_every_quote_is_the_sentence_at_its_line_in_the_real_texts():
    quoted = 0
    for path in sorted(CORPUS.iterdir()):
        if path.name == "INDEX.md":
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")          # line numbers as editors and GitHub count them
        for term, fact in licensetext.extract_facts(text).items():
            assert fact.get("sentence"), (path.name, term)
            line = licensetext.normalize(lines[fact["line"] - 1])
            first_word = fact["clause"].split()[0]
            assert first_word in line, (path.name, term, fact["line"], line[:80])
            assert licensetext.normalize(fact["sentence"]) in licensetext.normalize(text), (path.name, term)
            quoted += 1
    assert quoted >= 60


def test_secondary_catalog_figures_never_outrank_the_shipped_text(tmp_path):
    entry = licensetext.catalog().entries["baichuan-community"]
    assert entry.terms["user_threshold"]["evidence"] == "secondary"
    by_id = scan(make_model(tmp_path / "a", {"license": "other", "license_name": "baichuan2-community-license"}))
    threshold = next(o for o in by_id.facts["obligations"] if o["term"] == "user_threshold")
    assert threshold["secondary"] is True
    agreement = ("Community License for Baichuan 2 Model\n\n" + "This agreement sets out the terms of use. " * 60 +
                 "\nThe Licensor claims no rights in the Output. You must apply for a written authorization "
                 "before commercial use, by email to opensource@baichuan-inc.com.\n")
    shipped = scan(make_model(tmp_path / "b", {"license": "other"}, {"LICENSE": agreement}))
    assert shipped.model_id == "baichuan-community"
    assert "user_threshold" not in shipped.terms()
    assert "LICENSE-OUTPUT-TRAINING-BAN" not in _rules(shipped) and "LICENSE-REGISTRATION" in _rules(shipped)


def test_licenses_yaml_matches_its_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from auditor import rules
    jsonschema.validate(rules.load("licenses.yaml"), rules.load("licenses.schema.yaml"))
