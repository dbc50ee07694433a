"""The HTTP side shared by discovery and every stream: session, token, retries, classing."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from importlib import metadata
from typing import Any
from urllib.parse import quote

import requests

from tap_huey.auth import CaspioAuthenticator
from tap_huey.errors import BadPayload, CaspioAPIError, HueyError, TokenRejected, classify, hint
from tap_huey.retry import RETRIED_EXCEPTIONS, RetryPolicy, describe_failure
from tap_huey.settings import Settings


def user_agent() -> str:
    """`tap-huey/<version>`."""
    try:
        version = metadata.version("tap-huey")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"tap-huey/{version}"


def view_path(view: str, *rest: str) -> str:
    """The path of a view resource, its name percent-encoded."""
    return "/".join(["/views", quote(view, safe=""), *rest])


class CaspioClient:
    """Sends Caspio requests with the shared token, retry policy and response classing.

    Args:
        settings: the validated settings.
        logger: the tap's logger.
    """

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.settings = settings
        self.logger = logger
        self.session = requests.Session()
        self.session.trust_env = True
        self.session.headers["User-Agent"] = user_agent()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.policy = RetryPolicy(
            max_retries=settings.max_retries,
            base_seconds=settings.backoff_base_seconds,
            max_seconds=settings.backoff_max_seconds,
        )
        self.authenticator = CaspioAuthenticator(
            token_url=settings.token_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            auth_style=settings.auth_style,
            session=requests.Session(),
            policy=self.policy,
            timeout=settings.request_timeout,
            user_agent=user_agent(),
        )
        self.calls = 0

    def validate(self, response: requests.Response) -> None:
        """Class a response; on a refused token, drop it so that the retry renews it.

        Raises:
            TokenRejected: when the token should be renewed and the request retried.
            RetriableCaspioError: on a transient failure.
            CaspioAPIError: on anything else that failed, or a token refused right after renewal.
        """
        self.calls += 1
        try:
            classify(response)
            self.authenticator.confirm(response.request)
        except TokenRejected as error:
            if self.authenticator.reject(response.request):
                raise CaspioAPIError(
                    f"{error.problem.describe()}; it came again with a newly issued token",
                    error.problem,
                ) from None
            self.logger.warning(
                "Caspio refused the access token (%s); renewing it and retrying the same request.",
                error.problem.describe(),
            )
            raise

    def get_result(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> Any:
        """GET a JSON resource under the API base and return its `Result`, with retries."""

        def attempt() -> Any:
            request = requests.Request(
                "GET",
                self.settings.base_url + path,
                params=params or {},
                headers={"Accept": "application/json"},
            )
            prepared = self.authenticator(self.session.prepare_request(request))
            response = self.session.send(
                prepared, timeout=self.settings.request_timeout, allow_redirects=False
            )
            self.validate(response)
            try:
                body = json.loads(response.content, parse_float=Decimal)
            except ValueError as error:
                raise BadPayload(f"Caspio sent a body that is not JSON for {what}") from error
            if not isinstance(body, dict) or "Result" not in body:
                raise BadPayload(f"Caspio's answer for {what} has no Result")
            return body["Result"]

        try:
            return self.policy.wrap(attempt, self.logger, lambda: what)()
        except CaspioAPIError as error:
            raise CaspioAPIError(
                f"Reading {what} failed: {error} {hint(error.problem)}".strip(), error.problem
            ) from None
        except requests.exceptions.SSLError as error:
            raise HueyError(
                f"Reading {what} failed: {describe_failure(error)}. Check api_url."
            ) from None
        except RETRIED_EXCEPTIONS as error:
            raise HueyError(
                f"Reading {what} failed after {self.settings.max_retries} retries: {describe_failure(error)}. "
                "Run again later."
            ) from None

    def list_views(self) -> list[str]:
        """The names of the views the profile can read."""
        result = self.get_result("/views", what="the list of views")
        return [str(name) for name in result]

    def fields(self, view: str) -> list[dict[str, Any]]:
        """A view's field descriptions (v3 only)."""
        return list(self.get_result(view_path(view, "fields"), what=f"the fields of view '{view}'"))

    def sample(self, view: str, size: int) -> list[dict[str, Any]]:
        """The first records of a view, to infer its schema on v2."""
        params = {"q.pageNumber": 1, "q.pageSize": size}
        return list(
            self.get_result(
                view_path(view, "records"), params, what=f"sample records of view '{view}'"
            )
        )

    def count(self, view: str, where: str | None) -> int:
        """Caspio's own count of a view's rows matching `where`."""
        params: dict[str, Any] = {"q.select": "COUNT(*) AS n"}
        if where:
            params["q.where"] = where
        rows = self.get_result(
            view_path(view, "records"), params, what=f"the row count of view '{view}'"
        )
        return int(rows[0]["n"]) if rows else 0
