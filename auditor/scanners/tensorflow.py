"""TensorFlow SavedModel (`saved_model.pb`) and frozen graphs: list every op with a bounded protobuf
reader (no TensorFlow import) and flag ops that touch files, processes or the network or call Python.
The string constants and attributes that feed file and network ops are read, so an absolute save prefix
or a `grpc://` debug URL is named. When the graph cannot be walked completely (a limit, a broken message,
a file over the size cap) a raw scan of the bytes for the op names still reports every dangerous op."""
from __future__ import annotations

import functools
import mmap
import re
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import TensorflowFacts
from auditor.model import Finding
from auditor.parsers.protobuf import WIRE_LEN, Budget, BudgetExhausted, ProtobufError, fields, string, submessages
from auditor.record import field, record
from auditor.scanners import ScanContext

NAME = "tensorflow"

# Field numbers from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
# framework/graph.proto, node_def.proto, function.proto, op_def.proto, attr_value.proto, tensor.proto.
SAVED_MODEL_META_GRAPHS = 2
META_GRAPH_INFO, META_GRAPH_GRAPH = 1, 2
META_INFO_STRIPPED_OPS = 2
OP_LIST_OP, OP_DEF_NAME = 1, 1
GRAPH_NODE, GRAPH_LIBRARY = 1, 2
LIBRARY_FUNCTION, FUNCTION_SIGNATURE, FUNCTION_NODE = 1, 1, 3
NODE_NAME, NODE_OP, NODE_INPUT, NODE_ATTR = 1, 2, 3, 5
MAP_KEY, MAP_VALUE = 1, 2
ATTR_LIST, ATTR_S, ATTR_TENSOR = 1, 2, 8
LIST_S = 2
TENSOR_STRING_VAL = 8
MAX_STRINGS_PER_NODE = 64


@record
class Node:
    offset: int
    name: str
    op: str
    where: str
    inputs: list[str] = field(default_factory=list)
    strings: dict[str, list[str]] = field(default_factory=dict)    # attribute -> string values


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("tf-ops.yaml")


@functools.cache
def _remote() -> re.Pattern[str]:
    return re.compile(_data()["remote_scheme_pattern"], re.I)


def scan(ctx: ScanContext) -> Iterator[Finding]:
    files = [rec for rec in ctx.files_named(".pb") if not (rec.format == "onnx" and not _is_saved_model(rec))]
    yield from ctx.per_file(files, lambda rec: _scan_file(ctx, rec), NAME)


def _is_saved_model(rec: Any) -> bool:
    return bool(rec.path.rsplit("/", 1)[-1] == "saved_model.pb")


def _finding(rec: Any, rule: str, location: str, evidence: str, severity: str | None = None) -> Finding:
    return rules.finding(rule, file=rec.path, location=location, evidence=evidence, severity=severity, scanner=NAME)


def _scan_file(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    saved_model = _is_saved_model(rec)
    if rec.size == 0:
        if saved_model:
            yield _finding(rec, "TF-UNPARSEABLE", "byte 0", "empty file")
        return
    with open(ctx.fspath(rec), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if rec.size > ctx.options.limits.max_header_bytes:
            yield _finding(rec, "TF-LIMIT", "", f"{rec.size} bytes > the {ctx.options.limits.max_header_bytes}-byte "
                           "graph limit; only a raw scan for op names was done")
            yield from _raw_scan(rec, buf, set())
            return
        yield from _scan_graph(ctx, rec, buf, saved_model)


def _scan_graph(ctx: ScanContext, rec: Any, buf: Any, saved_model: bool) -> Iterator[Finding]:
    nodes: list[Node] = []
    listed_ops: set[str] = set()
    try:
        _read(buf, saved_model, Budget(_data()["max_fields"]), nodes, listed_ops)
    except BudgetExhausted as exc:
        yield _finding(rec, "TF-LIMIT", f"byte {exc.offset}",
                       f"more than {_data()['max_fields']} protobuf fields; the rest was raw-scanned for op names")
        yield from _raw_scan(rec, buf, {n.op for n in nodes})
    except ProtobufError as exc:
        found = list(_raw_scan(rec, buf, {n.op for n in nodes}))
        if saved_model or nodes or found:
            yield _finding(rec, "TF-UNPARSEABLE", f"byte {exc.offset}", str(exc))
        yield from found
        if not nodes:
            return      # a .pb that is not a graph is some other protobuf; nothing more to say about it
    if not saved_model and not nodes:
        return
    yield from _op_findings(rec, nodes, listed_ops)
    ctx.facts.add_file(TensorflowFacts, rec.path, {"kind": "saved_model" if saved_model else "graph_def",
                                                   "nodes": len(nodes),
                                                   "ops": sorted({n.op for n in nodes} | listed_ops)[:500]})


def _read(buf: Any, saved_model: bool, budget: Budget, nodes: list[Node], listed_ops: set[str]) -> None:
    """Fill `nodes` and `listed_ops` as far as the message can be read (they keep what was read before
    an error)."""
    whole = (0, len(buf))
    if not saved_model:
        nodes.extend(_graph_nodes(buf, whole, budget))
        return
    for _, meta in submessages(buf, whole, SAVED_MODEL_META_GRAPHS, budget):
        for _, info in submessages(buf, meta, META_GRAPH_INFO, budget):
            for _, ops in submessages(buf, info, META_INFO_STRIPPED_OPS, budget):
                for _, op_def in submessages(buf, ops, OP_LIST_OP, budget):
                    for _, op_name in submessages(buf, op_def, OP_DEF_NAME, budget):
                        listed_ops.add(string(buf, op_name))
        for _, graph in submessages(buf, meta, META_GRAPH_GRAPH, budget):
            nodes.extend(_graph_nodes(buf, graph, budget))


def _graph_nodes(buf: Any, graph: tuple[int, int], budget: Budget) -> Iterator[Node]:
    """Nodes of a GraphDef, then of its function library: one pass over the GraphDef's fields."""
    libraries: list[tuple[int, int]] = []
    for number, wire, offset, span in fields(buf, graph[0], graph[1], budget):
        if wire != WIRE_LEN:
            continue
        if number == GRAPH_NODE:
            yield _node(buf, offset, span, "graph", budget)  # type: ignore[arg-type]
        elif number == GRAPH_LIBRARY:
            libraries.append(span)  # type: ignore[arg-type]
    for library in libraries:
        for _, function in submessages(buf, library, LIBRARY_FUNCTION, budget):
            name = next((string(buf, s) for _, sig in submessages(buf, function, FUNCTION_SIGNATURE, budget)
                         for _, s in submessages(buf, sig, OP_DEF_NAME, budget)), "?")
            for offset, node in submessages(buf, function, FUNCTION_NODE, budget):
                yield _node(buf, offset, node, f"function {name}", budget)


def _node(buf: Any, offset: int, span: tuple[int, int], where: str, budget: Budget) -> Node:
    node = Node(offset, "", "", where)
    for _, part in submessages(buf, span, NODE_NAME, budget):
        node.name = string(buf, part)
    for _, part in submessages(buf, span, NODE_OP, budget):
        node.op = string(buf, part)
    if node.op in _interesting_ops():
        node.inputs = [string(buf, part) for _, part in submessages(buf, span, NODE_INPUT, budget)][:64]
    if node.op in _interesting_ops() or node.op == "Const":
        for _, entry in submessages(buf, span, NODE_ATTR, budget):
            key = next((string(buf, k) for _, k in submessages(buf, entry, MAP_KEY, budget)), "")
            values = [s for _, v in submessages(buf, entry, MAP_VALUE, budget) for s in _attr_strings(buf, v, budget)]
            if values:
                node.strings[key] = values[:MAX_STRINGS_PER_NODE]
    return node


def _attr_strings(buf: Any, value: tuple[int, int], budget: Budget) -> Iterator[str]:
    """The string values of one AttrValue: `s`, `list.s`, and a string tensor's `string_val`."""
    count = 0
    for n, _wire, _, span in _fields_len(buf, value, budget):
        if n == ATTR_S:
            yield string(buf, span)
        elif n == ATTR_LIST:
            for _, s in submessages(buf, span, LIST_S, budget):
                yield string(buf, s)
        elif n == ATTR_TENSOR:
            for _, s in submessages(buf, span, TENSOR_STRING_VAL, budget):
                count += 1
                if count > MAX_STRINGS_PER_NODE:
                    return
                yield string(buf, s)


def _fields_len(buf: Any, span: tuple[int, int], budget: Budget) -> Iterator[tuple[int, int, int, tuple[int, int]]]:
    for n, wire, at, value in fields(buf, span[0], span[1], budget):
        if wire == WIRE_LEN:
            yield n, wire, at, value  # type: ignore[misc]


@functools.cache
def _interesting_ops() -> frozenset[str]:
    return frozenset(_data()["path_ops"]) | frozenset(_data()["dangerous_ops"])


def _op_findings(rec: Any, nodes: list[Node], listed_ops: set[str]) -> Iterator[Finding]:
    dangerous = _data()["dangerous_ops"]
    path_ops = set(_data()["path_ops"])
    reported: set[tuple[str, str]] = set()
    consts = {(n.where, n.name): n.strings.get("value", []) for n in nodes if n.op == "Const"}
    for node in nodes:
        if node.op in dangerous and (node.op, node.where) not in reported:
            reported.add((node.op, node.where))
            same = sum(1 for n in nodes if n.op == node.op and n.where == node.where)
            yield _finding(rec, "TF-DANGEROUS-OP", _where(node),
                           f"op {node.op}" + (f" ({same} nodes)" if same > 1 else ""), dangerous[node.op])
        if node.op in path_ops:
            yield from _path_findings(rec, node, consts)
    for op in sorted(listed_ops - {n.op for n in nodes}):
        if op in dangerous:
            yield _finding(rec, "TF-DANGEROUS-OP", "meta_info_def.stripped_op_list",
                           f"op {op} is declared as used", dangerous[op])


def _where(node: Node) -> str:
    return f"byte {node.offset} ({node.where} node {node.name!r})"


def _path_findings(rec: Any, node: Node, consts: dict[tuple[str, str], list[str]]) -> Iterator[Finding]:
    """The strings a file/network op receives: its own attributes and the Const nodes feeding its inputs."""
    values = [v for vs in node.strings.values() for v in vs]
    for name in node.inputs:
        source = name.lstrip("^").split(":", 1)[0]
        values.extend(consts.get((node.where, source), []))
    remote = sorted({v for v in values if _remote().match(v)})
    if remote:
        yield _finding(rec, "TF-NETWORK-OP", _where(node), f"op {node.op} reaches {', '.join(remote[:5])}")
    escaping = sorted({v for v in values if _escapes(v)})
    if escaping:
        yield _finding(rec, "TF-PATH-ESCAPE", _where(node),
                       f"op {node.op} uses path {', '.join(repr(v[:200]) for v in escaping[:5])}")


_ABSOLUTE = re.compile(r"^(?:file://)?(?:/|\\|~|[A-Za-z]:[\\/])")


def _escapes(value: str) -> bool:
    """An absolute, home-relative or parent-traversing path (a SavedModel's own paths are relative)."""
    return bool(_ABSOLUTE.match(value)) or ".." in re.split(r"[/\\]", value)


@functools.cache
def _raw_pattern() -> re.Pattern[bytes]:
    """A NodeDef `op` field (tag 0x12, one length byte) holding a dangerous op's name."""
    names = sorted(_data()["dangerous_ops"], key=len, reverse=True)
    return re.compile(b"|".join(re.escape(b"\x12" + bytes([len(n)]) + n.encode()) for n in names))


def _raw_scan(rec: Any, buf: Any, already: set[str]) -> Iterator[Finding]:
    """Dangerous op names anywhere in the bytes (used when the graph could not be walked)."""
    dangerous = _data()["dangerous_ops"]
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for match in _raw_pattern().finditer(buf):
        op = match.group()[2:].decode()
        first.setdefault(op, match.start())
        counts[op] = counts.get(op, 0) + 1
    for op in sorted(first):
        if op in already:
            continue
        yield _finding(rec, "TF-DANGEROUS-OP", f"byte {first[op]} (raw scan)",
                       f"op {op} ({counts[op]} occurrences) in a graph that could not be parsed completely",
                       dangerous[op])
