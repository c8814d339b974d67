"""The pickle scanner on the generated corpus (attacks.md A1-A3, A4 rows 26-29/35-36) and on benign
checkpoints written by torch, numpy, joblib, scikit-learn and dill; plus the proof that scanning the
whole malicious corpus executes nothing, and the modelscan engine through the real pipeline."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from auditor.model import Finding, Options, Severity
from auditor.scanners import pickle as pickle_scanner
from tests import pickle_corpus as corpus

MALICIOUS = [case for case, _ in corpus.MALICIOUS]
BENIGN = [case for case, _ in corpus.BENIGN]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test run and shared by the xdist workers (the recipe from pytest-xdist's docs)."""
    import fcntl
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "pickle-corpus"
    shared.mkdir(exist_ok=True)
    names = "\n".join(case.name for case in MALICIOUS + BENIGN)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / ".done"
        if not done.exists() or done.read_text() != names:
            corpus.build(shared)
            done.write_text(names)
    return shared


def scan(path: Path) -> list[Finding]:
    return pickle_scanner.scan_path(path)


def top(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


@pytest.mark.parametrize("case", MALICIOUS, ids=[c.name for c in MALICIOUS])
def test_every_malicious_case_is_critical_or_high(corpus_dir: Path, case: corpus.Case) -> None:
    findings = scan(corpus_dir / case.name)
    worst = top(findings)
    assert worst is not None and worst >= Severity.HIGH, (case.row, case.technique, findings)


@pytest.mark.parametrize("case", BENIGN, ids=[c.name for c in BENIGN])
def test_every_benign_checkpoint_is_clean(corpus_dir: Path, case: corpus.Case) -> None:
    findings = scan(corpus_dir / case.name)
    assert all(f.severity <= Severity.INFO for f in findings), findings


def test_corpus_covers_every_required_row() -> None:
    rows = {case.row.split("#")[0] + "#" + case.row.split("#")[1].rstrip("abcde") for case in MALICIOUS
            if "#" in case.row}
    required = {f"A1#{i}" for i in range(1, 7)} | {f"A2#{i}" for i in range(8, 18)} | \
        {f"A3#{i}" for i in (19, 20, 21, 22, 23, 25)} | {f"A4#{i}" for i in (26, 27, 28, 29, 35, 36)}
    assert required <= rows, required - rows


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def test_evidence_carries_the_exact_global_and_literal_args(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "a1_torch_exec.bin")
    (hit,) = [f for f in findings if f.rule == "PICKLE-GLOBAL-DANGEROUS"]
    assert hit.severity == Severity.CRITICAL
    assert hit.evidence.startswith("builtins.exec(\"open(")
    assert str(corpus_dir / corpus.MARKER_NAME) in hit.evidence
    assert hit.location.startswith("member archive/data.pkl, opcode #") and "@ byte" in hit.location


def test_nullifai_reports_payload_and_malformed_stream(corpus_dir: Path) -> None:
    for name in ("a1_nullifai_broken.pkl", "a2_nullifai.7z"):
        findings = scan(corpus_dir / name)
        assert {"PICKLE-GLOBAL-DANGEROUS", "PICKLE-UNPARSEABLE"} <= rules_of(findings), name
        broken = [f for f in findings if f.rule == "PICKLE-UNPARSEABLE"][0]
        assert broken.severity == Severity.HIGH and "nullifAI" in broken.evidence


@pytest.mark.parametrize("name,rule", [
    ("a2_name_mismatch.pt", "ARCHIVE-NAME-MISMATCH"), ("a2_flag_0x1.pt", "ARCHIVE-FLAG-BITS"),
    ("a2_flag_0x20.pt", "ARCHIVE-FLAG-BITS"), ("a2_flag_0x40.pt", "ARCHIVE-FLAG-BITS"),
    ("a2_crc.pt", "ARCHIVE-CRC-MISMATCH"), ("x_zip_traversal.zip", "ARCHIVE-PATH-TRAVERSAL"),
    ("x_zip_bomb.zip", "ARCHIVE-BOMB"),
])
def test_zip_tricks_are_findings_and_the_payload_is_still_found(corpus_dir: Path, name: str, rule: str) -> None:
    findings = scan(corpus_dir / name)
    assert rule in rules_of(findings)
    if name.startswith("a2_"):
        assert "PICKLE-GLOBAL-DANGEROUS" in rules_of(findings)


def test_universal_gadgets_are_computed_calls(corpus_dir: Path) -> None:
    for name in ("a3_importlib_getattr_join.pkl", "a2_resolve_name.pkl"):
        findings = scan(corpus_dir / name)
        computed = [f for f in findings if f.rule == "PICKLE-COMPUTED-CALL"]
        assert computed and all(f.severity == Severity.CRITICAL for f in computed), name


def test_build_on_global_is_critical(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "a3_numpy_builtins_build.pkl")
    build = [f for f in findings if f.rule == "PICKLE-BUILD-ON-GLOBAL"]
    assert build and "numpy.size" in build[0].evidence


def test_legacy_payload_in_the_fifth_pickle(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "a1_legacy_magic_eval.pt")
    locations = [f.location for f in findings if f.rule == "PICKLE-GLOBAL-DANGEROUS"]
    assert any(loc.startswith("pickle #5") for loc in locations)


def test_nested_base64_pickle_is_analysed(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "x_base64_nested.pkl")
    assert "PICKLE-NESTED" in rules_of(findings)
    nested = [f for f in findings if f.rule == "PICKLE-GLOBAL-DANGEROUS"]
    assert nested and "nested pickle (base64)" in nested[0].location


def test_torchscript_archive_is_flagged(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "a4_torchscript.pt")
    ts = [f for f in findings if f.rule == "TORCHSCRIPT-ARCHIVE"]
    assert ts and ts[0].severity == Severity.HIGH and "code/" in ts[0].evidence


def test_legacy_benign_checkpoint_reads_only_its_five_pickles(corpus_dir: Path) -> None:
    path = corpus_dir / "ok_state_dict_legacy.pt"
    from auditor.model import FileRecord
    from auditor.scanners.pickle_streams import FileState
    state = FileState(FileRecord(path.name, path.stat().st_size, "", "pickle"), pickle_scanner.DEFAULT_LIMITS)
    pickle_scanner.scan_file(path, "pickle", state)
    assert state.kind == "pytorch-legacy" and state.pickles == 5 and not state.findings


def test_non_pickle_with_pickle_extension_is_info_only(tmp_path: Path) -> None:
    png = tmp_path / "image.pt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    findings = scan(png)
    assert rules_of(findings) == {"PICKLE-NOT-PICKLE"} and top(findings) == Severity.INFO


def test_limits_hit_are_findings(tmp_path: Path) -> None:
    from auditor.record import replace
    path = tmp_path / "many.pkl"
    path.write_bytes(b"\x80\x02]" + b"K\x01a" * 2000 + b".")
    findings = pickle_scanner.scan_path(path, limits=replace(pickle_scanner.DEFAULT_LIMITS, max_pickle_opcodes=100))
    limit = [f for f in findings if f.rule == "PICKLE-LIMIT"]
    assert limit and limit[0].severity >= Severity.MEDIUM


# --- nothing executes ---------------------------------------------------------------------------

def _mentions_payload(code: object, depth: int = 0) -> bool:
    for const in getattr(code, "co_consts", ()):
        if isinstance(const, str) and (corpus.MARKER_NAME in const or "echo x" in const):
            return True
        if hasattr(const, "co_consts") and depth < 5 and _mentions_payload(const, depth + 1):
            return True
    return False


def test_scanning_the_malicious_corpus_executes_nothing(corpus_dir: Path) -> None:
    """Every payload would write the marker, run a command or open a socket; none of that may happen."""
    import threading

    import py7zr  # noqa: F401 - imported before the hook so its own module code is not mistaken for payloads
    events: list[tuple[str, str]] = []
    active = [False]
    scanning_thread = threading.get_ident()

    def hook(event: str, args: tuple) -> None:
        # only the thread that scans: pytest-xdist's own I/O thread is not under test
        if not active[0] or threading.get_ident() != scanning_thread:
            return
        if event == "exec":
            # the stdlib execs generated code too (dataclasses, namedtuple): only payload code counts
            code = args[0] if args else None
            if getattr(code, "co_filename", "") == "<string>" and _mentions_payload(code):
                events.append((event, repr(code)))
        elif event == "compile":
            source = args[0] if args else b""
            text = source.decode("latin-1") if isinstance(source, bytes) else str(source)
            if corpus.MARKER_NAME in text or "os.system" in text:
                events.append((event, text[:80]))
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn",
                       "socket.connect", "socket.getaddrinfo", "ctypes.dlopen", "webbrowser.open"):
            events.append((event, repr(args)[:120]))
        elif event == "open" and len(args) > 1 and isinstance(args[1], str) and any(m in args[1] for m in "wax+"):
            events.append((event, repr(args)[:120]))

    sys.addaudithook(hook)
    active[0] = True
    try:
        found = {case.name: scan(corpus_dir / case.name) for case in MALICIOUS}
    finally:
        active[0] = False
    assert not events, events
    assert not (corpus_dir / corpus.MARKER_NAME).exists()
    assert all(top(f) is not None for f in found.values())
    # control: the same hook does see a payload that really runs (our own, in a scratch folder)
    scratch = corpus_dir.parent / f"control-{os.getpid()}"
    scratch.mkdir(exist_ok=True)
    active[0] = True
    try:
        exec(compile(corpus.marker_code(scratch), "<string>", "exec"))  # noqa: S102 - the positive control
    finally:
        active[0] = False
    assert events and (scratch / corpus.MARKER_NAME).exists()


# --- in the real pipeline, with the modelscan engine ---------------------------------------------

def test_audit_pipeline_runs_both_engines(corpus_dir: Path, tmp_path: Path) -> None:
    from auditor.pipeline import audit
    folder = tmp_path / "repo"
    folder.mkdir()
    for name in ("a1_torch_exec.bin", "ok_sklearn.joblib", "a2_crc.pt"):
        shutil.copy(corpus_dir / name, folder / name)
    result = audit(str(folder), Options(engines=("auditor", "modelscan")))
    ours = [f for f in result.findings if f.scanner == "pickle"]
    theirs = [f for f in result.findings if f.engine == "modelscan"]
    assert any(f.file == "a1_torch_exec.bin" and f.rule == "PICKLE-GLOBAL-DANGEROUS" for f in ours)
    assert any(f.file == "a1_torch_exec.bin" and f.rule == "MODELSCAN-ISSUE" and "exec" in f.evidence
               for f in theirs)
    # only our engine sees through the CRC trick
    assert any(f.file == "a2_crc.pt" and f.rule == "PICKLE-GLOBAL-DANGEROUS" for f in ours)
    assert not any(f.file == "a2_crc.pt" and f.rule == "MODELSCAN-ISSUE" for f in theirs)
    assert all(f.severity <= Severity.INFO for f in result.findings
               if f.file == "ok_sklearn.joblib" and f.scanner in ("pickle", "modelscan"))
    assert result.facts["pickle"]["files"]["a1_torch_exec.bin"]["kind"] == "pytorch-zip"
    assert result.facts["modelscan"]["version"]
    passive = {c.id: c for c in result.claims}.get("passive-weights")
    assert passive is not None and passive.status.value == "refuted"
    # and with the second engine turned off, only ours reports
    alone = audit(str(folder), Options(engines=("auditor",)))
    assert not [f for f in alone.findings if f.engine == "modelscan"]
    assert any(f.rule == "PICKLE-GLOBAL-DANGEROUS" for f in alone.findings)


def test_torchscript_custom_operators_are_named(tmp_path: Path) -> None:
    code = b"def forward(self, x: Tensor) -> Tensor:\n  y = ops.aten.relu(x)\n  return ops.evil_ns.run(y)\n"
    path = tmp_path / "scripted.pt"
    path.write_bytes(corpus.torch_zip({"data.pkl": corpus.call("collections", "OrderedDict", proto=2),
                                       "code/__torch__/m.py": code, "constants.pkl": b"\x80\x02).}"}))
    findings = scan(path)
    custom = [f for f in findings if f.rule == "TORCHSCRIPT-CUSTOM-OP"]
    assert custom and "evil_ns.run" in custom[0].evidence and "aten" not in custom[0].evidence
    assert "TORCHSCRIPT-ARCHIVE" in rules_of(findings)


def test_joblib_array_bytes_read_as_opcodes_by_plain_pickle(corpus_dir: Path) -> None:
    findings = scan(corpus_dir / "a4_joblib_differential.pkl")
    plain = [f for f in findings if f.rule == "PICKLE-GLOBAL-DANGEROUS"]
    assert plain and plain[0].evidence.startswith("os.system") and "plain pickle.load" in plain[0].evidence


def test_protocol0_pickle_hidden_as_a_text_member(tmp_path: Path) -> None:
    payload = b"N0cos\nsystem\n(S'id'\ntR."          # pure ASCII: detected as text, runs as a pickle
    path = tmp_path / "model.zip"
    path.write_bytes(corpus.torch_zip({"notes.txt": payload, "readme.txt": b"Just text, nothing else.\n"}))
    findings = scan(path)
    hits = [f for f in findings if f.rule == "PICKLE-GLOBAL-DANGEROUS"]
    assert hits and hits[0].evidence.startswith("os.system('id',)") and "notes.txt" in hits[0].location
    assert not any("readme.txt" in f.location for f in findings)


def test_mutated_corpus_files_never_crash_the_scanner(corpus_dir: Path, tmp_path: Path) -> None:
    """Seeded mutations (bytes flipped, cut, inserted, truncated) of every corpus file: findings, never
    an exception."""
    import random
    rng = random.Random(20261129)
    sources = sorted(p for p in corpus_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                     and p.stat().st_size < 2_000_000)
    for i in range(300):
        source = rng.choice(sources)
        data = bytearray(source.read_bytes())
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.5:
                data[pos] = rng.randrange(256)
            elif roll < 0.7:
                del data[pos:pos + rng.randint(1, 64)]
            elif roll < 0.9:
                data[pos:pos] = rng.randbytes(rng.randint(1, 16))
            else:
                data = data[:max(pos, 1)]
        mutated = tmp_path / f"m{i}{source.suffix}"
        mutated.write_bytes(bytes(data))
        scan(mutated)          # must not raise
        mutated.unlink()


def test_a_code_folder_alone_is_not_torchscript(tmp_path: Path) -> None:
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("project/code/train.py", "print('hi')\n")
    path = tmp_path / "bundle.zip"
    path.write_bytes(buf.getvalue())
    assert "TORCHSCRIPT-ARCHIVE" not in rules_of(scan(path))
