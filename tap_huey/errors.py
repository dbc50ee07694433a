"""How tap-huey classes Caspio's answers: what is retried, what renews the token, what fails."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

REQUEST_ID_HEADER = "X-Caspio-Request-ID"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_DETAIL = 300


class HueyError(Exception):
    """A failure the user can act on; reported as one line, without a stack trace."""


class HueyConfigError(HueyError):
    """A setting is missing or wrong."""


@dataclass(frozen=True)
class CaspioProblem:
    """What Caspio said about a failed request."""

    status: int
    code: str
    message: str
    request_id: str
    retry_after: float | None = None

    def describe(self) -> str:
        """One line: status, Caspio's code and message, and its request id."""
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (Caspio request id {self.request_id})"
        return text


def read_problem(response: requests.Response) -> CaspioProblem:
    """Caspio's `Code`, `Message` and request id from an error response, whatever its body."""
    code, message = "", ""
    content_type = response.headers.get("Content-Type", "")
    try:
        body: Any = json.loads(response.text) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("Code") or body.get("error") or "")
        message = str(body.get("Message") or body.get("error_description") or "")
    elif isinstance(body, list) and body and isinstance(body[0], dict):
        code = str(body[0].get("name") or "")
        message = str(body[0].get("message") or "")
    elif "xml" in content_type and response.content:
        code, message = _xml_problem(response.content)
    elif response.content and "html" not in content_type:
        message = response.text.strip().splitlines()[0] if response.text.strip() else ""
    request_id = response.headers.get(REQUEST_ID_HEADER, "")
    if isinstance(body, dict) and not request_id:
        request_id = str(body.get("RequestId") or "")
    return CaspioProblem(
        status=response.status_code,
        code=code[:_MAX_DETAIL],
        message=(message or response.reason or "")[:_MAX_DETAIL],
        request_id=request_id,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def _xml_problem(content: bytes) -> tuple[str, str]:
    from tap_huey.xml import parse_error

    return parse_error(content)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max((moment - datetime.now(timezone.utc)).total_seconds(), 0.0)


class RetriableCaspioError(RetriableAPIError):
    """A transient failure: 429, 5xx, or a rate-limit answer disguised as 400."""

    def __init__(self, problem: CaspioProblem, response: requests.Response | None = None) -> None:
        super().__init__(problem.describe(), response)
        self.problem = problem


class TokenRejected(RetriableAPIError):
    """Caspio refused the access token (401, or its stale-token 400): renew and retry once."""

    def __init__(self, problem: CaspioProblem, response: requests.Response | None = None) -> None:
        super().__init__(problem.describe(), response)
        self.problem = problem


class BadPayload(RetriableAPIError):
    """A 200 whose body could not be parsed: cut short or garbled in transit."""


class CaspioAPIError(FatalAPIError, HueyError):
    """A failure retrying cannot fix, described for a person."""

    def __init__(self, message: str, problem: CaspioProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def is_rate_limit(problem: CaspioProblem) -> bool:
    """Whether the answer is Caspio's per-second burst limit, whatever its status."""
    text = f"{problem.code} {problem.message}".lower()
    return "rate limit" in text or "api-calls-rate" in text


def is_stale_token(problem: CaspioProblem) -> bool:
    """Whether a 400 may be the stale-token answer some accounts give instead of 401.

    Caspio's message does not always say so, so every IncorrectQueryParameter counts: the
    request is retried once with a new token, and fails for good if it comes again.
    """
    return problem.status == 400 and problem.code == "IncorrectQueryParameter"


def classify(response: requests.Response) -> None:
    """Raise the exception a failed response calls for; return quietly on success.

    Raises:
        TokenRejected: on a 401 or a stale-token 400.
        RetriableCaspioError: on 429, 5xx, or a rate-limit 400.
        CaspioAPIError: on any other failure.
    """
    if response.status_code < 300:
        return
    problem = read_problem(response)
    if response.status_code in RETRIED_STATUSES or (
        response.status_code == 400 and is_rate_limit(problem)
    ):
        raise RetriableCaspioError(problem, response)
    if response.status_code == 401 or is_stale_token(problem):
        raise TokenRejected(problem, response)
    raise CaspioAPIError(problem.describe(), problem)


def hint(problem: CaspioProblem | None) -> str:
    """What a person can do about a failure."""
    if problem is None:
        return ""
    if problem.status == 401 or (problem.status == 400 and "token" in problem.message.lower()):
        return "Caspio refused a freshly issued token; check that the profile is enabled."
    if problem.status == 403:
        return "The web services profile has no permission here; grant it access in Caspio or leave this view out of `views`."
    if problem.status == 404:
        return "Check the view name and `api_url`; `tap-huey --discover` lists the views the profile can read."
    if problem.code == "SqlServerError":
        return "Check the `where` of this view in `view_overrides` and the field names it uses."
    if problem.status == 414:
        return "The request is too long for Caspio; shorten `where` in `view_overrides`."
    if problem.status in RETRIED_STATUSES:
        return "Caspio kept failing after every retry; run again later, the next run resumes from the saved state."
    return ""
