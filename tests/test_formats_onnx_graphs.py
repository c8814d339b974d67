"""ONNX ops in every graph a model holds: main graph, If/Loop/Scan subgraphs, local functions and the
training_info graphs; built with the onnx helper API."""
from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from tests.formats_support import run_scanner


def _vi(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])


def _model(nodes, *, training=None, functions=(), extra_opsets=()):
    graph = helper.make_graph(nodes, "g", [_vi("x")], [_vi("y")])
    opsets = [helper.make_opsetid("", 17), *extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    for init, algo in training or ():
        info = model.training_info.add()
        info.initialization.CopyFrom(init)
        info.algorithm.CopyFrom(algo)
    return model


def _graph(nodes, name="t"):
    return helper.make_graph(nodes, name, [_vi("x")], [_vi("y")])


def _custom_hits(tmp_path, model):
    onnx.save_model(model, str(tmp_path / "model.onnx"))
    found = run_scanner("onnx", tmp_path)[0]
    return found, [f for f in found if f.rule == "ONNX-CUSTOM-DOMAIN"]


def test_custom_op_in_training_info(tmp_path):
    algo = _graph([helper.make_node("Exfiltrate", ["x"], ["y"], domain="com.attacker")])
    init = _graph([helper.make_node("Identity", ["x"], ["y"])])
    model = _model([helper.make_node("Relu", ["x"], ["y"])], training=[(init, algo)],
                   extra_opsets=[helper.make_opsetid("com.attacker", 1)])
    _, hits = _custom_hits(tmp_path, model)
    assert len(hits) == 1 and "Exfiltrate (training_info[0].algorithm)" in hits[0].evidence


def test_standard_training_info_stays_quiet(tmp_path):
    algo = _graph([helper.make_node("Relu", ["x"], ["y"])])
    init = _graph([helper.make_node("Identity", ["x"], ["y"])])
    found, hits = _custom_hits(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], training=[(init, algo)]))
    assert found == []


@pytest.mark.parametrize("kind", ["If", "Loop", "Scan"])
def test_custom_op_in_a_control_flow_subgraph_of_a_function(tmp_path, kind):
    body = _graph([helper.make_node("Run", ["x"], ["y"], domain="com.attacker")], name="body")
    if kind == "If":
        control = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)
    elif kind == "Loop":
        control = helper.make_node("Loop", ["n", "c"], ["y"], body=body)
    else:
        control = helper.make_node("Scan", ["x"], ["y"], body=body, num_scan_inputs=1)
    function = helper.make_function("local.fns", "Wrapped", ["x"], ["y"], [control],
                                    [helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)])
    model = _model([helper.make_node("Wrapped", ["x"], ["y"], domain="local.fns")], functions=[function],
                   extra_opsets=[helper.make_opsetid("local.fns", 1)])
    _, hits = _custom_hits(tmp_path, model)
    assert len(hits) == 1 and f"function Wrapped/{kind}." in hits[0].evidence
