"""The runtime check: tiny real transformers models, built here, loaded in the sandbox by the real loaders."""
from __future__ import annotations

import json
import os
import pickle
import socket
import threading
from pathlib import Path

import pytest

from auditor import sandbox
from auditor.model import ClaimStatus, Options
from auditor.pipeline import audit

# Skipped where the kernel refuses a sandbox, but never in CI (CI=true): there a missing sandbox must fail.
pytestmark = pytest.mark.skipif(not os.environ.get("CI") and bool(sandbox.unavailable_reason()),
                                reason=sandbox.unavailable_reason() or "ok")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def _tiny_llama(folder: Path) -> Path:
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)   # safetensors
    return folder


def _remote_code_model(folder: Path, *, at_import: str = "", in_forward: str = "") -> Path:
    """The tiny Llama with an auto_map pointing at shipped modeling code that runs the given lines."""
    _tiny_llama(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    forward = "\n".join("            " + line for line in in_forward.splitlines()) or "            pass"
    (folder / "modeling_tiny.py").write_text(
        "import os, socket, subprocess\n"
        "from transformers import LlamaForCausalLM\n"
        f"{at_import}\n"
        "class TinyForCausalLM(LlamaForCausalLM):\n"
        "    def forward(self, *args, **kwargs):\n"
        "        try:\n"
        f"{forward}\n"
        "        except Exception:\n"
        "            pass\n"
        "        return super().forward(*args, **kwargs)\n")
    return folder


def _runtime(folder: Path):
    result = audit(str(folder), Options(runtime=True, engines=("auditor",)))
    claim = next(c for c in result.claims if c.id == "runtime")
    return result, claim, [f for f in result.findings if f.rule.startswith("RUNTIME-")]


def _line_of(folder: Path, text: str) -> int:
    lines = (folder / "modeling_tiny.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_clean_tiny_model_is_supported(tmp_path):
    result, claim, findings = _runtime(_tiny_llama(tmp_path / "clean"))
    assert claim.status == ClaimStatus.SUPPORTED, claim.reason
    assert "forward pass" in claim.reason
    attempts = [f for f in findings if f.rule in ("RUNTIME-NETWORK", "RUNTIME-DNS", "RUNTIME-SPAWN",
                                                   "RUNTIME-FILE-WRITE", "RUNTIME-LOAD-FAILED")]
    assert attempts == []
    facts = result.facts["runtime"]
    assert facts["status"] == "completed" and facts["forward"] and facts["all_loaded"]
    assert facts["steps"][0]["parts"][:2] == ["config", "AutoModelForCausalLM.from_pretrained"]


def test_without_the_flag_the_claim_is_not_assessed(tmp_path):
    result = audit(str(_tiny_llama(tmp_path / "m")), Options(engines=("auditor",)))
    claim = next(c for c in result.claims if c.id == "runtime")
    assert claim.status == ClaimStatus.NOT_ASSESSED and "runtime" in claim.reason
    assert "runtime" not in result.facts


@pytest.fixture
def host_listener():
    """A real server on the host's loopback: the sandbox must not be able to reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_connect_at_import_is_refuted_and_never_reaches_the_host(tmp_path, host_listener):
    port, accepted = host_listener
    folder = _remote_code_model(tmp_path / "m", at_import=(
        f"for _port in (9, {port}):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', _port), timeout=2)\n"
        "    except OSError:\n"
        "        pass\n"))
    _result, claim, findings = _runtime(folder)
    assert claim.status == ClaimStatus.REFUTED
    network = [f for f in findings if f.rule == "RUNTIME-NETWORK"]
    line = _line_of(folder, "create_connection")
    assert {f.evidence.split(" ")[1] for f in network} == {"127.0.0.1:9", f"127.0.0.1:{port}"}
    assert all(f.file == "modeling_tiny.py" and f.location == f"modeling_tiny.py:{line}" for f in network)
    assert all("outcome: failed: ConnectionRefusedError" in f.evidence for f in network)
    assert any(e.startswith("RUNTIME-NETWORK:modeling_tiny.py") for e in claim.evidence)
    assert accepted == []


def test_dns_lookup_of_a_sensitive_origin_in_forward_is_critical(tmp_path):
    folder = _remote_code_model(tmp_path / "m", in_forward="socket.getaddrinfo('api.deepseek.com', 443)")
    _result, claim, findings = _runtime(folder)
    dns = [f for f in findings if f.rule == "RUNTIME-DNS"]
    assert len(dns) == 1 and dns[0].severity.label == "critical"
    assert "api.deepseek.com" in dns[0].evidence and "CN" in dns[0].evidence
    assert dns[0].location == f"modeling_tiny.py:{_line_of(folder, 'getaddrinfo')}"
    assert claim.status == ClaimStatus.REFUTED and "RUNTIME-DNS" in claim.reason


def test_process_spawn_is_refuted(tmp_path):
    folder = _remote_code_model(tmp_path / "m", at_import="subprocess.run(['id'], capture_output=True)",
                                in_forward="os.system('true')")
    _result, claim, findings = _runtime(folder)
    spawns = {f.evidence.split(";")[0]: f for f in findings if f.rule == "RUNTIME-SPAWN"}
    assert any(k.startswith("subprocess.Popen id") for k in spawns)
    assert any(k.startswith("os.system true") for k in spawns)
    assert {f.location for f in spawns.values()} == {f"modeling_tiny.py:{_line_of(folder, 'subprocess.run')}",
                                                     f"modeling_tiny.py:{_line_of(folder, 'os.system')}"}
    assert claim.status == ClaimStatus.REFUTED


def test_marker_written_outside_the_sandbox_tmp_never_reaches_the_host(tmp_path):
    # one marker in the checkout (a host path outside any tmp: read-only or absent in the sandbox), one
    # in the test's tmp_path (the sandbox has its own private /tmp: the write lands there, not here)
    checkout = Path(__file__).resolve().parent
    # a checkout under /tmp (a CI clone) would be inside the sandbox's private /tmp: use /var/tmp then
    host_dir = Path("/var/tmp") if checkout.is_relative_to("/tmp") and Path("/var/tmp").is_dir() else checkout
    outside = host_dir / f"runtime-marker-{tmp_path.name}.txt"
    in_tmp = tmp_path / "marker.txt"
    code = f"open({str(outside)!r}, 'w').write('pwned')\nopen({str(in_tmp)!r}, 'w').write('pwned')"
    folder = _remote_code_model(tmp_path / "m", in_forward=code)
    try:
        _result, claim, findings = _runtime(folder)
        assert not outside.exists() and not in_tmp.exists()
    finally:
        outside.unlink(missing_ok=True)
    writes = [f for f in findings if f.rule == "RUNTIME-FILE-WRITE"]
    assert len(writes) == 1 and str(outside) in writes[0].evidence, [f.evidence for f in writes]
    assert "outcome: failed" in writes[0].evidence
    assert writes[0].location == f"modeling_tiny.py:{_line_of(folder, 'pwned')}"
    assert claim.status == ClaimStatus.REFUTED


def test_pickle_payload_in_torch_file_is_observed(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()

    class Payload:
        def __reduce__(self):
            import os
            return (os.system, ("true",))

    (folder / "model.pt").write_bytes(pickle.dumps({"weights": Payload()}))
    _result, claim, findings = _runtime(folder)
    spawn = [f for f in findings if f.rule == "RUNTIME-SPAWN"]
    assert len(spawn) == 1 and spawn[0].file == "model.pt" and "during torch model.pt" in spawn[0].evidence
    assert claim.status == ClaimStatus.REFUTED


def test_model_code_that_kills_the_interpreter_is_not_assessed(tmp_path):
    folder = _remote_code_model(tmp_path / "m", at_import="os._exit(0)")
    result, claim, findings = _runtime(folder)
    assert claim.status == ClaimStatus.NOT_ASSESSED
    assert any(f.rule == "RUNTIME-LOAD-FAILED" for f in findings)
    assert result.facts["runtime"]["status"] == "incomplete"


def test_unexpected_import_from_model_code(tmp_path):
    folder = _remote_code_model(tmp_path / "m", at_import="try:\n    import totally_undeclared_mod\nexcept ImportError:\n"
                                                          "    pass")
    _result, claim, findings = _runtime(folder)
    imports = [f for f in findings if f.rule == "RUNTIME-UNEXPECTED-IMPORT"]
    assert [f.evidence.split(" ")[1] for f in imports] == ["totally_undeclared_mod"]
    assert claim.status == ClaimStatus.SUPPORTED   # an import is not a network attempt


def test_shrunk_config_builds_a_big_shaped_model(tmp_path):
    from auditor import runtime
    from auditor.model import FileRecord, Snapshot
    folder = _tiny_llama(tmp_path / "big")
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").unlink()
    files = (FileRecord("config.json", (folder / "config.json").stat().st_size, "", "text"),
             FileRecord("model-00001-of-00002.safetensors", 13 * 1024**3, "", "safetensors"))
    snapshot = Snapshot(root=str(folder), kind="local-folder", target=str(folder))
    findings, fact = runtime.check(snapshot, files)
    assert [f.rule for f in findings if f.rule != "RUNTIME-UNEXPECTED-IMPORT"] == []
    assert fact["status"] == "completed" and fact["forward"]
    assert fact["shrunk"]["num_hidden_layers"] == ["32", "1"] and fact["shrunk"]["hidden_size"] == ["4096", "64"]
    assert "from_config" in fact["steps"][0]["parts"][1]


def test_cli_flag_runs_the_runtime_check(tmp_path, cli):
    folder = _tiny_llama(tmp_path / "clean")
    proc = cli("scan", str(folder), "--runtime", "--no-modelscan", "-q", "--format", "json")
    report = json.loads(proc.stdout)
    claim = next(c for c in report["claims"] if c["id"] == "runtime")
    assert claim["status"] == "supported", claim
    assert report["facts"]["runtime"]["forward"] is True
    md = cli("scan", str(folder), "--runtime", "--no-modelscan", "-q", "--format", "markdown")
    assert "A sandboxed load showed zero network attempts" in md.stdout
