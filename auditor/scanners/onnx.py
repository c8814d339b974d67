"""ONNX: external data that leaves the model folder, custom operator domains and local functions,
initializers whose bytes do not match their shape. External paths are checked, never followed."""
from __future__ import annotations

import functools
import math
import os
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import OnnxFacts
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import unique_files

NAME = "onnx"
MAX_PROTOBUF_BYTES = 2 * 1024**3      # protobuf's own hard limit for one message

_URL_OR_ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|file:|[a-zA-Z]:|/|\\\\|~)")


@functools.cache
def _spec() -> dict[str, Any]:
    return rules.load("weight-formats.yaml")["onnx"]


def scan(ctx: ScanContext) -> Iterator[Finding]:
    # .pb files that look like ONNX are TensorFlow's when named saved_model.pb (tensorflow.py reads them)
    files = unique_files([r for r in ctx.files_of("onnx") if not r.path.endswith("saved_model.pb")],
                         ctx.files_named(".onnx"))
    if not files:
        return
    try:
        import onnx  # noqa: F401 - heavy, imported only when there is an ONNX file
    except ImportError:
        for rec in files:
            yield rules.finding("SCANNER-MISSING-DEPENDENCY", file=rec.path, scanner=NAME,
                                evidence="onnx is not installed: pip install 'auditor[onnx]'")
        return
    present = {rec.path: rec for rec in ctx.files if not rec.error}
    yield from ctx.per_file(files, lambda rec: _scan_file(ctx, rec, present), NAME)


def _scan_file(ctx: ScanContext, rec: Any, present: dict[str, Any]) -> Iterator[Finding]:
    import onnx

    def finding(rule: str, location: str, evidence: str, severity: str | None = None) -> Finding:
        return rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME, severity=severity)

    if rec.size >= MAX_PROTOBUF_BYTES:
        yield finding("ONNX-LIMIT", "", f"{rec.size} bytes >= the 2 GiB protobuf limit")
        return
    try:
        model = onnx.load_model(ctx.fspath(rec), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, onnx ValueError/RuntimeError...: fail closed
        yield finding("ONNX-UNPARSEABLE", "", f"{type(exc).__name__}: {exc}")
        return
    if model.functions:
        names = [f"{f.domain}.{f.name}" for f in model.functions]
        yield finding("ONNX-FUNCTION", "functions", f"{len(names)} local functions: {', '.join(names[:20])}")
    walk = _Walk(ctx, rec, present, finding, local_domains={f.domain for f in model.functions})
    yield from walk.run(model)
    for domain, ops in sorted(walk.custom_ops.items()):
        yield finding("ONNX-CUSTOM-DOMAIN", f"domain {domain!r}", f"ops {', '.join(sorted(ops)[:20])}")
    ctx.facts.add_file(OnnxFacts, rec.path, {
        "ir_version": model.ir_version, "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "metadata": {p.key: p.value[:4096] for p in model.metadata_props},
        "nodes": walk.count, "functions": len(model.functions), "custom_domains": sorted(walk.custom_ops),
    })


class _Walk:
    """Every graph the model holds: the main graph, local functions, training_info graphs, and the
    If/Loop/Scan subgraphs of any of them (a list, never the C stack)."""

    def __init__(self, ctx: ScanContext, rec: Any, present: dict[str, Any], finding: Any,
                 local_domains: set[str]) -> None:
        self.ctx, self.rec, self.present, self.finding = ctx, rec, present, finding
        self.local_domains = local_domains
        self.standard = set(_spec()["standard_domains"])
        self.custom_ops: dict[str, set[str]] = {}
        self.count = 0
        self.graphs: list[tuple[Any, str, int]] = []

    def run(self, model: Any) -> Iterator[Finding]:
        spec = _spec()
        self.graphs = [(model.graph, "graph", 0)] + [(f, f"function {f.name}", 0) for f in model.functions]
        for i, info in enumerate(model.training_info):      # run by training runtimes (onnxruntime-training)
            self.graphs += [(info.initialization, f"training_info[{i}].initialization", 0),
                            (info.algorithm, f"training_info[{i}].algorithm", 0)]
        while self.graphs:
            graph, where, depth = self.graphs.pop()
            if depth > spec["max_graph_depth"]:
                yield self.finding("ONNX-LIMIT", where, f"subgraphs nested deeper than {spec['max_graph_depth']}")
                continue
            for node in graph.node:
                self.count += 1
                if self.count > spec["max_nodes"]:
                    yield self.finding("ONNX-LIMIT", where, f"more than {spec['max_nodes']} nodes")
                    return
                yield from self.node(node, where, depth)
            yield from self.initializers(graph, where)

    def node(self, node: Any, where: str, depth: int) -> Iterator[Finding]:
        if node.domain not in self.standard and node.domain not in self.local_domains:
            self.custom_ops.setdefault(node.domain, set()).add(f"{node.op_type} ({where})")
        label = node.name or node.op_type
        for attr in node.attribute:
            if attr.HasField("g"):
                self.graphs.append((attr.g, f"{where}/{label}.{attr.name}", depth + 1))
            for i, sub in enumerate(attr.graphs):
                self.graphs.append((sub, f"{where}/{label}.{attr.name}[{i}]", depth + 1))
            for tensor in ([attr.t] if attr.HasField("t") else []) + list(attr.tensors):
                yield from _check_tensor(self.ctx, self.rec, tensor, f"{where} node {label!r} attribute {attr.name}",
                                         self.present, self.finding)

    def initializers(self, graph: Any, where: str) -> Iterator[Finding]:
        for tensor in getattr(graph, "initializer", ()):
            yield from _check_tensor(self.ctx, self.rec, tensor, f"{where} initializer {tensor.name!r}",
                                     self.present, self.finding)
        for sparse in getattr(graph, "sparse_initializer", ()):
            for part, tensor in (("values", sparse.values), ("indices", sparse.indices)):
                yield from _check_tensor(self.ctx, self.rec, tensor,
                                         f"{where} sparse initializer {sparse.values.name!r} {part}",
                                         self.present, self.finding)


def _check_tensor(ctx: ScanContext, rec: Any, tensor: Any, where: str, present: dict[str, Any],
                  finding: Any) -> Iterator[Finding]:
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        yield finding("ONNX-TENSOR-INVALID", where, f"negative dims {dims}")
        return
    itemsize = _spec()["element_sizes"].get(tensor.data_type)
    expected = math.prod(dims) * itemsize if itemsize else None
    if tensor.data_location == 1 or tensor.external_data:       # EXTERNAL
        yield from _check_external(ctx, rec, tensor, where, expected, present, finding)
    elif tensor.raw_data and expected is not None and len(tensor.raw_data) != expected:
        yield finding("ONNX-TENSOR-INVALID", where,
                      f"dims {dims} x {itemsize} bytes = {expected}, raw_data holds {len(tensor.raw_data)}")


def _check_external(ctx: ScanContext, rec: Any, tensor: Any, where: str, expected: int | None,
                    present: dict[str, Any], finding: Any) -> Iterator[Finding]:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if not location:
        yield finding("ONNX-TENSOR-INVALID", where, "external data without a location")
        return
    lexical = _lexical_escape(location)
    if lexical:
        yield finding("ONNX-EXTERNAL-DATA-ESCAPE", where, f"location {location!r} {lexical}")
        return
    rel = posixpath.normpath(posixpath.join(posixpath.dirname(rec.path), location))
    escape = _link_escape(ctx, rel)
    if escape:
        yield finding("ONNX-EXTERNAL-DATA-ESCAPE", where, f"location {location!r}: {escape}",
                      severity="medium" if escape.startswith("hardlink") else None)
        return
    if rel not in present:
        yield finding("ONNX-EXTERNAL-DATA-MISSING", where, f"location {location!r} is not in the snapshot")
        return
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        yield finding("ONNX-TENSOR-INVALID", where, f"external data offset/length not integers: {info}")
        return
    size = present[rel].size
    span = length if length is not None else (expected or 0)
    if offset < 0 or offset + span > size:
        yield finding("ONNX-EXTERNAL-DATA-MISSING", where,
                      f"bytes {offset}-{offset + span} of {location!r} requested, the file has {size}")
    elif length is not None and expected is not None and length != expected:
        yield finding("ONNX-TENSOR-INVALID", where, f"external length {length} != dims {list(tensor.dims)} = {expected} bytes")


def _lexical_escape(location: str) -> str:
    """Why an external-data location leaves the model folder by its spelling alone, or ""."""
    if any(ord(c) < 32 for c in location):
        return "holds control characters"
    if _URL_OR_ABSOLUTE.match(location) or ".." in re.split(r"[/\\]", location) or "\\" in location:
        return "leaves the model folder"
    return ""


def _link_escape(ctx: ScanContext, rel: str) -> str:
    """Why `rel` (lexically inside the root) may still resolve elsewhere, or ""."""
    root = os.path.realpath(ctx.root)
    current = ctx.root
    parts = rel.split("/")
    for i, part in enumerate(parts):
        current = current / part
        if not os.path.lexists(current):
            return ""
        last = i == len(parts) - 1
        if os.path.islink(current):
            target = os.path.realpath(current)
            inside = target == root or target.startswith(root + os.sep)
            # The HF cache keeps files as symlinks into its blobs folder; the inventory vetted those.
            vetted = last and ctx.snapshot.kind in ("hf-cache", "hub") and rel in {f.path for f in ctx.files}
            if not inside and not vetted:
                return f"symlink {'/'.join(parts[:i + 1])} -> {os.readlink(current)} resolves outside the model folder"
        if last:
            st = os.stat(current, follow_symlinks=False)
            if not os.path.islink(current) and st.st_nlink > 1:
                return f"hardlink with {st.st_nlink} links; its content may be shared with a file outside the model"
    return ""
