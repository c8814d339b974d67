"""The PDF's own writer checked against independent readers: its TrueType reading and subsetting against
fontTools, its file structure against its own cross-reference table and pypdf in strict mode, and the forked
attachments against the documents rendered in this process (and when a child fails or is stopped)."""
from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from fontTools import ttLib
from pypdf import PdfReader
from reports_sample import hostile_result

from auditor import record as records
from auditor.model import FileRecord
from auditor.reports import cyclonedx, json_report, pdf, pdf_attach, view
from auditor.reports.pdf_font import TrueType, has_outlines
from auditor.rules import data_dir

SAMPLE = "Hello, world · données модель 权重文件 通义千问 …•—ﬁ Å"


def _fonts() -> list[Path]:
    shipped = sorted((data_dir("reports") / "fonts").glob("*.ttf"))
    return shipped + ([Path(pdf.cjk_font())] if pdf.cjk_font() else [])


@pytest.mark.parametrize("path", _fonts(), ids=lambda p: p.name)
def test_cmap_and_widths_are_what_fonttools_reads(path: Path) -> None:
    font = TrueType(path, "f")
    reference = ttLib.TTFont(path, fontNumber=0, lazy=True)
    order = reference.getGlyphOrder()
    best = reference.getBestCmap()
    assert best and all(font.cmap.get(code) == reference.getGlyphID(name) for code, name in best.items())
    assert not any(code in font.cmap for code in range(0, 0x30000, 7) if code not in best)
    metrics = reference["hmtx"].metrics
    upm = reference["head"].unitsPerEm
    assert all(font.width(gid) == round(metrics[name][0] * 1000 / upm) for gid, name in enumerate(order))


@pytest.mark.parametrize("path", _fonts(), ids=lambda p: p.name)
def test_the_subset_keeps_every_used_glyph_and_its_components(path: Path, tmp_path: Path) -> None:
    font = TrueType(path, "f")
    reference = ttLib.TTFont(path, fontNumber=0)
    for ch in SAMPLE:
        gid = font.cmap.get(ord(ch))
        if gid:
            font.used[gid] = ord(ch)
    composite = next((gid for gid, name in enumerate(reference.getGlyphOrder())
                      if reference["glyf"][name].isComposite()), None)
    if composite is not None:
        font.used[composite] = 0
    data = font.subset()
    words = struct.unpack(f">{len(data) // 4}I", data + b"\0" * (-len(data) % 4))
    assert sum(words) & 0xFFFFFFFF == 0xB1B0AFBA            # head.checkSumAdjustment makes the file sum right
    (tmp_path / "s.ttf").write_bytes(data)
    subset = ttLib.TTFont(tmp_path / "s.ttf")
    original, kept = reference.getGlyphOrder(), subset.getGlyphOrder()
    needed = font.closure()
    assert composite is None or set(reference["glyf"][original[composite]].getComponentNames(reference["glyf"])) <= {
        original[g] for g in needed}
    for gid in needed:                                      # same outline, same advance, same glyph id
        before, after = reference["glyf"][original[gid]], subset["glyf"][kept[gid]]
        assert before.getCoordinates(reference["glyf"])[0] == after.getCoordinates(subset["glyf"])[0], gid
        assert reference["hmtx"].metrics[original[gid]][0] == subset["hmtx"].metrics[kept[gid]][0]
    unused = next(g for g in range(len(kept)) if g not in needed)
    assert subset["glyf"][kept[unused]].numberOfContours == 0
    assert len(data) < len(path.read_bytes()) / 2


def _big_result(n: int):  # type: ignore[no-untyped-def]
    base = hostile_result()
    files = tuple(FileRecord(f"权重-{i:04d}/part-{i}.bin", i, f"{i:064x}", "pickle") for i in range(n))
    return records.replace(base, files=base.files + files)


def test_every_cross_reference_points_at_its_object_and_pypdf_reads_it_strictly() -> None:
    data = pdf.render(_big_result(50))
    start = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))  # type: ignore[union-attr]
    table = data[start:].split(b"trailer")[0].split(b"\n")
    first, count = map(int, table[1].split())
    rows = table[2:2 + count]
    assert first == 0 and rows[0].startswith(b"0000000000 65535 f")
    for number, row in enumerate(rows[1:], start=1):
        offset = int(row[:10])
        assert data[offset:offset + 20].startswith(f"{number} 0 obj\n".encode()), number
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) >= 2 and reader.pages[0].extract_text()
    assert reader.trailer["/ID"][0] == reader.trailer["/ID"][1]
    catalog = reader.trailer["/Root"]
    assert catalog["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    assert b"<pdfaid:part>3</pdfaid:part>" in data and b"<pdfaid:conformance>B</pdfaid:conformance>" in data
    assert len(catalog["/AF"]) == 2


def test_qpdf_finds_no_syntax_or_stream_error(tmp_path: Path) -> None:
    if shutil.which("qpdf") is None:
        pytest.fail("qpdf is missing: apt-get install qpdf (see .ci/run)")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf.render(_big_result(400)))
    proc = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "No syntax or stream encoding errors" in proc.stdout, proc.stdout + proc.stderr


def _attached(data: bytes) -> dict[str, bytes]:
    return {name: content[0] for name, content in PdfReader(io.BytesIO(data)).attachments.items()}


def test_forked_attachments_are_the_documents_rendered_here(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result(300)
    expected = {"auditor-result.json": json_report.render(result).encode(),
                "bom.cdx.json": cyclonedx.render(result).encode()}
    monkeypatch.setattr(pdf_attach, "FORK_FILES", 10**9)
    assert _attached(pdf.render(result)) == expected             # in this process
    monkeypatch.setattr(pdf_attach, "FORK_FILES", 0)
    forks = []
    real_fork = os.fork

    def counted() -> int:
        pid = real_fork()
        forks.append(pid)
        return pid
    monkeypatch.setattr(os, "fork", counted)
    assert _attached(pdf.render(result)) == expected             # by two children
    assert len(forks) == 2


def test_a_child_that_fails_is_replaced_by_rendering_here(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result(100)
    parent = os.getpid()
    real_write = pdf_attach.write

    def failing_in_the_child(pieces, out):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        real_write(pieces, out)
    monkeypatch.setattr(pdf_attach, "FORK_FILES", 0)
    monkeypatch.setattr(pdf_attach, "write", failing_in_the_child)
    attached = _attached(pdf.render(result))
    assert attached["auditor-result.json"] == json_report.render(result).encode()
    assert attached["bom.cdx.json"] == cyclonedx.render(result).encode()


def test_a_pdf_that_fails_stops_and_reaps_its_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_attach, "FORK_FILES", 0)
    attachments = pdf_attach.Attachments(_big_result(2000)).start()
    pids = [child.pid for child in attachments.children]
    assert all(pids)
    attachments.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _shown_codes(data: bytes) -> list[int]:
    """Every 2-byte code the pages' text operators show."""
    codes = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for m in re.finditer(rb"\(((?:\\.|[^\\)])*)\) Tj", page.get_contents().get_data(), re.S):
            raw = re.sub(rb"\\(.)", lambda x: b"\r" if x.group(1) == b"r" else x.group(1), m.group(1))
            codes += [raw[i] * 256 + raw[i + 1] for i in range(0, len(raw), 2)]
    return codes


def test_a_character_without_a_font_is_left_out_never_shown_as_notdef(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "CJK_FONTS", ())
    pdf.cjk_font.cache_clear()
    try:
        result = records.replace(hostile_result(), files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),))
        data = pdf.render(result)
    finally:
        pdf.cjk_font.cache_clear()
    codes = _shown_codes(data)
    assert codes and 0 not in codes                  # PDF/A-2/3: no reference to .notdef from a text operator
    for page in PdfReader(io.BytesIO(data)).pages:   # every font a page selects is one of its resources
        selected = set(re.findall(rb"/(F\w+) [\d.]+ Tf", page.get_contents().get_data()))
        assert selected and {f"/{n.decode()}" for n in selected} <= set(page["/Resources"]["/Font"])
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "U+6743" in text and "REPORT-GLYPHS-MISSING" in text


def test_no_fork_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    monkeypatch.setattr(pdf_attach, "FORK_FILES", 0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        attachments = pdf_attach.Attachments(_big_result(10)).start()
        assert not any(child.pid for child in attachments.children)
        names = [a.name for a in attachments.finish()]
        attachments.close()
    finally:
        stop.set()
        other.join()
    assert names == ["auditor-result.json", "bom.cdx.json"]


def test_a_cff_font_is_never_chosen_as_the_cjk_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen
    builder = FontBuilder(1000, isTTF=False)                 # OpenType with CFF outlines, as Noto Sans CJK is
    builder.setupGlyphOrder([".notdef", "uni6743"])
    builder.setupCharacterMap({0x6743: "uni6743"})
    pen = T2CharStringPen(500, None)
    pen.moveTo((0, 0))
    pen.lineTo((400, 700))
    pen.closePath()
    builder.setupCFF("Cff", {"FullName": "Cff"}, {".notdef": pen.getCharString(), "uni6743": pen.getCharString()}, {})
    builder.setupHorizontalMetrics({".notdef": (500, 0), "uni6743": (500, 0)})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Cff", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    cff = tmp_path / "cff.otf"
    builder.save(str(cff))
    assert not has_outlines(cff) and has_outlines(_fonts()[0])
    monkeypatch.setattr(pdf, "CJK_FONTS", (str(cff), *pdf.CJK_FONTS))
    pdf.cjk_font.cache_clear()
    try:
        chosen = pdf.cjk_font()
    finally:
        pdf.cjk_font.cache_clear()
    assert chosen != str(cff)
    if chosen:
        assert "权" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.render(records.replace(
            hostile_result(), files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),))))).pages)


def _text_for(result):  # type: ignore[no-untyped-def]
    from auditor.reports.pdf_grid import Text
    report = pdf._Report(result)
    return Text(report.doc, "mono", 6, report.fallbacks)


def _drawn(ops: str, fonts: dict) -> str:  # type: ignore[type-arg]
    """The text a sequence of Tf / Tj operators draws, read back through each font's glyph -> code map."""
    out, font = [], None
    for m in re.finditer(r"/F(\w+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj", ops, re.S):
        if m.group(1):
            font = fonts[m.group(1)]
            continue
        raw = re.sub(r"\\(.)", lambda x: "\r" if x.group(1) == "r" else x.group(1), m.group(2)).encode("latin-1")
        gids = [raw[i] * 256 + raw[i + 1] for i in range(0, len(raw), 2)]
        assert font is not None and 0 not in gids
        out += [chr(font.used[g]) for g in gids]
    return "".join(out)


def test_show_switches_font_only_around_the_characters_that_need_it() -> None:
    result = records.replace(hostile_result(), files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),))
    text = _text_for(result)
    mono = text.fonts[0]
    regular_only = next(chr(c) for c in range(0x100, 0x3000) if c in text.fonts[1].cmap and c not in mono.cmap)
    samples = ["ab(c)\\d", "données модель", f"权重{regular_only}x{regular_only}{regular_only}权/模型 (1).bin",
               f"{regular_only}权", "\u0007权\u0007", "", "EFy*"]      # EFy*: glyph ids 0x28, 0x29, 0x5C, 0x0D
    for sample in samples:
        state: list = [None]  # type: ignore[type-arg]
        ops = text.show(10, 20, sample, state)
        assert state[0] == (mono.key, 6)                         # the first font selected when it returns
        expected = "".join(ch for ch in sample if any(ord(ch) in f.cmap for f in text.fonts))
        assert _drawn(ops, text.doc.fonts) == expected, sample
        assert (" () Tj" not in ops or not sample) and not ops.count("Tf") > 2 * sum(ord(ch) > 0x7E for ch in sample) + 1


def test_many_ascii_texts_encoded_at_once_are_each_encoded_alone() -> None:
    text = _text_for(hostile_result())
    samples = ["", "EFy*", "()\\", "a" * 300, "", "path/to/model (2).bin", " ", "sha256 " + "0f" * 32, ""]
    assert text.byte_table
    assert text.codes_many(samples) == [text.codes(s) for s in samples]
    assert text.codes_many(["a\u0007b", "c"]) != [text.codes(s) for s in ("a\u0007b", "c")]   # the caller's check


def _mixed_samples(text) -> list[str]:  # type: ignore[no-untyped-def]
    regular_only = next(chr(c) for c in range(0x100, 0x3000) if c in text.fonts[1].cmap and c not in text.fonts[0].cmap)
    return ["", "EFy*", "données модель", "权重/模型 (1).bin", "a\u0007b", f"{regular_only}权{regular_only}",
            "()\\", "权", "sha256 " + "0f" * 32, "\u0007权\u0007", "x" * 200, ""]


def test_texts_encoded_together_are_each_encoded_alone() -> None:
    text = _text_for(records.replace(hostile_result(), files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),)))
    samples = _mixed_samples(text)
    alone = [text.body(s) for s in samples]
    assert text.bodies(samples) == alone
    assert text.bodies([s for s in samples if s.isascii()]) == [b for s, b in zip(samples, alone, strict=True) if s.isascii()]
    for sample, body in zip(samples, alone, strict=True):
        expected = "".join(ch for ch in sample if any(ord(ch) in f.cmap for f in text.fonts))
        assert _drawn(f"/F{text.fonts[0].key} 6 Tf ({body}) Tj", text.doc.fonts) == expected, sample


def test_a_cut_line_is_the_longest_that_fits_and_no_character_is_lost() -> None:
    text = _text_for(records.replace(hostile_result(), files=(FileRecord("权重/模型.bin", 1, "a" * 64, "pickle"),)))
    room = text.units(20)
    for sample in _mixed_samples(text) + ["权" * 40 + "a" * 40, "i" + "权" * 3, "W" * 13]:
        lines = text.cut(sample, room)
        assert "".join(lines) == sample
        for line, after in zip(lines, lines[1:], strict=False):
            assert text.width(line) <= room or len(line) == 1
            assert text.width(line + after[0]) > room


def _inventory_rows(path: Path) -> list[list[str]]:
    """The inventory as pdftotext -layout reads it: [path, format, size, sha256] a row, a wrapped path's lines
    (on this page or the next ones) joined back."""
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    rows: list[list[str]] = []
    for line in text[text.index("File inventory"):].splitlines():
        cells = line.split()
        if len(cells) == 5 and re.fullmatch("[0-9a-f]{64}", cells[4]):
            rows.append([cells[0], cells[1], f"{cells[2]} {cells[3]}", cells[4]])
        elif len(cells) == 1 and rows:
            rows[-1][0] += cells[0]
    return rows


def test_inventory_rows_of_every_script_read_back_in_order(tmp_path: Path) -> None:
    """Rows mixing ASCII, Latin, Cyrillic and CJK paths (some wrapped onto more lines, one longer than a page):
    each row reads back whole, its cells on its first line, in path order."""
    if not pdf.cjk_font():
        pytest.skip("no CJK font installed (fonts-wqy-microhei)")
    paths = [f"{i:03d}-" + ("权重/模型-" if i % 3 == 0 else "модель/données-" if i % 3 == 1 else "plain/")
             + ("deep-folder/" * (i % 7)) + f"file-{i}.bin" for i in range(150)]
    paths.append("".join(f"{i:04d}/" for i in range(1400)) + "longer-than-a-page.bin")
    files = tuple(FileRecord(p, 1000 + i, f"{i:064x}", "pickle") for i, p in enumerate(paths))
    out = tmp_path / "r.pdf"
    out.write_bytes(pdf.render(records.replace(hostile_result(), files=files)))
    assert _inventory_rows(out) == [[f.path, f.format, view.human_size(f.size), f.sha256]
                                    for f in sorted(files, key=lambda f: f.path)]


def test_an_inventory_that_starts_at_the_bottom_of_a_page_starts_on_the_next() -> None:
    result = records.replace(hostile_result(), files=tuple(FileRecord(f"f{i}.bin", i, "a" * 64, "pickle")
                                                               for i in range(3)))
    report = pdf._Report(result)
    report.doc.add_page()
    report.doc.y = report.doc.page_break_trigger - 1
    report.file_grid(list(result.files))
    assert len(report.doc.pages) == 2
    assert "Td" not in "\n".join(report.doc.pages[0]) and "Td" in "\n".join(report.doc.pages[1])
