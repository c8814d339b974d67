"""The symbolic pickle machine on hand-written opcodes and on real pickles of every protocol."""
from __future__ import annotations

import collections
import pickle
import random
import struct

import pytest

from auditor.parsers import picklevm
from auditor.parsers.picklevm import Bounds, Obj, Ref, analyze, analyze_all, render
from tests.pickle_corpus import _str, call, glob


def qualnames(result: picklevm.Analysis) -> list[str]:
    return [ref.qualname for ref in result.imports]


@pytest.mark.parametrize("proto", range(6))
def test_real_pickles_of_every_protocol_parse_completely(proto: int) -> None:
    data = {"a": [1, 2.5, "x", b"yy", None, True, 2 ** 70], "t": (1,), "s": {3}, "fs": frozenset({4}),
            "od": collections.OrderedDict(k=[1]), "c": complex(1, 2)}
    raw = pickle.dumps(data, protocol=proto)
    result = analyze(raw)
    assert result.complete, result.error
    assert result.end == len(raw)
    assert result.protocol == (proto if proto >= 2 else 0)
    assert "collections.OrderedDict" in qualnames(result)


def test_reduce_records_callee_and_literal_args() -> None:
    result = analyze(call("os", "system", "echo hi", proto=2))
    assert qualnames(result) == ["os.system"]
    (c,) = result.calls
    assert c.kind == "reduce" and isinstance(c.callee, Ref) and c.args == ("echo hi",)
    assert render(c.callee) + render(c.args) == "os.system('echo hi',)"


def test_python2_names_are_mapped_like_the_loader_does() -> None:
    result = analyze(b"c__builtin__\neval\n(S'1'\ntR.")
    (ref,) = result.imports
    assert ref.qualname == "builtins.eval" and ref.raw == "__builtin__.eval"


def test_stack_global_from_memo_slots_resolves() -> None:
    raw = (b"\x80\x04" + _str("posix", 4) + b"\x94" + b"0" + _str("system", 4) + b"\x94" + b"0"
           + b"h\x00h\x01\x93" + _str("id", 4) + b"\x85R.")
    result = analyze(raw)
    assert result.complete
    assert qualnames(result) == ["posix.system"]
    assert result.calls[0].args == ("id",)


def test_protocol0_strings_feed_stack_global() -> None:
    result = analyze(b"\x80\x04S'os'\nS'popen'\n\x93S'id'\n\x85R.")
    assert qualnames(result) == ["os.popen"]


def test_dotted_stack_global_name_is_kept_whole() -> None:
    result = analyze(call("asyncio.unix_events", "_UnixSubprocessTransport._start", "x", proto=4))
    assert qualnames(result) == ["asyncio.unix_events._UnixSubprocessTransport._start"]


def test_inst_and_obj_are_calls() -> None:
    inst = analyze(b"(S'id'\nios\nsystem\n.")
    assert [c.kind for c in inst.calls] == ["inst"] and qualnames(inst) == ["os.system"]
    obj = analyze(b"\x80\x02(" + glob("subprocess", "getoutput", 2) + b"X\x02\x00\x00\x00ido.")
    assert [c.kind for c in obj.calls] == ["obj"] and obj.calls[0].args == ("id",)


def test_newobj_and_newobj_ex() -> None:
    newobj = analyze(b"\x80\x02" + glob("m", "C", 2) + b"K\x01\x85\x81.")
    assert newobj.calls[0].kind == "newobj" and newobj.calls[0].args == (1,)
    ex = analyze(b"\x80\x04" + glob("m", "C", 4) + b")}" + _str("k", 4) + b"K\x02s\x92.")
    assert ex.calls[0].kind == "newobj_ex" and ex.calls[0].kwargs == {"k": 2}


def test_build_on_a_global_is_recorded() -> None:
    raw = b"\x80\x04" + glob("numpy", "size", 4) + b"}" + _str("__call__", 4) + b"K\x01sb."
    result = analyze(raw)
    (build,) = result.builds
    assert isinstance(build.target, Ref) and build.state == {"__call__": 1}


def test_persistent_ids_and_extension_codes() -> None:
    raw = b"\x80\x02(X\x07\x00\x00\x00storageX\x01\x00\x00\x000tQ\x82\x07\x86."
    result = analyze(raw)
    assert result.complete
    assert result.persids[0].args == ("storage", "0")
    assert [code for code, _op, _pos in result.ext_codes] == [7]
    assert isinstance(result.value[1], Obj) and result.value[1].kind == "ext"


def test_broken_stream_keeps_what_came_before() -> None:
    raw = call("os", "system", "id", proto=2)[:-1] + b"\xff"
    result = analyze(raw)
    assert not result.complete and "invalid opcode" in result.error
    assert qualnames(result) == ["os.system"] and len(result.calls) == 1
    assert result.error_pos == len(raw) - 1


@pytest.mark.parametrize("raw,why", [
    (b"\x80\x02h\x05.", "memo key 5"),
    (b"\x80\x02]", "without STOP"),
    (b"\x80\x02X\xff\x00\x00\x00ab", "truncated"),
    (b"cos\nsys\xf8\n.", "not UTF-8"),
    (b"\x80\x09.", "unsupported protocol"),
    (b"\x80\x02a.", "stack"),
])
def test_malformed_streams_never_raise(raw: bytes, why: str) -> None:
    result = analyze(raw)
    assert not result.complete
    assert why in result.error


def test_type_confused_stack_global_is_reported_not_crashed() -> None:
    result = analyze(b"\x80\x04K\x01\x94" + _str("x", 4) + b"h\x00\x8c\x01x\x93.")
    (ref,) = result.imports
    assert ref.raw == "<not a str>" and not ref.importable    # the loader refuses an int module name


def test_stack_global_on_a_symbol_may_import() -> None:
    """A call's result may be a str when the stream is really loaded: fail closed."""
    module = glob("builtins", "str", 4) + b")R"               # str() -> "" at load time
    result = analyze(b"\x80\x04" + module + _str("system", 4) + b"\x93.")
    ref = result.imports[-1]
    assert ref.raw == "<non-string name>" and ref.importable


def test_a_global_that_is_not_utf8_is_kept_but_cannot_import() -> None:
    result = analyze(b"cos\nsys\xf8\n.")
    (ref,) = result.imports
    assert "not UTF-8" in result.error and ref.raw == "<not UTF-8>" and not ref.importable
    assert not picklevm.evident(result)


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("value", [None, 0, "x", b"\x00" * (1 << 20), {"w": [1.0] * 3000}, ("a", 2)])
def test_real_pickles_and_their_heads_are_evident(proto: int, value: object) -> None:
    raw = pickle.dumps(value, protocol=proto)
    whole = analyze(raw)
    assert picklevm.evident(whole) == (whole.opcodes >= 3), (whole.opcodes, raw[:20])
    if len(raw) > 64:
        assert picklevm.evident(analyze(raw[:64]), size=len(raw)), raw[:20]


def test_a_head_that_runs_out_is_evident_only_within_the_file() -> None:
    raw = pickle.dumps(b"\x00" * (1 << 20), protocol=4)      # PROTO, BINBYTES, MEMOIZE, STOP; cut at 64 bytes
    head = analyze(raw[:64])
    assert head.needed == len(raw) - 2 and not picklevm.evident(head)
    assert picklevm.evident(head, size=len(raw)) and not picklevm.evident(head, size=head.needed - 1)


def test_random_bytes_that_begin_like_a_pickle_are_not_evident() -> None:
    """Every first byte, 24 buffers each, fixed seeds: the VM breaks them all within a few opcodes."""
    rng = random.Random(20261203)
    for first in range(256):
        for _ in range(24):
            raw = bytes([first]) + rng.randbytes(4095)
            result = analyze(raw)
            assert not picklevm.evident(result), (hex(first), raw[:16], result.opcodes)
            assert not picklevm.evident(analyze(raw[:512]), size=len(raw)), (hex(first), raw[:16])
            assert result.opcodes < picklevm.EVIDENT_OPCODES


@pytest.mark.parametrize("text", [b"(c) 2024 Example Labs. All rights reserved.\nApache-2.0\n",
                                  b"(i) This model is provided as is.\n(ii) No warranty.\n",
                                  b")\n", b"}(not a dict)\n", b"](1, 2]\n"])
def test_text_that_opens_like_a_protocol0_pickle_is_not_evident(text: bytes) -> None:
    assert not picklevm.evident(analyze(text))


def test_a_lone_import_is_evidence_except_in_text() -> None:
    """Importing runs a module's code, so a pickle-named file that only imports is a pickle; a word list
    ("cython\ntorch\n") is not, unless the stream calls what it imported."""
    lone = analyze(b"cython\ntorch\nnumpy\n")
    assert picklevm.evident(lone) and not picklevm.evident(lone, lone_import=False)
    called = analyze(b"cos\nsystem\n(S'id'\ntR\nnot opcodes")
    assert not called.complete and picklevm.evident(called, lone_import=False)
    built = analyze(b"cos\nenviron\n}(S'x'\nS'y'\nub\nnot opcodes")          # BUILD on a global, then junk
    assert not built.complete and built.opcodes < picklevm.EVIDENT_OPCODES
    assert picklevm.evident(built, lone_import=False)
    spelled = analyze(b"copyright\nSystemExit\nPending\nRuntimeWarning\n")   # GLOBAL, PERSID, REDUCE
    assert spelled.calls and not picklevm.evident(spelled, lone_import=False)


def test_opcode_limit_is_a_limit_not_an_error() -> None:
    raw = b"\x80\x02]" + b"K\x01a" * 1000 + b"."
    result = analyze(raw, bounds=Bounds(max_opcodes=100))
    assert result.limit and not result.error


def test_memo_limit() -> None:
    raw = b"\x80\x04" + b"K\x01\x94" * 50 + b"."
    assert "memo" in analyze(raw, bounds=Bounds(max_memo=10)).limit


def test_multiple_pickles_in_a_row() -> None:
    raw = pickle.dumps([1], protocol=2) + call("os", "system", "id", proto=2) + pickle.dumps(3)
    results = list(analyze_all(raw))
    assert len(results) == 3
    assert qualnames(results[1]) == ["os.system"]
    assert results[2].value == 3


def test_joblib_array_bytes_are_skipped_not_parsed(tmp_path) -> None:
    import joblib
    import numpy as np
    path = tmp_path / "a.joblib"
    joblib.dump({"w": np.arange(1000, dtype=np.float64), "u": np.array(["ab", "c"])}, path)
    result = analyze(path.read_bytes())
    assert result.complete, result.error
    assert result.joblib_arrays == 2


def test_joblib_object_array_is_a_nested_stream(tmp_path) -> None:
    import joblib
    import numpy as np
    path = tmp_path / "o.joblib"
    joblib.dump(np.array([{"k": 1}, None], dtype=object), path)
    result = analyze(path.read_bytes())
    assert result.complete, result.error
    assert len(result.nested_streams) == 1 and result.nested_streams[0].complete


def test_render_is_bounded_and_cycle_safe() -> None:
    raw = b"\x80\x02]q\x00h\x00a."     # a list that contains itself
    result = analyze(raw)
    assert "<cycle>" in render(result.value)
    assert len(render("x" * 10_000, budget=50)) <= 60


def test_large_strings_are_remembered_for_nested_analysis() -> None:
    inner = call("os", "system", "id", proto=2)
    raw = b"\x80\x03C" + struct.pack("<B", len(inner)) + inner + b"."
    result = analyze(raw)
    assert result.strings and result.strings[0][0] == inner
