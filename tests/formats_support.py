"""Helpers for the weight-format tests (issue 4): run one scanner on a real folder through the real
source and inventory, and hand-build the byte formats the libraries will not write corrupted."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from auditor import inventory, scanners, sources
from auditor.model import Finding, Options


def run_scanner(name: str, folder: Path, options: Options | None = None) -> tuple[list[Finding], dict[str, Any]]:
    options = options or Options()
    snapshot = sources.open_snapshot(str(folder), options)
    inv = inventory.build(snapshot, options)
    ctx = scanners.ScanContext(snapshot=snapshot, files=tuple(inv.files), options=options)
    findings = [f for _, f in scanners.run(ctx, scanners.load([name]))]
    assert not [f for f in findings if f.rule == "SCANNER-ERROR"], findings
    return findings, ctx.facts.to_dict()


def rules_of(findings: list[Finding], file: str | None = None) -> set[str]:
    return {f.rule for f in findings if file is None or f.file == file}


def safetensors_bytes(header: dict[str, Any] | bytes, data: bytes, *, declared_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else _json(header)
    return struct.pack("<Q", len(raw) if declared_len is None else declared_len) + raw + data


def _json(value: Any) -> bytes:
    import json
    return json.dumps(value).encode()


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(kv: list[tuple[str, int, bytes]], tensors: list[tuple[str, list[int], int, int]], data: bytes, *,
               n_tensors: int | None = None, n_kv: int | None = None, alignment: int = 32) -> bytes:
    """A GGUF v3 file: kv = (key, value type, encoded value); tensors = (name, dims, ggml type, offset)."""
    out = b"GGUF" + struct.pack("<I", 3)
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kv) if n_kv is None else n_kv)
    for key, vtype, value in kv:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    for name, dims, ttype, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += b"\x00" * (-len(out) % alignment)
    return out + data


def pb_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_field(number: int, payload: bytes | str) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    return pb_varint(number << 3 | 2) + pb_varint(len(raw)) + raw


def tf_saved_model(nodes: list[tuple[str, str]], function_nodes: list[tuple[str, str]] = ()) -> bytes:
    """A SavedModel protobuf: one MetaGraphDef whose GraphDef holds `nodes` (name, op) and a function."""
    graph = b"".join(pb_field(1, pb_field(1, name) + pb_field(2, op)) for name, op in nodes)
    if function_nodes:
        signature = pb_field(1, "__inference_fn_1")
        body = b"".join(pb_field(3, pb_field(1, name) + pb_field(2, op)) for name, op in function_nodes)
        graph += pb_field(2, pb_field(1, pb_field(1, signature) + body))
    meta_graph = pb_field(1, pb_field(4, "serve")) + pb_field(2, graph)
    return pb_varint(1 << 3) + pb_varint(1) + pb_field(2, meta_graph)


def pb_key(number: int, wire: int) -> bytes:
    return pb_varint(number << 3 | wire)


def pb_group(number: int, content: bytes) -> bytes:
    """A protobuf group (wire types 3 and 4) around `content`: legal, and skipped by schema parsers."""
    return pb_key(number, 3) + content + pb_key(number, 4)


def tf_attr_strings(values: list[str]) -> bytes:
    """An AttrValue holding a list of strings (e.g. DebugIdentity's debug_urls)."""
    return pb_field(1, b"".join(pb_field(2, v) for v in values))


def tf_attr_string_tensor(values: list[str]) -> bytes:
    """An AttrValue holding a DT_STRING TensorProto (a Const node's `value`)."""
    return pb_field(8, pb_varint(1 << 3) + pb_varint(7) + b"".join(pb_field(8, v) for v in values))


def tf_node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: dict[str, bytes] | None = None,
            extra: bytes = b"") -> bytes:
    """A NodeDef, field by field: name, op, inputs, attr map entries, then any `extra` raw fields."""
    body = pb_field(1, name) + pb_field(2, op) + b"".join(pb_field(3, i) for i in inputs)
    for key, value in (attrs or {}).items():
        body += pb_field(5, pb_field(1, key) + pb_field(2, value))
    return body + extra


def tf_graph(nodes: list[bytes], function_nodes: list[bytes] = (), function: str = "__inference_serve_1") -> bytes:
    """A GraphDef: NodeDefs, and a FunctionDef library holding `function_nodes`."""
    graph = b"".join(pb_field(1, n) for n in nodes)
    if function_nodes:
        body = pb_field(1, pb_field(1, function)) + b"".join(pb_field(3, n) for n in function_nodes)
        graph += pb_field(2, pb_field(1, body))
    return graph


def tf_saved_model_of(graph: bytes, meta_extra: bytes = b"") -> bytes:
    meta_graph = pb_field(1, pb_field(4, "serve")) + meta_extra + pb_field(2, graph)
    return pb_varint(1 << 3) + pb_varint(1) + pb_field(2, meta_graph)
