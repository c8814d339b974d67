"""The scanner registry.

A scanner is a module with `NAME: str` and `scan(ctx: ScanContext) -> Iterator[Finding]` (the `Scanner`
protocol). It reads the inventory and the files under ctx.root, never the network, never executes
anything, and publishes what it learns as a typed record (auditor.facts) with ctx.facts.publish().
Scanners run in the order of REGISTRY; a later one may read an earlier one's record by its type.
A scanner sees the policy only as resolved `Regions`; every other policy decision is judge/'s.
A file that makes a scanner fail is a SCANNER-FILE-ERROR on that file (ctx.per_file) and the scanner
goes on with the next file; a scanner that fails outside a file is a SCANNER-ERROR.
"""
from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Protocol, TypeVar

from auditor.facts import Facts
from auditor.model import FileRecord, Finding, Options, Regions, Snapshot
from auditor.record import field, record

# Module names under auditor.scanners, in run order.
REGISTRY: tuple[str, ...] = (
    "pickle", "modelscan_engine",   # pickle and its containers; modelscan as a second engine
    # weight formats "safe" by design: after pickle/modelscan, before provenance
    "safetensors", "shards", "gguf", "templates", "onnx", "keras", "tensorflow", "config_targets", "npy",
    "model_card",     # what config.json and the card say the model is (no findings; for the ML-BOM)
    "provenance",     # after the format scanners (it reads their metadata), before "license"
    "license",        # license terms of the model and its lineage (reads provenance's record)
    "code", "endpoints", "deployment",   # endpoints reads the format scanners' metadata records
    "integrity",      # last: the only one that waits for the inventory's hashes (publisher hashes, lock file)
)

R = TypeVar("R")


class Scanner(Protocol):
    NAME: str

    def scan(self, ctx: ScanContext) -> Iterator[Finding]: ...


@record
class ScanContext:
    snapshot: Snapshot
    files: tuple[FileRecord, ...]
    options: Options
    regions: Regions = field(default_factory=Regions)
    facts: Facts = field(default_factory=Facts)
    # Hashing runs in the background while scanners run; `files` has sha256 "" until hashed_files().
    hashing: Callable[[], tuple[FileRecord, ...]] | None = None
    # The bytes of small files the survey read whole and hashed (inventory.Inventory.contents).
    contents: Mapping[str, bytes] = field(default_factory=dict)

    def hashed_files(self) -> tuple[FileRecord, ...]:
        """Wait for the inventory's SHA-256s (only a scanner that compares hashes needs to)."""
        if self.hashing is not None:
            self.files, self.hashing = self.hashing(), None
        return self.files

    @functools.cached_property
    def root(self) -> Path:   # built once: scanners ask for it per file
        return Path(self.snapshot.root)

    @functools.cached_property
    def root_str(self) -> str:
        return str(self.snapshot.root)

    def path(self, rec: FileRecord) -> Path:
        return self.root / rec.path

    def fspath(self, rec: FileRecord) -> str:
        """The file's path as a string: what open() takes, without building a Path (once per file per scanner)."""
        return os.path.join(self.root_str, rec.path)

    def files_of(self, *formats: str) -> list[FileRecord]:
        """Files whose detected content is one of `formats` (see inventory.detect)."""
        return [f for f in self.files if f.format in formats and not f.error]

    def files_named(self, *suffixes: str) -> list[FileRecord]:
        """Files whose name ends with one of `suffixes` (case-insensitive)."""
        lowered = tuple(s.lower() for s in suffixes)
        return [f for f in self.files if f.path.lower().endswith(lowered) and not f.error]

    def read_bytes(self, file: FileRecord | str, limit: int = -1) -> bytes:
        """The first `limit` bytes (all with -1) of a file (its record, or its path in the snapshot): the
        survey's copy when it kept one (the bytes it hashed), else read from the file. OSError as open()'s."""
        path = file if isinstance(file, str) else file.path
        data = self.contents.get(path)
        if data is not None:
            return data if limit < 0 else data[:limit]
        with open(os.path.join(self.root_str, path), "rb") as fh:
            return fh.read(limit)

    def read_text(self, rec: FileRecord) -> tuple[str, bool]:
        """The file as text (UTF-8, undecodable bytes replaced) and whether it was cut at the limit."""
        limit = self.options.limits.max_text_bytes
        raw = self.read_bytes(rec, limit + 1)
        return raw[:limit].decode("utf-8", "replace"), len(raw) > limit

    def per_file(self, records: Iterable[R], scan_one: Callable[[R], Iterable[Finding]],
                 scanner: str, name: Callable[[R], str] = lambda r: getattr(r, "path", str(r))
                 ) -> Iterator[Finding]:
        """Run `scan_one` on each record; a failure on one is a finding on it, and the next one still runs."""
        for item in records:
            try:
                yield from scan_one(item)
            except Exception as exc:  # noqa: BLE001 - one hostile file must not hide the findings of the others
                yield file_error(scanner, name(item), exc)


def file_error(scanner: str, file: str, exc: BaseException) -> Finding:
    from auditor import rules
    return rules.finding("SCANNER-FILE-ERROR", scanner=scanner, file=file,
                         evidence=f"{type(exc).__name__}: {exc}")


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
