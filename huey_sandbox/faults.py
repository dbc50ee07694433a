"""Faults the sandbox can inject: set at start, or scripted by a test while it runs."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

FAULT_KINDS = ("status", "drop", "truncate", "garble", "rate_limit", "stale_token")


@dataclass
class ScriptedFault:
    """One fault for the next matching requests.

    Attributes:
        kind: `status` (an error status with an HTML or empty body), `drop` (close the
            connection without answering), `truncate` (cut the body short of its
            Content-Length), `garble` (a short body that is not valid JSON or XML),
            `rate_limit` (Caspio's 429 body) or `stale_token` (400 IncorrectQueryParameter).
        match: a substring of the request path the fault applies to (`records`, `oauth`, ...).
        skip: matching requests to let through before the fault starts.
        times: how many matching requests fail.
        status: the status for `status` and `rate_limit` faults.
        retry_after: seconds for a `Retry-After` header; None sends none.
        body: `html`, `empty` or `caspio` for `status` faults.
    """

    kind: str
    match: str = "/records"
    skip: int = 0
    times: int = 1
    status: int = 503
    retry_after: float | None = None
    body: str = "html"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")


@dataclass
class Faults:
    """The sandbox's fault settings; every attribute may be changed while it runs."""

    latency: float = 0.0
    rate_limit: int = 0
    rate_limit_status: int = 429
    rate_limit_retry_after: float | None = None
    error_rate: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    token_lifetime: int = 86399
    revoke_after: int = 0
    stale_token_status: int = 401
    mutate_view: str = ""
    mutate_inserts: int = 0
    mutate_deletes: int = 0
    ignore_paging: bool = False
    forbidden_views: set[str] = field(default_factory=set)
    seed: int = 0
    scripted: list[ScriptedFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._window: deque[float] = deque()

    def script(self, fault: ScriptedFault) -> None:
        """Queue a fault for upcoming requests."""
        with self._lock:
            self.scripted.append(fault)

    def take_scripted(self, path: str) -> ScriptedFault | None:
        """The scripted fault this request meets, if any, counting it down."""
        with self._lock:
            for fault in self.scripted:
                if fault.match not in path:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.scripted.remove(fault)
                return fault
        return None

    def take_random(self, path: str) -> ScriptedFault | None:
        """A fault drawn at the configured rates, for data requests only."""
        if "/records" not in path:
            return None
        with self._lock:
            draw = self._rng.random()
        if draw < self.error_rate:
            return ScriptedFault("status", status=503 if draw < self.error_rate / 2 else 500)
        draw -= self.error_rate
        if draw < self.drop_rate:
            return ScriptedFault("drop")
        draw -= self.drop_rate
        if draw < self.truncate_rate:
            return ScriptedFault("truncate")
        return None

    def over_rate_limit(self) -> bool:
        """Count this request in the one-second window; true when it exceeds the limit."""
        if self.rate_limit <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                return True
            self._window.append(now)
            return False
