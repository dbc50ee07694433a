"""The request log: what each entry holds, and that it never holds a secret."""

from __future__ import annotations

import json

import requests

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import TIMEOUT, V2, V3, basic_header, get, records, token_response


def test_log_records_method_path_query_status_credential_style_and_fault(
    fresh_sandbox: SandboxServer,
) -> None:
    access = token_response(fresh_sandbox, "basic").json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    get(fresh_sandbox, "/views", headers=headers, base=V2)
    records(fresh_sandbox, "providers", {"q.pageSize": 5, "q.orderBy": "ProviderID"}, headers)
    fresh_sandbox.script("status", status=503)
    records(fresh_sandbox, "Practices", headers=headers)
    get(fresh_sandbox, "/views/Nope", headers={})

    entries = [
        {key: entry[key] for key in ("method", "path", "query", "status", "auth", "fault")}
        for entry in fresh_sandbox.log
    ]

    assert entries == [
        {
            "method": "POST",
            "path": "/oauth/token",
            "query": {},
            "status": 200,
            "auth": "basic",
            "fault": None,
        },
        {
            "method": "GET",
            "path": f"{V2}/views",
            "query": {},
            "status": 200,
            "auth": "bearer",
            "fault": None,
        },
        {
            "method": "GET",
            "path": f"{V3}/views/providers/records",
            "query": {"q.pageSize": "5", "q.orderBy": "ProviderID"},
            "status": 200,
            "auth": "bearer",
            "fault": None,
        },
        {
            "method": "GET",
            "path": f"{V3}/views/Practices/records",
            "query": {},
            "status": 503,
            "auth": "bearer",
            "fault": "status",
        },
        {
            "method": "GET",
            "path": f"{V3}/views/Nope",
            "query": {},
            "status": 401,
            "auth": None,
            "fault": None,
        },
    ]


def test_data_log_holds_records_requests_with_their_view_in_defined_case_and_row_count(
    fresh_sandbox: SandboxServer,
) -> None:
    records(fresh_sandbox, "PROVIDERS", {"q.limit": 7})
    records(fresh_sandbox, "Practices", {"q.pageSize": 5})
    get(fresh_sandbox, "/views/Providers")

    assert [(e["view"], e["rows"]) for e in fresh_sandbox.data_log()] == [
        ("Providers", 7),
        ("Practices", 5),
    ]
    assert [e["rows"] for e in fresh_sandbox.data_log("Practices")] == [5]


def test_clear_log_forgets_requests_and_token_calls(fresh_sandbox: SandboxServer) -> None:
    records(fresh_sandbox, "Practices")

    fresh_sandbox.clear_log()

    assert fresh_sandbox.log == []
    assert fresh_sandbox.token_calls == 0
    records(fresh_sandbox, "Practices")
    assert [e["path"] for e in fresh_sandbox.log] == [
        "/oauth/token",
        f"{V3}/views/Practices/records",
    ]
    assert fresh_sandbox.token_calls == 1


def test_client_secret_in_a_query_string_is_stripped_from_the_log(
    fresh_sandbox: SandboxServer,
) -> None:
    response = requests.post(
        f"{fresh_sandbox.url}/oauth/token",
        params={"client_id": fresh_sandbox.client_id, "client_secret": fresh_sandbox.client_secret},
        data={"grant_type": "client_credentials"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert fresh_sandbox.log[-1]["query"] == {"client_id": fresh_sandbox.client_id}
    assert fresh_sandbox.client_secret not in json.dumps(fresh_sandbox.log)


def test_tokens_in_query_strings_are_stripped_from_the_log(fresh_sandbox: SandboxServer) -> None:
    issued = token_response(fresh_sandbox).json()
    get(
        fresh_sandbox,
        "/views",
        {
            "access_token": issued["access_token"],
            "Refresh_Token": issued["refresh_token"],
            "x": "1",
        },
        headers={},
    )

    assert fresh_sandbox.log[-1]["query"] == {"x": "1"}
    logged = json.dumps(fresh_sandbox.log)
    assert issued["access_token"] not in logged
    assert issued["refresh_token"] not in logged


def test_whole_log_of_a_session_holds_no_secret(fresh_sandbox: SandboxServer) -> None:
    body = token_response(fresh_sandbox, "body").json()
    basic = token_response(fresh_sandbox, "basic").json()
    renewed = requests.post(
        f"{fresh_sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": basic["refresh_token"]},
        headers=basic_header(fresh_sandbox.client_id, fresh_sandbox.client_secret),
        timeout=TIMEOUT,
    ).json()
    for issued in (body, basic, renewed):
        records(
            fresh_sandbox,
            "Practices",
            headers={"Authorization": f"Bearer {issued['access_token']}"},
        )

    logged = json.dumps(fresh_sandbox.log)

    assert len(fresh_sandbox.log) == 6
    secrets = [fresh_sandbox.client_secret]
    secrets += [
        issued[name]
        for issued in (body, basic, renewed)
        for name in issued
        if "token" in name and name != "token_type"
    ]
    assert len(secrets) == 7
    assert [secret for secret in secrets if secret in logged] == []
