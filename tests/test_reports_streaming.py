"""Reports written piece by piece: the streamed forms are the documents the whole-value forms describe, a saved
result loads row by row exactly as json.loads + from_dict loads it, and the PDF carries what it must (its
attachments byte for byte, the CJK font only when the result needs it)."""
from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader
from reports_sample import hostile_result

from auditor import record as records
from auditor.model import FileRecord
from auditor.reports import cyclonedx, json_report, json_stream, pdf
from tests.conftest import invoke


def _with_odd_files():  # type: ignore[no-untyped-def]
    base = hostile_result()
    odd = (FileRecord(path="bad\udcff名.bin", size=123_456_789, sha256="", format="unknown", error="unreadable"),
           FileRecord(path="données/модель/权重.safetensors", size=7, sha256="f" * 64, format="safetensors"))
    return records.replace(base, files=base.files + odd)


@pytest.mark.parametrize("chunk", [1, 3, 64, json_stream.CHUNK])
def test_a_saved_result_loads_row_by_row_as_json_loads_loads_it(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _with_odd_files()
    text = json_report.render(result).encode()
    compact = json.dumps(json.loads(text), separators=(",", ":")).encode()     # not our layout, \u escapes
    monkeypatch.setattr(json_stream, "CHUNK", chunk)        # every value straddles a chunk boundary
    expected = json_report.from_dict(json.loads(text))
    assert expected == result
    assert json_report.from_file(io.BytesIO(text)) == expected
    assert json_report.from_file(io.BytesIO(compact)) == expected


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a":1,}', b'{"a" 1}', b"{1:2}", b'{"a":1} x', b'{"files":[1,]}',
                                 b'{"a":12', b"\xff\xfe", b'{"a":' + b"[" * 100_000])
def test_what_json_loads_rejects_the_row_reader_rejects(bad: bytes, tmp_path: Path) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(bad)
    saved = tmp_path / "bad.json"
    saved.write_bytes(bad)
    run = invoke(["report", str(saved), "--format", "markdown"])
    # a bad row may be met before the syntax error after it: rejected either way, in one line
    said = str(run.exception)
    assert run.exit_code != 0 and ("is not JSON" in said or "is not an auditor JSON result" in said), said
    if not bad.startswith(b'{"files"'):
        assert "is not JSON" in said


def test_a_result_that_is_not_one_is_said_so(tmp_path: Path) -> None:
    for text, why in (("[1, 2]", "not an auditor JSON result"), ('{"schema": "x"}', "not an auditor JSON result"),
                      ('{"schema": "auditor.report/v1", "files": 3}', "not an auditor JSON result")):
        saved = tmp_path / "r.json"
        saved.write_text(text)
        run = invoke(["report", str(saved), "--format", "json"])
        assert run.exit_code != 0 and why in str(run.exception), (text, run.exception)


def test_the_streamed_bom_is_the_document_to_dict_describes() -> None:
    base = _with_odd_files()
    for result in (base, records.replace(base, files=()), records.replace(base, findings=()),
                   records.replace(base, files=(), findings=())):
        for spec in cyclonedx.SPECS:
            text = cyclonedx.render(result, spec)
            assert json.loads(text) == cyclonedx.to_dict(result, spec)
            assert cyclonedx.validate(text, spec) == []


_HOSTILE_VALUES = ("", "plain", 'q"uote\\back', "line\nbreak\ttab", "\u202eevil\u200b", "bad\udcff", "权重",
                   "x" * 5000, 0, 7, -1, 2 ** 70, None, True, 1.5, ["a", {"b": 1}], {"k": "v"})


def test_a_file_component_line_is_what_the_encoder_writes_for_the_component() -> None:
    """The components are written as JSON text directly (cyclonedx._files): each line must be the line the
    json encoder makes for its own content, and hold the values cleaned as every other BOM value is."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    records = [FileRecord(path=v, size=v, sha256=v, format=v, extension_format=w, publisher_sha256=v,  # type: ignore[arg-type]
                          publisher_git_sha1=w, error=v)
               for v in _HOSTILE_VALUES for w in (_HOSTILE_VALUES[1], _HOSTILE_VALUES[-3])]
    records *= cyclonedx._COLUMN // len(records) + 2        # over more than one column of files
    lines = list(cyclonedx._files(records))
    assert len(lines) == len(records)
    for i, (line, r) in enumerate(zip(lines, records, strict=True)):
        component = json.loads(line)
        assert encode(component) == line, r
        props = {p["name"].removeprefix("auditor:file:"): p["value"] for p in component["properties"]}
        assert component["bom-ref"] == f"file-{i}" and component["name"] == cyclonedx._c(r.path, 1000)
        assert props["format"] == cyclonedx._c(r.format, 4000) and props["size"] == cyclonedx._c(r.size, 4000)
        assert ("hashes" in component) == bool(r.sha256) and ("error" in props) == bool(r.error)
        assert all(ch.isprintable() or ch in "\n\t" for v in props.values() for ch in v)   # no bidi, no control
        if r.sha256:
            assert component["hashes"] == [{"alg": "SHA-256", "content": cyclonedx._c(r.sha256, 4000)}]


def _fonts(data: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def test_pdf_attachments_are_the_reports_byte_for_byte_deflated() -> None:
    result = _with_odd_files()
    data = pdf.render(result)
    reader = PdfReader(io.BytesIO(data))
    attached = {name: content[0] for name, content in reader.attachments.items()}
    assert attached["auditor-result.json"] == json_report.render(result).encode()
    assert attached["bom.cdx.json"] == cyclonedx.render(result).encode()
    for spec in reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"][1::2]:
        stream = spec.get_object()["/EF"]["/F"].get_object()
        assert stream["/Filter"] == "/FlateDecode"
        assert stream["/Params"]["/Size"] == len(zlib.decompress(stream._data))


def test_pdf_embeds_the_cjk_font_only_for_a_result_that_needs_it() -> None:
    if not pdf.cjk_font():
        pytest.fail("no CJK font: install fonts-wqy-microhei (see .ci/run)")
    latin = records.replace(hostile_result(), files=(FileRecord("données/модель.bin", 1, "a" * 64, "pickle"),))
    chinese = records.replace(latin, files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),))
    dejavu_only = _fonts(pdf.render(latin))
    with_cjk = _fonts(pdf.render(chinese))
    assert dejavu_only and all("DejaVu" in name for name in dejavu_only), dejavu_only
    assert any("DejaVu" not in name for name in with_cjk), with_cjk


def test_pdf_embeds_the_monospace_font_only_for_inventory_rows() -> None:
    with_files = _fonts(pdf.render(records.replace(hostile_result(), files=(FileRecord("a.bin", 1, "a" * 64, "pickle"),))))
    without = _fonts(pdf.render(records.replace(hostile_result(), files=())))
    assert any("Mono" in name for name in with_files) and not any("Mono" in name for name in without), without


def test_inventory_and_findings_tables_keep_every_row_across_pages(tmp_path: Path) -> None:
    base = hostile_result()
    files = tuple(FileRecord(f"权重-{i:04d}/" + "long-folder/" * (i % 9) + f"part-{i}.bin", i, f"{i:064x}", "pickle")
                  for i in range(400))
    findings = tuple(records.replace(base.findings[0], file=f.path, title=f"finding number {i}")
                     for i, f in enumerate(files[:120]))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.render(
        records.replace(base, files=files, findings=findings)))).pages).replace("\n", "").replace(" ", "")
    for i, record in enumerate(files):
        assert record.sha256 in text, i
    for i in range(120):
        assert f"findingnumber{i}" in text, i
