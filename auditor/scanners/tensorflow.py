"""TensorFlow SavedModel (`saved_model.pb`) and frozen graphs: list every op with a bounded protobuf
reader (no TensorFlow import) and flag ops that touch files or processes or call Python."""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import TensorflowFacts
from auditor.model import Finding
from auditor.parsers.protobuf import Budget, ProtobufError, string, submessages
from auditor.scanners import ScanContext

NAME = "tensorflow"

# Field numbers from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
# framework/graph.proto, node_def.proto, function.proto, op_def.proto.
SAVED_MODEL_META_GRAPHS = 2
META_GRAPH_INFO, META_GRAPH_GRAPH = 1, 2
META_INFO_STRIPPED_OPS = 2
OP_LIST_OP, OP_DEF_NAME = 1, 1
GRAPH_NODE, GRAPH_LIBRARY = 1, 2
LIBRARY_FUNCTION, FUNCTION_SIGNATURE, FUNCTION_NODE = 1, 1, 3
NODE_NAME, NODE_OP = 1, 2


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("tf-ops.yaml")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    for rec in ctx.files_named(".pb"):
        saved_model = rec.path.rsplit("/", 1)[-1] == "saved_model.pb"
        if rec.format == "onnx" and not saved_model:
            continue        # the onnx scanner owns it
        if rec.size > ctx.options.limits.max_header_bytes:
            if saved_model:
                yield rules.finding("TF-LIMIT", file=rec.path, evidence=f"{rec.size} bytes", scanner=NAME)
            continue
        yield from _scan_file(ctx, rec, saved_model)


def _scan_file(ctx: ScanContext, rec: Any, saved_model: bool) -> Iterator[Finding]:
    buf = ctx.path(rec).read_bytes()
    data = _data()
    budget = Budget(data["max_fields"])
    nodes: list[tuple[int, str, str, str]] = []   # offset, node name, op, where
    listed_ops: set[str] = set()
    try:
        if saved_model:
            for _, meta in submessages(buf, (0, len(buf)), SAVED_MODEL_META_GRAPHS, budget):
                for _, info in submessages(buf, meta, META_GRAPH_INFO, budget):
                    for _, ops in submessages(buf, info, META_INFO_STRIPPED_OPS, budget):
                        for _, op_def in submessages(buf, ops, OP_LIST_OP, budget):
                            for _, op_name in submessages(buf, op_def, OP_DEF_NAME, budget):
                                listed_ops.add(string(buf, op_name))
                for _, graph in submessages(buf, meta, META_GRAPH_GRAPH, budget):
                    nodes.extend(_graph_nodes(buf, graph, budget))
        else:
            nodes.extend(_graph_nodes(buf, (0, len(buf)), budget))
    except ProtobufError as exc:
        if saved_model:
            rule = "TF-LIMIT" if "budget" in str(exc) else "TF-UNPARSEABLE"
            yield rules.finding(rule, file=rec.path, location=f"byte {exc.offset}", evidence=str(exc), scanner=NAME)
        return      # a .pb that is not a graph is some other protobuf; nothing to say about it
    if not saved_model and not nodes:
        return
    dangerous = data["dangerous_ops"]
    reported: set[tuple[str, str]] = set()
    for offset, node_name, op, where in nodes:
        if op in dangerous and (op, where) not in reported:
            reported.add((op, where))
            same = sum(1 for n in nodes if n[2] == op and n[3] == where)
            yield rules.finding("TF-DANGEROUS-OP", file=rec.path, location=f"byte {offset} ({where} node {node_name!r})",
                                evidence=f"op {op}" + (f" ({same} nodes)" if same > 1 else ""),
                                severity=dangerous[op], scanner=NAME)
    for op in sorted(listed_ops - {n[2] for n in nodes}):
        if op in dangerous:
            yield rules.finding("TF-DANGEROUS-OP", file=rec.path, location="meta_info_def.stripped_op_list",
                                evidence=f"op {op} is declared as used", severity=dangerous[op], scanner=NAME)
    ctx.facts.add_file(TensorflowFacts, rec.path, {"kind": "saved_model" if saved_model else "graph_def",
                                     "nodes": len(nodes), "ops": sorted({n[2] for n in nodes} | listed_ops)[:500]})


def _graph_nodes(buf: bytes, graph: tuple[int, int], budget: Budget) -> Iterator[tuple[int, str, str, str]]:
    for offset, node in submessages(buf, graph, GRAPH_NODE, budget):
        yield _node(buf, offset, node, "graph", budget)
    for _, library in submessages(buf, graph, GRAPH_LIBRARY, budget):
        for _, function in submessages(buf, library, LIBRARY_FUNCTION, budget):
            name = next((string(buf, s) for _, sig in submessages(buf, function, FUNCTION_SIGNATURE, budget)
                         for _, s in submessages(buf, sig, OP_DEF_NAME, budget)), "?")
            for offset, node in submessages(buf, function, FUNCTION_NODE, budget):
                yield _node(buf, offset, node, f"function {name}", budget)


def _node(buf: bytes, offset: int, node: tuple[int, int], where: str, budget: Budget) -> tuple[int, str, str, str]:
    name = op = ""
    for _, span in submessages(buf, node, NODE_NAME, budget):
        name = string(buf, span)
    for _, span in submessages(buf, node, NODE_OP, budget):
        op = string(buf, span)
    return offset, name, op, where
