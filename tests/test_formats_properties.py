"""Property tests (hypothesis, small budget) for the weight-format parsers: on any bytes they return or
raise their own error, never anything else, and on well-formed input they read back what was written."""
from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.parsers import gguf, protobuf, safetensors_header, strictjson
from tests.formats_support import gguf_bytes, gguf_string, pb_field, pb_group, pb_key, pb_varint

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=30)


def _nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    return 0


@FAST
@given(json_values)
def test_strict_json_depth_matches_the_value(value):
    text = json.dumps(value)
    assert strictjson.depth(text, 1000) == _nesting(value)
    assert strictjson.loads(text, 1000)[0] == value


@FAST
@given(st.binary(max_size=300))
def test_strict_json_raises_only_value_errors(raw):
    try:
        strictjson.loads(raw, 8, max_bytes=200)
    except ValueError:
        pass


@st.composite
def pb_messages(draw, depth=0):
    """(encoded bytes, [(number, wire)]) of a message of random fields, groups included."""
    out, shape = b"", []
    for _ in range(draw(st.integers(0, 5))):
        number = draw(st.integers(1, 2000))
        wire = draw(st.sampled_from([0, 1, 2, 3, 5] if depth < 3 else [0, 1, 2, 5]))
        if wire == 0:
            out += pb_key(number, 0) + pb_varint(draw(st.integers(0, 2**64 - 1)))
        elif wire in (1, 5):
            out += pb_key(number, wire) + b"\x01" * (8 if wire == 1 else 4)
        elif wire == 2:
            out += pb_field(number, draw(st.binary(max_size=20)))
        else:
            inner, _ = draw(pb_messages(depth + 1))
            out += pb_group(number, inner)
        shape.append((number, wire))
    return out, shape


@FAST
@given(pb_messages())
def test_protobuf_reads_every_wire_type_back(message):
    raw, shape = message
    read = [(n, w) for n, w, _, _ in protobuf.fields(raw, 0, len(raw), protobuf.Budget(10_000))]
    assert read == shape


@FAST
@given(st.binary(max_size=200), st.integers(1, 50))
def test_protobuf_raises_only_its_own_error(raw, budget):
    try:
        for _, wire, _, value in protobuf.fields(raw, 0, len(raw), protobuf.Budget(budget)):
            if wire in (2, 3):
                begin, end = value
                assert 0 <= begin <= end <= len(raw)
    except protobuf.ProtobufError:
        pass


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "__metadata__"),
                       st.tuples(st.sampled_from(["F32", "I8", "BF16", "U64"]), st.lists(st.integers(0, 4), max_size=3)),
                       max_size=5))
def test_safetensors_header_reads_back_what_was_written(tmp_path_factory, tensors):
    header, data, offset = {}, b"", 0
    bits = {"F32": 32, "I8": 8, "BF16": 16, "U64": 64}
    for name, (dtype, shape) in tensors.items():
        size = bits[dtype] // 8
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
        data += b"\0" * size
    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    parsed = safetensors_header.read_header(str(path), path.stat().st_size, max_header_bytes=1 << 20, max_depth=8,
                                            dtypes=bits, max_tensors=100)
    assert {t.name for t in parsed.tensors} == set(tensors) and parsed.problems == []
    assert list(safetensors_header.layout_problems(parsed)) == []


@FAST
@given(st.binary(max_size=120))
def test_safetensors_header_raises_only_its_own_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    try:
        header = safetensors_header.read_header(str(path), path.stat().st_size, max_header_bytes=1 << 20,
                                                max_depth=8, dtypes={"F32": 32}, max_tensors=100)
        list(safetensors_header.layout_problems(header))
    except safetensors_header.HeaderError:
        pass


@FAST
@given(st.dictionaries(st.from_regex(r"general\.[a-z]{1,8}", fullmatch=True), st.text(max_size=30), max_size=6))
def test_gguf_reads_back_string_metadata(metadata):
    raw = gguf_bytes([(k, 8, gguf_string(v)) for k, v in metadata.items()], [], b"")
    assert gguf.read(raw, len(raw)).metadata == metadata


@FAST
@given(st.binary(max_size=200))
def test_gguf_raises_only_its_own_error(tail):
    raw = b"GGUF" + struct.pack("<I", 3) + tail
    try:
        parsed = gguf.read(raw, len(raw))
        list(gguf.tensor_problems(parsed, len(raw)))
    except gguf.GgufError:
        pass
