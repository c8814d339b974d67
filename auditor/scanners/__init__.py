"""The scanner registry.

A scanner is a module with `NAME: str` and `scan(ctx: ScanContext) -> Iterator[Finding]`.
It reads the inventory and the files under ctx.root, never the network, never executes anything,
and publishes what it learns (license terms, origin, metadata) with ctx.set_fact(). Scanners run
in the order of REGISTRY; a later one may read an earlier one's facts (license reads provenance's).
A scanner that raises is reported as SCANNER-ERROR: its files count as not verified.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from auditor.model import FileRecord, Finding, Options, Snapshot

if TYPE_CHECKING:
    from auditor.judge.policy import Policy

# Module names under auditor.scanners, in run order.
REGISTRY: tuple[str, ...] = (
    "pickle", "modelscan_engine",   # pickle and its containers (issue 3); modelscan as second engine
    # weight formats "safe" by design (issue 4): after pickle/modelscan, before provenance
    "safetensors", "shards", "gguf", "templates", "onnx", "keras", "tensorflow", "config_targets",
    "provenance",     # after the format scanners, before "license" (license reads its facts)
    "license",        # license terms of the model and its lineage (issue 6)
    "code", "endpoints", "deployment",   # issue 7: endpoints reads the format scanners' metadata facts
    "integrity",      # last: the only one that waits for the inventory's hashes (publisher hashes, lock file)
)


@dataclass
class ScanContext:
    snapshot: Snapshot
    files: tuple[FileRecord, ...]
    options: Options
    policy: Policy | None = None        # scanners read policy.settings (user_region, sensitive_origins, ...)
    facts: dict[str, Any] = field(default_factory=dict)
    # Hashing runs in the background while scanners run; `files` has sha256 "" until hashed_files().
    hashing: Callable[[], tuple[FileRecord, ...]] | None = None

    def hashed_files(self) -> tuple[FileRecord, ...]:
        """Wait for the inventory's SHA-256s (only a scanner that compares hashes needs to)."""
        if self.hashing is not None:
            self.files, self.hashing = self.hashing(), None
        return self.files

    def setting(self, key: str, default: Any = None) -> Any:
        return self.policy.settings.get(key, default) if self.policy else default

    @property
    def root(self) -> Path:
        return Path(self.snapshot.root)

    def path(self, rec: FileRecord) -> Path:
        return self.root / rec.path

    def files_of(self, *formats: str) -> list[FileRecord]:
        """Files whose detected content is one of `formats` (see inventory.detect)."""
        return [f for f in self.files if f.format in formats and not f.error]

    def files_named(self, *suffixes: str) -> list[FileRecord]:
        """Files whose name ends with one of `suffixes` (case-insensitive)."""
        lowered = tuple(s.lower() for s in suffixes)
        return [f for f in self.files if f.path.lower().endswith(lowered) and not f.error]

    def read_text(self, rec: FileRecord) -> tuple[str, bool]:
        """The file as text (UTF-8, undecodable bytes replaced) and whether it was cut at the limit."""
        limit = self.options.limits.max_text_bytes
        with open(self.path(rec), "rb") as fh:
            raw = fh.read(limit + 1)
        return raw[:limit].decode("utf-8", "replace"), len(raw) > limit

    def set_fact(self, key: str, value: Any) -> None:
        self.facts[key] = value


def load(names: Iterable[str] = REGISTRY) -> list[ModuleType]:
    return [importlib.import_module(f"auditor.scanners.{name}") for name in names]


def run(ctx: ScanContext, modules: list[ModuleType] | None = None) -> Iterator[tuple[str, Finding]]:
    """Yield (scanner name, finding) as each scanner produces them."""
    from auditor import rules
    for module in modules if modules is not None else load():
        name = getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1])
        try:
            for item in module.scan(ctx):
                yield name, item
        except Exception as exc:  # noqa: BLE001 - a broken scanner must fail closed, not crash the audit
            yield name, rules.finding("SCANNER-ERROR", scanner=name,
                                      evidence=f"{type(exc).__name__}: {exc}")
