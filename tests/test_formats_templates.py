"""Chat templates, TensorFlow SavedModel ops and Hydra `_target_` configs: real files on disk, scanned
through the real inventory."""
from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.formats_support import rules_of, run_scanner, tf_saved_model

# Shortened from real Hub templates (Llama 3 style and a `{% generation %}` training template).
BENIGN = [
    "{{ bos_token }}{% for message in messages %}{% if loop.index0 == 0 and message['role'] != 'system' %}"
    "{{ raise_exception('first message must be system') }}{% endif %}<|start_header_id|>{{ message['role'] }}"
    "<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
    "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
    "{% else %}{{ m.content }}{% endif %}{% endfor %}",
    "{%- set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' -%}{{ system }}"
    "{%- set open = '<|im_start|>' -%}{%- for m in messages[1:] -%}{{ open }}{{ m.content }}{%- endfor -%}",
    "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.tool_calls is defined -%}"
    "{{ m.tool_calls | tojson }}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}",
]

HOSTILE = {
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}": ("TEMPLATE-SANDBOX-ESCAPE", 1),
    "{% for m in messages %}\n{{ ''.__class__.__mro__[1].__subclasses__() }}{% endfor %}": ("TEMPLATE-SANDBOX-ESCAPE", 2),
    "{{ messages|attr('__cla' ~ 'ss__') }}": ("TEMPLATE-DANGEROUS-NAME", 1),
    "{% set system = messages[0] %}\n{{ joiner.__init__ }}": ("TEMPLATE-SANDBOX-ESCAPE", 2),
    "{{ self._TemplateReference__context }}": ("TEMPLATE-DANGEROUS-NAME", 1),
    "{{ x['__globals__'] }}": ("TEMPLATE-SANDBOX-ESCAPE", 1),
    "{{ lipsum.os.system('id') }}": ("TEMPLATE-DANGEROUS-NAME", 1),
    "\n\n{% include '/etc/passwd' %}": ("TEMPLATE-IMPORT", 3),
    "{% import 'macros.j2' as m %}{{ m.x() }}": ("TEMPLATE-IMPORT", 1),
    "{% for m in messages %}{{ m.content }": ("TEMPLATE-UNPARSEABLE", 1),
}


def test_benign_templates_are_clean(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": BENIGN[0], "bos_token": "<s>"}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "default", "template": BENIGN[1]}, {"name": "tool_use", "template": BENIGN[3]}]}))
    (tmp_path / "chat_template.jinja").write_text(BENIGN[0])
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": BENIGN[2]}))
    findings, facts = run_scanner("templates", tmp_path)
    assert findings == []
    assert facts["templates"]["sub/tokenizer_config.json"]["templates"] == ["chat_template 'default'",
                                                                           "chat_template 'tool_use'"]


@pytest.mark.parametrize("template", list(HOSTILE))
def test_hostile_templates_are_located(tmp_path, template):
    rule, line = HOSTILE[template]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "default", "template": "{{ messages }}"}, {"name": "rag", "template": template}]}))
    hit = [f for f in run_scanner("templates", tmp_path)[0] if f.rule == rule]
    assert hit and hit[0].location == f"chat_template 'rag' line {line}"


def test_jinja_file_and_bad_config(tmp_path):
    (tmp_path / "chat_template.jinja").write_text("{{ self.__init__.__globals__ }}")
    (tmp_path / "tokenizer_config.json").write_text('{"chat_template": {"not": "a string"}}')
    found = run_scanner("templates", tmp_path)[0]
    assert "TEMPLATE-SANDBOX-ESCAPE" in rules_of(found, "chat_template.jinja")
    assert rules_of(found, "tokenizer_config.json") == {"TEMPLATE-UNPARSEABLE"}


# --- TensorFlow SavedModel ---------------------------------------------------------------------

def _saved_model(folder, nodes, function_nodes=()):
    (folder / "variables").mkdir(exist_ok=True)
    (folder / "saved_model.pb").write_bytes(tf_saved_model(nodes, list(function_nodes)))


def test_benign_saved_model_is_clean(tmp_path):
    _saved_model(tmp_path, [("x", "Placeholder"), ("w", "VarHandleOp"), ("y", "MatMul"),
                            ("saver/save", "SaveV2"), ("saver/restore", "RestoreV2")])
    findings, facts = run_scanner("tensorflow", tmp_path)
    assert findings == []
    assert facts["tensorflow"]["saved_model.pb"]["ops"] == ["MatMul", "Placeholder", "RestoreV2", "SaveV2", "VarHandleOp"]


def test_file_and_python_ops_are_located(tmp_path):
    _saved_model(tmp_path, [("x", "Placeholder"), ("steal", "ReadFile")], [("cb", "PyFunc"), ("w", "WriteFile")])
    found = run_scanner("tensorflow", tmp_path)[0]
    by_op = {f.evidence: f for f in found if f.rule == "TF-DANGEROUS-OP"}
    assert set(by_op) == {"op ReadFile", "op PyFunc", "op WriteFile"}
    assert by_op["op PyFunc"].severity == 4 and "function __inference_fn_1 node 'cb'" in by_op["op PyFunc"].location
    raw = (tmp_path / "saved_model.pb").read_bytes()
    assert by_op["op ReadFile"].location.startswith("byte ")
    offset = int(by_op["op ReadFile"].location.split()[1])
    assert raw[offset] == 0x0A                     # the NodeDef's field tag sits at the reported offset


def test_truncated_saved_model_fails_closed(tmp_path):
    raw = tf_saved_model([("x", "Placeholder"), ("steal", "ReadFile")])
    (tmp_path / "saved_model.pb").write_bytes(raw[:-5])
    found = run_scanner("tensorflow", tmp_path)[0]
    assert rules_of(found) == {"TF-UNPARSEABLE"} and found[0].location.startswith("byte ")


# --- config targets ----------------------------------------------------------------------------

def test_config_targets(tmp_path):
    (tmp_path / "benign.yaml").write_text("model:\n  encoder:\n    _target_: torch.nn.Linear\n    in_features: 4\n"
                                          "optim:\n  _target_: torch.optim.AdamW\n")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 8}))
    assert run_scanner("config_targets", tmp_path)[0] == []
    (tmp_path / "evil.yaml").write_text("model:\n  backbone:\n    _target_: builtins.exec\n    _args_: ['import os']\n"
                                        "  head:\n    _target_: mylab.heads.Head\n")
    (tmp_path / "broken.yaml").write_text("_target_: [unclosed\n")
    found = run_scanner("config_targets", tmp_path)[0]
    hits = {(f.rule, f.location) for f in found if f.file == "evil.yaml"}
    assert hits == {("CONFIG-TARGET-DANGEROUS", "$.model.backbone._target_"),
                    ("CONFIG-TARGET-UNKNOWN", "$.model.head._target_")}
    assert rules_of(found, "broken.yaml") == {"CONFIG-TARGET-UNPARSEABLE"}


def test_nemo_archive_and_alias_bomb(tmp_path):
    config = b"model:\n  preprocessor:\n    _target_: os.system\n    command: id\n"
    with tarfile.open(tmp_path / "model.nemo", "w:gz") as tar:
        info = tarfile.TarInfo("./model_config.yaml")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    bomb = "a: &a {_target_: x.y, k: [1]}\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    (tmp_path / "bomb.yaml").write_text(bomb)
    found = run_scanner("config_targets", tmp_path)[0]
    nemo = [f for f in found if f.file == "model.nemo"]
    assert nemo and nemo[0].rule == "CONFIG-TARGET-DANGEROUS"
    assert nemo[0].location == "./model_config.yaml: $.model.preprocessor._target_"
    # an alias bomb is refused before anyone walks it (auditor.yamlsafe): could not be verified
    [bomb_finding] = [f for f in found if f.file == "bomb.yaml"]
    assert bomb_finding.rule == "CONFIG-TARGET-UNPARSEABLE" and "expands to more than" in bomb_finding.evidence


def test_demo_repos_show_the_template_check(tmp_path):
    from auditor.workflows import demo

    assert run_scanner("templates", demo.build_clean(tmp_path / "clean"))[0] == []
    risky = run_scanner("templates", demo.build_risky(tmp_path / "risky"))[0]
    assert "TEMPLATE-SANDBOX-ESCAPE" in rules_of(risky, "tokenizer_config.json")


def test_frozen_graph_pb_is_read_too(tmp_path):
    from tests.formats_support import pb_field

    graph = pb_field(1, pb_field(1, "x") + pb_field(2, "Placeholder")) + pb_field(1, pb_field(1, "w") + pb_field(2, "WriteFile"))
    (tmp_path / "frozen_graph.pb").write_bytes(graph)
    (tmp_path / "not_a_graph.pb").write_bytes(b"\x08\x96\x01\x10\x01")      # some other protobuf: ints only
    found, facts = run_scanner("tensorflow", tmp_path)
    assert [(f.rule, f.file, f.evidence) for f in found] == [("TF-DANGEROUS-OP", "frozen_graph.pb", "op WriteFile")]
    assert facts["tensorflow"]["frozen_graph.pb"]["kind"] == "graph_def"
