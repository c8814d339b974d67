"""Every report format, each checked by its own standard: CycloneDX by the library's offline schema
validator, SARIF by the schema GitHub's upload action uses, the PDF by rendering its pages with
pdftoppm and reading its text back, HTML and Markdown by what a browser or GitHub would interpret."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from reports_sample import HOSTILE, RTL, hostile_result

from auditor import record as records
from auditor import reports
from auditor.model import ClaimStatus, FileRecord, Severity
from auditor.pipeline import audit
from auditor.reports import cyclonedx, html, json_report, markdown, pdf, sarif, view
from auditor.workflows import demo
from tests.conftest import invoke

SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"
if not SARIF_SCHEMA.is_file():
    SARIF_SCHEMA = Path("/work/shared/schemas/sarif-schema-2.1.0.json")


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    repos = demo.build_all(root)
    return {"clean": audit(str(repos[demo.CLEAN])), "risky": audit(str(repos[demo.RISKY])),
            "hostile": hostile_result()}


@pytest.fixture(scope="session")
def pdfs(results):
    return {name: pdf.render(r) for name, r in results.items()}


def test_every_registered_format_renders_for_every_result(results):
    for fmt in reports.FORMATS:
        module = reports.get(fmt)
        for name, result in results.items():
            out = module.render(result)
            assert out and isinstance(out, (str, bytes)), (fmt, name)
            assert module.EXTENSION.startswith(".")


# -- CycloneDX -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_cyclonedx_validates_against_the_schema(results, spec):
    for name, result in results.items():
        text = cyclonedx.render(result, spec)
        assert cyclonedx.validate(text, spec) == [], name
        doc = json.loads(text)
        assert doc["specVersion"] == spec


def test_cyclonedx_carries_model_files_lineage_findings_and_declarations(results):
    result = results["hostile"]
    doc = cyclonedx.to_dict(result)
    model = doc["metadata"]["component"]                  # what the BOM describes
    assert model["type"] == "machine-learning-model" and model["bom-ref"] == "model"
    assert model["version"] == "0123456789abcdef0123456789abcdef01234567"
    assert model["purl"].startswith("pkg:huggingface/evil-org/evil-model@0123456789abcdef")
    assert "repository_url=" in model["purl"]
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert refs["distribution"] == "https://mirror.internal.example/evil-org/evil-model"
    assert refs["model-card"].endswith("/blob/0123456789abcdef0123456789abcdef01234567/README.md")
    assert model["manufacturer"]["address"]["country"] == "XX"
    assert model["licenses"][0]["license"]["name"].startswith("Evil Community License")
    file_hashes = {c["name"]: c["hashes"][0]["content"] for c in doc["components"] if c["type"] == "file"}
    assert file_hashes == {cyclonedx._c(f.path): f.sha256 for f in result.files}
    ancestor = model["pedigree"]["ancestors"][0]
    assert ancestor["manufacturer"]["address"]["country"] == "US"
    assert ancestor["licenses"][0]["license"]["id"] == "Apache-2.0"      # HF id mapped to the SPDX spelling
    params = model["modelCard"]["modelParameters"]
    assert params["task"] == "text-generation" and params["modelArchitecture"] == "EvilForCausalLM"
    assert params["architectureFamily"] == "evil" and params["datasets"] == [{"type": "dataset", "name": "evil-org/evil-data"}]
    limitations = model["modelCard"]["considerations"]["technicalLimitations"]
    assert len(limitations) == 1 and limitations[0].startswith("Hallucinates on long inputs")   # the model's own only
    vulns = doc["vulnerabilities"]
    ids = [v["id"] for v in vulns]
    assert len(set(ids)) == len(ids) and not set(ids) & {f.rule for f in result.findings}
    assert sorted(v["references"][0]["id"] for v in vulns) == sorted(f.rule for f in result.findings
                                                                      if f.severity > Severity.INFO)
    assert any(p["name"] == "auditor:fact" and p["value"].startswith("INVENTORY-EMPTY-FILE") for p in model["properties"])
    assert all("analysis" not in v for v in vulns)            # the only waived finding is an info fact
    waived = records.replace(result, findings=tuple(records.replace(f, waived=True, waiver="SEC-1 ok")
                                                        if f.rule == "CODE-NETWORK-CALL" else f for f in result.findings))
    (vex,) = [v for v in cyclonedx.to_dict(waived)["vulnerabilities"] if "analysis" in v]
    assert vex["analysis"] == {"state": "exploitable", "response": ["will_not_fix"], "detail": "waived: SEC-1 ok"}
    decl = doc["declarations"]
    assert len(decl["claims"]) == len(result.claims)
    by_req = {m["requirement"]: m for m in decl["attestations"][0]["map"]}
    for claim in result.claims:
        entry = by_req[f"req-{claim.id}"]
        if claim.status is ClaimStatus.REFUTED:
            assert entry["counterClaims"] == [f"claim-{claim.id}"] and entry["conformance"]["score"] == 0
        elif claim.status is ClaimStatus.SUPPORTED:
            assert entry["claims"] == [f"claim-{claim.id}"] and entry["conformance"]["score"] == 1
        else:
            assert entry["confidence"]["score"] == 0
    assert cyclonedx.reference_errors(doc) == []
    assert RTL not in json.dumps(doc, ensure_ascii=False)


def test_cyclonedx_validator_rejects_a_broken_bom(results):
    doc = cyclonedx.to_dict(results["risky"])
    doc["declarations"]["attestations"][0]["map"][0]["conformance"]["score"] = 2
    doc["declarations"]["claims"][0]["evidence"] = ["ev-nowhere"]
    errors = cyclonedx.validate(json.dumps(doc))
    assert any("greater than the maximum" in e or "2" in e for e in errors)
    assert "unresolved reference ev-nowhere" in errors


def test_cyclonedx_spdx_ids_are_fixed_as_the_library_fixes_them():
    """Our SPDX id fixup reads the library's SPDX schema itself (its spdx module is 40 ms to import): it must
    answer as the library's fixup_id does, for every id and for ids that are not."""
    from cyclonedx.schema._res import SPDX_JSON
    from cyclonedx.spdx import fixup_id
    fixup = cyclonedx._spdx_fixup()
    assert fixup is not fixup_id                     # the fast path is the one in use
    ids = json.loads(Path(SPDX_JSON).read_text())["enum"]
    assert len(ids) > 500
    for value in [*ids, *(i.lower() for i in ids), *(i.upper() for i in ids), "llama3", "other", "", "Apache 2.0"]:
        assert fixup(value) == fixup_id(value), value


def test_cyclonedx_unknown_license_is_not_invented(results):
    unassessed = records.replace(results["hostile"], facts={})      # as if no license scanner ran
    model = cyclonedx.to_dict(unassessed)["metadata"]["component"]
    assert "licenses" not in model
    assert {"name": "auditor:license", "value": "not assessed"} in model["properties"]
    assert cyclonedx.validate(cyclonedx.render(unassessed)) == []


def test_cyclonedx_spdx_license_of_the_clean_demo(results):
    spdx = view.model_license(results["clean"]).get("spdx")
    if not spdx:
        pytest.skip("the license scanner is not registered in this checkout")
    model = cyclonedx.to_dict(results["clean"])["metadata"]["component"]
    assert model["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]


def test_cyclonedx_local_folder_identity_and_parameters_from_its_config(results):
    result = results["clean"]
    doc = cyclonedx.to_dict(result)
    model = doc["metadata"]["component"]
    digest = cyclonedx.manifest_digest(result)
    assert model["version"] == f"sha256:{digest}" and model["purl"] == f"pkg:generic/{model['name']}@sha256:{digest}"
    assert model["modelCard"]["modelParameters"]["modelArchitecture"] == "TinyForCausalLM"
    assert "considerations" not in model["modelCard"]        # the demo card states no limitations
    assert {c["name"] for c in doc["components"]} == {f.path for f in result.files}
    assert cyclonedx.validate(cyclonedx.render(result)) == []


# -- SARIF -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sarif_validator():
    schema = json.loads(SARIF_SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema)


def test_sarif_validates_against_githubs_schema(results, sarif_validator):
    for name, result in results.items():
        doc = json.loads(sarif.render(result))
        errors = [e.message for e in sarif_validator.iter_errors(doc)]
        assert errors == [], name
        assert len(doc["runs"]) == 1


def test_sarif_rules_locations_fingerprints(results):
    result = results["hostile"]
    doc = sarif.to_dict(result)
    run = doc["runs"][0]
    rules_by_id = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules_by_id) == {f.rule for f in result.findings if f.severity > Severity.INFO}
    known = rules_by_id["FORMAT-DISGUISED-EXECUTABLE"]      # the finding is critical, whatever the default
    assert known["properties"]["security-severity"] == "9.5" and known["help"]["text"]
    assert known["defaultConfiguration"]["level"] == "error"
    assert rules_by_id["CODE-NETWORK-CALL"]["properties"]["security-severity"] == "8.0"      # high
    assert "Remediation" in known["help"]["text"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    code = by_rule["CODE-NETWORK-CALL"]["locations"][0]["physicalLocation"]
    assert code["region"]["startLine"] == 12
    binary = by_rule["FORMAT-DISGUISED-EXECUTABLE"]["locations"][0]["physicalLocation"]
    assert "region" not in binary                             # upload-sarif must not read (hash) the file
    assert binary["artifactLocation"]["uri"] == "weird%20%3Cname%3E%20%26%20co.bin"
    assert "INVENTORY-EMPTY-FILE" not in by_rule              # info facts are not alerts ...
    below = run["properties"]["belowThreshold"]
    assert below["count"] == 1 and below["findings"][0]["rule"] == "INVENTORY-EMPTY-FILE"   # ... they are listed
    everything = sarif.to_dict(result, threshold=Severity.INFO)["runs"][0]
    repo_wide = next(r for r in everything["results"] if r["ruleId"] == "INVENTORY-EMPTY-FILE")
    assert repo_wide["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "README.md"
    assert repo_wide["suppressions"][0]["kind"] == "external"
    for r in run["results"]:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    prints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]]
    assert len(set(prints)) == len(prints)
    again = sarif.to_dict(json_report.from_dict(json.loads(json_report.render(result))))
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == \
        [r["partialFingerprints"] for r in run["results"]]


def test_sarif_neutralises_placeholders_and_control_characters(results):
    text = sarif.render(results["hostile"])
    doc = json.loads(text)
    messages = [r["message"]["text"] for r in doc["runs"][0]["results"]]
    hostile = next(m for m in messages if "alert(2)" in m)
    assert "{{0}}" in hostile and "{{{{1}}}}" in hostile       # SARIF placeholders escaped by doubling
    assert RTL not in text and "\x1b" not in text and "\x07" not in text
    assert "<U+202E>" in hostile


# -- Markdown --------------------------------------------------------------------------------------

def test_markdown_summary_is_inert(results):
    text = markdown.render(results["hostile"])
    assert "<script" not in text and "<img" not in text
    assert "@everyone" not in text and "#1" not in text
    assert "](https://" not in text and "https://evil" not in text
    assert RTL not in text and "\x1b" not in text
    assert "FAIL" in text
    for claim in results["hostile"].claims:
        assert markdown.escape(claim.title) in text
    for line in text.splitlines():        # a pipe in untrusted text must not add table columns
        if line.startswith("| ") and "Severity" not in line and "---" not in line:
            assert len(re.findall(r"(?<!\\)\|", line)) in (4, 5, 6), line
    assert "Nowhereland" in text and "base-org/base-model" in text


def test_markdown_for_the_demo_has_every_section_collapsed_once(results):
    text = markdown.render(results["risky"])
    assert "### Findings" in text
    for summary in ("<summary>No direct connection: ", "<summary>License: ", "<summary>Lineage and origin: "):
        assert text.count(summary) == 1, summary
    assert text.count("<details>") == text.count("</details>") == 3
    assert "not assessed" in text
    rows = [line for line in text.splitlines() if line.startswith("| critical |")]
    assert sum("TEMPLATE-SANDBOX-ESCAPE" in r for r in rows) == 1            # repeats are one issue
    assert sum("Chat template reaches Python internals" in line for line in text.splitlines()) == 1


# -- HTML ------------------------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_escaped(results):
    page = html.render(results["hostile"])
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags.count("script") == 1 and "img" not in tags
    for _tag, attrs in parser.tags:
        for key in ("src", "href"):
            assert key not in attrs, attrs
        assert not any(k.startswith("on") for k in attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<name>" not in page and "&lt;name&gt;" in page          # file names and claim evidence too
    assert RTL not in page
    csp = next(a for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp["content"] and "sha256-" in csp["content"]
    assert 'id="filter"' in page and 'data-severity="critical"' in page


def test_html_script_hash_matches_the_inline_script(results):
    import base64
    import hashlib
    page = html.render(results["clean"])
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page


# -- PDF -------------------------------------------------------------------------------------------

def _pdf_text(data: bytes) -> list[str]:
    from pypdf import PdfReader
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


def test_pdf_first_page_states_the_decision_and_claims(results, pdfs):
    for name in ("hostile", "risky"):
        result = results[name]
        first = " ".join(_pdf_text(pdfs[name])[0].split())
        assert result.verdict.decision.upper() in first
        assert "No direct connection" in first
        assert f"Policy: {result.verdict.policy}" in first
        assert result.started_at in first
        for claim in result.claims:
            assert " ".join(claim.title.split()[:3]) in first, claim.id
        statuses = {c.status for c in result.claims}
        if ClaimStatus.REFUTED in statuses:
            assert "REFUTED" in first
        if ClaimStatus.NOT_ASSESSED in statuses:
            assert "NOT" in first and "ASSESSED" in first


def test_pdf_later_pages_have_lineage_license_findings_and_hashes(results, pdfs):
    pages = _pdf_text(pdfs["hostile"])
    rest = " ".join(" ".join(pages[1:]).split())
    assert "Lineage and origin" in rest and "base-org/base-model" in rest
    assert "Nowhereland" in rest and "registration" in rest
    assert "CODE-NETWORK-CALL" in rest and "line 12" in rest
    compact = rest.replace(" ", "")
    for record in results["hostile"].files:
        assert record.sha256 in compact
    assert RTL not in " ".join(pages)


def test_pdf_renders_every_page(pdfs, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm is missing: apt-get install poppler-utils (see .ci/run)")
    for name, data in pdfs.items():
        src = tmp_path / f"{name}.pdf"
        src.write_bytes(data)
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(src), str(tmp_path / name)], check=True,
                       capture_output=True, timeout=60)
        pngs = sorted(tmp_path.glob(f"{name}-*.png"))
        assert len(pngs) == len(_pdf_text(data)) >= 2          # page one, then the sections flow
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000 for p in pngs)


def test_pdf_embeds_the_json_result_and_the_bom(results, pdfs):
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(pdfs["risky"]))
    attached = {name: data[0] for name, data in reader.attachments.items()}
    assert set(attached) == {"auditor-result.json", "bom.cdx.json"}
    saved = json.loads(attached["auditor-result.json"])
    assert json_report.to_dict(json_report.from_dict(saved)) == json_report.to_dict(results["risky"])
    assert cyclonedx.validate(attached["bom.cdx.json"].decode()) == []
    assert b"/AFRelationship /Data" in pdfs["risky"] or b"/AFRelationship/Data" in pdfs["risky"]
    assert b"pdfaid:part" in pdfs["risky"]


# -- `auditor report` ------------------------------------------------------------------------------

def test_report_command_re_renders_a_saved_result(results, tmp_path):
    saved = tmp_path / "result.json"
    saved.write_text(json_report.render(results["hostile"]))
    for fmt in ("sarif", "markdown", "html", "cyclonedx", "cyclonedx-1.7"):
        out = tmp_path / f"out.{fmt}"
        run = invoke(["report", str(saved), "--format", fmt, "-o", str(out)])
        assert run.exit_code == 0, run.output
        assert out.read_text() == reports.get(fmt).render(results["hostile"])
    out = tmp_path / "out.pdf"
    assert invoke(["report", str(saved), "--format", "pdf", "-o", str(out)]).exit_code == 0
    assert out.read_bytes().startswith(b"%PDF-")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something-else"}')
    run = invoke(["report", str(bad), "--format", "html"])
    assert run.exit_code != 0


def test_hostile_text_reaches_each_format_only_escaped(results):
    saved = json.loads(json_report.render(results["hostile"]))    # the canonical JSON keeps it verbatim
    assert HOSTILE in [f["evidence"] for f in saved["findings"]]
    for fmt in ("markdown", "html", "sarif", "cyclonedx"):
        assert RTL not in reports.get(fmt).render(results["hostile"]), fmt


def test_pdf_inventory_pages_many_files_and_wraps_long_paths_whole():
    many = tuple(FileRecord(path=f"dir-{i:03d}/" + ("deep/" * 40 if i == 7 else "") + f"part-{i}.safetensors",
                            size=i, sha256=f"{i:064x}", format="safetensors") for i in range(160))
    result = records.replace(hostile_result(), files=many)
    pages = _pdf_text(pdf.render(result))
    inventory = " ".join(p for p in pages if "File inventory" in p or "part-" in p)
    assert sum("part-" in p for p in pages) >= 2                     # the inventory spans pages
    compact = inventory.replace(" ", "").replace("\n", "")
    for record in many:
        assert record.sha256 in compact
    long_path = "dir-007/" + "deep/" * 40 + "part-7.safetensors"
    pieces = [long_path[i:i + 40] for i in range(0, len(long_path), 40)]
    position = 0
    for piece in pieces:                                   # wrapped onto lines in order, never cut
        found = compact.find(piece[:10], position)
        assert found >= 0, piece
        position = found
    assert "…" not in inventory


def test_markdown_fits_a_pr_comment_whatever_the_result_size():
    from auditor.model import Ancestor, Finding, Severity
    base = hostile_result()
    many = tuple(Finding(rule="CODE-NETWORK-CALL", severity=Severity.HIGH, title="x" * 200, file=f"f{i}.py",
                         location=f"line {i}", evidence="y" * 2000) for i in range(5000))
    ancestors = tuple(Ancestor(repo_id=f"org/base-{i}", relation="merge", depth=1) for i in range(300))
    big = records.replace(base, findings=many, facts={},
                              snapshot=records.replace(base.snapshot, ancestors=ancestors))
    text = markdown.render(big)
    assert len(text) < 65_536
    assert "4990 more in the full report" in text and "280 more ancestors" in text
