"""Keras: the model config of `.h5` files (h5py attributes) and `.keras` zips (config.json). Lambda
bytecode is decoded in the sandbox (auditor.sandbox) to list the names it uses; nothing is run."""
from __future__ import annotations

import base64
import functools
import re
import zlib
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import KerasFacts
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import DepthError, seed_platform_processor, strict_json, unique_files

NAME = "keras"
LAMBDA_TIMEOUT_SECONDS = 10
LAMBDA_MEMORY_BYTES = 512 * 1024**2
MAX_LAMBDA_PAYLOAD = 1024**2

# Runs in the sandbox (auditor.sandbox): marshal.loads of untrusted bytes can crash an interpreter, never
# ours. The code object is only inspected (names, attribute names, nested constants), never executed.
_DECODER = r"""
import base64, marshal, sys
def decode(payload):
    try:
        raw = base64.b64decode(payload, validate=False)
    except Exception as exc:
        return {"error": "not base64: %s" % exc}
    try:
        code = marshal.loads(raw)
    except Exception as exc:
        return {"error": "cannot decode bytecode with Python %d.%d: %s" % (sys.version_info[:2] + (exc,))}
    names, strings, stack, seen = set(), [], [code], 0
    while stack and seen < 10000:
        obj = stack.pop(); seen += 1
        if hasattr(obj, "co_names"):
            names.update(obj.co_names); names.update(getattr(obj, "co_varnames", ()))
            stack.extend(obj.co_consts)
        elif isinstance(obj, str) and len(strings) < 50:
            strings.append(obj[:200])
        elif isinstance(obj, (tuple, frozenset)):
            stack.extend(obj)
    return {"names": sorted(names), "strings": strings}
def main(request, emit):
    for payload in request:
        emit(decode(payload))
"""


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("keras.yaml")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    h5_files = unique_files(ctx.files_of("hdf5"), [r for r in ctx.files_named(".h5", ".hdf5", ".keras")
                                                    if r.format == "hdf5"])
    zip_files = [r for r in ctx.files_named(".keras") if r.format != "hdf5"]
    if h5_files:
        seed_platform_processor()
        try:
            import h5py  # noqa: F401
        except ImportError:
            for rec in h5_files:
                yield rules.finding("SCANNER-MISSING-DEPENDENCY", file=rec.path, scanner=NAME,
                                    evidence="h5py is not installed: pip install 'auditor[keras]'")
            h5_files = []
    attrs = read_h5_attrs([ctx.fspath(rec) for rec in h5_files], _data()["max_config_bytes"]) if h5_files else []
    yield from ctx.per_file(list(zip(h5_files, attrs, strict=True)), lambda item: _scan_h5(ctx, *item), NAME,
                            name=lambda item: item[0].path)
    yield from ctx.per_file(zip_files, lambda rec: _scan_zip(ctx, rec), NAME)


def _finding(rec: Any, rule: str, location: str, evidence: str, severity: str | None = None) -> Finding:
    return rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME, severity=severity)


def _scan_h5(ctx: ScanContext, rec: Any, result: dict[str, Any]) -> Iterator[Finding]:
    limit = _data()["max_config_bytes"]
    if "error" in result:
        yield _finding(rec, "KERAS-UNPARSEABLE", "", f"h5py cannot read the file: {result['error']}")
        return
    configs: dict[str, str] = {}
    for key in ("model_config", "training_config"):
        text = result.get(key)
        if isinstance(text, int):
            yield _finding(rec, "KERAS-LIMIT", f"attribute {key}", f"{text} bytes > {limit}")
        elif isinstance(text, str):
            configs[key] = text
    facts: dict[str, Any] = {"container": "hdf5", **result.get("versions", {}), "has_model_config": "model_config" in configs}
    for key, text in configs.items():
        yield from _check_config(ctx, rec, text, f"attribute {key}", facts)
    ctx.facts.add_file(KerasFacts, rec.path, facts)


# HDF5 is a large C library with a history of crashes on crafted files: read the attributes in a child.
_H5_READER = r"""
def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
def read(h5py, path, limit):
    out = {"versions": {}}
    try:
        with h5py.File(path, "r") as h5:
            for key in ("model_config", "training_config"):
                if key in h5.attrs:
                    value = text(h5.attrs[key])
                    out[key] = value if len(value) <= limit else len(value)
            for key in ("keras_version", "backend"):
                if key in h5.attrs:
                    out["versions"][key] = text(h5.attrs[key])[:100]
    except Exception as exc:
        out = {"error": "%s: %s" % (type(exc).__name__, str(exc)[:300])}
    return out
def main(request, emit):
    import h5py
    for item in request:
        emit(read(h5py, item["path"], item["limit"]))
"""
H5_SECONDS_PER_FILE = 60
H5_MEMORY_BYTES = 2 * 1024**3


def read_h5_attrs(paths: list[str], limit: int) -> list[dict[str, Any]]:
    """Per file: model_config / training_config (text, or their length when over `limit`) and version
    attributes, or {"error": ...}. Read in the sandbox, each file with its own time budget; a file that
    crashes or hangs the reader is an error for that file only, and the others are read once each."""
    from auditor import sandbox  # only for HDF5 files: a repo without them does not pay its imports
    binds = list(sandbox.iter_paths(paths, "/input"))
    items = [{"path": inside, "limit": limit} for _host, inside in binds]
    results = sandbox.run_items(_H5_READER, items, binds=binds, seconds_per_item=H5_SECONDS_PER_FILE,
                                limits=sandbox.SandboxLimits(memory_bytes=H5_MEMORY_BYTES))
    return [r if isinstance(r, dict) else {"error": "the HDF5 reader returned no result"} for r in results]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _scan_zip(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    import zipfile  # for .keras archives only

    data = _data()
    facts: dict[str, Any] = {"container": "zip"}
    try:
        with zipfile.ZipFile(ctx.path(rec)) as zf:
            infos = zf.infolist()
            if len(infos) > ctx.options.limits.max_archive_members:
                yield _finding(rec, "KERAS-LIMIT", "", f"{len(infos)} zip members")
                return
            facts["members"] = sorted(i.filename for i in infos)[:100]
            members = {i.filename: i for i in infos}
            texts: dict[str, str] = {}
            for name in ("config.json", "metadata.json"):
                info = members.get(name)
                if info is None:
                    continue
                if info.file_size > data["max_zip_member_bytes"]:
                    yield _finding(rec, "KERAS-LIMIT", f"zip member {name}", f"{info.file_size} bytes")
                    continue
                with zf.open(info) as fh:
                    raw = fh.read(data["max_zip_member_bytes"] + 1)
                if len(raw) > data["max_zip_member_bytes"]:
                    yield _finding(rec, "KERAS-LIMIT", f"zip member {name}", "decompresses past the limit")
                    continue
                texts[name] = raw.decode("utf-8", "replace")
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as exc:
        yield _finding(rec, "KERAS-UNPARSEABLE", "", f"not a readable .keras zip: {type(exc).__name__}: {exc}")
        return
    if "config.json" not in texts:
        yield _finding(rec, "KERAS-UNPARSEABLE", "zip member config.json", "the .keras archive has no config.json")
        return
    if "metadata.json" in texts:
        try:
            meta, _ = strict_json(texts["metadata.json"], ctx.options.limits.max_json_depth)
            if isinstance(meta, dict):
                facts.update({k: meta[k] for k in ("keras_version", "date_saved") if isinstance(meta.get(k), str)})
        except ValueError:
            yield _finding(rec, "KERAS-UNPARSEABLE", "zip member metadata.json", "metadata.json is not valid JSON")
    yield from _check_config(ctx, rec, texts["config.json"], "zip member config.json", facts)
    ctx.facts.add_file(KerasFacts, rec.path, facts)


def _check_config(ctx: ScanContext, rec: Any, text: str, where: str, facts: dict[str, Any]) -> Iterator[Finding]:
    try:
        config, duplicates = strict_json(text, ctx.options.limits.max_json_depth, what=where)
    except DepthError as exc:
        yield _finding(rec, "KERAS-LIMIT", where, str(exc))
        return
    except ValueError as exc:
        yield _finding(rec, "KERAS-UNPARSEABLE", where, f"config is not valid JSON: {exc}")
        return
    if duplicates:
        yield _finding(rec, "KERAS-UNPARSEABLE", where, f"config repeats keys {sorted(set(duplicates))[:10]}")
    data = _data()
    own_prefixes = tuple(data["own_module_prefixes"])
    known = set(data["known_classes"])
    classes: set[str] = set()
    lambdas: list[tuple[str, str]] = []     # (location, base64 payload)
    flips: list[str] = []                   # where the config turns safe mode off
    stack: list[tuple[Any, str]] = [(config, "$")]
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > data["max_objects"]:
            yield _finding(rec, "KERAS-LIMIT", where, f"more than {data['max_objects']} config objects")
            return
        if isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
            continue
        if isinstance(node, str):
            yield from _check_string(rec, node, f"{where}: {path}", lambdas, flips)
            continue
        if not isinstance(node, dict):
            continue
        config_value = node.get("config")
        inner: dict[str, Any] = config_value if isinstance(config_value, dict) else {}
        name = next((n for n in (node.get("name"), inner.get("name")) if isinstance(n, str)), "")
        here = f"{where}: {path}" + (f" ({name!r})" if name else "")
        yield from _check_object(rec, node, here, own_prefixes, known, classes, lambdas)
        stack.extend((value, f"{path}.{key}") for key, value in node.items() if isinstance(value, (dict, list, str)))
    facts["classes"] = sorted(classes)[:200]
    facts["lambda_layers"] = len(lambdas)
    yield from _lambda_findings(rec, _unique_payloads(lambdas), safe_mode_off=bool(flips))


def _check_string(rec: Any, value: str, here: str, lambdas: list[tuple[str, str]],
                  flips: list[str]) -> Iterator[Finding]:
    """A string anywhere in the config: a file-fetching or safe-mode-flipping function name, or bytecode."""
    data = _data()
    if value in data["get_file_names"] or value.endswith(".get_file"):
        yield _finding(rec, "KERAS-GET-FILE", here, f"value {value!r}")
    if any(name in value for name in data["safe_mode_flips"]):
        flips.append(here)
        yield _finding(rec, "KERAS-SAFE-MODE-FLIP", here, f"value {value[:200]!r}")
    elif value.rsplit(".", 1)[-1] in data["non_modeling_functions"] and "." in value:
        yield _finding(rec, "KERAS-DANGEROUS-FUNCTION", here, f"value {value[:200]!r}")
    if _is_bytecode(value):
        lambdas.append((here, value))


def _is_bytecode(value: str) -> bool:
    """Base64 of a marshalled code object (Keras func_dump: activations, losses, metrics, custom objects)."""
    if len(value) < 40 or not _BASE64.fullmatch(value[:64]):
        return False
    try:
        head = base64.b64decode(value[:16], validate=False)
    except ValueError:
        return False
    return bool(head) and head[0] in (0x63, 0xE3)     # TYPE_CODE, with or without FLAG_REF


_BASE64 = re.compile(r"[A-Za-z0-9+/=\n]+")


def _unique_payloads(lambdas: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One entry per payload: a Lambda layer's function is also seen as a plain bytecode string."""
    out: dict[str, tuple[str, str]] = {}
    for where, payload in lambdas:
        out.setdefault(payload, (where, payload))
    return list(out.values())


def _check_object(rec: Any, node: dict[str, Any], here: str, own_prefixes: tuple[str, ...], known: set[str],
                  classes: set[str], lambdas: list[tuple[str, str]]) -> Iterator[Finding]:
    data = _data()
    class_name, module = node.get("class_name"), node.get("module")
    if "class_name" not in node:
        return          # e.g. a Lambda's own config, whose `module` is where its function was defined
    foreign = isinstance(module, str) and bool(module) and not _own(module, own_prefixes)
    yield from _check_origin(rec, node, here, own_prefixes, foreign)
    if not isinstance(class_name, str):
        return
    classes.add(class_name)
    config = node.get("config")
    if class_name in data["tfsm_classes"]:
        filepath = config.get("filepath") if isinstance(config, dict) else None
        yield _finding(rec, "KERAS-TFSMLAYER", here, f"TFSMLayer loads SavedModel {filepath!r}")
    elif class_name in data["lambda_classes"] and isinstance(config, dict):
        yield from _lambda_layer(rec, config, here, lambdas)
    elif class_name == "__lambda__" and isinstance(config, dict):
        yield from _serialized_lambda(rec, config, here, lambdas)
    elif class_name == "function" and isinstance(config, str) and isinstance(module, str):
        yield from _check_function_reference(rec, f"{module}.{config}", here)
    elif class_name not in known and not _internal(class_name) and not foreign and not (
            isinstance(module, str) and _own(module, own_prefixes)):
        yield _finding(rec, "KERAS-CUSTOM-OBJECT", here, f"class_name {class_name!r} is not a Keras class")


def _check_origin(rec: Any, node: dict[str, Any], here: str, own_prefixes: tuple[str, ...],
                  foreign: bool) -> Iterator[Finding]:
    """An object whose module or registered name is outside Keras."""
    class_name, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
    if foreign:
        critical = any(module == m or str(module).startswith(m + ".") for m in _data()["dangerous_modules"])
        yield _finding(rec, "KERAS-FOREIGN-MODULE", here,
                       f"module {module!r} class_name {class_name!r} config {str(node.get('config'))[:200]!r}",
                       severity="critical" if critical else None)
    if isinstance(registered, str) and ">" in registered and not _own(registered.split(">")[0], own_prefixes):
        yield _finding(rec, "KERAS-CUSTOM-OBJECT", here, f"registered_name {registered!r}")


def _lambda_layer(rec: Any, config: dict[str, Any], here: str, lambdas: list[tuple[str, str]]) -> Iterator[Finding]:
    function = config.get("function")
    if isinstance(function, list) and function and isinstance(function[0], str):     # Keras 2: [code, defaults, closure]
        lambdas.append((here, function[0]))
    elif isinstance(function, str) and config.get("function_type") == "lambda":
        lambdas.append((here, function))
    elif not isinstance(function, dict):
        yield _finding(rec, "KERAS-LAMBDA", here, f"Lambda layer with function {str(function)[:200]!r}",
                       severity="medium")


def _serialized_lambda(rec: Any, config: dict[str, Any], here: str,
                       lambdas: list[tuple[str, str]]) -> Iterator[Finding]:
    payload = config.get("code", config.get("value"))     # Keras 3: {"code": ...} or {"value": [code, ...]}
    payload = payload[0] if isinstance(payload, list) and payload else payload
    if isinstance(payload, str):
        lambdas.append((here, payload))
    else:
        yield _finding(rec, "KERAS-LAMBDA", here, f"__lambda__ without bytecode: {str(config)[:200]!r}")


def _check_function_reference(rec: Any, qualname: str, here: str) -> Iterator[Finding]:
    """Keras 3 writes a function as {"class_name": "function", "module": m, "config": name} and imports it."""
    data = _data()
    if any(name in qualname for name in data["safe_mode_flips"]):
        return      # the string check reports it (the name is also a plain string in the config)
    if qualname.rsplit(".", 1)[-1] in data["non_modeling_functions"]:
        yield _finding(rec, "KERAS-DANGEROUS-FUNCTION", here, f"function {qualname}")


def _internal(class_name: str) -> bool:
    """Keras 3's own serialisation markers: __tuple__, __keras_tensor__, __numpy__, ..."""
    return class_name.startswith("__") and class_name.endswith("__") and class_name.strip("_").isidentifier()


def _own(module: str, own_prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in own_prefixes)


def _lambda_findings(rec: Any, lambdas: list[tuple[str, str]], *, safe_mode_off: bool) -> Iterator[Finding]:
    if not lambdas:
        return
    decoded = decode_lambdas([payload for _, payload in lambdas])
    dangerous = set(_data()["lambda_dangerous_names"])
    flip = "; the config turns safe mode off, so it runs on load" if safe_mode_off else ""
    for (where, _), info in zip(lambdas, decoded, strict=True):
        if "error" in info:
            yield _finding(rec, "KERAS-LAMBDA", where, f"Lambda bytecode ({info['error']}){flip}",
                           severity="critical" if safe_mode_off else None)
            continue
        names = info.get("names", [])
        hits = sorted(set(names) & dangerous)
        evidence = f"bytecode names {names[:40]}" + (f"; strings {info.get('strings', [])[:10]}" if info.get("strings") else "")
        yield _finding(rec, "KERAS-LAMBDA", where, evidence + flip, severity="critical" if hits or safe_mode_off else None)


def decode_lambdas(payloads: list[str]) -> list[dict[str, Any]]:
    """Names referenced by each base64-marshalled code object, decoded in a limited child process."""
    big = [len(p) > MAX_LAMBDA_PAYLOAD for p in payloads]
    todo = [p for p, b in zip(payloads, big, strict=True) if not b]
    results: list[Any] = []
    if todo:
        from auditor import sandbox
        results = sandbox.run_items(_DECODER, todo, seconds_per_item=LAMBDA_TIMEOUT_SECONDS,
                                    limits=sandbox.SandboxLimits(memory_bytes=LAMBDA_MEMORY_BYTES))
    it = (r if isinstance(r, dict) else {"error": "the decoder returned no result"} for r in results)
    return [{"error": f"payload larger than {MAX_LAMBDA_PAYLOAD} bytes, not decoded"} if b else next(it) for b in big]
