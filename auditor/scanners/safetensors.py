"""safetensors: parse the header ourselves (never the data section) and check that the tensors tile
the data exactly; publish __metadata__ as facts; cross-check with the safetensors library."""
from __future__ import annotations

import base64
import functools
import json
import mmap
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from auditor import rules
from auditor.facts import SafetensorsFacts
from auditor.model import Finding, Limits
from auditor.parsers import safetensors_header, strictjson, yamlsafe
from auditor.parsers.pickle_start import looks_like_pickle
from auditor.parsers.safetensors_header import Header, layout_problems, trailing_start
from auditor.scanners import ScanContext, config_targets
from auditor.scanners._formats_util import FormatProblem, clip, metadata_findings, unique_files

if TYPE_CHECKING:   # the pickle VM is imported when bytes look like a pickle: most files have none
    from auditor.parsers import picklevm

NAME = "safetensors"


@functools.cache
def _spec() -> dict[str, Any]:
    return rules.load("weight-formats.yaml")["safetensors"]


def read_header(source: str | bytes, size: int, limits: Limits) -> Header:
    """The parsed header (auditor.parsers.safetensors_header) of a file, by its path or its bytes;
    FormatProblem when nothing can be verified."""
    try:
        return safetensors_header.read_header(source, size, max_header_bytes=limits.max_header_bytes,
                                              max_depth=limits.max_json_depth, dtypes=_spec()["dtypes"],
                                              max_tensors=_spec()["max_tensors"])
    except safetensors_header.HeaderError as exc:
        raise FormatProblem(f"SAFETENSORS-{exc.kind}", exc.location, exc.evidence) from None


def scan(ctx: ScanContext) -> Iterator[Finding]:
    files = unique_files(ctx.files_of("safetensors"), ctx.files_named(".safetensors"))
    yield from ctx.per_file(files, lambda rec: _scan_file(ctx, rec), NAME)


def _scan_file(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    path = ctx.fspath(rec)
    whole = ctx.contents.get(rec.path)     # a small file's bytes, as the survey read and hashed them
    try:
        header = read_header(path if whole is None else whole, rec.size, ctx.options.limits)
    except FormatProblem as p:
        yield rules.finding(p.rule, file=rec.path, location=p.location, evidence=p.evidence, scanner=NAME)
        return
    except OSError as exc:
        yield rules.finding("SAFETENSORS-UNPARSEABLE", file=rec.path, evidence=f"cannot read: {exc}", scanner=NAME)
        return
    problems = [(f"SAFETENSORS-{kind}", location, evidence) for kind, location, evidence in header.problems]
    if header.duplicates:
        problems.append(("SAFETENSORS-DUPLICATE-KEY", "header",
                         f"keys repeated: {', '.join(sorted(set(header.duplicates))[:20])}"))
    problems.extend((f"SAFETENSORS-{kind}", location, evidence) for kind, location, evidence in layout_problems(header))
    for rule, location, evidence in problems:
        yield rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME)
    yield from _appended_pickle(rec, path, header)
    yield from metadata_findings("SAFETENSORS", rec.path,
                                 {k: v for k, v in header.metadata.items() if isinstance(v, str)}, NAME)
    yield from _metadata_payloads(rec, header.metadata)
    yield from _cross_check(rec, path, header, clean=not problems, whole=whole)
    ctx.facts.add_file(SafetensorsFacts, rec.path, {
        "metadata": {k: clip(v) for k, v in header.metadata.items()},
        "tensors": len(header.tensors),
        "dtypes": sorted({t.dtype for t in header.tensors}),
        "header_bytes": header.header_len,
        "tensor_bytes": sum(max(0, t.end - t.begin) for t in header.tensors),
    })


def _cross_check(rec: Any, path: str, header: Header, *, clean: bool, whole: bytes | None = None) -> Iterator[Finding]:
    """The reference library must agree with us: same tensors, and it must open what we call clean."""
    try:
        import safetensors as library
    except ImportError:
        return
    try:
        names = _library_tensor_names(library, path, whole)
    except Exception as exc:  # noqa: BLE001 - any refusal by the library is the signal
        if clean:
            yield rules.finding("SAFETENSORS-LIBRARY-DISAGREES", file=rec.path, location="header",
                                evidence=f"safetensors library refused the file: {exc}", scanner=NAME)
        return
    ours = {t.name for t in header.tensors}
    if names is not None and names != ours:
        only_lib, only_ours = sorted(names - ours)[:10], sorted(ours - names)[:10]
        yield rules.finding("SAFETENSORS-LIBRARY-DISAGREES", file=rec.path, location="header",
                            evidence=f"library-only tensors {only_lib}, auditor-only tensors {only_ours}",
                            scanner=NAME)


PICKLE_MAX_OPCODES = 1_000_000


def _analyze_pickle(buf: Any, offset: int) -> picklevm.Analysis:
    from auditor.parsers import picklevm

    return picklevm.analyze(buf, offset, _pickle_bounds())


@functools.cache
def _pickle_bounds() -> picklevm.Bounds:   # made once: _find_pickle may try thousands of offsets
    from auditor.parsers import picklevm

    return picklevm.Bounds(max_opcodes=PICKLE_MAX_OPCODES, max_memo=100_000, max_stack=100_000,
                           max_container=1_000_000)
PICKLE_SEARCH_BYTES = 4096      # a pickle may sit after a few bytes of padding


def _appended_pickle(rec: Any, path: str, header: Header) -> Iterator[Finding]:
    """Bytes after the last tensor that a pickle loader would run (a safetensors/pickle polyglot)."""
    start = trailing_start(header)
    if start is None:
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        analysis = _find_pickle(buf, start, min(len(buf), start + PICKLE_SEARCH_BYTES))
        if analysis is None:
            return
        yield _pickle_finding(rec, "SAFETENSORS-APPENDED-PICKLE", f"byte {analysis.start}", analysis,
                              f"a pickle after the tensor data ({len(buf) - analysis.start} bytes)")


def _find_pickle(buf: Any, start: int, stop: int) -> picklevm.Analysis | None:
    """The first offset in [start, stop) where a pickle that does something (imports or calls) begins."""
    spent = 0
    for offset in range(start, stop):
        if not looks_like_pickle(bytes(buf[offset:offset + 2])):
            continue
        analysis = _analyze_pickle(buf, offset)
        if analysis.imports or analysis.calls:
            return analysis
        spent += analysis.opcodes
        if spent > PICKLE_MAX_OPCODES:      # hostile padding that starts a long stream at every offset
            return None
    return None


def _pickle_finding(rec: Any, rule: str, location: str, analysis: picklevm.Analysis, what: str) -> Finding:
    imports = sorted({ref.qualname for ref in analysis.imports})
    dangerous = [name for name in imports if config_targets.dangerous(name)]
    evidence = f"{what}: imports {', '.join(imports[:10]) or 'nothing'}; {len(analysis.calls)} calls"
    return rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME,
                         severity="critical" if dangerous else None)


def _metadata_payloads(rec: Any, metadata: dict[str, Any]) -> Iterator[Finding]:
    """__metadata__ values that tools read into configs or unpickle: `_target_` configs (as a JSON/YAML
    object or a string holding one) and pickles (raw or base64)."""
    for key, value in metadata.items():
        where = f"header __metadata__ {key!r}"
        config = _as_config(value)
        if config is not None:
            yield from config_targets.target_findings(rec.path, f"{where}: ", config)
        if isinstance(value, str):
            analysis = _metadata_pickle(value)
            if analysis is not None:
                yield _pickle_finding(rec, "SAFETENSORS-METADATA-PICKLE", where, analysis, "a pickle in the value")


def _as_config(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str) or not any(k in value for k in config_targets.target_keys()):
        return None
    text = value.strip()
    try:
        if text[:1] in "{[":
            return strictjson.loads(text, 64, max_bytes=1 << 20)[0]
        return yamlsafe.load(text)
    except Exception:  # noqa: BLE001 - metadata that is no config is just text (METADATA-CODE covers it)
        return None


def _metadata_pickle(value: str) -> picklevm.Analysis | None:
    candidates = [value.encode("latin-1", "replace")]
    if len(value) >= 16 and len(value) % 4 == 0:
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except ValueError:
            pass
    for raw in candidates:
        if looks_like_pickle(raw[:2]):
            analysis = _analyze_pickle(raw, 0)
            if analysis.imports or analysis.calls:
                return analysis
    return None


LIBRARY_BYTES_LIMIT = 16 * 1024 * 1024   # below this the library parses the file from bytes
LIBRARY_HEADER_CAP = 100_000_000          # the library's own header limit: a longer header is cut here


def _library_tensor_names(library: Any, path: str, whole: bytes | None = None) -> set[str] | None:
    """The tensor names the safetensors library reads, or None when it accepted the header of a large file.

    `safe_open` imports numpy (~0.1 s of CPU, taken from the hashing threads of a sharded model), and
    `deserialize` does not. A small file is given to `deserialize` whole. A large file's header is given
    alone: the library validates the whole header before it compares its offsets with the buffer's length,
    so "tensor data missing" is its only possible objection to a header it accepts. The names are then not
    compared (they would need the data). `_missing_data_error` checks that this library behaves that way;
    if it does not, the file is opened with `safe_open`. `whole`: the file's bytes, when the survey kept them."""
    if whole is not None and len(whole) <= LIBRARY_BYTES_LIMIT:
        return {name for name, _tensor in library.deserialize(whole)}
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size <= LIBRARY_BYTES_LIMIT:
            return {name for name, _tensor in library.deserialize(fh.read(LIBRARY_BYTES_LIMIT + 1))}
        size = fh.read(8)
        prefix = size + fh.read(min(int.from_bytes(size, "little"), LIBRARY_HEADER_CAP))
    missing_data = _missing_data_error(library)
    if not missing_data:
        with library.safe_open(path, framework="numpy") as f:
            return set(f.keys())
    try:
        return {name for name, _tensor in library.deserialize(prefix)}   # a file whose tensors hold no bytes
    except Exception as exc:
        if str(exc) == missing_data:
            return None
        raise


@functools.cache
def _missing_data_error(library: Any) -> str:
    """What the library says of a valid header without its tensor data; "" if it says the same of an
    invalid header (it would not be judging the header, so a header alone cannot be given to it)."""
    def said(header: dict[str, Any]) -> str:
        text = json.dumps(header).encode()
        try:
            library.deserialize(len(text).to_bytes(8, "little") + text)
        except Exception as exc:  # noqa: BLE001 - the message is what is compared
            return str(exc)
        return ""

    valid = said({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    invalid = said({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})   # 4 bytes for 2 floats
    return valid if valid and valid != invalid else ""
