"""TensorFlow graphs built field by field: groups, padding, size caps, network and file ops."""
from __future__ import annotations

import pytest

from auditor.model import Limits, Options
from auditor.scanners import tensorflow
from tests.formats_support import (
    pb_field,
    pb_group,
    pb_key,
    pb_varint,
    rules_of,
    run_scanner,
    tf_attr_string_tensor,
    tf_attr_strings,
    tf_graph,
    tf_node,
    tf_saved_model_of,
)

BENIGN = [tf_node("x", "Placeholder"), tf_node("w", "VarHandleOp"), tf_node("y", "MatMul", ("x", "w")),
          tf_node("saver_filename", "Placeholder"),
          tf_node("save", "SaveV2", ("saver_filename", "names", "slices", "w")),
          tf_node("merge", "MergeV2Checkpoints", ("saver_filename",))]


def _severities(found, rule):
    return {f.evidence.split()[1]: f.severity for f in found if f.rule == rule}


@pytest.mark.parametrize("where", ["graph field", "node field", "nested group"])
@pytest.mark.parametrize("container", ["saved_model.pb", "frozen_graph.pb"])
def test_legal_groups_do_not_hide_ops(tmp_path, where, container):
    group = pb_group(15, pb_field(1, "x") + pb_varint(2 << 3) + pb_varint(7))
    if where == "nested group":
        group = pb_group(15, pb_group(3, pb_key(1, 5) + b"\0\0\0\0") + pb_key(2, 1) + b"\0" * 8)
    node_extra = group if where != "graph field" else b""
    nodes = [tf_node("x", "Placeholder"), tf_node("cb", "PyFunc", ("x",), extra=node_extra)]
    graph = (group if where == "graph field" else b"") + tf_graph(nodes)
    raw = tf_saved_model_of(graph) if container == "saved_model.pb" else graph
    (tmp_path / container).write_bytes(raw)
    found = run_scanner("tensorflow", tmp_path)[0]
    assert rules_of(found) == {"TF-DANGEROUS-OP"}, found
    assert found[0].severity == 4 and "node 'cb'" in found[0].location


def test_groups_in_a_benign_graph_stay_quiet(tmp_path):
    group = pb_group(15, pb_field(1, "x"))
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(group + tf_graph(BENIGN)))
    findings, facts = run_scanner("tensorflow", tmp_path)
    assert findings == []
    assert "SaveV2" in facts["tensorflow"]["saved_model.pb"]["ops"]


def test_unbalanced_group_is_unparseable_but_ops_are_still_named(tmp_path):
    graph = tf_graph([tf_node("cb", "PyFunc")]) + pb_key(15, 3) + pb_field(1, "never closed")
    (tmp_path / "frozen_graph.pb").write_bytes(graph)
    found = run_scanner("tensorflow", tmp_path)[0]
    assert {"TF-UNPARSEABLE", "TF-DANGEROUS-OP"} <= rules_of(found)
    assert [f.severity for f in found if f.rule == "TF-DANGEROUS-OP"] == [4]


@pytest.mark.parametrize("name", ["saved_model.pb", "model.pb"])
def test_padding_past_the_field_budget_is_high_and_hides_nothing(tmp_path, monkeypatch, name):
    monkeypatch.setitem(tensorflow._data(), "max_fields", 10_000)
    padding = (pb_key(9, 0) + b"\0") * 10_001
    graph = padding + tf_graph([tf_node("x", "Placeholder"), tf_node("cb", "EagerPyFunc")])
    (tmp_path / name).write_bytes(tf_saved_model_of(graph) if name == "saved_model.pb" else graph)
    found = run_scanner("tensorflow", tmp_path)[0]
    limit = [f for f in found if f.rule == "TF-LIMIT"]
    assert limit and limit[0].severity == 3
    assert _severities(found, "TF-DANGEROUS-OP") == {"EagerPyFunc": 4}


def test_graph_over_the_size_cap_is_high_and_raw_scanned(tmp_path):
    graph = tf_graph([tf_node("x", "Placeholder"), tf_node("cb", "PyFunc")]) + pb_field(20, b"\0" * 5000)
    (tmp_path / "frozen.pb").write_bytes(graph)
    options = Options(limits=Limits(max_header_bytes=4096))
    found = run_scanner("tensorflow", tmp_path, options)[0]
    assert [f.severity for f in found if f.rule == "TF-LIMIT"] == [3]
    assert _severities(found, "TF-DANGEROUS-OP") == {"PyFunc": 4}
    (tmp_path / "frozen.pb").write_bytes(tf_graph(BENIGN) + pb_field(20, b"\0" * 5000))
    assert rules_of(run_scanner("tensorflow", tmp_path, options)[0]) == {"TF-LIMIT"}


def test_debug_op_streaming_to_grpc_is_a_network_op(tmp_path):
    nodes = [tf_node("x", "Placeholder"),
             tf_node("dbg", "DebugIdentity", ("x",), {"debug_urls": tf_attr_strings(["grpc://203.0.113.7:6064"])}),
             tf_node("nan", "DebugNanCount", ("x",), {"debug_urls": tf_attr_strings(["file:///tmp/dump"])})]
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(tf_graph(nodes)))
    found = run_scanner("tensorflow", tmp_path)[0]
    network = [f for f in found if f.rule == "TF-NETWORK-OP"]
    assert len(network) == 1 and "grpc://203.0.113.7:6064" in network[0].evidence and network[0].severity == 3
    assert [f.evidence for f in found if f.rule == "TF-PATH-ESCAPE"] == ["op DebugNanCount uses path 'file:///tmp/dump'"]


def test_data_service_dataset_connecting_out(tmp_path):
    nodes = [tf_node("addr", "Const", attrs={"value": tf_attr_string_tensor(["dispatcher.example.net:5050"])}),
             tf_node("proto", "Const", attrs={"value": tf_attr_string_tensor(["grpc"])}),
             tf_node("ds", "DataServiceDatasetV4", ("addr", "proto"))]
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(tf_graph([], nodes)))
    found = run_scanner("tensorflow", tmp_path)[0]
    assert _severities(found, "TF-DANGEROUS-OP") == {"DataServiceDatasetV4": 3}


@pytest.mark.parametrize(("op", "prefix"), [("SaveV2", "/etc/cron.d/x"), ("WriteFile", "../../.bashrc"),
                                            ("MergeV2Checkpoints", "~/.ssh/authorized_keys"),
                                            ("TFRecordDataset", "C:\\Users\\x")])
def test_file_op_with_constant_host_path_in_a_serving_function(tmp_path, op, prefix):
    function_nodes = [tf_node("prefix", "Const", attrs={"value": tf_attr_string_tensor([prefix])}),
                      tf_node("op", op, ("prefix:output:0", "names"))]
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(tf_graph(BENIGN, function_nodes)))
    found = run_scanner("tensorflow", tmp_path)[0]
    escapes = [f for f in found if f.rule == "TF-PATH-ESCAPE"]
    assert len(escapes) == 1 and repr(prefix) in escapes[0].evidence
    assert "function __inference_serve_1 node 'op'" in escapes[0].location


def test_file_ops_with_relative_constants_stay_quiet(tmp_path):
    function_nodes = [tf_node("prefix", "Const", attrs={"value": tf_attr_string_tensor(["variables/variables"])}),
                      tf_node("save", "SaveV2", ("prefix:output:0",)), tf_node("restore", "RestoreV2", ("prefix",))]
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(tf_graph(BENIGN, function_nodes)))
    assert run_scanner("tensorflow", tmp_path)[0] == []


def test_remote_file_name_is_a_network_op(tmp_path):
    nodes = [tf_node("files", "Const", attrs={"value": tf_attr_string_tensor(["gs://bucket/data.tfrecord"])}),
             tf_node("ds", "TFRecordDataset", ("files",))]
    (tmp_path / "saved_model.pb").write_bytes(tf_saved_model_of(tf_graph(nodes)))
    found = run_scanner("tensorflow", tmp_path)[0]
    assert "TF-NETWORK-OP" in rules_of(found)


def test_one_broken_graph_does_not_hide_another(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "saved_model.pb").write_bytes(b"\x12\xff\xff\xff\xff\x0f")
    (tmp_path / "b.pb").write_bytes(tf_graph([tf_node("cb", "PyFunc")]))
    found = run_scanner("tensorflow", tmp_path)[0]
    assert rules_of(found, "a/saved_model.pb") == {"TF-UNPARSEABLE"}
    assert rules_of(found, "b.pb") == {"TF-DANGEROUS-OP"}
