"""The flags of every command that reaches a Hub, defined once: `add_hub_arguments` adds them and
`@hub_options` passes them to the command as one `hub` dict (revision, endpoint, cache_dir, offline,
token, timeout, deadline)."""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

from auditor.cli.args import folder_path
from auditor.errors import AuditorError


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", default="", help="Hub revision (branch, tag or commit; resolved to a commit once).")
    parser.add_argument("--endpoint", default="", help="Hub endpoint or mirror URL (default: HF_ENDPOINT, then the public Hub).")
    parser.add_argument("--cache-dir", default="", type=folder_path,
                        help="Cache folder (default: AUDITOR_CACHE, else the Hugging Face cache for its own endpoint).")
    parser.add_argument("--offline", action="store_true", help="Use only what the cache holds (also HF_HUB_OFFLINE=1).")
    parser.add_argument("--token", default="", help="Hub token for the endpoint (HTTPS only; default HF_TOKEN / "
                                                    "AUDITOR_HUB_TOKEN).")
    parser.add_argument("--timeout", default=0.0, type=float,
                        help="Seconds a Hub request may wait to connect or between two reads, downloads included "
                             "(default AUDITOR_HUB_TIMEOUT, 30).")
    parser.add_argument("--deadline", default=0.0, type=float,
                        help="Seconds for the whole Hub fetch (default AUDITOR_HUB_DEADLINE, none).")


def hub_options(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, revision: str, endpoint: str, cache_dir: str, offline: bool, token: str,
                timeout: float, deadline: float, **kwargs: Any) -> Any:
        if timeout < 0 or deadline < 0:
            raise AuditorError("--timeout and --deadline must be positive numbers of seconds")
        hub = {"revision": revision, "endpoint": endpoint, "cache_dir": cache_dir, "offline": offline,
               "token": token or None, "timeout": timeout, "deadline": deadline}
        return command(*args, hub=hub, **kwargs)
    return wrapper
