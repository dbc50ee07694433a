"""Caspio's OAuth 2.0 client-credentials flow, with renewal before expiry and by refresh token."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from typing import Any

import requests
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.helpers._util import utc_now
from typing_extensions import override

from tap_huey.errors import CaspioProblem, HueyError, read_problem
from tap_huey.retry import RETRIED_EXCEPTIONS, RetryPolicy, describe_failure

LONGEST_MARGIN = timedelta(minutes=5)


def _fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


class CaspioAuthenticator(OAuthAuthenticator):
    """One bearer token for the whole process, shared by every stream.

    The token is renewed a few minutes before it expires (a tenth of its lifetime at most),
    by the refresh-token grant while that works, else by client credentials again.

    Args:
        token_url: Caspio's token endpoint.
        client_id: the web services profile's client id.
        client_secret: its secret.
        auth_style: `body` to send the credentials in the form, `basic` for an HTTP Basic header.
        session: a session of its own for token calls (the data session carries this
            authenticator as its `auth`, which must not apply to token calls).
        policy: the retry policy for token calls.
        timeout: seconds to wait for the token endpoint.
        user_agent: the User-Agent header.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        auth_style: str,
        session: requests.Session,
        policy: RetryPolicy,
        timeout: float,
        user_agent: str,
    ) -> None:
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        self._style = auth_style
        self._session = session
        self._policy = policy
        self._timeout = timeout
        self._user_agent = user_agent
        self._lock = threading.RLock()
        self._rejected: set[str] = set()
        self._issued_after_rejection: set[str] = set()
        self.token_calls = 0

    @property
    def _basic_header(self) -> str:
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    @override
    def oauth_request_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"grant_type": "client_credentials"}
        if self._style == "body":
            body |= {"client_id": self.client_id, "client_secret": self.client_secret}
        return body

    @override
    def is_token_valid(self) -> bool:
        if self.access_token is None or self.last_refreshed is None:
            return False
        if not self.expires_in:
            return True
        margin = min(LONGEST_MARGIN, timedelta(seconds=self.expires_in / 10))
        expires_at = self.last_refreshed + timedelta(seconds=self.expires_in)
        return utc_now() < expires_at - margin

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def reject(self, request: requests.PreparedRequest) -> bool:
        """Note that Caspio refused the token `request` carried.

        Returns:
            True when that token had been issued to replace a refused one: renewing again
            would not help.
        """
        token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        fingerprint = _fingerprint(token)
        with self._lock:
            if fingerprint in self._issued_after_rejection:
                return True
            self._rejected.add(fingerprint)
            if _fingerprint(self.access_token) == fingerprint:
                self.access_token = None
                self.last_refreshed = None
        return False

    def confirm(self, request: requests.PreparedRequest) -> None:
        """Note that the token `request` carried worked, so a later refusal may renew it again."""
        if self._issued_after_rejection:
            with self._lock:
                token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
                self._issued_after_rejection.discard(_fingerprint(token))

    @override
    def update_access_token(self) -> None:
        with self._lock:
            replacing = (
                _fingerprint(self.access_token) in self._rejected or self.access_token is None
            )
            after_rejection = bool(self._rejected)
            token = None
            if self.refresh_token:
                token = self._request_token(
                    {"grant_type": "refresh_token", "refresh_token": self.refresh_token},
                    {"Authorization": self._basic_header},
                    tolerate_refusal=True,
                )
            if token is None:
                headers = {"Authorization": self._basic_header} if self._style == "basic" else {}
                token = self._request_token(
                    self.oauth_request_body, headers, tolerate_refusal=False
                )
            assert token is not None
            self.access_token = str(token["access_token"])
            self.refresh_token = token.get("refresh_token") or self.refresh_token
            self.expires_in = int(token.get("expires_in") or 0) or None
            self.last_refreshed = self._requested_at
            if after_rejection and replacing:
                self._issued_after_rejection.add(_fingerprint(self.access_token))
                self._rejected.clear()

    def _request_token(
        self, body: dict[str, Any], headers: dict[str, str], *, tolerate_refusal: bool
    ) -> dict[str, Any] | None:
        grant = body["grant_type"]

        def attempt() -> requests.Response:
            self._requested_at = utc_now()
            self.token_calls += 1
            response = self._session.post(
                self.auth_endpoint,
                data=body,
                headers={"User-Agent": self._user_agent, "Accept": "application/json", **headers},
                timeout=self._timeout,
                allow_redirects=False,
            )
            if response.status_code in (429, 500, 502, 503, 504):
                from tap_huey.errors import RetriableCaspioError

                raise RetriableCaspioError(read_problem(response), response)
            return response

        try:
            response = self._policy.wrap(
                attempt, self.logger, lambda: f"the {grant} token request"
            )()
        except RETRIED_EXCEPTIONS as error:
            # Fatal here, so that the data request waiting for this token does not retry it again.
            raise HueyError(
                f"Caspio's token endpoint {self.auth_endpoint} kept failing: {describe_failure(error)}. "
                "Run again later."
            ) from None
        if response.status_code == 200:
            try:
                token: dict[str, Any] = response.json()
                if token.get("access_token"):
                    return token
            except ValueError:
                pass
            raise HueyError(
                f"Caspio's token endpoint {self.auth_endpoint} answered without an access token."
            )
        problem = read_problem(response)
        if tolerate_refusal:
            self.logger.warning(
                "Refresh token refused (%s); requesting a new token with client credentials.",
                problem.describe(),
            )
            self.refresh_token = None
            return None
        raise HueyError(_refusal_message(self.auth_endpoint, problem, self._style))


def _refusal_message(token_url: str, problem: CaspioProblem, style: str) -> str:
    advice = "Check client_id and client_secret (the web services profile's Client ID and Secret)"
    if problem.code == "unsupported_grant_type":
        advice = "Check token_url: it should be the account's /oauth/token endpoint"
    elif problem.status in (301, 302, 303, 307, 308, 404, 405):
        advice = "Check token_url and api_url: the token endpoint is <integration URL>/oauth/token"
    elif style == "body":
        advice += ", or try auth_style: basic"
    return f"Caspio refused the token request at {token_url}: {problem.describe()}. {advice}."
