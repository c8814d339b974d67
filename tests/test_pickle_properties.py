"""Property tests (hypothesis) of the pickle VM and the archive readers: on any bytes, and on
mutations of real pickles and zips, they never raise and always stay within their bounds."""
from __future__ import annotations

import io
import lzma
import pickle
import zipfile
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import Limits
from auditor.parsers import archive as arc
from auditor.parsers.budget import Budget
from auditor.parsers.decompress import drain
from auditor.parsers.picklevm import Bounds, analyze, analyze_all, find_pickles, render
from auditor.record import replace

SMALL = Bounds(max_opcodes=5_000, max_memo=500, max_stack=5_000, max_container=5_000)
SEED = pickle.dumps({"w": list(range(20)), "t": (1.5, b"xy", "z"), "s": {1, 2}}, protocol=4)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _zip_seed() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", SEED)
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


ZIP_SEED = _zip_seed()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@SETTINGS
@given(st.one_of(st.binary(max_size=2_000), mutated(SEED), mutated(SEED[2:])))
def test_vm_never_raises_and_stays_bounded(data: bytes) -> None:
    result = analyze(data, 0, SMALL)
    assert result.opcodes <= SMALL.max_opcodes + 1
    assert 0 <= result.end <= len(data)
    render(result.value)
    for call in result.calls:
        render(call.args)
    assert sum(a.opcodes for a in analyze_all(data, 0, SMALL, max_streams=4)) <= 4 * (SMALL.max_opcodes + 1)
    find_pickles(data, 0, None, SMALL, max_candidates=8)


@SETTINGS
@given(st.integers(1, 5_000))
def test_vm_budget_caps_opcodes_across_streams(cap: int) -> None:
    budget = Budget(opcodes=cap)
    data = pickle.dumps(list(range(3_000)), protocol=2)
    spent = sum(analyze(data, 0, replace(SMALL, max_opcodes=10_000_000, budget=budget)).opcodes for _ in range(3))
    assert spent <= cap + 3


@SETTINGS
@given(st.one_of(st.binary(max_size=3_000), mutated(ZIP_SEED)))
def test_zip_reader_never_raises_and_reads_bounded(data: bytes) -> None:
    limits = replace(Limits(), max_archive_members=50, max_decompressed_bytes=1 << 20)
    with arc.read_zip(data, limits) as archive:
        assert len(archive.members) <= 50 * arc.EMPTY_MEMBER_FACTOR
        for member in archive.members:
            try:
                out, _ = member.read(1 << 16)
            except (ValueError, OSError, EOFError, LookupError, zlib.error, lzma.LZMAError) as exc:
                # the scanner reports these as ARCHIVE-UNPARSEABLE
                assert str(exc) is not None
                continue
            assert len(out) <= 1 << 16


@SETTINGS
@given(st.sampled_from(["gzip", "bz2", "xz", "zlib", "zstd"]), st.data())
def test_stream_readers_report_instead_of_raising(kind: str, data: st.DataObject) -> None:
    import bz2
    import gzip

    import zstandard
    pack = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zlib": zlib.compress,
            "zstd": zstandard.ZstdCompressor().compress}[kind]
    raw = data.draw(mutated(pack(SEED)))
    archive = arc.read_stream(raw, kind, Limits())
    member = archive.members[0]
    try:
        out, _ = member.read(1 << 16)
    except (ValueError, OSError, EOFError, lzma.LZMAError, zlib.error, zstandard.ZstdError):
        return      # a corrupt stream: the scanner reports ARCHIVE-UNPARSEABLE
    assert len(out) <= 1 << 16
    assert all(p.kind in ("truncated", "trailing-data", "bomb") for p in member.problems)


def test_drain_caps_output_whatever_the_ratio() -> None:
    bomb = zlib.compress(b"\x00" * (32 << 20))
    out, cut, problem = drain(zlib.decompressobj, bomb, 1 << 20)
    assert len(out) == 1 << 20 and cut and not problem
