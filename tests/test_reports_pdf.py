"""The PDF a compliance officer files, read back the way one reads it: pdftotext, pypdf's Info/XMP/outline."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from pypdf import PdfReader

from auditor import record as records
from auditor.model import Finding, Severity
from auditor.pipeline import audit
from auditor.reports import pdf
from auditor.workflows import demo

LONG_FOLDER = "很长的文件夹名称" * 6


@pytest.fixture(scope="module")
def chinese_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = demo.build_clean(tmp_path_factory.mktemp("pdf") / "通义千问-模型")
    (model / "README.md").write_text("---\nlicense: other\nlicense_name: 通义千问许可协议\n---\n# 通义千问\n\n"
                                     "## 局限性 Limitations\n\n模型可能产生错误信息。\n", encoding="utf-8")
    (model / "LICENSE").write_text("通义千问许可协议\n\n本协议受中华人民共和国法律管辖。\n", encoding="utf-8")
    deep = model / "深层目录" / LONG_FOLDER
    deep.mkdir(parents=True)
    (deep / "权重文件.bin").write_bytes(b"\x00" * 10)
    return model


def _text(data: bytes, tmp_path: Path, first: int = 0, last: int = 0) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(data)
    pages = (["-f", str(first)] if first else []) + (["-l", str(last)] if last else [])
    return subprocess.run(["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_chinese_paths_card_and_license_are_in_the_text_layer(chinese_model: Path, tmp_path: Path) -> None:
    if not pdf.cjk_font():
        pytest.fail("no CJK font: install fonts-wqy-microhei (see .ci/run)")
    result = audit(str(chinese_model))
    text = _text(pdf.render(result), tmp_path)
    assert "通义千问-模型" in text and "通义千问许可协议" in text
    joined = text.replace("\n", "")
    assert f"深层目录/{LONG_FOLDER}/权重文件.bin" in joined            # wrapped onto lines, never cut
    assert "…" not in joined.split("File inventory")[1]
    assert "REPORT-GLYPHS-MISSING" not in text


def test_page_one_holds_the_decision_identity_every_claim_and_the_sign_off(chinese_model: Path, tmp_path: Path) -> None:
    result = audit(str(chinese_model))
    extra = tuple(Finding(rule="FORMAT-EXTENSION-MISMATCH", severity=Severity.HIGH, title=f"finding {i}",
                          file=f"dir/{'x' * 150}/{i}.bin") for i in range(11))
    reasons = tuple(f"high: FORMAT-EXTENSION-MISMATCH dir/{'x' * 150}/{i}.bin: finding {i}" for i in range(11))
    crowded = records.replace(result, findings=result.findings + extra,
                                  verdict=records.replace(result.verdict, decision="fail", reasons=reasons))
    page_one = _text(pdf.render(crowded), tmp_path, 1, 1).replace("\n", " ")
    assert "FAIL" in page_one and "通义千问-模型" in page_one
    assert "License" in page_one and "通义千问许可协议" in page_one and "Effective origin" in page_one
    assert "and 5 more" in page_one
    for claim in result.claims:
        assert " ".join(claim.title.split()) in " ".join(page_one.split()), claim.id
    assert "auditor scan MODEL --runtime" in page_one
    assert "Reviewer:" in page_one and "Date:" in page_one


def test_info_matches_xmp_bookmarks_and_attachments(chinese_model: Path, tmp_path: Path) -> None:
    (tmp_path / "r.pdf").write_bytes(pdf.render(audit(str(chinese_model))))
    reader = PdfReader(tmp_path / "r.pdf")
    info, xmp = reader.metadata, reader.xmp_metadata
    assert info is not None and xmp is not None
    assert info.title == xmp.dc_title["x-default"] and info.author == xmp.dc_creator[0]
    assert info.subject == xmp.dc_description["x-default"] and info["/Keywords"] == xmp.pdf_keywords
    assert info.creator == xmp.xmp_creator_tool
    assert info.creation_date.replace(tzinfo=None) == xmp.xmp_create_date.replace(tzinfo=None)
    assert [o.title for o in reader.outline][:3] == ["Decision", "Lineage and origin", "License and obligations"]
    assert set(reader.attachments) == {"auditor-result.json", "bom.cdx.json"}
    assert len(reader.pages) <= 3                                   # sections flow, no half-empty pages


def test_without_a_cjk_font_the_gap_is_said_on_the_page_and_as_a_finding(chinese_model: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "CJK_FONTS", ())
    pdf.cjk_font.cache_clear()
    try:
        text = _text(pdf.render(audit(str(chinese_model))), tmp_path)
    finally:
        pdf.cjk_font.cache_clear()
    page_one = text.split("\f")[0]
    assert "have no font on this machine" in page_one and "fonts-wqy-microhei" in page_one
    assert "REPORT-GLYPHS-MISSING" in text


def test_quiet_pdf_prints_nothing(chinese_model: Path, tmp_path: Path) -> None:
    proc = run_cli("scan", str(chinese_model), "-q", "-o", str(tmp_path / "r.pdf"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
