"""Helpers the sandbox's own tests share: plain `requests` calls against a running sandbox.

This module holds no tests; it is named so that it sits with the files it serves.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

from huey_sandbox.server import V2, V3, SandboxServer

TIMEOUT = 30


def basic_header(client_id: str, client_secret: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {pair}"}


def token_response(server: SandboxServer, style: str = "body") -> requests.Response:
    """A client-credentials grant, with the credentials in the form body or a Basic header."""
    data = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if style == "body":
        data |= {"client_id": server.client_id, "client_secret": server.client_secret}
    else:
        headers = basic_header(server.client_id, server.client_secret)
    return requests.post(f"{server.url}/oauth/token", data=data, headers=headers, timeout=TIMEOUT)


def token(server: SandboxServer, style: str = "body") -> str:
    """A fresh access token."""
    response = token_response(server, style)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(server: SandboxServer) -> dict[str, str]:
    """An Authorization header with a fresh access token."""
    return {"Authorization": f"Bearer {token(server)}"}


def get(
    server: SandboxServer,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    base: str = V3,
) -> requests.Response:
    """GET a path under a REST base, with a fresh token unless `headers` says otherwise."""
    sent = bearer(server) if headers is None else headers
    return requests.get(f"{server.url}{base}{path}", params=params, headers=sent, timeout=TIMEOUT)


def records(
    server: SandboxServer,
    view: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    base: str = V3,
) -> requests.Response:
    """GET a view's records."""
    return get(server, f"/views/{view}/records", params, headers, base)


def result(response: requests.Response) -> Any:
    """The `Result` of a 200 answer."""
    assert response.status_code == 200, response.text
    return response.json()["Result"]


def pk_id(view: str, row: dict[str, Any], server: SandboxServer) -> str:
    """A row's PK_ID as the sandbox computes it: the source keys joined by commas on a join view."""
    if view == "Provider_Locations":
        return f"{row['Providers_ProviderID']},{row['Practices_PracticeID']}"
    return str(row[server.key_of(view)])


__all__ = ["V2", "V3"]
