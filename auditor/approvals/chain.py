"""The hash chain: each entry's hash covers its content and the previous entry's hash.

entry_hash = SHA-256 of the canonical JSON array [seq, kind, created_at, subject, manifest_digest, body,
prev_hash], where body is the stored text byte for byte. Editing any column of any row, deleting a row
in the middle, or dropping the newest rows (the head row then names a hash no entry has) breaks it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from auditor.approvals.migrations import GENESIS
from auditor.record import record


@record(frozen=True)
class Entry:
    seq: int
    kind: str
    created_at: str
    subject: int | None
    manifest_digest: str
    body: str
    prev_hash: str
    entry_hash: str

    @property
    def data(self) -> dict[str, Any]:
        loaded = json.loads(self.body)
        return loaded if isinstance(loaded, dict) else {}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, kind: str, created_at: str, subject: int | None, manifest_digest: str,
               body: str, prev_hash: str) -> str:
    payload = canonical([seq, kind, created_at, subject, manifest_digest, body, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def problems(rows: Iterable[Entry], head_seq: int, head_hash: str) -> list[str]:
    """Every break in the chain, oldest first; [] when the history is intact."""
    found: list[str] = []
    expected_prev, expected_seq = GENESIS, 1
    for e in rows:
        if e.seq > expected_seq:
            found.append(f"entries {expected_seq}..{e.seq - 1} missing (deleted)")
        elif e.seq < expected_seq:
            found.append(f"entry {e.seq} out of order")
        if e.prev_hash != expected_prev:
            found.append(f"entry {e.seq}: previous-hash link broken (an earlier entry was edited or deleted)")
        if entry_hash(e.seq, e.kind, e.created_at, e.subject, e.manifest_digest, e.body, e.prev_hash) != e.entry_hash:
            found.append(f"entry {e.seq}: content does not match its hash (edited)")
        expected_prev, expected_seq = e.entry_hash, e.seq + 1
    if head_seq != expected_seq - 1 or head_hash != expected_prev:
        found.append(f"chain head names entry {head_seq} ({head_hash[:12]}), the last entry is "
                     f"{expected_seq - 1} ({expected_prev[:12]}): newest entries deleted or head edited")
    return found
