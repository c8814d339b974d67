"""Sources turn what the user typed into a Snapshot: a local folder plus how it was obtained.

- a path that exists: `local` (a folder, one file, or a Hugging Face cache folder);
- `hf://org/name[@rev]` or `org/name[@rev]` that is not a local path: `hub`.
"""
from __future__ import annotations

import re
from pathlib import Path

from auditor.errors import AuditorError
from auditor.model import Options, Snapshot

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}(@[^\s@]+)?$")


def is_hub_target(target: str) -> bool:
    if target.startswith("hf://"):
        return True
    return bool(_REPO_ID.match(target)) and not Path(target.split("@")[0]).exists()


def open_snapshot(target: str, options: Options) -> Snapshot:
    if not target or not target.strip():
        raise AuditorError("no target given: pass a folder, a file, or hf://org/name")
    if is_hub_target(target):
        from auditor.sources import hub
        try:
            return hub.open_snapshot(target, options)
        except AuditorError as exc:
            if target.startswith("hf://"):
                raise
            raise AuditorError(f"{exc} (no local file or folder is named {target} either)") from None
    from auditor.sources import local
    return local.open_snapshot(target, options)
