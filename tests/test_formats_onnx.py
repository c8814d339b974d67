"""ONNX: real models from the onnx helper API, external data written by onnx itself, then hostile edits."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.formats_support import rules_of, run_scanner


def _model(initializer: TensorProto, *, domain: str = "", functions=()) -> onnx.ModelProto:
    node = helper.make_node("Add", ["x", initializer.name], ["y"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [initializer])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def _weights(name: str = "w") -> TensorProto:
    return numpy_helper.from_array(np.arange(4, dtype=np.float32), name)


@pytest.fixture()
def external(tmp_path):
    """A model whose initializer lives in weights.bin, written by onnx's own external-data helper."""
    model = _model(numpy_helper.from_array(np.arange(1024, dtype=np.float32), "w"))
    onnx.save_model(model, str(tmp_path / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return tmp_path


def _relocate(folder, location):
    model = onnx.load_model(str(folder / "model.onnx"), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save_model(model, str(folder / "model.onnx"))
    return run_scanner("onnx", folder)[0]


def test_benign_models_are_clean(tmp_path, external):
    onnx.save_model(_model(_weights()), str(tmp_path / "inline.onnx"))
    findings, facts = run_scanner("onnx", tmp_path)
    assert findings == []
    assert facts["onnx"]["inline.onnx"]["opsets"] == {"ai.onnx": 17}
    assert facts["onnx"]["model.onnx"]["nodes"] == 1


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin",
                                      "file:///etc/passwd", "https://evil.invalid/w.bin", "..\\..\\win.ini",
                                      "C:/Windows/win.ini", "ok.bin\x00/../../etc/passwd"])
def test_escaping_locations(external, location):
    hit = [f for f in _relocate(external, location) if f.rule == "ONNX-EXTERNAL-DATA-ESCAPE"]
    assert hit and hit[0].location == "graph initializer 'w'" and hit[0].severity >= 3


def test_symlink_and_hardlink_escapes(external, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.bin").write_bytes(b"\x00" * 4096)
    os.symlink(outside, external / "linked")
    hit = [f for f in _relocate(external, "linked/secret.bin") if f.rule == "ONNX-EXTERNAL-DATA-ESCAPE"]
    assert hit and "symlink linked" in hit[0].evidence
    os.link(outside / "secret.bin", external / "hard.bin")
    hit = [f for f in _relocate(external, "hard.bin") if f.rule == "ONNX-EXTERNAL-DATA-ESCAPE"]
    assert hit and "hardlink" in hit[0].evidence


def test_missing_and_short_external_data(external):
    assert "ONNX-EXTERNAL-DATA-MISSING" in rules_of(_relocate(external, "nope.bin"))
    (external / "short.bin").write_bytes(b"\x00" * 10)
    assert "ONNX-EXTERNAL-DATA-MISSING" in rules_of(_relocate(external, "short.bin"))


def test_inconsistent_tensor_custom_domain_and_functions(tmp_path):
    bad = _weights()
    bad.dims[:] = [5]
    onnx.save_model(_model(bad), str(tmp_path / "bad.onnx"))
    hit = [f for f in run_scanner("onnx", tmp_path)[0] if f.rule == "ONNX-TENSOR-INVALID"]
    assert hit and "raw_data holds 16" in hit[0].evidence
    os.remove(tmp_path / "bad.onnx")
    onnx.save_model(_model(_weights(), domain="com.evil.ops"), str(tmp_path / "custom.onnx"))
    hit = [f for f in run_scanner("onnx", tmp_path)[0] if f.rule == "ONNX-CUSTOM-DOMAIN"]
    assert hit and hit[0].location == "domain 'com.evil.ops'" and "Add" in hit[0].evidence
    os.remove(tmp_path / "custom.onnx")
    function = helper.make_function("local.fns", "MyAdd", ["a", "b"], ["c"],
                                    [helper.make_node("Add", ["a", "b"], ["c"])], [helper.make_opsetid("", 17)])
    model = _model(_weights(), domain="local.fns", functions=[function])
    model.graph.node[0].op_type = "MyAdd"
    onnx.save_model(model, str(tmp_path / "fn.onnx"))
    assert rules_of(run_scanner("onnx", tmp_path)[0]) == {"ONNX-FUNCTION"}


def test_truncated_model_fails_closed(tmp_path):
    raw = _model(_weights()).SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(raw[: len(raw) // 2])
    found = run_scanner("onnx", tmp_path)[0]
    assert rules_of(found) == {"ONNX-UNPARSEABLE"} and found[0].severity == 2


def test_missing_onnx_library_is_a_finding_not_a_crash(tmp_path):
    """In a child interpreter where `import onnx` fails, the model is reported as not verified."""
    import json
    import subprocess
    import sys

    onnx.save_model(_model(_weights()), str(tmp_path / "m.onnx"))
    code = (
        "import sys, json\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'onnx' or name.startswith('onnx.'):\n"
        "            raise ImportError('onnx is not installed')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from tests.formats_support import run_scanner\n"
        "findings, _ = run_scanner('onnx', __import__('pathlib').Path(sys.argv[1]))\n"
        "print(json.dumps([[f.rule, f.file, f.evidence] for f in findings]))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=root,
                          timeout=60, check=True)
    found = json.loads(proc.stdout)
    assert found == [["SCANNER-MISSING-DEPENDENCY", "m.onnx", "onnx is not installed: pip install 'auditor[onnx]'"]]


def test_subgraph_and_constant_tensors_are_checked(tmp_path):
    """An If node's branch holds a Constant whose tensor points outside the folder."""
    hidden = numpy_helper.from_array(np.zeros(4, np.float32), "hidden")
    hidden.ClearField("raw_data")
    hidden.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../../../etc/shadow"), ("offset", "0"), ("length", "16")):
        entry = hidden.external_data.add()
        entry.key, entry.value = key, value
    then_graph = helper.make_graph([helper.make_node("Constant", [], ["c"], name="leak", value=hidden)], "then", [],
                                   [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])])
    else_graph = helper.make_graph([helper.make_node("Constant", [], ["c"], value=_weights("e"))], "else", [],
                                   [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "if.onnx"))
    found = run_scanner("onnx", tmp_path)[0]
    assert [(f.rule, f.location) for f in found] == [
        ("ONNX-EXTERNAL-DATA-ESCAPE", "graph/branch.then_branch node 'leak' attribute value")]
