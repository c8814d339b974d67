"""Config-driven instantiation: Hydra/NeMo `_target_` keys in YAML/JSON configs (and the model_config.yaml
inside `.nemo` archives) name callables that libraries import and call on load; a `from_pretrained` target
with `trust_remote_code` runs another repository's code; YAML `!!python/*` tags (hparams.yaml) make
`yaml.unsafe_load`/`yaml.full_load` import and call. Parsed with the safe loader, tags detected on the
composed nodes. A config over the size limit is still searched for targets and tags, and the limit is a
high finding when the file can carry them."""
from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import ConfigTargetFacts
from auditor.model import Finding
from auditor.parsers import yamlsafe
from auditor.scanners import ScanContext

NAME = "config_targets"
_PYTHON_TAG = yamlsafe.PYTHON_TAG
_CHUNK = 8 * 1024 * 1024


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("config-targets.yaml")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    yield from ctx.per_file(ctx.files_named(".yaml", ".yml", ".json"), lambda rec: _scan_config(ctx, rec), NAME)
    yield from ctx.per_file(ctx.files_named(".nemo"), lambda rec: _scan_nemo(ctx, rec), NAME)


def _scan_config(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    limit = min(_data()["max_config_bytes"], ctx.options.limits.max_text_bytes)
    if rec.size > limit:
        yield from _scan_oversized(ctx, rec, limit)
        return
    text, _ = ctx.read_text(rec)
    is_json = rec.path.lower().endswith(".json")
    if not _may_carry_code(text, is_json):
        return
    yield from _scan_text(ctx, rec.path, "", text, is_json=is_json)


def _may_carry_code(text: str, is_json: bool) -> bool:
    return any(k in text for k in _data()["keys"]) or (not is_json and yamlsafe.may_have_tags(text))


def _scan_oversized(ctx: ScanContext, rec: Any, limit: int) -> Iterator[Finding]:
    """Too big to parse: search the bytes in bounded chunks for target keys and python tags. A file that
    holds them gets a high limit finding, and each `_target_: value` found textually is classified."""
    keys = [k.encode() for k in _data()["keys"]]
    value_re = re.compile(rb"(?:" + b"|".join(re.escape(k) for k in keys) + rb")[\"']?\s*[:=]\s*[\"']?([\w.:<>-]+)")
    tag_re = re.compile(rb"!!python/[\w/:.-]+|tag:yaml\.org,2002:python/[\w/:.-]+")
    targets: list[str] = []
    tags: list[str] = []
    carry = b""
    with open(ctx.fspath(rec), "rb") as fh:
        while len(targets) < 100 and len(tags) < 100:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            window = carry + chunk
            targets += [m.group(1).decode("utf-8", "replace") for m in value_re.finditer(window)]
            tags += [m.group().decode("utf-8", "replace") for m in tag_re.finditer(window)]
            carry = window[-256:]
    if not targets and not tags:
        return
    yield rules.finding("CONFIG-TARGET-LIMIT", file=rec.path, scanner=NAME,
                        evidence=f"{rec.size} bytes > the {limit}-byte config limit; not parsed, searched as "
                                 f"text: {len(set(targets))} targets, {len(set(tags))} python tags")
    for target in sorted(set(targets)):
        yield from _classify(rec.path, "(text search)", target)
    for tag in sorted(set(tags)):
        yield _tag_finding(rec.path, "(text search)", tag.replace("!!python/", _PYTHON_TAG))


def _scan_text(ctx: ScanContext, file: str, member: str, text: str, *, is_json: bool) -> Iterator[Finding]:
    prefix = f"{member}: " if member else ""
    try:
        if is_json:
            config = json.loads(text)
        else:
            for line, tag in yamlsafe.python_tags(text):
                yield _tag_finding(file, f"{prefix}line {line}", tag)
            config = _load_yaml(text)
    except (ValueError, RecursionError) as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=file, location=member,
                            evidence=f"{type(exc).__name__}: {str(exc)[:300]}", scanner=NAME)
        return
    targets = list(target_findings(file, prefix, config))
    yield from targets
    found = sorted({f.evidence.split(" ", 1)[0] for f in targets if f.rule != "CONFIG-TARGET-UNPARSEABLE"})
    if found:
        ctx.facts.add_file(ConfigTargetFacts, file + (f"!{member}" if member else ""), found[:200])


def target_findings(file: str, prefix: str, config: Any) -> Iterator[Finding]:
    """Findings for every target key in an already parsed config (a YAML/JSON document, or a value read
    from another format's metadata). `prefix` starts each location."""
    targets: list[tuple[str, str, dict[str, Any]]] = []
    try:
        _collect(config, targets)
    except OverflowError as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=file, location=prefix.rstrip(": "), evidence=str(exc),
                            scanner=NAME)
        return
    for path, target, node in targets:
        yield from _classify(file, f"{prefix}{path}", target, node)


def _classify(file: str, location: str, target: str, node: dict[str, Any] | None = None) -> Iterator[Finding]:
    data = _data()
    if _matches(target, data["dangerous_prefixes"]):
        yield rules.finding("CONFIG-TARGET-DANGEROUS", file=file, location=location, evidence=target, scanner=NAME)
        return
    if node is not None and target.rsplit(".", 1)[-1] in data["remote_code_methods"]:
        flags = {k: node[k] for k in data["remote_code_flags"] if _truthy(node.get(k))}
        if flags:
            source = next((node[k] for k in data["repo_keys"] if isinstance(node.get(k), str)), "?")
            yield rules.finding("CONFIG-TARGET-REMOTE-CODE", file=file, location=location, scanner=NAME,
                                evidence=f"{target} with {', '.join(f'{k}={v!r}' for k, v in flags.items())} "
                                         f"loads code from {source!r}")
            return
    if not _matches(target, data["known_prefixes"]):
        yield rules.finding("CONFIG-TARGET-UNKNOWN", file=file, location=location, evidence=target, scanner=NAME)


def _truthy(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def _tag_finding(file: str, location: str, tag: str) -> Finding:
    kind = tag[len(_PYTHON_TAG):]
    calls = any(kind.startswith(k) for k in _data()["calling_python_tags"])
    return rules.finding("CONFIG-YAML-PYTHON-TAG", file=file, location=location, scanner=NAME,
                         evidence=f"!!python/{kind}", severity=None if calls else "low")


def _load_yaml(text: str) -> Any:
    """The document with python tags treated as plain values (they are reported separately)."""
    values = yamlsafe.load_all_tags_as_data(text)
    return values[0] if len(values) == 1 else values


def dangerous(target: str) -> bool:
    """Whether a dotted callable name is a code-execution or process callable (the config-targets list)."""
    return _matches(target, _data()["dangerous_prefixes"])


def target_keys() -> tuple[str, ...]:
    return tuple(_data()["keys"])


def _matches(target: str, prefixes: list[str]) -> bool:
    return any(target == p.rstrip(".") or target.startswith(p) for p in prefixes)


def _collect(config: Any, out: list[tuple[str, str, dict[str, Any]]]) -> None:
    keys = set(_data()["keys"])
    limit = _data()["max_nodes"]
    stack: list[tuple[Any, str]] = [(config, "$")]
    visited: set[int] = set()
    count = 0
    while stack:
        node, path = stack.pop()
        count += 1
        if count > limit:
            raise OverflowError(f"more than {limit} config nodes (alias bomb?)")
        if isinstance(node, (dict, list)):
            if id(node) in visited:      # YAML aliases share objects: walk each once
                continue
            visited.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and isinstance(value, str):
                    out.append((f"{path}.{key}", value.strip(), node))
                elif isinstance(value, (dict, list)):
                    stack.append((value, f"{path}.{key}"))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node) if isinstance(item, (dict, list)))


def _scan_nemo(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    import tarfile  # only for .nemo files

    limit = _data()["max_nemo_member_bytes"]
    try:
        with tarfile.open(ctx.fspath(rec), "r:*") as tar:
            for count, member in enumerate(tar):
                if count > ctx.options.limits.max_archive_members:
                    yield rules.finding("CONFIG-TARGET-LIMIT", file=rec.path, scanner=NAME,
                                        evidence=f"more than {ctx.options.limits.max_archive_members} members; "
                                                 "the rest of the archive was not read")
                    return
                if not member.isfile() or not member.name.lower().endswith((".yaml", ".yml", ".json")):
                    continue
                if member.size > limit:
                    yield rules.finding("CONFIG-TARGET-LIMIT", file=rec.path, location=member.name,
                                        evidence=f"config member of {member.size} bytes > {limit}; not read",
                                        scanner=NAME)
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace").read(limit)
                yield from _scan_text(ctx, rec.path, member.name, text, is_json=member.name.lower().endswith(".json"))
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=rec.path, evidence=f"not a readable .nemo tar: {exc}",
                            scanner=NAME)
