"""`auditor ci`: audit what a pull request adds or changes, and write SARIF, Markdown and a PR comment.

A repository declares its models in a manifest (models.yaml: entries {target, revision, policy?}).
Against a base ref, the entries added or changed (both versions of the manifest parsed and compared),
the local entries whose files changed, and changed model files no entry covers are audited; `--all`
audits every entry. The run fails when any audit fails or cannot be done (fail closed).
"""
from __future__ import annotations

import copy
import hashlib
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from auditor import atomic, inventory, reports, rules, settings
from auditor.errors import AuditorError
from auditor.model import AuditResult, Options
from auditor.reports import view

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"   # git's well-known empty tree
COMMENT_MARKER = "<!-- auditor-ci -->"
GIT_TIMEOUT = 120
HEAD_BYTES = 4096
SARIF_MAX_RESULTS = 25_000


@dataclass(frozen=True)
class Entry:
    target: str
    revision: str = ""
    policy: str = ""
    name: str = ""
    endpoint: str = ""
    metadata_only: bool = False
    line: int = 0                 # line of the entry in the manifest (for SARIF locations)

    @property
    def label(self) -> str:
        return self.name or self.target + (f"@{self.revision}" if self.revision else "")

    def comparable(self) -> tuple[Any, ...]:
        return (self.revision, self.policy, self.name, self.endpoint, self.metadata_only)


@dataclass
class Item:
    """One audit the CI run does: a manifest entry or a lone model file."""
    entry: Entry
    why: str                                   # "added", "changed", "files changed", "model file", "--all"
    result: AuditResult | None = None
    error: str = ""
    local_prefix: str = ""                     # the target's folder relative to the repo root, if local

    @property
    def decision(self) -> str:
        return "error" if self.error else (self.result.verdict.decision if self.result else "error")


@dataclass
class Run:
    repo_root: Path
    manifest: str                              # repo-relative path
    base: str
    items: list[Item] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(i.decision in ("fail", "error") for i in self.items)


# -- git --------------------------------------------------------------------------------------

def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=GIT_TIMEOUT)
    except FileNotFoundError:
        raise AuditorError("git is not installed; `auditor ci` needs it") from None
    except subprocess.TimeoutExpired:
        raise AuditorError(f"git {' '.join(args)} took longer than {GIT_TIMEOUT}s") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AuditorError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return proc


def repo_root(start: Path) -> Path:
    proc = _git(start, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise AuditorError(f"{start} is not inside a git repository; `auditor ci` compares against a base ref "
                           "(use `auditor scan` outside git)")
    return Path(proc.stdout.decode().strip())


def resolve_base(root: Path, base: str) -> str:
    """The commit to compare with: --base, else the PR's target branch on GitHub, else HEAD~1, else nothing."""
    candidates = [base] if base else []
    if not base and settings.current().github_base_ref:
        ref = settings.current().github_base_ref
        candidates += [f"origin/{ref}", ref]
    if not base:
        candidates.append("HEAD~1")
    for ref in candidates:
        proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if proc.returncode == 0:
            commit = proc.stdout.decode().strip()
            merge_base = _git(root, "merge-base", commit, "HEAD", check=False)
            return merge_base.stdout.decode().strip() if merge_base.returncode == 0 else commit
    if base:
        raise AuditorError(f"base ref {base!r} not found (in GitHub Actions, check out with fetch-depth: 0)")
    return EMPTY_TREE


def changed_files(root: Path, base: str) -> list[str]:
    """Files added, copied, modified, renamed or retyped between base and the working tree."""
    proc = _git(root, "diff", "--name-only", "-z", "--no-renames", "--diff-filter=ACMRT", base, "--")
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _show(root: Path, base: str, rel: str) -> str | None:
    if base == EMPTY_TREE:
        return None
    proc = _git(root, "show", f"{base}:{rel}", check=False)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None


# -- the manifest -----------------------------------------------------------------------------

def parse_manifest(text: str | None, source: str) -> dict[str, Entry]:
    """models.yaml -> target -> Entry. Accepts `models: [...]` or a top-level list."""
    if text is None or not text.strip():
        return {}
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()               # one parse: the nodes give each entry's line
        data = loader.construct_document(node) if node is not None else None
    except ValueError as exc:          # PyYAML's impossible dates
        raise AuditorError(f"manifest {source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise AuditorError(f"manifest {source}{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}") from None
    finally:
        loader.dispose()
    lines: list[int] = []
    if isinstance(data, dict):
        if set(data) != {"models"}:
            raise AuditorError(f"manifest {source}: expected a `models:` list (found keys {', '.join(map(str, data))})")
        data = data["models"] or []
        seq = next((v for k, v in node.value if k.value == "models"), None) if node is not None else None
    else:
        seq = node
    if not isinstance(data, list):
        raise AuditorError(f"manifest {source}: expected a list of entries with target and revision")
    if isinstance(seq, yaml.SequenceNode):
        lines = [item.start_mark.line + 1 for item in seq.value]
    allowed = set(rules.load("ci.yaml")["manifest_keys"])
    entries: dict[str, Entry] = {}
    for number, raw in enumerate(data, 1):
        where = f"manifest {source}: entry {number}"
        if isinstance(raw, str):
            raw = {"target": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("target"), str) or not raw["target"].strip():
            raise AuditorError(f"{where}: needs a `target` (a folder, a file or hf://org/name)")
        unknown = set(raw) - allowed
        if unknown:
            raise AuditorError(f"{where}: unknown key {', '.join(sorted(map(str, unknown)))} "
                               f"(allowed: {', '.join(sorted(allowed))})")
        entry = Entry(target=raw["target"].strip(), revision=str(raw.get("revision") or ""),
                      policy=str(raw.get("policy") or ""), name=str(raw.get("name") or ""),
                      endpoint=str(raw.get("endpoint") or ""), metadata_only=bool(raw.get("metadata_only")),
                      line=lines[number - 1] if number <= len(lines) else 0)
        if entry.target in entries:
            raise AuditorError(f"{where}: target {entry.target!r} is listed twice")
        entries[entry.target] = entry
    return entries


# -- what to audit ----------------------------------------------------------------------------

def _local_prefix(root: Path, manifest_dir: Path, target: str) -> str:
    """The target's path relative to the repo root when it is a local file or folder inside it, else ""."""
    if target.startswith("hf://"):
        return ""
    path = (manifest_dir / target).resolve()
    if not path.exists():
        return ""
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return ""


def _is_model_file(root: Path, rel: str) -> bool:
    spec = rules.load("ci.yaml")
    if PurePosixPath(rel).suffix.lower() in spec["model_extensions"]:
        return True
    path = root / rel
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        return inventory.detect(head, path.stat().st_size) in spec["model_formats"]
    except OSError:
        return False


def plan(root: Path, manifest: Path, base: str, audit_all: bool) -> Run:
    """Which entries and files this run audits, and why."""
    try:
        manifest_rel = manifest.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise AuditorError(f"manifest {manifest} is outside the git repository {root}") from None
    current_text = manifest.read_text(encoding="utf-8") if manifest.is_file() else None
    if current_text is None and audit_all:
        raise AuditorError(f"manifest {manifest} not found")
    current = parse_manifest(current_text, manifest_rel)
    run = Run(repo_root=root, manifest=manifest_rel, base=base)
    manifest_dir = manifest.resolve().parent
    prefixes = {t: _local_prefix(root, manifest_dir, t) for t in current}
    if audit_all:
        run.items = [Item(e, "--all", local_prefix=prefixes[t]) for t, e in current.items()]
        return run
    previous = parse_manifest(_show(root, base, manifest_rel), f"{manifest_rel} at {base[:12]}")
    changed = [p for p in changed_files(root, base) if p != manifest_rel]
    covered: set[str] = set()
    for target, entry in current.items():
        prefix = prefixes[target]
        touched = [p for p in changed if prefix and (p == prefix or p.startswith(prefix.rstrip("/") + "/"))]
        covered.update(touched)
        if target not in previous:
            run.items.append(Item(entry, "added", local_prefix=prefix))
        elif previous[target].comparable() != entry.comparable():
            run.items.append(Item(entry, "changed", local_prefix=prefix))
        elif touched:
            run.items.append(Item(entry, f"files changed: {', '.join(touched[:3])}"
                                  + (f" and {len(touched) - 3} more" if len(touched) > 3 else ""),
                                  local_prefix=prefix))
    for rel in changed:
        if rel not in covered and _is_model_file(root, rel):
            run.items.append(Item(Entry(target=rel), "model file", local_prefix=rel))
    return run


def plan_paths(root: Path, paths: Iterable[str]) -> Run:
    """The files given (by pre-commit), each audited on its own."""
    run = Run(repo_root=root, manifest="", base="")
    for raw in paths:
        path = Path(raw).resolve()
        try:
            rel = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            raise AuditorError(f"{raw} is outside the repository {root}") from None
        if not path.exists():
            raise AuditorError(f"{raw} does not exist")
        run.items.append(Item(Entry(target=rel), "given", local_prefix=rel))
    return run


# -- running ----------------------------------------------------------------------------------

def execute(run: Run, *, policy: str, waivers: str, endpoint: str, manifest_dir: Path,
            progress: Callable[[Item], None] | None = None) -> Run:
    """Audit every planned item; an item that cannot be audited is an error (it fails the run)."""
    from auditor.pipeline import audit
    for item in run.items:
        e = item.entry
        target = str(run.repo_root / item.local_prefix) if item.local_prefix else e.target
        if not item.local_prefix and e.target.startswith(("./", "../", "/")):
            target = str(manifest_dir / e.target)          # a path, even a missing one, is never a Hub id
        chosen = e.policy or policy
        if e.policy and (manifest_dir / e.policy).is_file():
            chosen = str(manifest_dir / e.policy)
        options = Options(policy=chosen, waivers=waivers, revision=e.revision, endpoint=e.endpoint or endpoint,
                          metadata_only=e.metadata_only)
        try:
            item.result = audit(target, options)
        except AuditorError as exc:
            item.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken entry must not hide the others' reports
            item.error = f"internal error: {type(exc).__name__}: {exc}"
        if progress:
            progress(item)
    return run


# -- outputs ----------------------------------------------------------------------------------

def sarif(run: Run) -> dict[str, Any]:
    """One SARIF log with one run for the whole CI check: rules merged, locations made repo-relative."""
    rules_out: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    verdicts = []
    driver: dict[str, Any] = {"name": "auditor"}
    schema_uri = "https://json.schemastore.org/sarif-2.1.0.json"
    renderer = reports.get("sarif")
    for item in run.items:
        verdicts.append({"target": item.entry.label, "why": item.why, "decision": item.decision,
                         **({"error": item.error} if item.error else {})})
        if item.result is None:
            if "POLICY-NOT-AUDITED" not in index:
                index["POLICY-NOT-AUDITED"] = len(rules_out)
                rules_out.append(_not_audited_rule())
            results.append(_not_audited(item, run, index["POLICY-NOT-AUDITED"]))
            continue
        doc = renderer.to_dict(item.result) if hasattr(renderer, "to_dict") else _json(renderer.render(item.result))
        schema_uri = doc.get("$schema", schema_uri)
        for one in doc.get("runs", []):
            driver = {k: v for k, v in one["tool"]["driver"].items() if k != "rules"}
            local_rules = one["tool"]["driver"].get("rules", [])
            for rule in local_rules:
                if rule["id"] not in index:
                    index[rule["id"]] = len(rules_out)
                    rules_out.append(rule)
            for res in one.get("results", []):
                res = copy.deepcopy(res)
                if "ruleId" in res and res["ruleId"] in index:
                    res["ruleIndex"] = index[res["ruleId"]]
                for loc in res.get("locations", []):
                    _relocate(loc, item, run)
                props = res.setdefault("properties", {})
                props["model"] = item.entry.label
                results.append(res)
    return {"$schema": schema_uri, "version": "2.1.0", "runs": [{
        "tool": {"driver": {**driver, "rules": rules_out}},
        "automationDetails": {"id": "auditor-ci/"},
        "results": results[:SARIF_MAX_RESULTS],
        "properties": {"base": run.base, "manifest": run.manifest, "models": verdicts},
    }]}


def _not_audited_rule() -> dict[str, Any]:
    info = rules.catalog()["POLICY-NOT-AUDITED"]
    return {"id": info.id, "name": "PolicyNotAudited", "shortDescription": {"text": info.title},
            "fullDescription": {"text": info.description}, "help": {"text": info.remediation},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["security", "supply-chain", "policy"], "security-severity": "8.0"}}


def _not_audited(item: Item, run: Run, rule_index: int) -> dict[str, Any]:
    uri = run.manifest or item.local_prefix or item.entry.target
    line = item.entry.line if run.manifest else 1
    text = view.clean(f"[high] {item.entry.label} could not be audited: {item.error}", 4000)
    text = text.replace("{", "{{").replace("}", "}}")   # SARIF placeholders
    digest = hashlib.sha256(f"POLICY-NOT-AUDITED|{item.entry.target}".encode()).hexdigest()[:16]
    return {"ruleId": "POLICY-NOT-AUDITED", "ruleIndex": rule_index, "level": "error", "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": line or 1}}}],
            "partialFingerprints": {"primaryLocationLineHash": f"{digest}:{line or 1}"},
            "properties": {"model": item.entry.label, "severity": "high"}}


def _json(text: str | bytes) -> dict[str, Any]:
    import json
    return dict(json.loads(text))


def _relocate(location: dict[str, Any], item: Item, run: Run) -> None:
    """A model file's path inside its folder -> its path in the repo; no such file -> the manifest entry."""
    physical = location.get("physicalLocation") or {}
    artifact = physical.get("artifactLocation") or {}
    uri = str(artifact.get("uri", ""))
    if item.local_prefix:
        single = (run.repo_root / item.local_prefix).is_file()
        candidate = item.local_prefix if single else f"{item.local_prefix.rstrip('/')}/{uri}".strip("/")
        if (run.repo_root / candidate).is_file():
            artifact["uri"] = candidate
            return
    if run.manifest:
        artifact["uri"] = run.manifest
        physical["region"] = {"startLine": item.entry.line or 1}
    elif item.local_prefix:
        artifact["uri"] = item.local_prefix


def markdown(run: Run, *, for_comment: bool = False) -> str:
    from auditor.reports.markdown import code, escape

    renderer = reports.get("markdown")
    icon = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "❌ error"}
    overall = "❌ FAIL" if run.failed else "✅ PASS"
    lines = [COMMENT_MARKER] if for_comment else []
    lines += [f"# auditor ci: {overall}", "",
              f"Compared with {code(run.base[:12])}; manifest {code(run.manifest)}; "
              f"{len(run.items)} audit(s).", ""]
    if not run.items:
        lines.append("No model entry or model file was added or changed.")
        return "\n".join(lines) + "\n"
    lines += ["| Model | Why | Policy | Decision | Findings |", "|---|---|---|---|---|"]
    for item in run.items:
        if item.result is not None:
            counts = ", ".join(f"{n} {s}" for s, n in item.result.verdict.counts.items() if n) or "none"
            pol = item.result.verdict.policy
        else:
            counts, pol = escape(item.error, 200), item.entry.policy or "-"
        lines.append(f"| {code(item.entry.label, 120)} | {escape(item.why, 120)} | {code(pol)} | "
                     f"{icon.get(item.decision, escape(item.decision))} | {counts} |")
    lines.append("")
    for item in run.items:
        if item.result is not None:
            lines += [str(renderer.render(item.result)).rstrip(), ""]
    return "\n".join(lines) + "\n"


def comment(run: Run) -> str:
    return _cut(markdown(run, for_comment=True), "max_comment_chars",
                "The report was cut to fit a comment; the job summary and the SARIF have more.")


def step_summary(run: Run) -> str:
    return _cut(markdown(run), "max_summary_chars", "The summary was cut to fit GitHub's limit; see the SARIF.")


def _cut(text: str, limit_key: str, note: str) -> str:
    limit = int(rules.load("ci.yaml")[limit_key])
    if len(text) <= limit:
        return text
    return text[:limit].rsplit("\n", 1)[0] + f"\n\n_{note}_\n"


def write_outputs(run: Run, *, sarif_path: str | None, markdown_path: str | None,
                  comment_path: str | None) -> list[Path]:
    import json

    written: list[Path] = []
    outputs: Iterable[tuple[str | None, Callable[[], str]]] = (
        (sarif_path, lambda: json.dumps(sarif(run), indent=2, ensure_ascii=False) + "\n"),
        (markdown_path, lambda: markdown(run)),
        (comment_path, lambda: comment(run)),
    )
    for path, make in outputs:
        if path:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic.write(target, make())
            written.append(target)
    summary = settings.current().github_step_summary or None
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:   # GitHub's summary file is appended to
            fh.write(step_summary(run))
        written.append(Path(summary))
    return written
