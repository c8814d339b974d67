"""One retry policy, a per-request timeout and an overall deadline for every request the hub source makes.

Every request (API calls, listing pages, downloads, ranged header reads, ancestors' files) goes through
the client huggingface_hub's `get_session()` returns while a fetch runs, whose transport is
`RetryTransport`: a transient answer (rules/hub.yaml `retry.statuses`) or a connect/read failure is
retried with exponential backoff, at most `retry.attempts` times, never past the overall deadline.
huggingface_hub's own `http_backoff` is not used (its listing retries 5 times with 1-8 s waits on top
of any other policy, and its downloads retry only timeouts), so there is one policy, here.

`Budget` also carries the cancel flag: Ctrl-C in the main thread sets it, downloads in worker threads
stop at their next chunk, and the responses they are reading are closed so none waits out a timeout.
"""
from __future__ import annotations

import email.utils
import logging
import threading
import time
from typing import Any

from auditor.record import field, record

log = logging.getLogger("auditor.hub")
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS")


def transient_errors() -> tuple[type[BaseException], ...]:
    """Failures worth another try (httpx2 is imported only when the Hub is reached: it is slow to import)."""
    import httpx2
    return (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


class DeadlineExceeded(Exception):
    """The fetch's overall deadline passed."""


class Cancelled(Exception):
    """The fetch was interrupted (Ctrl-C, or another download of the same fetch failed)."""


@record(frozen=True)
class Policy:
    attempts: int = 4
    base_wait: float = 0.5
    max_wait: float = 4.0
    statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Policy:
        retry = cfg.get("retry") or {}
        return cls(attempts=max(1, int(retry.get("attempts", 4))), base_wait=float(retry.get("base_wait", 0.5)),
                   max_wait=float(retry.get("max_wait", 4.0)),
                   statuses=frozenset(int(s) for s in retry.get("statuses", cls.statuses)))

    def waits(self) -> list[float]:
        """The backoff before attempt 2, 3, ...: doubling from base_wait, capped at max_wait."""
        return [min(self.max_wait, self.base_wait * 2 ** i) for i in range(self.attempts - 1)]


@record
class Budget:
    timeout: float                        # seconds to connect, or between two reads of one response
    deadline_seconds: float = 0.0         # the whole fetch; 0 = none
    policy: Policy = field(default_factory=Policy)
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    last_failure: str = ""                # how the last failed request was tried: "3 attempts in 10.2 s"
    _open: set[Any] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        if self.deadline_seconds <= 0:
            return float("inf")
        return self.deadline_seconds - (time.monotonic() - self.started)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("interrupted")
        if self.remaining() <= 0:
            raise DeadlineExceeded(f"the overall deadline of {self.deadline_seconds:g} s was reached")

    def wait(self, seconds: float) -> None:
        """Sleep before a retry; Ctrl-C (main thread) or a cancel (workers) ends it at once."""
        self.check()
        if self.cancel.wait(max(0.0, min(seconds, self.remaining()))):
            raise Cancelled("interrupted")
        self.check()

    def request_timeout(self) -> float:
        return max(0.05, min(self.timeout, self.remaining()))

    def stop(self) -> None:
        """Cancel: set the flag and close the responses being read so no thread waits on a socket."""
        self.cancel.set()
        with self._lock:
            responses = list(self._open)
        for response in responses:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing from another thread may race the reader; either way it ends
                pass

    def track(self, response: Any) -> None:
        with self._lock:
            self._open.add(response)

    def untrack(self, response: Any) -> None:
        with self._lock:
            self._open.discard(response)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class RetryTransport:
    """Wraps the real httpx2 transport: the one retry policy, each attempt's timeout capped by the deadline."""

    def __init__(self, inner: Any, budget: Budget) -> None:
        self.inner = inner
        self.budget = budget

    def __enter__(self) -> RetryTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)

    def handle_request(self, request: Any) -> Any:
        budget, policy = self.budget, self.budget.policy
        waits = policy.waits() if request.method in _IDEMPOTENT else []
        started = time.monotonic()
        for attempt in range(1, len(waits) + 2):
            budget.check()
            cap = budget.request_timeout()
            timeouts = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {k: min(v, cap) if v else cap for k, v in timeouts.items()} or \
                {"connect": cap, "read": cap, "write": cap, "pool": cap}
            wait = waits[attempt - 1] if attempt <= len(waits) else None
            try:
                response = self.inner.handle_request(request)
            except transient_errors() as exc:
                budget.last_failure = _tried(attempt, started)
                if wait is None or budget.remaining() < wait:
                    raise
                log.info("%s %s: %s; retry %d/%d in %.1f s", request.method, request.url, type(exc).__name__,
                            attempt, len(waits), wait)
                budget.wait(wait)
                continue
            if response.status_code not in policy.statuses:
                return response
            budget.last_failure = _tried(attempt, started)
            delay = min(policy.max_wait, _retry_after(response) or wait or 0.0)
            if wait is None or budget.remaining() < delay:
                return response
            response.close()
            log.info("%s %s: HTTP %d; retry %d/%d in %.1f s", request.method, request.url,
                        response.status_code, attempt, len(waits), delay)
            budget.wait(delay)
        raise AssertionError("unreachable")   # the last attempt returns or raises

    def close(self) -> None:
        self.inner.close()


def _tried(attempts: int, started: float) -> str:
    return f"{attempts} attempt(s) in {time.monotonic() - started:.1f} s"
