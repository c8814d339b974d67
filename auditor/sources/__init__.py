"""Sources turn what the user typed into a Snapshot: a local folder plus how it was obtained.

Local paths first: a target that exists on disk is local (a folder, one file, or a Hugging Face cache
folder), whatever characters it holds (`repos/Yi@v2.1`). A target that does not exist and is spelled
like a Hub repo (`hf://org/name[@rev]`, `org/name[@rev]`, `https://huggingface.co/org/name[/tree/rev]`,
a single name such as `gpt2`) is a Hub target; when that fails too, the error says both were tried.
`modelscope://` and other hubs with a different API are refused with a message saying so.
"""
from __future__ import annotations

import re
from pathlib import Path

from auditor.errors import AuditorError
from auditor.model import Options, Snapshot
from auditor.parsers import repoid

_HUB_URL = re.compile(r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_hub_target(target: str) -> bool:
    if Path(target).expanduser().exists():
        return False
    if target.startswith("hf://") or _HUB_URL.match(target) or _OTHER_SCHEME.match(target):
        return True      # other schemes (modelscope://) go to the hub source, which refuses them by name
    name = target.split("@", 1)[0]
    return repoid.is_repo_id(name) or bool(repoid.SINGLE_NAME.match(name)) and "." not in name


def open_snapshot(target: str, options: Options) -> Snapshot:
    if not target or not target.strip():
        raise AuditorError("no target given: pass a folder, a file, or hf://org/name")
    if is_hub_target(target):
        from auditor.sources import hub
        try:
            return hub.open_snapshot(target, options)
        except AuditorError as exc:
            if target.startswith("hf://") or _OTHER_SCHEME.match(target):
                raise
            raise AuditorError(f"{exc} (tried as a Hub repo because no local file or folder is named "
                               f"{target})") from None
    from auditor.sources import local
    return local.open_snapshot(target, options)
