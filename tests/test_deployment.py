"""`--deployment DIR`: the user's own serving configuration, scanned with the endpoint and code rules
plus deployment checks. Folders are written at test time; the CLI is run for real."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from auditor.model import AuditResult, Options, Severity
from auditor.pipeline import audit
from tests.conftest import run_cli

DOCKERFILE = """\
FROM python:3.11-slim
RUN pip install -i https://mirrors.aliyun.com/pypi/simple/ vllm   # PIP-MIRROR
ENV HF_ENDPOINT=https://hf-mirror.com
ENV VLLM_USE_MODELSCOPE True
ENV GRADIO_ANALYTICS_ENABLED=True
CMD ["python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/quasar", "--trust-remote-code"]
"""

SERVE_PY = '''\
import os
from modelscope import snapshot_download
from transformers import AutoModelForCausalLM

os.environ.setdefault("MODELSCOPE_CACHE", "/cache/modelscope")
path = snapshot_download("quasar/quasar-vl")
model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)   # TRUST
'''

K8S = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "quasar"},
    "spec": {"template": {"spec": {"containers": [{
        "name": "server", "image": "registry.internal/quasar:1",
        "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
                {"name": "HF_ENDPOINT", "value": "https://huggingface.co"}]}]}}}}

COMPOSE = {"services": {"server": {"image": "quasar", "environment": ["DO_NOT_TRACK=1", "VLLM_NO_USAGE_STATS=1"]}}}


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if marker in line)


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("deploy")
    model = base / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    bad = base / "bad-deploy"
    (bad / "app").mkdir(parents=True)
    (bad / "Dockerfile").write_text(DOCKERFILE)
    (bad / "app" / "serve.py").write_text(SERVE_PY)
    (bad / "entrypoint").write_text("#!/bin/sh\nexport HF_ENDPOINT=https://hf-mirror.com\nexec python app/serve.py\n")
    (bad / "weights.bin").write_bytes(os.urandom(64))           # not a config: skipped
    outside = base / "secret.env"
    outside.write_text("HF_TOKEN=hf_should_not_be_read\n")
    os.symlink(outside, bad / "linked.env")                     # escapes the folder: reported, not followed
    good = base / "good-deploy"
    good.mkdir()
    (good / "k8s.yaml").write_text(yaml.safe_dump(K8S))
    (good / "docker-compose.yml").write_text(yaml.safe_dump(COMPOSE))
    (good / "serve.py").write_text("from transformers import pipeline\npipe = pipeline('text-generation', "
                                   "model='/models/quasar')\n")
    return {"model": model, "bad": bad, "good": good}


@pytest.fixture(scope="session")
def bad_result(folders) -> AuditResult:
    return audit(str(folders["model"]), Options(engines=("auditor",), deployment=(str(folders["bad"]),)))


@pytest.fixture(scope="session")
def good_result(folders) -> AuditResult:
    return audit(str(folders["model"]), Options(engines=("auditor",), deployment=(str(folders["good"]),)))


def _rules(result: AuditResult, file_suffix: str = "") -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        if f.scanner == "deployment" and f.file.endswith(file_suffix):
            out.setdefault(f.rule, []).append(f)
    return out


def test_origin_mirror_in_dockerfile_env(bad_result, folders):
    dockerfile = str(folders["bad"] / "Dockerfile")
    mirrors = [f for f in bad_result.findings if f.rule == "DEPLOY-ORIGIN-MIRROR" and f.file == dockerfile]
    evidence = " | ".join(f.evidence for f in mirrors)
    assert "HF_ENDPOINT=https://hf-mirror.com" in evidence and "VLLM_USE_MODELSCOPE=True" in evidence
    assert all(f.severity == Severity.HIGH for f in mirrors)
    hf = next(f for f in mirrors if "HF_ENDPOINT" in f.evidence)
    assert hf.location == f"line {_line(DOCKERFILE, 'HF_ENDPOINT')}" and "CN" in hf.evidence
    shell = [f for f in bad_result.findings if f.rule == "DEPLOY-ORIGIN-MIRROR" and f.file.endswith("entrypoint")]
    assert shell and "hf-mirror.com" in shell[0].evidence


def test_endpoint_rules_apply_to_deployment_files(bad_result, folders):
    dockerfile = str(folders["bad"] / "Dockerfile")
    pip_mirror = [f for f in bad_result.findings if f.file == dockerfile and "mirrors.aliyun.com" in f.evidence]
    assert pip_mirror and pip_mirror[0].rule == "ENDPOINT-ORIGIN-STORAGE" and pip_mirror[0].severity == Severity.HIGH
    assert pip_mirror[0].location == f"line {_line(DOCKERFILE, 'PIP-MIRROR')}"


def test_serving_code_trust_remote_code_and_modelscope(bad_result, folders):
    serve = str(folders["bad"] / "app" / "serve.py")
    found = _rules(bad_result, "serve.py")
    trust = found["DEPLOY-TRUST-REMOTE-CODE"][0]
    assert trust.location == f"line {_line(SERVE_PY, 'TRUST')}" and trust.severity == Severity.MEDIUM
    assert any("--trust-remote-code" in DOCKERFILE and f.file.endswith("Dockerfile")
               for f in bad_result.findings if f.rule == "DEPLOY-TRUST-REMOTE-CODE")
    modelscope = [f for f in found["DEPLOY-ORIGIN-MIRROR"] if f.file == serve]
    assert {"serving code imports modelscope" in f.evidence or "MODELSCOPE_CACHE" in f.evidence
            for f in modelscope} == {True}
    assert len(modelscope) == 2
    code = found["DEPLOY-CODE"]
    assert any("CODE-HUB-DOWNLOAD" in f.evidence and "snapshot_download" in f.evidence for f in code)
    assert all(f.severity == Severity.LOW for f in code)


def test_offline_and_telemetry_checks(bad_result, good_result):
    bad = _rules(bad_result)
    assert "DEPLOY-NOT-OFFLINE" in bad and "DEPLOY-TELEMETRY" in bad
    assert "GRADIO_ANALYTICS_ENABLED=True" in bad["DEPLOY-TELEMETRY-ENABLED"][0].evidence
    good = _rules(good_result)
    assert set(good) <= {"DEPLOY-HF-ENDPOINT", "DEPLOY-CODE", "ENDPOINT-OTHER"}, sorted(good)
    facts = good_result.facts["deployment"]
    assert facts["offline"] is True and facts["hf_endpoint"] == "https://huggingface.co"
    assert set(facts["telemetry_opt_out"]) == {"HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "VLLM_NO_USAGE_STATS"}
    assert next(c for c in good_result.claims if c.id == "endpoints").status.value == "supported"
    assert next(c for c in bad_result.claims if c.id == "endpoints").status.value == "refuted"


def test_walk_is_safe(bad_result, folders):
    escape = [f for f in bad_result.findings if f.rule == "INVENTORY-SYMLINK-ESCAPE"]
    assert escape and escape[0].file == str(folders["bad"] / "linked.env") and escape[0].scanner == "deployment"
    assert "hf_should_not_be_read" not in json.dumps(bad_result.facts["deployment"])
    assert bad_result.facts["deployment"]["files"] == 3   # Dockerfile, app/serve.py, entrypoint (shebang)


def test_missing_folder_fails_closed(folders, tmp_path):
    result = audit(str(folders["model"]), Options(engines=("auditor",), deployment=(str(tmp_path / "nope"),)))
    missing = [f for f in result.findings if f.rule == "ENDPOINT-LIMIT" and f.scanner == "deployment"]
    assert missing and missing[0].severity >= Severity.MEDIUM


def test_cli_deployment_option(folders, tmp_path):
    out = tmp_path / "report.json"
    proc = run_cli("scan", str(folders["model"]), "--deployment", str(folders["bad"]), "--quiet", "--output", str(out))
    assert proc.returncode == 1, proc.stderr       # a high DEPLOY-ORIGIN-MIRROR fails the default policy
    report = json.loads(out.read_text())
    assert any(f["rule"] == "DEPLOY-ORIGIN-MIRROR" for f in report["findings"])


def test_deployment_folders_are_repeatable_and_merged(folders):
    both = (str(folders["bad"]), str(folders["good"]))
    result = audit(str(folders["model"]), Options(engines=("auditor",), deployment=both))
    facts = result.facts["deployment"]
    assert facts["folders"] == list(both) and facts["files"] == 6
    assert facts["offline"] is True                 # the k8s manifest of the same deployment sets it
    assert sorted(facts["env"]["HF_ENDPOINT"]) == ["https://hf-mirror.com", "https://hf-mirror.com",
                                                   "https://huggingface.co"]
    rules_seen = {f.rule for f in result.findings if f.scanner == "deployment"}
    assert "DEPLOY-ORIGIN-MIRROR" in rules_seen and "DEPLOY-NOT-OFFLINE" not in rules_seen
    trust = [f for f in result.findings if f.rule == "DEPLOY-TRUST-REMOTE-CODE"]
    assert trust and all(f.severity == Severity.LOW for f in trust)   # offline: code is not fetched at load
