"""The flags of every command that reaches a Hub, defined once: `@hub_options` adds them and passes
one `hub` dict (revision, endpoint, cache_dir, offline, token, timeout) to the command."""
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
    @click.option("--timeout", default=0.0, type=float, help="Seconds per Hub request (default AUDITOR_HUB_TIMEOUT, 30).")
    @functools.wraps(command)
    def wrapper(*args: Any, revision: str, endpoint: str, cache_dir: str, offline: bool, token: str,
                timeout: float, **kwargs: Any) -> Any:
        if timeout < 0:
            raise AuditorError("--timeout must be a positive number of seconds")
        hub = {"revision": revision, "endpoint": endpoint, "cache_dir": cache_dir, "offline": offline,
               "token": token or None, "timeout": timeout}
        return command(*args, hub=hub, **kwargs)
    return wrapper
