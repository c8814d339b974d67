"""The `auditor` command end to end, in a child process: exit codes, one-line errors, atomic outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.conftest import run_cli


def _one_line_error(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and "auditor, version" in proc.stdout


def test_missing_path_is_one_line_exit_2(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("scan", str(tmp_path / "nope")))
    assert "no such file or folder" in line


def test_unknown_format_and_policy_are_clear_errors(tmp_path: Path) -> None:
    assert "unknown policy" in _one_line_error(run_cli("scan", str(tmp_path), "--policy", "nonesuch"))
    proc = run_cli("scan", str(tmp_path), "--format", "docx")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_output_into_missing_folder_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    target = tmp_path / "missing" / "report.json"
    assert "does not exist" in _one_line_error(run_cli("scan", str(tmp_path / "m"), "-o", str(target)))
    assert not target.parent.exists()


def test_failed_scan_does_not_overwrite_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("previous report")
    _one_line_error(run_cli("scan", str(tmp_path / "nope"), "-o", str(out)))
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_empty_folder_is_a_finding_not_a_pass(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    (tmp_path / "empty").mkdir()
    proc = run_cli("scan", str(tmp_path / "empty"), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [f["rule"] for f in report["findings"]] == ["INVENTORY-EMPTY"]
    assert report["verdict"]["decision"] == "warn"
    assert all(c["status"] != "supported" for c in report["claims"])


def test_odd_file_names_and_zero_byte_file(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    names = ["spa ce.json", "new\nline.txt", "модель.txt", "-dash.json", "quote'\".txt", "tab\tname.md"]
    for name in names:
        (model / name).write_text("{}")
    (model / "zero.bin").write_bytes(b"")
    out = tmp_path / "r.json"
    proc = run_cli("scan", str(model), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert sorted(f["path"] for f in report["files"]) == sorted(names + ["zero.bin"])
    assert any(f["rule"] == "INVENTORY-EMPTY-FILE" and f["file"] == "zero.bin" for f in report["findings"])


def test_single_file_target(tmp_path: Path) -> None:
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "other.json").write_text("{}")
    proc = run_cli("scan", str(tmp_path / "model.safetensors"), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [f["path"] for f in report["files"]] == ["model.safetensors"]
    assert report["snapshot"]["kind"] == "local-file"


def test_json_report_shape(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    report = json.loads(run_cli("scan", str(tmp_path), "-q").stdout)
    assert report["schema"] == "auditor.report/v1"
    assert {"schema", "tool", "target", "snapshot", "files", "findings", "verdict", "claims",
            "timings"} <= set(report)
    assert report["tool"]["name"] == "auditor"
    assert set(report["files"][0]) >= {"path", "size", "sha256", "format"}
    for claim in report["claims"]:
        assert claim["status"] in ("supported", "refuted", "not assessed")
        assert set(claim) == {"id", "title", "status", "evidence", "reason"}


def test_rules_lists_every_rule() -> None:
    from auditor import rules
    proc = run_cli("rules")
    assert proc.returncode == 0
    for rule_id in rules.catalog():
        assert rule_id in proc.stdout
    listed = json.loads(run_cli("rules", "--format", "json").stdout)
    assert {r["id"] for r in listed} == set(rules.catalog())
    assert all(r["severity"] in ("info", "low", "medium", "high", "critical") for r in listed)


def test_quiet_and_non_tty_print_no_progress(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    proc = run_cli("scan", str(tmp_path), "-q", "-o", str(tmp_path / "r.json"))
    assert proc.stderr == ""
    proc = run_cli("scan", str(tmp_path), "-o", str(tmp_path / "r.json"))
    assert "hashing" not in proc.stderr and "PASS" in proc.stderr


def test_output_to_a_fifo_writes_through_and_keeps_the_node(tmp_path: Path) -> None:
    import os
    import stat
    import threading

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = run_cli("scan", str(tmp_path / "m"), "-q", "-o", str(fifo))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(received[0])["schema"] == "auditor.report/v1"


def test_no_modelscan_runs_only_our_engine(tmp_path: Path) -> None:
    import pickle
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    both = json.loads(run_cli("scan", str(tmp_path / "m"), "-q").stdout)
    ours = json.loads(run_cli("scan", str(tmp_path / "m"), "-q", "--no-modelscan").stdout)
    assert "modelscan" in both["facts"] and "modelscan" not in ours["facts"]


def test_a_missing_relative_path_that_looks_like_a_repo_id_says_both(tmp_path: Path) -> None:
    import os
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "AUDITOR_HUB_TIMEOUT": "5"}
    line = _one_line_error(run_cli("scan", "models/missing", cwd=tmp_path, env=env))
    assert "no local file or folder is named models/missing" in line


# -- terminal-first output ------------------------------------------------------------------------

def _model(folder: Path) -> Path:
    from auditor.workflows import demo
    return demo.build_clean(folder)


def _run_on_a_tty(*args: str, cwd: Path | None = None) -> tuple[int, bytes]:
    """The real CLI with its stdout on a pseudo-terminal, as a user at a shell sees it."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "auditor", *args], stdout=follower, stderr=subprocess.PIPE,
                            cwd=cwd)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return proc.returncode, b"".join(chunks)


def test_a_terminal_gets_a_summary_a_pipe_gets_json_and_binary_never_reaches_a_terminal(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    code, shown = _run_on_a_tty("scan", str(model))
    assert code == 0 and b"PASS" in shown and b"claim integrity" in shown and not shown.lstrip().startswith(b"{")
    piped = run_cli("scan", str(model))
    assert json.loads(piped.stdout)["schema"] == "auditor.report/v1"
    code, shown = _run_on_a_tty("scan", str(model), "--format", "pdf")
    assert code == 2 and b"%PDF" not in shown


def test_the_format_follows_the_output_extension(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    for name, check in (("r.pdf", lambda b: b.startswith(b"%PDF-")),
                        ("r.cdx.json", lambda b: json.loads(b)["bomFormat"] == "CycloneDX"),
                        ("r.sarif", lambda b: json.loads(b)["version"] == "2.1.0"),
                        ("r.html", lambda b: b.lstrip().lower().startswith(b"<!doctype html")),
                        ("r.md", lambda b: b.startswith(b"## auditor")),
                        ("r.json", lambda b: json.loads(b)["schema"] == "auditor.report/v1")):
        proc = run_cli("scan", str(model), "-q", "-o", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        assert check((tmp_path / name).read_bytes()), name


def test_several_targets_in_one_scan(tmp_path: Path) -> None:
    a, b = _model(tmp_path / "a"), _model(tmp_path / "b")
    (b / "preview.png").write_text("text, not a picture\n")
    piped = run_cli("scan", str(a), str(b), "--policy", "strict")
    assert piped.returncode == 1, piped.stderr                   # b fails under strict
    reports = json.loads(piped.stdout)
    assert [r["verdict"]["decision"] for r in reports] == ["pass", "fail"]
    out = tmp_path / "reports"
    assert run_cli("scan", str(a), str(b), "-q", "-o", str(out), "--format", "sarif").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.sarif", "b.sarif"]


def test_help_is_whole_with_presets_examples_and_exit_codes() -> None:
    top = run_cli("--help").stdout
    assert "Build small sample model repos with the real libraries, audit them, write the reports to DIRECTORY." in top
    assert "..." not in top.split("Commands:")[1].split("Examples:")[0]
    scan = run_cli("scan", "--help").stdout
    assert "Preset (default, no-direct-connection, strict) or a policy YAML file." in scan
    assert "Exit codes:" in scan and "Examples:" in scan and "auditor scan ./a ./b ./c -o reports/" in scan
    assert "Exit codes:" in run_cli("ci", "--help").stdout


# -- the Python API -------------------------------------------------------------------------------

def test_the_python_api_is_stable_typed_and_round_trips(tmp_path: Path) -> None:
    import importlib.resources

    import auditor
    from auditor.reports import json_report
    model = _model(tmp_path / "m")
    first = auditor.audit(str(model))
    second = auditor.audit(str(model), auditor.Options(policy="strict"))     # the function, not a module
    assert first.verdict.decision == "pass" and second.verdict.policy == "strict"
    assert isinstance(first, auditor.AuditResult) and all(isinstance(f, auditor.Finding) for f in first.findings)
    assert {"audit", "Options", "AuditResult", "AuditorError", "Finding", "Severity"} <= set(auditor.__all__)
    data = first.to_dict()
    assert data["schema"] == "auditor.report/v1" and data == json_report.to_dict(first)
    again = auditor.AuditResult.from_dict(json.loads(json.dumps(data)))
    assert json.loads(json.dumps(again.to_dict())) == json.loads(json.dumps(data))
    try:
        auditor.audit(str(tmp_path / "missing"))
    except auditor.AuditorError as exc:
        assert "no such file or folder" in str(exc)
    else:
        raise AssertionError("a missing target must raise AuditorError")
    assert importlib.resources.files("auditor").joinpath("py.typed").is_file()


# -- output that survives its environment ---------------------------------------------------------

def test_a_cp1252_console_and_file_names_of_any_bytes(tmp_path: Path) -> None:
    import os

    model = _model(tmp_path / "m")
    (model / "模型说明.md").write_text("中文说明：本模型仅供研究使用。\n", encoding="utf-8")
    raw_name = b"w\xff\xfe-\xe4\xb8\xad.bin"                       # not UTF-8
    (model / os.fsdecode(raw_name)).write_bytes(b"\x00" * 16)
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    for fmt in ("summary", "json", "markdown", "html", "sarif", "cyclonedx"):
        proc = run_cli("scan", str(model), "--format", fmt, env=env)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (fmt, proc.stderr)
    raw = __import__("subprocess").run([__import__("sys").executable, "-m", "auditor", "scan", str(model), "-q"],
                                       capture_output=True, env=env).stdout
    report = json.loads(raw.decode("utf-8"))                       # valid UTF-8 whatever the console
    paths = {os.fsencode(f["path"]) for f in report["files"]}
    assert raw_name in paths and "模型说明.md".encode() in paths     # lossless


def test_reports_honour_the_umask_and_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    import os
    import stat
    import subprocess
    import sys

    model = _model(tmp_path / "m")
    stale = tmp_path / ".r.json.999999999.abcd.tmp"                 # left by a writer that was killed
    stale.write_text("half")
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        proc = subprocess.run([sys.executable, "-m", "auditor", "scan", str(model), "-q", "-o", str(tmp_path / "r.json")],
                              capture_output=True, text=True, preexec_fn=lambda m=mask: os.umask(m))  # noqa: PLW1509
        assert proc.returncode == 0, proc.stderr
        assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode, oct(mask)
    assert not stale.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_fifo_nobody_reads_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import os
    model = _model(tmp_path / "m")
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    proc = run_cli("scan", str(model), "-q", "-o", str(fifo), timeout=60)
    assert proc.returncode == 2 and "no process reads the FIFO" in proc.stderr, proc.stderr


def test_shared_reports_do_not_carry_the_home_folder(tmp_path: Path) -> None:
    import os
    home = tmp_path / "home" / "alice"
    model = _model(home / "models" / "m")
    proc = run_cli("scan", str(model), env={**os.environ, "HOME": str(home)})
    report = json.loads(proc.stdout)
    assert report["snapshot"]["root"] == "~/models/m" and report["target"] == "~/models/m"
    assert str(home) not in proc.stdout


# -- the command line's parser (auditor/cli/args.py) ----------------------------------------------

def _usage_error(proc) -> str:  # type: ignore[no-untyped-def]
    """argparse's usage error: exit 2, the usage, one error line, never a traceback."""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("usage: auditor"), proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_a_bad_value_is_refused_before_any_work(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    assert "is a folder, not a file" in _usage_error(run_cli("scan", str(model), "--verify-key", str(tmp_path)))
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in _usage_error(run_cli("scan", str(model), "--sarif-root", str(tmp_path / "f")))
    assert "not in the range 0-125" in _usage_error(run_cli("ci", "--warn-exit-code", "200"))
    assert "not an integer" in _usage_error(run_cli("ci", "--warn-exit-code", "three"))
    assert "does not exist" in _usage_error(run_cli("pr-comment", str(tmp_path / "none.md"), "--pr", "1"))
    assert "invalid choice" in _usage_error(run_cli("scan", str(model), "--sarif-threshold", "severe"))
    assert "unrecognized arguments: --verbos" in _usage_error(run_cli("scan", str(model), "--verbos"))  # no abbreviations
    assert "no such command 'scna'" in _usage_error(run_cli("scna", str(model)))


def test_options_may_come_between_targets_and_repeat(tmp_path: Path) -> None:
    a, b = _model(tmp_path / "a"), _model(tmp_path / "b")
    proc = run_cli("scan", str(a), "-q", str(b), "--format", "json", "--deployment", str(a), "--deployment", str(b))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 2
    (tmp_path / "f").write_text("x")     # a deployment path that is no folder is the scan's finding, not a usage error
    proc = run_cli("scan", str(a), "-q", "--format", "json", "--deployment", str(tmp_path / "f"))
    assert "ENDPOINT-LIMIT" in [f["rule"] for f in json.loads(proc.stdout)["findings"]], proc.stderr


def test_groups_dispatch_to_their_commands(tmp_path: Path) -> None:
    proc = run_cli("waivers")
    assert proc.returncode == 2 and "check" in proc.stdout            # no command: the group's help
    assert "no such command 'chek'" in _usage_error(run_cli("waivers", "chek"))
    assert run_cli("approvals", "--help").returncode == 0
    db = f"sqlite:///{tmp_path / 'a.db'}"
    proc = run_cli("approvals", "list", "--db", db, "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr


def test_in_process_the_parsed_values_reach_the_command(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse

    from auditor.cli.args import Command, Group, invoke
    seen: dict = {}

    def run(paths: tuple[str, ...], flag: bool, level: int) -> int:
        """Record what was parsed."""
        seen.update(paths=paths, flag=flag, level=level)
        return 7

    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--path", dest="paths", action="append", default=[])
        p.add_argument("--flag", action="store_true")
        p.add_argument("--level", type=int, default=1)
    group = Group("g", "A group.", (Command("c", run, arguments),))
    assert invoke(group, ["c", "--path", "x", "--flag", "--path", "y"], "auditor g") == 7
    assert seen == {"paths": ("x", "y"), "flag": True, "level": 1}
    assert invoke(group, ["--help"], "auditor g") == 0
    assert "c  Record what was parsed." in capsys.readouterr().out


def test_every_command_has_help() -> None:
    """argparse %-formats every help text: a stray '%' would make a command's --help crash."""
    from auditor.cli import COMMANDS, load, run
    from auditor.cli.args import Group
    names = [[name] for name in COMMANDS]
    names += [[name, c.name] for name in COMMANDS if isinstance(g := load(name), Group) for c in g.commands]
    for argv in names:
        try:
            code = run([*argv, "--help"])          # a group prints its help and returns
        except SystemExit as exc:                  # a command's parser exits after printing
            code = exc.code
        assert code == 0, argv


def test_help_texts_are_cleaned_as_inspect_cleandoc_cleans_them() -> None:
    import inspect

    from auditor.cli import COMMANDS, load
    from auditor.cli.args import Group, cleandoc
    docs = ["", "one line", "  padded first\n    second\n      deeper\n", "\n\n  blank first lines\n  x\n\n",
            "first\n\tTabbed\n\t  more", "first\n   \n   x\n  ", "only\n\n\n"]
    for name in COMMANDS:
        entry = load(name)
        for command in entry.commands if isinstance(entry, Group) else (entry,):
            docs.append(command.run.__doc__ or "")
    for doc in docs:
        assert cleandoc(doc) == inspect.cleandoc(doc), doc
