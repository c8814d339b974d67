"""The one loader and validator for the data in rules/*.yaml.

Rule ids and their documentation live in rules/checks/*.yaml (one file per scanner family);
every other data file (pickle globals, licenses, origins, endpoints, policies) is read with
`load()`. Files are parsed once per process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from auditor import atomic, settings
from auditor.errors import AuditorError
from auditor.model import Finding, Severity
from auditor.record import record

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`rules` or `reports`: inside the wheel under auditor/_data, at the repo root in a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise AuditorError(f"auditor's {name}/ data folder is missing from the installation")


def rules_dir() -> Path:
    return data_dir("rules")


@functools.cache
def digest() -> str:
    """SHA-256 over every file under rules/ (relative path and content, sorted by path): the rules' version.

    Any change to a rule, pattern, license, origin or policy preset changes it."""
    root = rules_dir()
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix().encode("utf-8")
        data = path.read_bytes()
        h.update(b"%d:%s%d:" % (len(rel), rel, len(data)))
        h.update(data)
    return h.hexdigest()


@functools.cache
def load(relative: str) -> Any:
    """Parse one shipped data file, e.g. load("pickle-globals.yaml")."""
    return _shipped(rules_dir() / relative)


def _shipped(path: Path) -> Any:
    """A shipped data file, parsed through a JSON copy in the user's cache named by the file's SHA-256.

    libyaml parses in C but builds the objects in Python: ~0.1 s of every start-up for our catalogs,
    against a few ms for json.loads. A copy is authenticated (HMAC-SHA256 with a key kept outside the
    cache, see _cache_key): one written elsewhere, e.g. restored from another job's CI cache, is never
    read. Only a copy that reads back equal to the YAML is written; any problem with the cache or the key
    (unwritable, corrupt, forged) falls back to parsing the YAML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditorError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = hashlib.sha256(raw).hexdigest()
    cached = _parsed_cache() / f"{name}.json"
    key = _cache_key()
    if key is None:
        return load_file(path, fast=True)
    body = _authenticated(cached, key, name)
    if body is not None:
        try:
            return json.loads(body, object_hook=_int_keys_back)
        except ValueError:
            pass
    data = load_file(path, fast=True)
    try:
        text = json.dumps(_int_keys_out(data), ensure_ascii=False).encode("utf-8")
        if json.loads(text, object_hook=_int_keys_back) == data:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic.write(cached, [_mac(key, name, text).encode("ascii"), b"\n", text])
    except (OSError, TypeError, ValueError):
        pass
    return data


def _mac(key: bytes, name: str, body: bytes) -> str:
    import hmac
    return hmac.new(key, name.encode("ascii") + b"\n" + body, "sha256").hexdigest()


def _authenticated(cached: Path, key: bytes, name: str) -> bytes | None:
    """The copy's JSON when its MAC is ours for this YAML's hash; None for a missing, corrupt or forged copy."""
    import hmac
    try:
        mac, _, body = cached.read_bytes().partition(b"\n")
    except OSError:
        return None
    return body if hmac.compare_digest(mac, _mac(key, name, body).encode("ascii")) else None


KEY_BYTES = 32


@functools.cache
def _cache_key() -> bytes | None:
    """This user's key for the parsed-rules cache, made on first use: 32 random bytes, mode 0600, in the
    state folder (AUDITOR_STATE, else $XDG_STATE_HOME/auditor, else ~/.local/state/auditor), not in the
    cache, so a restored cache brings no key that signs it. None (no cache) when it cannot be had safely."""
    configured = settings.current().state_dir
    folder = Path(configured) if configured else Path.home() / ".local" / "state" / "auditor"
    path = folder / "rules-cache.key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = atomic.exclusive_temp(folder, ".rules-cache.key.", ".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(KEY_BYTES))
            os.link(tmp, path)          # fails if another process made the key first: then its key is read
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return _read_key(path)
    except OSError:
        return None


def _read_key(path: Path) -> bytes | None:
    """The key when it is a regular file of ours that no one else can read or write, of the right length."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        key = fh.read(KEY_BYTES + 1)
    private = stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
    return key if private and len(key) == KEY_BYTES else None


_INT_KEYS = "\u0000int-keys"   # a key no YAML mapping of ours has: marks a mapping whose keys are integers


def _int_keys_out(value: Any) -> Any:
    """JSON keys are strings; a mapping keyed by integers (the GGUF and ONNX type tables) is written as pairs."""
    if isinstance(value, dict):
        if value and all(type(k) is int for k in value):
            return {_INT_KEYS: [[k, _int_keys_out(v)] for k, v in value.items()]}
        return {k: _int_keys_out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_int_keys_out(v) for v in value]
    return value


def _int_keys_back(mapping: dict[str, Any]) -> Any:
    pairs = mapping.get(_INT_KEYS)
    return {int(k): v for k, v in pairs} if pairs is not None and len(mapping) == 1 else mapping


# The copies' format: a new one gets a new folder, so that another auditor version sharing the cache never
# reads a copy it would misread (version 1 had no integer-keyed tables and skipped files that needed them;
# version 2 had no MAC).
_PARSED_FORMAT = "parsed-rules-3"   # 3: each copy starts with its MAC


@functools.cache
def _parsed_cache() -> Path:
    """Settled at first use, as the key is (settings.current() reads ~20 variables: once, not per file)."""
    configured = settings.current().cache_dir
    return (Path(configured) if configured else Path.home() / ".cache" / "auditor") / _PARSED_FORMAT


def validator(schema: dict[str, Any], *, formats: bool = False) -> Any:
    """A Draft 2020-12 validator for one of our schemas, imported without jsonschema's slow extras.

    jsonschema imports rfc3987_syntax for its IRI format checker, which builds a Lark grammar at import
    time (~1.3 s of CPU). Our schemas use no IRI formats, so the module is hidden while jsonschema loads.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            del sys.modules["rfc3987_syntax"]
    import jsonschema

    checker = jsonschema.FormatChecker() if formats else None
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def load_file(path: Path, *, fast: bool = False) -> Any:
    """Parse a YAML file. Users' files use the pure-Python loader: its errors say more (line and column);
    ours (`fast`) use libyaml's, ~10x faster. PyYAML is imported here, not at start-up: the parsed copies
    in the cache spare most runs its ~12 ms import."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditorError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - always a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise AuditorError(f"{path}{where}: {problem}") from None


@record(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    description: str
    remediation: str
    family: str
    references: tuple[str, ...] = ()


_RULE_KEYS = {"id", "severity", "title", "description", "remediation", "references"}


@functools.cache
def catalog() -> dict[str, Rule]:
    """Every rule id, from rules/checks/*.yaml. Validated: unique ids, known keys, all fields."""
    rules: dict[str, Rule] = {}
    for path in sorted((rules_dir() / "checks").glob("*.yaml")):
        data = _shipped(path) or {}
        for entry in data.get("rules", []):
            where = f"{path.name}: rule {entry.get('id', '?')}"
            unknown = set(entry) - _RULE_KEYS
            missing = {"id", "severity", "title", "description", "remediation"} - set(entry)
            if unknown or missing:
                raise AuditorError(f"{where}: unknown keys {sorted(unknown)} / missing {sorted(missing)}")
            if entry["id"] in rules:
                raise AuditorError(f"{where}: duplicate rule id")
            rules[entry["id"]] = Rule(
                id=entry["id"], severity=Severity.parse(entry["severity"]), title=entry["title"],
                description=" ".join(str(entry["description"]).split()),
                remediation=" ".join(str(entry["remediation"]).split()),
                family=path.stem, references=tuple(entry.get("references") or ()))
    return rules


def finding(rule: str, *, file: str = "", location: str = "", evidence: str = "",
            severity: Severity | str | None = None, title: str = "", scanner: str = "",
            references: tuple[str, ...] = (), engine: str = "auditor") -> Finding:
    """Build a Finding for a documented rule; severity and title default to the catalog's."""
    try:
        info = catalog()[rule]
    except KeyError:
        raise KeyError(f"rule {rule!r} is not documented in rules/checks/*.yaml") from None
    return Finding(
        rule=rule,
        severity=info.severity if severity is None else Severity.parse(severity),
        title=title or info.title, file=file, location=str(location),
        evidence=_clip(evidence), scanner=scanner or info.family,
        references=tuple(references) or info.references, engine=engine)


def _clip(text: str, limit: int = 2000) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"
