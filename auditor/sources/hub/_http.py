"""HTTP for the hub source: the token rule, the timeout, every host contacted, one-line errors.

Every request goes through one client factory installed on huggingface_hub: its request hook records
each URL (redirect hops included) and removes an Authorization header from any request that is not
HTTPS to the configured endpoint's own host, so a token never travels in clear nor to a redirect target.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

from auditor import rules, settings
from auditor.errors import AuditorError
from auditor.model import Options
from auditor.sources.hub._retry import Budget, Cancelled, DeadlineExceeded, Policy, RetryTransport


def config() -> dict[str, Any]:
    return rules.load("hub.yaml")


def token_for(options: Options, endpoint: str) -> str | bool:
    """The token to send to `endpoint`, or False.

    Explicit (--token / Options.token), then AUDITOR_HUB_TOKEN, then HF_TOKEN: for the endpoint the user
    configured. huggingface_hub's saved login only for the public Hub's hosts. Never over plain HTTP:
    an explicit token for an http:// endpoint is an error, an environment token is simply not sent.
    """
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    explicit = options.token if isinstance(options.token, str) and options.token else ""
    if options.token is False:
        return False
    if explicit and parts.scheme != "https":
        raise AuditorError(f"refusing to send a token to {endpoint} over plain HTTP; use an https:// endpoint")
    current = settings.current()
    chosen = explicit or current.hub_token or current.hf_token
    if not chosen and (host in config()["hub_hosts"] or options.token is True):
        from huggingface_hub import get_token
        chosen = get_token() or ""
    if not chosen or parts.scheme != "https":
        return False
    return chosen


def timeout_of(options: Options) -> float:
    if options.timeout and options.timeout > 0:
        return float(options.timeout)
    return _seconds(settings.current().hub_timeout, config()["timeout_seconds"], "AUDITOR_HUB_TIMEOUT")


def budget_of(options: Options) -> Budget:
    """The per-request timeout, the overall deadline and the retry policy of one fetch."""
    deadline = float(options.deadline) if options.deadline and options.deadline > 0 else \
        _seconds(settings.current().hub_deadline, config()["deadline_seconds"], "AUDITOR_HUB_DEADLINE")
    return Budget(timeout=timeout_of(options), deadline_seconds=deadline, policy=Policy.from_config(config()))


def _seconds(text: str, default: Any, name: str) -> float:
    try:
        value = float(text or default)
    except ValueError:
        raise AuditorError(f"{name}={text!r} is not a number of seconds") from None
    if value < 0:
        raise AuditorError(f"{name}={text!r} must not be negative")
    return value


class HostLog:
    def __init__(self, endpoint: str) -> None:
        self.lock = threading.Lock()
        self.hosts: list[str] = []
        parts = urlsplit(endpoint)
        self.endpoint_origin = ("https", (parts.hostname or "").lower(), parts.port)
        self.stripped: list[str] = []       # requests whose Authorization header was removed

    def add(self, url: Any) -> None:
        parts = urlsplit(str(url))
        host = f"{parts.scheme}://{parts.netloc}"
        with self.lock:
            if host not in self.hosts:
                self.hosts.append(host)

    def guard(self, request: Any) -> None:
        """Drop the token from anything but HTTPS to the endpoint's own host and port."""
        if "authorization" not in request.headers:
            return
        parts = urlsplit(str(request.url))
        if (parts.scheme, (parts.hostname or "").lower(), parts.port) != self.endpoint_origin:
            del request.headers["authorization"]
            with self.lock:
                self.stripped.append(f"{parts.scheme}://{parts.netloc}")


_active_logs: list[HostLog] = []
_factory_lock = threading.Lock()


@contextmanager
def recording(endpoint: str, budget: Budget) -> Iterator[HostLog]:
    """Install a client factory whose request hook records every URL (each redirect hop fires it) and
    whose transports apply the one retry policy and the budget's timeouts (_retry.py)."""
    import httpx2
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils import _http

    constants.HF_HUB_DISABLE_XET = not settings.current().hub_xet
    constants.HF_HUB_DISABLE_TELEMETRY = True
    constants.HF_HUB_OFFLINE = False          # auditor decides offline itself (Options.offline)
    _no_agent_registry()
    log = HostLog(endpoint)

    def on_request(request: Any) -> None:
        for active in list(_active_logs):
            active.add(request.url)
            active.guard(request)

    def factory() -> Any:
        client = httpx2.Client(event_hooks={"request": [_http.hf_request_event_hook, on_request]},
                               follow_redirects=True, timeout=httpx2.Timeout(budget.timeout))
        # Wrapped after construction so the client still builds its transports (proxies from the
        # environment included) as it would without auditor.
        client._transport = cast(Any, RetryTransport(client._transport, budget))
        client._mounts = {pattern: cast(Any, RetryTransport(t, budget)) if t is not None else None
                          for pattern, t in client._mounts.items()}
        return client

    with _factory_lock:
        _active_logs.append(log)
        set_client_factory(factory)
    try:
        yield log
    finally:
        with _factory_lock:
            _active_logs.remove(log)


def _no_agent_registry() -> None:
    """huggingface_hub 2.4 fetches `<HF_ENDPOINT>/api/agent-harnesses` from huggingface.co to build its
    User-Agent, whatever endpoint the call uses: a direct connection to the public Hub from a
    mirror-only fetch. An empty registry in place of it keeps every request on the chosen endpoint."""
    try:
        from huggingface_hub.utils import _detect_agent
    except ImportError:
        return
    if hasattr(_detect_agent, "_registry") and hasattr(_detect_agent, "_EMPTY_REGISTRY"):
        _detect_agent._registry = _detect_agent._EMPTY_REGISTRY


def explain(exc: BaseException, what: str, budget: Budget) -> AuditorError:
    """One line for the user from a huggingface_hub / httpx2 error, with the real figures (timeout per
    request, attempts made and the time they took, the overall deadline)."""
    from huggingface_hub import errors
    name = type(exc).__name__
    tried = f" ({budget.last_failure})" if budget.last_failure else ""
    if isinstance(exc, DeadlineExceeded):
        return AuditorError(f"{what}: stopped at the overall deadline of {budget.deadline_seconds:g} s "
                            "(--deadline, AUDITOR_HUB_DEADLINE)")
    if isinstance(exc, Cancelled):
        return AuditorError(f"{what}: interrupted")
    if isinstance(exc, errors.RevisionNotFoundError):
        return AuditorError(f"{what}: revision not found")
    if isinstance(exc, errors.GatedRepoError):
        return AuditorError(f"{what}: the repo is gated; accept its terms on the Hub and pass a token "
                            "(--token, HF_TOKEN or AUDITOR_HUB_TOKEN)")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return AuditorError(f"{what}: repository not found (or private and no token was given: "
                            "--token, HF_TOKEN or AUDITOR_HUB_TOKEN)")
    if isinstance(exc, (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError)):
        return AuditorError(f"{what}: file not found")
    if "Timeout" in name or "timed out" in str(exc).lower():
        return AuditorError(f"{what}: the server sent nothing for {budget.timeout:g} s (--timeout, "
                            f"AUDITOR_HUB_TIMEOUT){tried}")
    if "Connect" in name or isinstance(exc, ConnectionError):
        return AuditorError(f"{what}: cannot connect to the endpoint ({name}){tried}")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status:
        return AuditorError(f"{what}: the server answered HTTP {status}{tried if status >= 500 or status == 429 else ''}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return AuditorError(f"{what}: {name}{': ' + first if first else ''}")


def network_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub import errors
    return (httpx2.HTTPError, errors.HfHubHTTPError, OSError, ValueError, errors.OfflineModeIsEnabled, Cancelled,
            DeadlineExceeded)


def ranged_head(url: str, token: str | bool, limit: int, budget: Budget) -> bytes:
    """The first `limit` bytes of a file (HTTP Range; a server that ignores Range is cut off at `limit`)."""
    from huggingface_hub.utils import build_hf_headers, get_session
    headers = {**build_hf_headers(token=token), "Range": f"bytes=0-{limit - 1}", "Accept-Encoding": "identity"}
    chunks: list[bytes] = []
    size = 0
    with get_session().stream("GET", url, headers=headers, timeout=budget.request_timeout()) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)[:limit]
