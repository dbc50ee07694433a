"""The one retry policy for every Caspio call: data pages, discovery and tokens."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_huey.errors import BadPayload, TokenRejected

T = TypeVar("T")

RETRIED_EXCEPTIONS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def describe_failure(error: BaseException) -> str:
    """A short, secret-free description of why an attempt failed."""
    problem = getattr(error, "problem", None)
    if problem is not None:
        return str(problem.describe())
    if isinstance(error, BadPayload):
        return str(error)
    if isinstance(error, requests.exceptions.SSLError):
        return "the TLS connection failed (certificate not trusted, or not a TLS server)"
    if isinstance(error, requests.exceptions.Timeout):
        return "the request timed out"
    if isinstance(
        error, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return "the response was cut short"
    if isinstance(error, (requests.exceptions.ConnectionError, ConnectionResetError)):
        return "the connection failed or was dropped"
    return type(error).__name__


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off with jitter, honouring `Retry-After`.

    Attributes:
        max_retries: retries after the first attempt.
        base_seconds: the first wait; each retry doubles it.
        max_seconds: the longest single wait, `Retry-After` included.
    """

    max_retries: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def wait(self, error: BaseException | None, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (from 1) after `error`."""
        if isinstance(error, TokenRejected):
            return 0.0
        problem = getattr(error, "problem", None)
        retry_after = getattr(problem, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.max_seconds))
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _waits(self) -> Generator[float, Any, None]:
        error = yield 0.0
        attempt = 0
        while True:
            attempt += 1
            error = yield self.wait(error, attempt)

    def wrap(
        self, func: Callable[..., T], logger: logging.Logger, what: Callable[[], str]
    ) -> Callable[..., T]:
        """`func`, retried on transient failures, with one WARNING line per retry.

        Args:
            func: one attempt.
            logger: where retries are reported.
            what: names what is being fetched, for the log line (view and page).
        """

        def report(details: Any) -> None:
            error = details.get("exception")
            logger.warning(
                "Retrying %s in %.1f s (attempt %d of %d): %s",
                what(),
                details.get("wait") or 0.0,
                details.get("tries", 0) + 1,
                self.max_retries + 1,
                describe_failure(error) if error else "unknown failure",
            )

        def attempt(*args: Any, **kwargs: Any) -> T:
            # A refused token is renewed and the request sent again at once, within the same
            # attempt, so that renewal never uses up the retries that faults need.
            try:
                return func(*args, **kwargs)
            except TokenRejected:
                return func(*args, **kwargs)

        decorated: Callable[..., T] = backoff.on_exception(
            self._waits,
            RETRIED_EXCEPTIONS,
            max_tries=self.max_retries + 1,
            giveup=lambda error: isinstance(error, requests.exceptions.SSLError),
            jitter=None,
            on_backoff=report,
            logger=None,
        )(attempt)
        return decorated
