"""The pull-request comment, updated in place: the comment of ours is the one carrying our hidden marker
(never "the last comment", which may be another bot's). GitHub REST API v3, standard library only."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from auditor.errors import AuditorError

TIMEOUT = 30
PAGE = 100
MAX_PAGES = 50


def _call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "auditor-ci",
        **({"Content-Type": "application/json"} if data is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:   # noqa: S310 - the API URL is GitHub's
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise AuditorError(f"GitHub API {method} {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AuditorError(f"GitHub API {method} {url}: {getattr(exc, 'reason', exc)}") from None
    return json.loads(payload) if payload else None


def find_comment(api: str, repo: str, number: int, token: str, marker: str) -> int | None:
    """The id of the PR's comment whose body starts with (or holds) our marker, if any."""
    for page in range(1, MAX_PAGES + 1):
        comments = _call("GET", f"{api}/repos/{repo}/issues/{number}/comments?per_page={PAGE}&page={page}", token)
        if not isinstance(comments, list):
            raise AuditorError("GitHub API: the comment list is not a list")
        for c in comments:
            if isinstance(c, dict) and marker in str(c.get("body") or "").split("\n", 1)[0]:
                return int(c["id"])
        if len(comments) < PAGE:
            return None
    return None


def upsert_comment(api: str, repo: str, number: int, token: str, body: str, marker: str) -> str:
    """Update our comment in place, or create it; returns "updated" or "created"."""
    if not token:
        raise AuditorError("no GitHub token (set GH_TOKEN or GITHUB_TOKEN) to comment on the pull request")
    if not repo or "/" not in repo:
        raise AuditorError("no repository (set GITHUB_REPOSITORY to owner/name) to comment on")
    if not body.startswith(marker):
        body = f"{marker}\n{body}"
    api = api.rstrip("/")
    existing = find_comment(api, repo, number, token, marker)
    if existing is not None:
        _call("PATCH", f"{api}/repos/{repo}/issues/comments/{existing}", token, {"body": body})
        return "updated"
    _call("POST", f"{api}/repos/{repo}/issues/{number}/comments", token, {"body": body})
    return "created"
