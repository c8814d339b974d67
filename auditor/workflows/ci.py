"""`auditor ci`: audit what a pull request adds or changes, and write SARIF, Markdown and a PR comment.

A repository declares its models in a manifest (models.yaml: entries {target, revision, policy?}).
Against a base ref, the entries added or changed (both versions of the manifest parsed and compared),
the local entries whose files changed, and the model folders of changed files no entry covers are
audited; `--all` audits every entry. Audits are of units, never of lone files: a changed file re-audits
the whole model folder it belongs to. The run fails closed: an entry that cannot be audited, a Git LFS
pointer, an empty weight, a changed model file that no audit read are each a failure.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from auditor import inventory, rules, settings
from auditor.errors import AuditorError
from auditor.model import AuditResult, Finding, Options, Severity
from auditor.record import field, record
from auditor.workflows import ci_outputs

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"   # git's well-known empty tree
COMMENT_MARKER = ci_outputs.COMMENT_MARKER
GIT_TIMEOUT = 120
HEAD_BYTES = 4096
FAIL_ON = ("fail", "warn", "critical", "high", "medium", "low")


@record(frozen=True)
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


@record
class Item:
    """One audit the CI run does: a manifest entry or a model folder no entry covers."""
    entry: Entry
    why: str                                   # "added", "changed", "files changed: ...", "--all", "given"
    result: AuditResult | None = None
    error: str = ""
    local_prefix: str = ""                     # the target's folder relative to the repo root, if local
    gate: list[Finding] = field(default_factory=list)   # CI-mode failures (LFS pointer, empty weight, ...)
    fail_on: str = "fail"

    @property
    def decision(self) -> str:
        if self.error or self.result is None:
            return "error"
        if self.gate:
            return "fail"
        decision = self.result.verdict.decision
        if self.fail_on == "warn" and decision == "warn":
            return "fail"
        if self.fail_on not in ("fail", "warn"):
            level = Severity.parse(self.fail_on)
            if any(f.severity >= level for f in self.result.findings if not f.waived):
                return "fail"
        return decision


@record
class Run:
    repo_root: Path
    manifest: str                              # repo-relative path ("" = none)
    base: str
    items: list[Item] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)   # repo-relative files the change touched
    gate: list[Finding] = field(default_factory=list)  # failures of the run as a whole

    @property
    def failed(self) -> bool:
        return bool(self.gate) or any(i.decision in ("fail", "error") for i in self.items)

    @property
    def decision(self) -> str:
        if self.failed:
            return "fail"
        return "warn" if any(i.decision == "warn" for i in self.items) else "pass"


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
    return Path(proc.stdout.decode("utf-8", "surrogateescape").strip())


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
    if isinstance(data, dict):
        if set(data) != {"models"}:
            raise AuditorError(f"manifest {source}: expected a `models:` list (found keys {', '.join(map(str, data))})")
        data = data["models"] or []
        seq = next((v for k, v in node.value if k.value == "models"), None) if node is not None else None
    else:
        seq = node
    if not isinstance(data, list):
        raise AuditorError(f"manifest {source}: expected a list of entries with target and revision")
    lines = [item.start_mark.line + 1 for item in seq.value] if isinstance(seq, yaml.SequenceNode) else []
    entries: dict[str, Entry] = {}
    for number, raw in enumerate(data, 1):
        entry = _entry(raw, f"manifest {source}: entry {number}", lines[number - 1] if number <= len(lines) else 0)
        if entry.target in entries:
            raise AuditorError(f"manifest {source}: entry {number}: target {entry.target!r} is listed twice")
        entries[entry.target] = entry
    return entries


def _entry(raw: Any, where: str, line: int) -> Entry:
    allowed = set(rules.load("ci.yaml")["manifest_keys"])
    if isinstance(raw, str):
        raw = {"target": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("target"), str) or not raw["target"].strip():
        raise AuditorError(f"{where}: needs a `target` (a folder, a file or hf://org/name)")
    unknown = set(raw) - allowed
    if unknown:
        raise AuditorError(f"{where}: unknown key {', '.join(sorted(map(str, unknown)))} "
                           f"(allowed: {', '.join(sorted(allowed))})")
    return Entry(target=raw["target"].strip(), revision=str(raw.get("revision") or ""),
                 policy=str(raw.get("policy") or ""), name=str(raw.get("name") or ""),
                 endpoint=str(raw.get("endpoint") or ""), metadata_only=bool(raw.get("metadata_only")), line=line)


# -- which files count, and the model folder they belong to ----------------------------------

def trigger_globs() -> list[str]:
    """Every file kind a scanner reads, as GitHub `paths:` globs, derived from the rules data."""
    spec = rules.load("ci.yaml")
    suffixes: set[str] = set()
    for source, key in spec["trigger_suffix_sources"]:
        value = rules.load(source)[key]
        suffixes.update(s.lower() for s in (value.keys() if isinstance(value, dict) else value))
    names: set[str] = set()
    for source, key in spec["trigger_name_sources"]:
        names.update(rules.load(source)[key])
    globs = {f"**/*{s}" for s in suffixes} | {f"**/{n}" for n in names}
    for prefix in spec["trigger_prefixes"]:
        globs |= {f"**/{prefix.lower()}*", f"**/{prefix.upper()}*"}
    return sorted(globs | set(spec["trigger_extra"]))


def _is_weight(root: Path, rel: str) -> bool:
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


def _holds_model(folder: Path) -> tuple[bool, bool]:
    """(has a model-folder marker such as config.json, has a weight file) for the folder's own files."""
    spec = rules.load("ci.yaml")
    markers, extensions = set(spec["model_folder_markers"]), set(spec["model_extensions"])
    marker = weight = False
    try:
        for child in folder.iterdir():
            if child.is_file():
                marker = marker or child.name in markers
                weight = weight or child.suffix.lower() in extensions
    except OSError:
        pass
    return marker, weight


def model_folder(root: Path, rel: str) -> str | None:
    """The model folder a file belongs to: the nearest folder above it with config.json (or another marker),
    else the nearest one with a weight file; None when the file is in no model folder."""
    nearest_weights = None
    parts = PurePosixPath(rel).parts[:-1]
    for depth in range(len(parts), -1, -1):
        folder = PurePosixPath(*parts[:depth]).as_posix() if depth else ""
        marker, weight = _holds_model(root / folder if folder else root)
        if marker:
            return folder
        if weight and nearest_weights is None:
            nearest_weights = folder
    if nearest_weights is None and _is_weight(root, rel):
        nearest_weights = PurePosixPath(*parts).as_posix() if parts else ""
    return nearest_weights


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _units(root: Path, files: Iterable[str], why: str) -> list[Item]:
    """One item per model folder the files belong to, in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for rel in files:
        folder = model_folder(root, rel)
        if folder is not None:
            grouped.setdefault(folder, []).append(rel)
    items = []
    for folder, members in grouped.items():
        shown = ", ".join(members[:3]) + (f" and {len(members) - 3} more" if len(members) > 3 else "")
        items.append(Item(Entry(target=folder or "."), f"{why}: {shown}", local_prefix=folder))
    return items


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


def _read_manifest(root: Path, manifest: Path | None) -> tuple[str, dict[str, Entry]]:
    if manifest is None:
        return "", {}
    try:
        manifest_rel = manifest.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise AuditorError(f"manifest {manifest} is outside the git repository {root}") from None
    if not manifest.is_file():
        raise AuditorError(f"manifest {manifest} not found (give --manifest '' to audit changed model folders "
                           "without one)")
    current = parse_manifest(manifest.read_text(encoding="utf-8"), manifest_rel)
    if not current:
        raise AuditorError(f"manifest {manifest} names no models (add entries under `models:`)")
    return manifest_rel, current


def plan(root: Path, manifest: Path | None, base: str, audit_all: bool) -> Run:
    """Which entries and model folders this run audits, and why."""
    manifest_rel, current = _read_manifest(root, manifest)
    run = Run(repo_root=root, manifest=manifest_rel, base=base)
    manifest_dir = manifest.resolve().parent if manifest is not None else root
    prefixes = {t: _local_prefix(root, manifest_dir, t) for t in current}
    if audit_all:
        run.items = [Item(e, "--all", local_prefix=prefixes[t]) for t, e in current.items()]
        return run
    previous = parse_manifest(_show(root, base, manifest_rel), f"{manifest_rel} at {base[:12]}") if manifest_rel else {}
    run.changed = [p for p in changed_files(root, base) if p != manifest_rel]
    covered: set[str] = set()
    for target, entry in current.items():
        prefix = prefixes[target]
        touched = [p for p in run.changed if prefix and _under(p, prefix)]
        covered.update(touched)
        if target not in previous:
            run.items.append(Item(entry, "added", local_prefix=prefix))
        elif previous[target].comparable() != entry.comparable():
            run.items.append(Item(entry, "changed", local_prefix=prefix))
        elif touched:
            run.items.append(Item(entry, f"files changed: {', '.join(touched[:3])}"
                                  + (f" and {len(touched) - 3} more" if len(touched) > 3 else ""),
                                  local_prefix=prefix))
    run.items += _units(root, [p for p in run.changed if p not in covered], "files changed")
    return run


def plan_paths(root: Path, paths: Iterable[str]) -> Run:
    """The files given (by pre-commit): the model folder each belongs to, each folder audited once."""
    run = Run(repo_root=root, manifest="", base="")
    rels = []
    for raw in paths:
        path = Path(raw).resolve()
        try:
            rel = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            raise AuditorError(f"{raw} is outside the repository {root}") from None
        if not path.exists():
            raise AuditorError(f"{raw} does not exist")
        rels.append(rel)
    run.changed = rels
    run.items = _units(root, rels, "given")
    return run


# -- running ----------------------------------------------------------------------------------

def execute(run: Run, *, policy: str, waivers: str, endpoint: str, manifest_dir: Path, fail_on: str = "fail",
            progress: Callable[[Item], None] | None = None) -> Run:
    """Audit every planned item; an item that cannot be audited is an error (it fails the run); then the
    CI gate: LFS pointers, empty weights and changed model files no audit read are failures."""
    from auditor.pipeline import audit
    for item in run.items:
        e = item.entry
        item.fail_on = fail_on
        target = str(run.repo_root / item.local_prefix) if item.local_prefix or e.target == "." else e.target
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
        if item.result is not None:
            item.gate = _gate(item)
        if progress:
            progress(item)
    run.gate = _unaudited(run)
    return run


def _gate(item: Item) -> list[Finding]:
    """What CI mode refuses to pass in an audited unit: files it could not really see."""
    assert item.result is not None
    extensions = set(rules.load("ci.yaml")["model_extensions"])
    out = []
    for rec in item.result.files:
        path = _repo_path(item, rec.path)
        if rec.format == "lfs-pointer":
            out.append(rules.finding("CI-LFS-POINTER", file=path, evidence=f"{rec.size}-byte pointer file"))
        elif PurePosixPath(rec.path).suffix.lower() in extensions and rec.size == 0:
            out.append(rules.finding("CI-EMPTY-WEIGHT", file=path, evidence="0 bytes"))
    return out


def _repo_path(item: Item, path: str) -> str:
    if not item.local_prefix:
        return path
    assert item.result is not None
    if item.result.snapshot.single_file:
        return item.local_prefix
    return str(PurePosixPath(item.local_prefix) / path)


def _unaudited(run: Run) -> list[Finding]:
    """Changed model files that no audit of this run read: the change cannot pass unseen."""
    seen: set[str] = set()
    for item in run.items:
        if item.result is not None and item.local_prefix is not None:
            seen.update(_repo_path(item, r.path) for r in item.result.files)
    out = []
    for rel in run.changed:
        if rel not in seen and _is_weight(run.repo_root, rel):
            out.append(rules.finding("CI-UNAUDITED-CHANGE", file=rel,
                                     evidence="no audit of this run read it" if run.items else "nothing was audited"))
    return out


# -- outputs (auditor/workflows/ci_outputs.py renders them) -----------------------------------

def sarif(run: Run, threshold: Severity = Severity.LOW) -> dict[str, Any]:
    return ci_outputs.sarif(run, threshold)


def markdown(run: Run, *, for_comment: bool = False) -> str:
    return ci_outputs.markdown(run, for_comment=for_comment)


def comment(run: Run) -> str:
    return ci_outputs.comment(run)


def step_summary(run: Run) -> str:
    return ci_outputs.step_summary(run)


def write_outputs(run: Run, *, sarif_path: str | None, markdown_path: str | None, comment_path: str | None,
                  threshold: Severity = Severity.LOW) -> list[Path]:
    return ci_outputs.write_outputs(run, sarif_path=sarif_path, markdown_path=markdown_path,
                                    comment_path=comment_path, threshold=threshold)


def hook_files_regex() -> str:
    """The pre-commit hook's `files:` pattern: the same file kinds as trigger_globs(), as one regex."""
    import re
    suffixes, names, prefixes = set(), set(), set()
    for glob in trigger_globs():
        leaf = glob.removeprefix("**/")
        if leaf.startswith("*.") and "*" not in leaf[1:]:
            suffixes.add(re.escape(leaf[2:].lower()))
        elif leaf.endswith("*") and "*" not in leaf[:-1]:
            prefixes.add(re.escape(leaf[:-1].lower()))
        else:
            names.add(re.escape(leaf.lower()))
    return (f"(?i)(\\.({'|'.join(sorted(suffixes))})$|(^|/)({'|'.join(sorted(names))})$"
            f"|(^|/)({'|'.join(sorted(prefixes))})[^/]*$)")
