"""The endpoints scanner: URLs, hosts and IPs in every text file (and weight metadata), classified by
country and kind, with severity by where they appear. Files are written at test time; a real
safetensors file carries a URL in its metadata."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from auditor.model import AuditResult, Finding, Options, Severity
from auditor.pipeline import audit
from auditor.scanners import endpoints

README = """\
# Quasar-VL

Quick start images: https://qianwen-res.oss-cn-beijing.aliyuncs.com/Qwen-VL/assets/demo.jpeg
Overseas copy: https://qianwen-res.oss-accelerate-overseas.aliyuncs.com/Qwen-VL/assets/demo.jpeg
Code: https://github.com/QwenLM/Qwen-VL and https://github.com/QwenLM/Qwen-VL/issues.
Files: modeling_quasar.py, config.json, tokenizer.model (file names, not hosts).
Contact license@zhipuai.cn for a commercial license. Placeholder: https://example.com/x
Version 1.2.3.4 of the paper.
"""

PROCESSING = '''\
"""Client helpers. Docs: https://modelscope.cn/models/quasar/quasar-vl"""
import requests

BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"   # API-IN-CODE
FALLBACK = "http://47.100.12.34:8080/v1"   # IP-IN-CODE
# see https://api.deepseek.com/docs for the protocol   COMMENT-LINK


def chat(prompt):
    return requests.post(BASE_URL + "/chat/completions", json={"prompt": prompt})
'''

TEMPLATE = "{% if tools %}Tools are served by https://open.bigmodel.cn/api/paas/v4 {% endif %}{{ messages }}"


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if marker in line)


@pytest.fixture(scope="session")
def origin_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("origin-repo")
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / "processing_quasar.py").write_text(PROCESSING, encoding="utf-8")
    (root / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    (root / "generation_config.json").write_text(json.dumps({
        "mirror": "https://hf-mirror.com/quasar/quasar-vl",
        "assets": ["cdn.quasar-assets.cn/fonts/SimSun.ttf", "https://bucket.oss-us-west-1.aliyuncs.com/a.bin"],
        "homepage": "https://huggingface.co/quasar/quasar-vl"}, indent=2), encoding="utf-8")
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(root / "model.safetensors"),
              metadata={"format": "pt", "source_url": "https://www.modelscope.cn/models/quasar/quasar-vl"})
    return root


@pytest.fixture(scope="session")
def origin_result(origin_repo: Path) -> AuditResult:
    return audit(str(origin_repo), Options(engines=("auditor",)))


def _endpoint(result: AuditResult, file: str, host_part: str) -> Finding:
    found = [f for f in result.findings if f.rule.startswith("ENDPOINT-") and f.file == file and host_part in f.evidence]
    assert len(found) == 1, (file, host_part, [(f.rule, f.evidence) for f in result.findings if f.file == file])
    return found[0]


def test_severity_follows_where_the_endpoint_appears(origin_result):
    in_code = _endpoint(origin_result, "processing_quasar.py", "dashscope.aliyuncs.com")
    assert (in_code.rule, in_code.severity) == ("ENDPOINT-ORIGIN-API", Severity.HIGH)
    assert in_code.location == f"line {_line(PROCESSING, 'API-IN-CODE')}"
    assert "Alibaba Cloud Model Studio, CN, api" in in_code.evidence

    comment = _endpoint(origin_result, "processing_quasar.py", "api.deepseek.com")
    assert (comment.rule, comment.severity) == ("ENDPOINT-ORIGIN-API", Severity.INFO)   # docs never above info
    docstring = _endpoint(origin_result, "processing_quasar.py", "modelscope.cn")
    assert (docstring.rule, docstring.severity) == ("ENDPOINT-ORIGIN-HUB", Severity.INFO)

    in_config = _endpoint(origin_result, "generation_config.json", "hf-mirror.com")
    assert (in_config.rule, in_config.severity) == ("ENDPOINT-ORIGIN-HUB", Severity.HIGH)
    in_template = _endpoint(origin_result, "chat_template.jinja", "open.bigmodel.cn")
    assert (in_template.rule, in_template.severity) == ("ENDPOINT-ORIGIN-API", Severity.HIGH)

    in_docs = _endpoint(origin_result, "README.md", "qianwen-res.oss-cn-beijing.aliyuncs.com")
    assert (in_docs.rule, in_docs.severity) == ("ENDPOINT-ORIGIN-STORAGE", Severity.INFO)
    assert "region cn-beijing" in in_docs.evidence


def test_classified_by_operator_country_not_region_or_tld(origin_result):
    overseas = _endpoint(origin_result, "generation_config.json", "oss-us-west-1.aliyuncs.com")
    assert overseas.rule == "ENDPOINT-ORIGIN-STORAGE" and "CN" in overseas.evidence and "region us-west-1" in \
        overseas.evidence
    bare_tld = _endpoint(origin_result, "generation_config.json", "cdn.quasar-assets.cn")
    assert (bare_tld.rule, bare_tld.severity) == ("ENDPOINT-ORIGIN-TLD", Severity.MEDIUM)
    email = _endpoint(origin_result, "README.md", "zhipuai.cn")
    assert email.rule == "ENDPOINT-ORIGIN-WEB"
    hf = _endpoint(origin_result, "generation_config.json", "https://huggingface.co")
    assert hf.rule == "ENDPOINT-OTHER" and "Hugging Face, US" in hf.evidence


def test_ip_literals_and_deduplication(origin_result):
    ip = _endpoint(origin_result, "processing_quasar.py", "47.100.12.34")
    assert (ip.rule, ip.severity) == ("ENDPOINT-IP", Severity.MEDIUM)
    github = _endpoint(origin_result, "README.md", "github.com")       # two URLs, one finding
    assert github.rule == "ENDPOINT-OTHER" and github.location == f"line {_line(README, 'Code:')}"
    readme_hosts = " ".join(f.evidence for f in origin_result.findings if f.file == "README.md")
    for not_a_host in ("modeling_quasar.py", "config.json", "example.com", "1.2.3.4"):
        assert not_a_host not in readme_hosts


def test_weight_metadata_is_searched(origin_result):
    meta = _endpoint(origin_result, "model.safetensors", "modelscope.cn")
    assert meta.rule == "ENDPOINT-ORIGIN-HUB" and "source_url" in meta.location


def test_facts_and_endpoints_claim(origin_result):
    facts = origin_result.facts["endpoints"]
    assert "dashscope.aliyuncs.com" in facts["origin_hosts"]
    assert facts["hosts"]["huggingface.co"]["country"] == "US"
    assert facts["countries"]["CN"] >= 5
    claim = next(c for c in origin_result.claims if c.id == "endpoints")
    assert claim.status.value == "refuted"


def test_links_only_in_documentation_do_not_refute_the_claim(tmp_path):
    (tmp_path / "README.md").write_text("Also on https://modelscope.cn/models/a/b and https://hf-mirror.com/a/b\n")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    origin = [f for f in result.findings if f.rule.startswith("ENDPOINT-ORIGIN")]
    assert len(origin) == 2 and all(f.severity == Severity.INFO for f in origin)
    assert next(c for c in result.claims if c.id == "endpoints").status.value == "supported"


def test_sensitive_origins_come_from_the_policy(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"a": "https://models.example-host.ru/x",
                                                  "b": "https://modelscope.cn/y"}))
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: ru-only\nfail_on: critical\nwarn_on: high\nsensitive_origins: [RU]\n")
    result = audit(str(repo), Options(policy=str(policy), engines=("auditor",)))
    by_host = {f.evidence.split(" ")[0]: f.rule for f in result.findings if f.rule.startswith("ENDPOINT-")}
    assert by_host["https://models.example-host.ru/x"] == "ENDPOINT-ORIGIN-TLD"
    assert by_host["https://modelscope.cn/y"] == "ENDPOINT-OTHER"


def test_large_tokenizer_is_searched_whole_and_fast_enough(tmp_path):
    vocab = {f"tok{i}\u0120piece.{i % 97}": i for i in range(60_000)}
    vocab["https://late-in-the-file.qcloud.com/vocab"] = 60_001
    for token in ("sina.com.cn", "aliyuncs.com", "Ġbaidu.com", "8.8.8.8"):   # tokens, not addresses
        vocab[token] = len(vocab)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"vocab": vocab}}), encoding="utf-8")
    collector = endpoints.Collector({"CN"})
    raw, problem = endpoints.read_bounded(path, path.stat().st_size)
    collector.add_text("tokenizer.json", raw, endpoints.context_for("tokenizer.json", raw),
                       bare_hosts=not endpoints.is_vocabulary("tokenizer.json"))
    found = list(collector.findings())
    assert not problem
    assert [f.rule for f in found] == ["ENDPOINT-ORIGIN-STORAGE"] and "late-in-the-file" in found[0].evidence


def test_gguf_metadata_is_searched(tmp_path):
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(tmp_path / "tiny.gguf"), "llama")
    writer.add_name("tiny")
    writer.add_string("general.source.url", "https://hf-mirror.com/quasar/tiny-gguf")
    writer.add_string("general.base_model.0.repo_url", "https://huggingface.co/quasar/base")
    writer.add_tensor("w", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    mirror = _endpoint(result, "tiny.gguf", "https://hf-mirror.com")
    assert (mirror.rule, mirror.severity) == ("ENDPOINT-ORIGIN-HUB", Severity.HIGH)
    assert mirror.location == "metadata general.source.url"
    assert _endpoint(result, "tiny.gguf", "https://huggingface.co").rule == "ENDPOINT-OTHER"


def test_a_license_file_without_a_doc_name_is_documentation(tmp_path: Path) -> None:
    """MODEL_LICENSE (ChatGLM3) names a registration form on open.bigmodel.cn: it was "in config", high."""
    (tmp_path / "MODEL_LICENSE").write_text("The ChatGLM3-6B License\n\nRegister at https://open.bigmodel.cn/mla/form "
                                            "before commercial use.\n", encoding="utf-8")
    (tmp_path / "Qwen_LICENSE").write_text("See https://dashscope.aliyuncs.com/ for the API.\n", encoding="utf-8")
    (tmp_path / "serve.cfg").write_text("endpoint = https://open.bigmodel.cn/api/paas/v4\n", encoding="utf-8")
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert _endpoint(result, "MODEL_LICENSE", "open.bigmodel.cn").severity == Severity.INFO
    assert _endpoint(result, "Qwen_LICENSE", "dashscope.aliyuncs.com").severity == Severity.INFO
    assert _endpoint(result, "serve.cfg", "open.bigmodel.cn").severity >= Severity.HIGH     # a config still is one
