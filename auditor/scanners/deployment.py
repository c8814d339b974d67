"""The user's own serving configuration (`--deployment DIR`): where models would be fetched from.

Walks each folder with inventory's safe walk (no symlink escapes, file count limit), reads
Dockerfiles, compose and Kubernetes YAML, .env files, Python and shell serving code, and applies:
the endpoint rules (origin-country hosts), the code rules (as DEPLOY-CODE: it is the user's code),
and deployment checks: HF_ENDPOINT / ModelScope switches pointing at an origin-country hub,
trust_remote_code, HF_HUB_OFFLINE, telemetry opt-outs. Variable names are data in rules/endpoints.yaml.
The serving variables of vLLM, TGI, SGLang and llama.cpp (trust-remote-code flags and environment
variables, mirror and endpoint settings) are read from Dockerfile ARG/ENV, compose, .env, shell and
YAML, with `${VAR}` references resolved and comment lines ignored. The model repo's own serving files
(a shipped Dockerfile, compose file or .env) get the same trust and mirror checks.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor import inventory, rules
from auditor.facts import DeploymentFacts
from auditor.model import Finding, Severity
from auditor.parsers import yamlsafe
from auditor.record import replace
from auditor.scanners import ScanContext
from auditor.scanners.code import findings_for_source
from auditor.scanners.endpoints import Collector, classifier, context_for

NAME = "deployment"
MAX_YAML_DOCUMENTS = 1000
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}
_TRUST = re.compile(r"""trust[_-]remote[_-]code["']?\s*[=:]\s*["']?(true|1|yes|on)\b|--trust[_-]remote[_-]code\b"""
                    r"""(?!\s*[= ]\s*(?:false|0|no|off)\b)""", re.I)
_COMMENT = re.compile(r"^[ \t]*(#|//|;|REM\b).*$|[ \t]+#(?![^\n]*[\"']).*$", re.M)
_DEFAULT = re.compile(r"^[ \t]*(?:ARG|ENV|export)?[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*[= ][ \t]*[\"']?([^\s\"']*)", re.M)
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}?")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    folders = ctx.options.deployment
    if not folders:
        yield from _scan_repo(ctx, rules.load("endpoints.yaml")["deployment"])
        return
    spec = rules.load("endpoints.yaml")["deployment"]
    state = _State(spec)
    collector = Collector(set(ctx.regions.sensitive_origins), scanner=NAME)
    for folder in folders:
        yield from _scan_folder(ctx, folder, spec, state, collector)
    yield from collector.findings()
    yield from _verdicts(ctx, state, spec)
    yield from _deployment_verdicts(ctx, state, spec)
    ctx.facts.publish(DeploymentFacts(state.facts(folders)))


def _scan_repo(ctx: ScanContext, spec: dict[str, Any]) -> Iterator[Finding]:
    """The model repo's own Dockerfile, compose and .env files: trust and mirror settings it ships."""
    state = _State(spec)
    wanted = [r for r in ctx.files if not r.error and _serving_file(r.path, spec)]
    limit = ctx.options.limits.max_text_bytes

    def one(rec: Any) -> Iterator[Finding]:
        text = _without_comments(ctx.read_bytes(rec, limit).decode("utf-8", "replace"))
        _read_text(text, rec.path, state)
        return iter(())
    yield from ctx.per_file(wanted, one, NAME)
    yield from _verdicts(ctx, state, spec)


class _State:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.env: dict[str, list[tuple[str, str, str]]] = {}   # var -> [(value, file, location)]
        self.trust: list[tuple[str, int]] = []              # (file, line)
        self.origin_modules: list[tuple[str, int, str]] = []   # (file, line, module)
        self.files = 0
        watched = list(spec["hub_endpoint_vars"]) + list(spec["origin_hub_switches"]) + list(spec["offline_vars"]) \
            + [t["var"] for t in spec["telemetry"]] + list(spec.get("trust_vars", ()))
        self.defaults: dict[str, str] = {}                  # ARG/ENV/.env values, for ${VAR} references
        self._keys = "|".join([*(re.escape(v) for v in watched),
                               *(re.escape(p) + r"[A-Z0-9_]+" for p in spec["origin_hub_prefixes"])])

    # Compiled when a file is read (~0.6 ms each): most repos ship no Dockerfile, compose or .env file.
    @functools.cached_property
    def key_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"\b({self._keys})\b")

    @functools.cached_property
    def assignment(self) -> re.Pattern[str]:
        return re.compile(
            rf"""\b(?P<key>{self._keys})\b["']?\]?[ \t]*(?:=|:|,|[ \t])[ \t]*["']?(?P<value>[^\s"',)\]}}]*)""")

    def record(self, key: str, value: str, file: str, location: str) -> None:
        value = _REFERENCE.sub(lambda m: self.defaults.get(m.group(1), m.group(2) or m.group(0)), value)
        entries = self.env.setdefault(key, [])
        if (value, file, location) not in entries:
            entries.append((value, file, location))

    def values(self, key: str) -> list[str]:
        return [v for v, _f, _l in self.env.get(key, [])]

    def facts(self, folders: tuple[str, ...]) -> dict[str, Any]:
        endpoint = next((v for k in self.spec["hub_endpoint_vars"] for v in self.values(k)), "")
        return {"folders": list(folders), "files": self.files, "hf_endpoint": endpoint,
                "offline": self.offline(), "trust_remote_code": [f"{f}:{n}" for f, n in self.trust],
                "origin_hub_modules": [f"{f}:{n} {m}" for f, n, m in self.origin_modules],
                "telemetry_opt_out": self.telemetry_off(),
                "env": {k: [v for v, _f, _l in entries] for k, entries in sorted(self.env.items())}}

    def offline(self) -> bool:
        return any(v.lower() in _TRUE for k in self.spec["offline_vars"] for v in self.values(k))

    def telemetry_off(self) -> list[str]:
        return [t["var"] for t in self.spec["telemetry"]
                if any(_truth(v) is t["off_when"] for v in self.values(t["var"]))]


def _truth(value: str) -> bool | None:
    v = value.strip().strip("'\"").lower()
    return True if v in _TRUE else False if v in _FALSE else None


def _wanted(name: str, spec: dict[str, Any]) -> bool:
    lower = name.lower()
    return lower in spec["file_names"] or lower.startswith(tuple(spec["file_prefixes"])) or \
        lower.endswith(tuple(spec["file_suffixes"]))


def _is_script(path: Path) -> bool:
    """Extension-less entrypoints (`entrypoint`, `start`) are read when they start with a shebang."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _scan_folder(ctx: ScanContext, folder: str, spec: dict[str, Any], state: _State,
                 collector: Collector) -> Iterator[Finding]:
    root = Path(folder).expanduser()
    if not root.is_dir():
        yield rules.finding("ENDPOINT-LIMIT", file=folder, scanner=NAME,
                            evidence="deployment folder does not exist or is not a folder; not scanned")
        return
    root = root.resolve()
    walk = inventory.Inventory()
    entries = list(inventory.walk(root, [root], ctx.options, walk))
    for problem in walk.findings:   # symlink escapes, unreadable folders, limits: same rules, deployment paths
        yield replace(problem, file=os.path.join(folder, problem.file), scanner=NAME)
    limit = ctx.options.limits.max_text_bytes
    for rel, path in entries:
        if not _wanted(path.name, spec) and not _is_script(path):
            continue
        shown = os.path.join(folder, rel)
        try:
            with open(path, "rb") as fh:
                raw = fh.read(limit + 1)
        except OSError as exc:
            yield rules.finding("ENDPOINT-LIMIT", file=shown, evidence=f"unreadable: {exc.strerror or exc}",
                                scanner=NAME)
            continue
        if inventory.detect(raw[:inventory.HEAD], len(raw)) not in ("text", "script"):
            continue
        if len(raw) > limit:
            yield rules.finding("ENDPOINT-LIMIT", file=shown, scanner=NAME,
                                evidence=f"larger than {limit} bytes; only the start was searched")
        state.files += 1
        text = raw[:limit].decode("utf-8", "replace")
        plain = text if path.suffix.lower() == ".py" else _without_comments(text)
        collector.add_text(shown, plain, context_for(rel, plain))
        _read_text(plain, shown, state)
        if path.suffix.lower() in (".yaml", ".yml"):
            yield from _read_yaml_env(plain, shown, state)
        if path.suffix.lower() == ".py":
            yield from _serving_code(text, shown, state, spec)


def _without_comments(text: str) -> str:
    """Comment lines blanked (line numbers kept): `# - HF_ENDPOINT=hf-mirror.com` configures nothing."""
    return _COMMENT.sub("", text)


def _serving_file(path: str, spec: dict[str, Any]) -> bool:
    name = Path(path).name.lower()
    return name in spec["file_names"] or name.startswith(tuple(spec["file_prefixes"]))


def _read_text(text: str, file: str, state: _State) -> None:
    for m in _DEFAULT.finditer(text):
        state.defaults.setdefault(m.group(1), m.group(2))
    _read_env(text, file, state)
    for m in _TRUST.finditer(text):
        state.trust.append((file, text.count("\n", 0, m.start()) + 1))


def _read_env(text: str, file: str, state: _State) -> None:
    for m in state.assignment.finditer(text):
        value = m.group("value")
        if value.lower().startswith("value:"):   # a Kubernetes name/value pair: read by _read_yaml_env
            continue
        line = text.count("\n", 0, m.start()) + 1
        state.record(m.group("key"), value, file, f"line {line}")


def _read_yaml_env(text: str, file: str, state: _State) -> Iterator[Finding]:
    try:
        documents = yamlsafe.load_all(text)[:MAX_YAML_DOCUMENTS]
    except (ValueError, RecursionError) as exc:
        yield rules.finding("ENDPOINT-LIMIT", file=file, scanner=NAME,
                            evidence=f"YAML not parsed ({type(exc).__name__}); searched as text only")
        return
    stack: list[tuple[Any, int]] = [(d, 0) for d in documents]
    while stack:
        node, depth = stack.pop()
        if depth > 64:
            continue
        if isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and state.key_pattern.fullmatch(name) and "value" in node:
                state.record(name, str(node["value"]), file, "env entry")
            for key, value in node.items():
                if isinstance(key, str) and state.key_pattern.fullmatch(key) and not isinstance(value, (dict, list)):
                    state.record(key, "" if value is None else str(value), file, "mapping")
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, str) and "=" in item:
                    key, _, value = item.partition("=")
                    if state.key_pattern.fullmatch(key.strip()):
                        state.record(key.strip(), value.strip(), file, "list entry")
                else:
                    stack.append((item, depth + 1))


def _serving_code(text: str, file: str, state: _State, spec: dict[str, Any]) -> Iterator[Finding]:
    found, analysis = findings_for_source(text, file, scanner=NAME)
    for f in found:
        yield rules.finding("DEPLOY-CODE", file=f.file, location=f.location, scanner=NAME,
                            evidence=f"{f.rule} ({f.severity.label} in shipped code): {f.evidence}")
    seen: set[str] = set()
    for module, line in analysis.imports.items():
        top = module.split(".")[0]
        if top in spec["origin_hub_modules"] and top not in seen:
            seen.add(top)
            state.origin_modules.append((file, line, top))


def _verdicts(ctx: ScanContext, state: _State, spec: dict[str, Any]) -> Iterator[Finding]:
    """Mirror, endpoint and trust settings: for deployment folders and for the repo's own serving files."""
    yield from _endpoint_vars(ctx, state, spec)
    for var, hub in spec["origin_hub_switches"].items():
        for value, file, location in state.env.get(var, []):
            if _truth(value) is not False:
                yield rules.finding("DEPLOY-ORIGIN-MIRROR", file=file, location=location, scanner=NAME,
                                    evidence=f"{var}={value}: downloads from {hub}")
    for var, entries in sorted(state.env.items()):
        hub = next((h for p, h in spec["origin_hub_prefixes"].items() if var.startswith(p)), None)
        for value, file, location in entries if hub else ():
            yield rules.finding("DEPLOY-ORIGIN-MIRROR", file=file, location=location, scanner=NAME,
                                evidence=f"{var}={value}: the deployment is configured for {hub}")
    for file, line, module in state.origin_modules:
        yield rules.finding("DEPLOY-ORIGIN-MIRROR", file=file, location=f"line {line}", scanner=NAME,
                            evidence=f"serving code imports {module}: downloads from the origin-country hub by default")
    offline = state.offline()
    trust = list(dict.fromkeys(state.trust))
    for var in spec.get("trust_vars", ()):
        for value, file, location in state.env.get(var, []):
            line = int(location.split()[-1]) if location.startswith("line ") else 0
            if _truth(value) is True and (file, line) not in trust:
                trust.append((file, line))
    for file, line in trust:
        yield rules.finding("DEPLOY-TRUST-REMOTE-CODE", file=file, location=f"line {line}" if line else "",
                            scanner=NAME, severity=Severity.LOW if offline else None,
                            evidence="trust_remote_code enabled" + ("" if offline else
                                                                    " and HF_HUB_OFFLINE is not set"))


def _endpoint_vars(ctx: ScanContext, state: _State, spec: dict[str, Any]) -> Iterator[Finding]:
    cls = classifier()
    sensitive = set(ctx.regions.sensitive_origins)
    for var in spec["hub_endpoint_vars"]:
        for value, file, location in state.env.get(var, []):
            host = value.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
            info = cls.classify(host) if host else None
            described = ", ".join(p for p in (info.operator, info.country) if p) if info else ""
            if info and info.country in sensitive:
                yield rules.finding("DEPLOY-ORIGIN-MIRROR", file=file, location=location, scanner=NAME,
                                    evidence=f"{var}={value} ({described or info.country})")
            else:
                yield rules.finding("DEPLOY-HF-ENDPOINT", file=file, location=location, scanner=NAME,
                                    evidence=f"{var}={value} ({described or 'operator unknown'})")


def _deployment_verdicts(ctx: ScanContext, state: _State, spec: dict[str, Any]) -> Iterator[Finding]:
    """Offline and telemetry: about the user's own deployment only."""
    if not state.offline():
        yield rules.finding("DEPLOY-NOT-OFFLINE", scanner=NAME, file=", ".join(ctx.options.deployment),
                            evidence=f"none of {', '.join(spec['offline_vars'])} is set to 1")
    for t in spec["telemetry"]:
        for value, file, location in state.env.get(t["var"], []):
            if _truth(value) is (not t["off_when"]):
                yield rules.finding("DEPLOY-TELEMETRY-ENABLED", file=file, location=location, scanner=NAME,
                                    evidence=f"{t['var']}={value}")
    if not state.telemetry_off():
        names = ", ".join(f"{t['var']}={'1' if t['off_when'] else '0'}" for t in spec["telemetry"])
        yield rules.finding("DEPLOY-TELEMETRY", scanner=NAME, file=", ".join(ctx.options.deployment),
                            evidence=f"no telemetry opt-out found; set {names}")
