"""auditor.archive: tolerant, bounded readers on real archives (zipfile, py7zr, tarfile, gzip...) and
on hand-patched ones; nothing is ever extracted to disk."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from auditor.model import Limits
from auditor.parsers import archive as arc
from auditor.record import replace
from tests.pickle_corpus import _patch_central_name, _patch_crc, _patch_flags, seven_zip


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def kinds(archive: arc.Archive) -> set[str]:
    return {a.kind for a in archive.anomalies}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
def test_clean_zip_reads_every_member_without_anomaly(compression: int, tmp_path: Path) -> None:
    members = {"a/data.pkl": b"\x80\x02K\x01.", "a/data/0": os.urandom(3000), "b.txt": b"hello" * 100}
    path = tmp_path / "x.zip"
    path.write_bytes(make_zip(members, compression))
    with arc.read_zip(path) as archive:
        assert not archive.anomalies, archive.anomalies
        got = {m.name: m.read(1 << 20)[0] for m in archive.members}
        assert got == members
        assert all(m.crc == zlib.crc32(members[m.name]) for m in archive.members)
        first = next(m for m in archive.members if m.name == "b.txt")
        assert first.head(5) == b"hello"


def test_bounded_read_reports_truncation() -> None:
    data = make_zip({"big": b"x" * 100_000}, zipfile.ZIP_DEFLATED)
    with arc.read_zip(data) as archive:
        out, truncated = archive.members[0].read(1000)
    assert len(out) == 1000 and truncated


def test_name_mismatch_is_an_anomaly_and_both_names_are_kept() -> None:
    data = _patch_central_name(make_zip({"archive/data.pkl": b"\x80\x02K\x01."}), "archive/data.pkl",
                               "archive/datap.kl")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data)).read("archive/datap.kl")   # the strict reader gives up
    with arc.read_zip(data) as archive:
        assert "name-mismatch" in kinds(archive)
        (member,) = archive.members
        assert member.name == "archive/data.pkl" and member.alt_names == ("archive/datap.kl",)
        assert member.read(100)[0] == b"\x80\x02K\x01."


@pytest.mark.parametrize("bits", [0x1, 0x20, 0x40])
def test_flag_bits_are_anomalies_and_data_is_still_read(bits: int) -> None:
    data = _patch_flags(make_zip({"d.pkl": b"\x80\x02K\x07."}), "d.pkl", bits)
    with arc.read_zip(data) as archive:
        assert "flag-bits" in kinds(archive)
        assert archive.members[0].read(100)[0] == b"\x80\x02K\x07."


def test_crc_mismatch_is_visible_to_callers() -> None:
    data = _patch_crc(make_zip({"d.pkl": b"\x80\x02K\x07."}))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data)).read("d.pkl")
    with arc.read_zip(data) as archive:
        member = archive.members[0]
        payload, _ = member.read(100)
        assert payload == b"\x80\x02K\x07." and zlib.crc32(payload) != member.crc


def test_member_hidden_from_the_central_directory() -> None:
    visible = make_zip({"ok.txt": b"fine"})
    # A second local header appended before the directory, not listed in it.
    hidden = make_zip({"evil.pkl": b"\x80\x02K\x01."})
    cd = visible.find(b"PK\x01\x02")
    local_hidden = hidden[:hidden.find(b"PK\x01\x02")]
    shift = len(local_hidden)
    eocd = visible.rfind(b"PK\x05\x06")
    tail = bytearray(visible[cd:])
    rel = eocd - cd
    old_offset = struct.unpack("<I", tail[rel + 16:rel + 20])[0]
    tail[rel + 16:rel + 20] = struct.pack("<I", old_offset + shift)
    data = visible[:cd] + local_hidden + bytes(tail)
    with arc.read_zip(data) as archive:
        assert "hidden-member" in kinds(archive)
        assert {m.name for m in archive.members} == {"ok.txt", "evil.pkl"}


def test_no_central_directory_falls_back_to_local_headers() -> None:
    data = make_zip({"a.pkl": b"\x80\x02K\x01.", "b.pkl": b"\x80\x02K\x02."})
    data = data[:data.find(b"PK\x01\x02")]
    with arc.read_zip(data) as archive:
        assert "no-central-directory" in kinds(archive)
        assert [m.read(10)[0] for m in archive.members] == [b"\x80\x02K\x01.", b"\x80\x02K\x02."]


def test_data_descriptor_members_without_directory(tmp_path: Path) -> None:
    class Unseekable:          # like a pipe: zipfile must write sizes in a data descriptor
        def __init__(self) -> None:
            self.buf = io.BytesIO()

        def write(self, b: bytes) -> int:
            return self.buf.write(b)

        def flush(self) -> None:
            pass
    raw = Unseekable()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("s.pkl", "w") as fh:  # type: ignore[arg-type]
        fh.write(b"\x80\x02K\x05.")
    data = raw.buf.getvalue()
    with arc.read_zip(data) as archive:
        assert archive.members[0].flags & arc.FLAG_DESCRIPTOR
        assert archive.members[0].read(100)[0] == b"\x80\x02K\x05."
    with arc.read_zip(data[:data.find(b"PK\x01\x02")]) as archive:
        assert archive.members[0].read(100)[0] == b"\x80\x02K\x05."


def test_path_traversal_and_duplicates() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../etc/x", b"1")
        zf.writestr("/abs", b"2")
        zf.writestr("dup", b"3")
        with pytest.warns(UserWarning):
            zf.writestr("dup", b"4")
    with arc.read_zip(buf.getvalue()) as archive:
        traversal = [a.member for a in archive.anomalies if a.kind == "path-traversal"]
        assert set(traversal) == {"../../etc/x", "/abs"}
        assert "duplicate-name" in kinds(archive)


def test_zip_bomb_by_ratio_and_by_total() -> None:
    data = make_zip({"z": b"\x00" * (20 * 1024 * 1024)}, zipfile.ZIP_DEFLATED)
    with arc.read_zip(data) as archive:
        assert "bomb" in kinds(archive)
        out, truncated = archive.members[0].read(4096)
        assert len(out) == 4096 and truncated       # never more than asked for
    small = replace(Limits(), max_decompressed_bytes=10)
    with arc.read_zip(make_zip({"a": b"x" * 100}), small) as archive:
        assert "bomb" in kinds(archive)


def test_member_count_limit() -> None:
    data = make_zip({f"m{i}": b"x" for i in range(20)})
    with arc.read_zip(data, replace(Limits(), max_archive_members=5)) as archive:
        assert "limit" in kinds(archive) and len(archive.members) <= 5


def test_truncated_zip_is_an_anomaly_not_a_crash() -> None:
    data = make_zip({"a.pkl": b"\x80\x02" + b"K\x01" * 1000 + b"."})
    with arc.read_zip(data[:200]) as archive:
        assert kinds(archive) & {"truncated", "no-central-directory"}


def test_seven_zip_members_in_memory() -> None:
    data = seven_zip("archive/data.pkl", b"\x80\x02K\x01.")
    with arc.open_archive(data, "7z") as archive:
        assert [(m.name, m.read(100)[0]) for m in archive.members] == [("archive/data.pkl", b"\x80\x02K\x01.")]


def test_seven_zip_garbage_is_unreadable() -> None:
    with arc.open_archive(b"7z\xbc\xaf\x27\x1c" + b"\x00" * 40, "7z") as archive:
        assert "unreadable" in kinds(archive)


def test_tar_members_links_and_traversal(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("ok/data.pkl", b"\x80\x02K\x01."), ("../up.pkl", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("ok/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    path = tmp_path / "t.tar"
    path.write_bytes(buf.getvalue())
    with arc.open_archive(path, "tar") as archive:
        traversal = {a.member for a in archive.anomalies if a.kind == "path-traversal"}
        assert traversal == {"../up.pkl", "ok/link"}
        assert archive.members[0].read(100)[0] == b"\x80\x02K\x01."


@pytest.mark.parametrize("kind,compress", [
    ("gzip", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress), ("zlib", zlib.compress),
])
def test_single_stream_wrappers(kind: str, compress, tmp_path: Path) -> None:
    payload = b"\x80\x02" + b"K\x01" * 5000 + b"."
    path = tmp_path / f"model.pkl{arc.STREAM_SUFFIX[kind]}"
    path.write_bytes(compress(payload))
    with arc.open_archive(path, kind) as archive:
        (member,) = archive.members
        assert member.name == "model.pkl"
        assert member.read(1 << 20) == (payload, False)
        assert member.read(10) == (payload[:10], True)


def test_zstd_stream() -> None:
    import zstandard
    payload = b"\x80\x04K\x01."
    with arc.open_archive(zstandard.ZstdCompressor().compress(payload), "zstd") as archive:
        assert archive.members[0].read(100) == (payload, False)


@pytest.mark.parametrize("name,why", [("a/../../b", "parent"), ("/etc/x", "absolute"), ("C:\\x", "absolute"),
                                      ("a\x00b", "NUL"), ("ok/fine.pkl", "")])
def test_unsafe_name(name: str, why: str) -> None:
    assert (why in arc.unsafe_name(name)) if why else arc.unsafe_name(name) == ""


def test_large_stored_member_is_not_read_for_its_head(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data/0", b"\x01" * (8 * 1024 * 1024))
    with arc.read_zip(path) as archive:
        member = archive.members[0]
        assert member.head(16) == b"\x01" * 16
        assert member.size == 8 * 1024 * 1024 and member.offset > 0


def test_zip64_extra_fields_are_read() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("archive/data.pkl", "w", force_zip64=True) as fh:
            fh.write(b"\x80\x02K\x01.")
        zf.writestr("archive/version", b"3\n")
    with arc.read_zip(buf.getvalue()) as archive:
        assert not archive.anomalies, archive.anomalies
        got = {m.name: m.read(100)[0] for m in archive.members}
    assert got == {"archive/data.pkl": b"\x80\x02K\x01.", "archive/version": b"3\n"}


def test_real_torch_checkpoint_members_and_offsets(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(300, dtype=torch.float32)}, path)
    with arc.read_zip(path) as archive, zipfile.ZipFile(path) as strict:
        assert not archive.anomalies
        assert sorted(m.name for m in archive.members) == sorted(strict.namelist())
        for member in archive.members:
            assert member.read(1 << 20)[0] == strict.read(member.name)
