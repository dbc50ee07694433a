"""Errors in Caspio's shape, and the request id on every response."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import TIMEOUT, V2, V3, bearer, get, records, token_response

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _assert_caspio_error(
    server: SandboxServer, response: requests.Response, status: int, code: str
) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert sorted(body) == ["Code", "Message", "RequestId", "Resource"]
    assert body["Code"] == code
    assert body["RequestId"] == response.headers["X-Caspio-Request-ID"]
    assert REQUEST_ID.match(body["RequestId"])
    assert body["Resource"] == response.url.split("?")[0]
    assert body["Message"]
    assert server.log[-1]["id"] == body["RequestId"]
    assert server.log[-1]["status"] == status
    return body


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("/views", V3),
        ("/views/Providers", V2),
        ("/views/Providers/fields", V3),
        ("/views/Providers/records", V3),
        ("/views/Providers/records", V2),
    ],
)
def test_every_successful_response_carries_the_request_id_of_its_log_entry(
    fresh_sandbox: SandboxServer, path: str, base: str
) -> None:
    response = get(fresh_sandbox, path, base=base)

    assert response.status_code == 200
    assert REQUEST_ID.match(response.headers["X-Caspio-Request-ID"])
    assert fresh_sandbox.log[-1]["id"] == response.headers["X-Caspio-Request-ID"]


def test_token_responses_carry_a_request_id(fresh_sandbox: SandboxServer) -> None:
    response = token_response(fresh_sandbox)

    assert response.headers["X-Caspio-Request-ID"] == fresh_sandbox.log[-1]["id"]


def test_request_ids_differ_between_requests(sandbox: SandboxServer) -> None:
    headers = bearer(sandbox)

    ids = {get(sandbox, "/views", headers=headers).headers["X-Caspio-Request-ID"] for _ in range(5)}

    assert len(ids) == 5


@pytest.mark.parametrize("base", [V3, V2])
def test_unknown_view_is_object_not_found(fresh_sandbox: SandboxServer, base: str) -> None:
    for path in ("/views/NoSuchView", "/views/NoSuchView/records", "/views/NoSuchView/fields"):
        if base == V2 and path.endswith("/fields"):
            continue
        response = get(fresh_sandbox, path, base=base)
        body = _assert_caspio_error(fresh_sandbox, response, 404, "ObjectNotFound")
        assert "NoSuchView" in body["Message"]


def test_unknown_path_is_object_not_found(fresh_sandbox: SandboxServer) -> None:
    response = get(fresh_sandbox, "/tables")

    _assert_caspio_error(fresh_sandbox, response, 404, "ObjectNotFound")


def test_wrong_method_is_method_not_allowed(fresh_sandbox: SandboxServer) -> None:
    response = requests.delete(
        f"{fresh_sandbox.url}{V3}/views", headers=bearer(fresh_sandbox), timeout=TIMEOUT
    )

    _assert_caspio_error(fresh_sandbox, response, 405, "MethodNotAllowed")


def test_unknown_column_is_sql_server_error_naming_it(fresh_sandbox: SandboxServer) -> None:
    response = records(fresh_sandbox, "Providers", {"q.where": "Nope = 1"})

    body = _assert_caspio_error(fresh_sandbox, response, 400, "SqlServerError")
    assert body["Message"] == "Invalid column name 'Nope'."


def test_bad_syntax_is_sql_server_error(fresh_sandbox: SandboxServer) -> None:
    response = records(fresh_sandbox, "Providers", {"q.where": "ProviderID = = 3"})

    body = _assert_caspio_error(fresh_sandbox, response, 400, "SqlServerError")
    assert body["Message"] == "Incorrect syntax near '='."


def test_bad_page_size_is_incorrect_query_parameter(fresh_sandbox: SandboxServer) -> None:
    response = records(fresh_sandbox, "Providers", {"q.pageSize": 2})

    _assert_caspio_error(fresh_sandbox, response, 400, "IncorrectQueryParameter")


def _uri_of_length(server: SandboxServer, length: int) -> str:
    """A records URI of exactly `length` characters, padded with spaces (`+`) in `q.where`."""
    base = f"{server.url}{V3}/views/Providers/records?q.select=ProviderID&q.where=ProviderID%3E0"
    padding = length - len(base) - len("&q.orderBy=ProviderID")
    assert padding > 0
    return f"{base}{'+' * padding}&q.orderBy=ProviderID"


def test_uri_of_2047_characters_is_served(fresh_sandbox: SandboxServer) -> None:
    uri = _uri_of_length(fresh_sandbox, 2047)

    response = requests.get(uri, headers=bearer(fresh_sandbox), timeout=TIMEOUT)

    assert len(uri) == 2047
    assert response.status_code == 200
    assert len(response.json()["Result"]) == 100


def test_uri_past_2047_characters_is_refused_with_414(fresh_sandbox: SandboxServer) -> None:
    uri = _uri_of_length(fresh_sandbox, 2048)

    response = requests.get(uri, headers=bearer(fresh_sandbox), timeout=TIMEOUT)

    assert len(uri) == 2048
    _assert_caspio_error(fresh_sandbox, response, 414, "RequestUriTooLong")


def test_long_select_of_a_wide_view_meets_the_uri_limit(fresh_sandbox: SandboxServer) -> None:
    fields = [f["Name"] for f in fresh_sandbox.fields("Provider_Locations")] * 12

    response = records(fresh_sandbox, "Provider_Locations", {"q.select": ",".join(fields)})

    assert response.status_code == 414


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Token abc"}],
    ids=["missing", "unknown", "wrong-scheme"],
)
def test_missing_or_unknown_token_is_401_unauthorized(
    fresh_sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    for path in ("/views", "/views/Providers", "/views/Providers/records"):
        response = get(fresh_sandbox, path, headers=headers)
        _assert_caspio_error(fresh_sandbox, response, 401, "Unauthorized")


def test_expired_token_is_401_unauthorized(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.token_lifetime = 0
    expired = {"Authorization": f"Bearer {token_response(fresh_sandbox).json()['access_token']}"}

    response = records(fresh_sandbox, "Providers", headers=expired)

    _assert_caspio_error(fresh_sandbox, response, 401, "Unauthorized")


def test_forbidden_view_is_403_while_still_listed_and_described(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.forbidden_views = {"practices"}

    response = records(fresh_sandbox, "Practices")

    _assert_caspio_error(fresh_sandbox, response, 403, "UnsufficientPrivileges")
    assert "Practices" in get(fresh_sandbox, "/views").json()["Result"]
    assert get(fresh_sandbox, "/views/Practices").status_code == 200
    assert records(fresh_sandbox, "Providers").status_code == 200
