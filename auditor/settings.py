"""Every environment variable the tool reads, read in one place.

`current()` takes a snapshot of the environment once per call site that needs it (the CLI, the
pipeline); code below it receives the values, never os.environ. Tests change the environment and
call `current()` again, so nothing here is cached at import time.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from auditor.record import record


@record(frozen=True)
class Settings:
    hf_endpoint: str = ""            # HF_ENDPOINT: the Hub or mirror to use when no --endpoint is given
    cache_dir: str = ""              # AUDITOR_CACHE: auditor's own cache of fetched snapshots
    state_dir: str = ""              # AUDITOR_STATE, else $XDG_STATE_HOME/auditor: the key of the parsed-rules cache
    hub_token: str = ""              # AUDITOR_HUB_TOKEN: the token for the configured endpoint
    hub_timeout: str = ""            # AUDITOR_HUB_TIMEOUT: seconds per Hub request
    hub_deadline: str = ""           # AUDITOR_HUB_DEADLINE: seconds for a whole Hub fetch
    hub_xet: bool = False            # AUDITOR_HUB_XET=1: allow the Xet transfer protocol
    hf_token: str = ""               # HF_TOKEN: huggingface_hub's token, sent to the configured endpoint (HTTPS only)
    hf_offline: bool = False         # HF_HUB_OFFLINE=1: audit what the cache holds, no request
    hf_hub_cache: str = ""           # HF_HUB_CACHE, else HF_HOME/hub: huggingface_hub's cache, reused
    key_password: str = ""           # AUDITOR_KEY_PASSWORD: password of an encrypted signing key
    debug: bool = False              # AUDITOR_DEBUG: tracebacks instead of one-line errors
    github_base_ref: str = ""        # GITHUB_BASE_REF: the PR's base branch in GitHub Actions
    github_step_summary: str = ""    # GITHUB_STEP_SUMMARY: where a job summary goes in GitHub Actions
    github_actions: bool = False     # GITHUB_ACTIONS=true: print ::error/::warning workflow commands
    github_api_url: str = ""         # GITHUB_API_URL: the REST API the PR comment goes to
    github_repository: str = ""      # GITHUB_REPOSITORY: owner/name of the pull request's repository
    github_token: str = ""           # GH_TOKEN, else GITHUB_TOKEN: the token the PR comment is posted with


def current(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        hf_endpoint=env.get("HF_ENDPOINT", ""),
        cache_dir=env.get("AUDITOR_CACHE", ""),
        state_dir=env.get("AUDITOR_STATE", "") or (f"{env['XDG_STATE_HOME']}/auditor" if env.get("XDG_STATE_HOME") else ""),
        hub_token=env.get("AUDITOR_HUB_TOKEN", ""),
        hub_timeout=env.get("AUDITOR_HUB_TIMEOUT", ""),
        hub_deadline=env.get("AUDITOR_HUB_DEADLINE", ""),
        hub_xet=env.get("AUDITOR_HUB_XET", "") == "1",
        hf_token=env.get("HF_TOKEN", ""),
        hf_offline=env.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
        hf_hub_cache=env.get("HF_HUB_CACHE", "") or (f"{env['HF_HOME']}/hub" if env.get("HF_HOME") else ""),
        key_password=env.get("AUDITOR_KEY_PASSWORD", ""),
        debug=bool(env.get("AUDITOR_DEBUG")),
        github_base_ref=env.get("GITHUB_BASE_REF", ""),
        github_step_summary=env.get("GITHUB_STEP_SUMMARY", ""),
        github_actions=env.get("GITHUB_ACTIONS", "") == "true",
        github_api_url=env.get("GITHUB_API_URL", "") or "https://api.github.com",
        github_repository=env.get("GITHUB_REPOSITORY", ""),
        github_token=env.get("GH_TOKEN", "") or env.get("GITHUB_TOKEN", ""),
    )
