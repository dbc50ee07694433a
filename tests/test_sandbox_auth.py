"""The token endpoint: both credential styles, refresh tokens, RFC 6749 errors, lifetimes."""

from __future__ import annotations

import json
import time

import requests

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import (
    TIMEOUT,
    basic_header,
    get,
    records,
    token_response,
)


def _post(server: SandboxServer, data: dict[str, str], headers: dict[str, str] | None = None):
    return requests.post(
        f"{server.url}/oauth/token", data=data, headers=headers or {}, timeout=TIMEOUT
    )


def _token_entries(server: SandboxServer) -> list[dict[str, object]]:
    return [entry for entry in server.log if entry["path"] == "/oauth/token"]


def test_client_credentials_in_the_form_body_give_a_bearer_token(
    fresh_sandbox: SandboxServer,
) -> None:
    response = token_response(fresh_sandbox, "body")

    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["access_token", "expires_in", "refresh_token", "token_type"]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert body["access_token"] != body["refresh_token"]
    views = get(
        fresh_sandbox, "/views", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert views.status_code == 200


def test_client_credentials_in_a_basic_header_give_a_bearer_token(
    fresh_sandbox: SandboxServer,
) -> None:
    response = token_response(fresh_sandbox, "basic")

    assert response.status_code == 200
    access = response.json()["access_token"]
    views = get(fresh_sandbox, "/views", headers={"Authorization": f"Bearer {access}"})
    assert views.status_code == 200
    assert [(e["auth"], e["grant_type"]) for e in _token_entries(fresh_sandbox)] == [
        ("basic", "client_credentials")
    ]


def test_a_new_token_leaves_the_older_one_valid(fresh_sandbox: SandboxServer) -> None:
    first = token_response(fresh_sandbox).json()["access_token"]
    second = token_response(fresh_sandbox).json()["access_token"]

    assert first != second
    for access in (first, second):
        assert get(fresh_sandbox, "/views", headers={"Authorization": f"Bearer {access}"}).ok


def test_refresh_token_grant_with_basic_credentials_gives_a_new_token(
    fresh_sandbox: SandboxServer,
) -> None:
    refresh = token_response(fresh_sandbox).json()["refresh_token"]

    response = _post(
        fresh_sandbox,
        {"grant_type": "refresh_token", "refresh_token": refresh},
        basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
    )

    assert response.status_code == 200
    renewed = response.json()
    assert renewed["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert get(fresh_sandbox, "/views", headers=headers).status_code == 200
    assert [e["grant_type"] for e in _token_entries(fresh_sandbox)] == [
        "client_credentials",
        "refresh_token",
    ]


def test_refresh_token_grant_without_basic_credentials_is_refused_as_invalid_client(
    fresh_sandbox: SandboxServer,
) -> None:
    refresh = token_response(fresh_sandbox).json()["refresh_token"]

    response = _post(
        fresh_sandbox,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": fresh_sandbox.client_id,
            "client_secret": fresh_sandbox.client_secret,
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_unknown_refresh_token_is_refused_as_invalid_grant(fresh_sandbox: SandboxServer) -> None:
    response = _post(
        fresh_sandbox,
        {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"},
        basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_wrong_secret_in_the_body_is_refused_with_400_invalid_client(
    fresh_sandbox: SandboxServer,
) -> None:
    response = _post(
        fresh_sandbox,
        {
            "grant_type": "client_credentials",
            "client_id": fresh_sandbox.client_id,
            "client_secret": "wrong",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" not in response.headers


def test_wrong_secret_in_a_basic_header_is_refused_with_401_and_a_challenge(
    fresh_sandbox: SandboxServer,
) -> None:
    response = _post(
        fresh_sandbox,
        {"grant_type": "client_credentials"},
        basic_header(fresh_sandbox.client_id, "wrong"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="oauth"'


def test_unknown_client_id_is_refused_as_invalid_client(fresh_sandbox: SandboxServer) -> None:
    response = _post(
        fresh_sandbox,
        {
            "grant_type": "client_credentials",
            "client_id": "someone-else",
            "client_secret": fresh_sandbox.client_secret,
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_malformed_basic_header_is_refused_as_invalid_client(fresh_sandbox: SandboxServer) -> None:
    response = _post(
        fresh_sandbox, {"grant_type": "client_credentials"}, {"Authorization": "Basic %%%"}
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_grant_type_is_refused_as_unsupported_grant_type(
    fresh_sandbox: SandboxServer,
) -> None:
    response = _post(
        fresh_sandbox,
        {"grant_type": "password", "username": "a", "password": "b"},
        basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_configured_token_lifetime_is_reported_in_expires_in(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.token_lifetime = 3600

    assert token_response(fresh_sandbox).json()["expires_in"] == 3600


def test_expired_token_is_answered_401_while_a_new_one_works(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.token_lifetime = 1
    expiring = token_response(fresh_sandbox).json()["access_token"]
    headers = {"Authorization": f"Bearer {expiring}"}
    assert records(fresh_sandbox, "Practices", headers=headers).status_code == 200

    time.sleep(1.1)

    refused = records(fresh_sandbox, "Practices", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["Code"] == "Unauthorized"
    fresh_sandbox.faults.token_lifetime = 86399
    assert records(fresh_sandbox, "Practices").status_code == 200


def test_every_token_call_is_counted_including_refusals(fresh_sandbox: SandboxServer) -> None:
    token_response(fresh_sandbox, "body")
    token_response(fresh_sandbox, "basic")
    _post(fresh_sandbox, {"grant_type": "client_credentials", "client_id": "x"})
    _post(fresh_sandbox, {"grant_type": "nonsense"})

    assert fresh_sandbox.token_calls == 4
    assert [(e["auth"], e["status"]) for e in _token_entries(fresh_sandbox)] == [
        ("body", 200),
        ("basic", 200),
        ("body", 400),
        (None, 400),
    ]


def test_token_log_never_holds_the_secret_or_any_token(fresh_sandbox: SandboxServer) -> None:
    issued = token_response(fresh_sandbox, "body").json()
    renewed = _post(
        fresh_sandbox,
        {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
    ).json()
    headers = {"Authorization": f"Bearer {renewed['access_token']}"}
    records(fresh_sandbox, "Practices", headers=headers)

    logged = json.dumps(fresh_sandbox.log)

    assert len(fresh_sandbox.log) == 3
    for secret in (
        fresh_sandbox.client_secret,
        issued["access_token"],
        issued["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    ):
        assert secret not in logged
    assert [e["auth"] for e in fresh_sandbox.log] == ["body", "basic", "bearer"]


def test_oldest_refresh_tokens_are_dropped_past_a_thousand(fresh_sandbox: SandboxServer) -> None:
    oldest = token_response(fresh_sandbox).json()["refresh_token"]
    with requests.Session() as session:
        for _ in range(1000):
            response = session.post(
                f"{fresh_sandbox.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                headers=basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
                timeout=TIMEOUT,
            )
            assert response.status_code == 200
        newest = response.json()["refresh_token"]

    basic = basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret)
    evicted = _post(fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": oldest}, basic)
    kept = _post(fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": newest}, basic)

    assert evicted.status_code == 400
    assert evicted.json()["error"] == "invalid_grant"
    assert kept.status_code == 200
