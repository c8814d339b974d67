"""The flags of every command that reaches a Hub, defined once: `@hub_options` adds them and passes
one `hub` dict (revision, endpoint, cache_dir, offline, token, timeout, deadline) to the command."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from auditor.errors import AuditorError


def hub_options(command: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--revision", default="", help="Hub revision (branch, tag or commit; resolved to a commit once).")
    @click.option("--endpoint", default="",
                  help="Hub endpoint or mirror URL (default: HF_ENDPOINT, then the public Hub).")
    @click.option("--cache-dir", default="", type=click.Path(file_okay=False),
                  help="Cache folder (default: AUDITOR_CACHE, else the Hugging Face cache for its own endpoint).")
    @click.option("--offline", is_flag=True, help="Use only what the cache holds (also HF_HUB_OFFLINE=1).")
    @click.option("--token", default="", help="Hub token for the endpoint (HTTPS only; default HF_TOKEN / "
                                              "AUDITOR_HUB_TOKEN).")
    @click.option("--timeout", default=0.0, type=float,
                  help="Seconds a Hub request may wait to connect or between two reads, downloads included "
                       "(default AUDITOR_HUB_TIMEOUT, 30).")
    @click.option("--deadline", default=0.0, type=float,
                  help="Seconds for the whole Hub fetch (default AUDITOR_HUB_DEADLINE, none).")
    @functools.wraps(command)
    def wrapper(*args: Any, revision: str, endpoint: str, cache_dir: str, offline: bool, token: str,
                timeout: float, deadline: float, **kwargs: Any) -> Any:
        if timeout < 0 or deadline < 0:
            raise AuditorError("--timeout and --deadline must be positive numbers of seconds")
        hub = {"revision": revision, "endpoint": endpoint, "cache_dir": cache_dir, "offline": offline,
               "token": token or None, "timeout": timeout, "deadline": deadline}
        return command(*args, hub=hub, **kwargs)
    return wrapper
