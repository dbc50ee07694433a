"""Tokens: one per run, renewed before expiry, by refresh token first, and after a refusal."""

from __future__ import annotations

from huey_sandbox.server import SandboxServer
from tests.conftest import tap_config
from tests.singer import by_key, run_tap


def _token_requests(server: SandboxServer) -> list[dict[str, object]]:
    return [e for e in server.log if e["path"] == "/oauth/token"]


def test_basic_auth_style_sends_credentials_in_a_basic_header(fresh_sandbox: SandboxServer) -> None:
    output = run_tap(tap_config(fresh_sandbox, auth_style="basic", views=["Practices"]))

    requests = _token_requests(fresh_sandbox)
    assert [(r["auth"], r["grant_type"]) for r in requests] == [("basic", "client_credentials")]
    assert len(output.records("Practices")) == len(fresh_sandbox.rows("Practices"))


def test_body_auth_style_sends_credentials_in_the_form(fresh_sandbox: SandboxServer) -> None:
    run_tap(tap_config(fresh_sandbox, views=["Practices"]))

    assert [(r["auth"], r["grant_type"]) for r in _token_requests(fresh_sandbox)] == [
        ("body", "client_credentials")
    ]


def test_token_near_expiry_is_renewed_by_refresh_token_before_caspio_refuses_it(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.token_lifetime = 2
    fresh_sandbox.faults.latency = 0.1

    output = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=20))

    grants = [r["grant_type"] for r in _token_requests(fresh_sandbox)]
    assert grants[0] == "client_credentials"
    assert len(grants) >= 2
    assert set(grants[1:]) == {"refresh_token"}
    assert [e["status"] for e in fresh_sandbox.data_log()] == [200] * len(fresh_sandbox.data_log())
    assert len(by_key(output.records("Providers"), "ProviderID")) == len(
        fresh_sandbox.rows("Providers")
    )


def test_revoked_token_is_renewed_once_and_the_same_page_retried(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.revoke_after = 3

    output = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=100))

    statuses = [e["status"] for e in fresh_sandbox.data_log()]
    assert statuses[:5] == [200, 200, 200, 401, 200]
    refused, retried = fresh_sandbox.data_log()[3:5]
    assert refused["query"] == retried["query"]
    assert [r["grant_type"] for r in _token_requests(fresh_sandbox)][:2] == [
        "client_credentials",
        "refresh_token",
    ]
    assert len(by_key(output.records("Providers"), "ProviderID")) == len(
        fresh_sandbox.rows("Providers")
    )


def test_stale_token_answered_with_400_is_renewed_and_retried(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.stale_token_status = 400
    fresh_sandbox.faults.revoke_after = 2

    output = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=100))

    statuses = [e["status"] for e in fresh_sandbox.data_log()]
    assert statuses[:4] == [200, 200, 400, 200]
    assert len(by_key(output.records("Providers"), "ProviderID")) == len(
        fresh_sandbox.rows("Providers")
    )


def test_token_refused_again_after_renewal_fails_the_run(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.script("status", status=401, body="caspio", times=2)

    try:
        run_tap(tap_config(fresh_sandbox, views=["Practices"]))
    except Exception as error:
        message = str(error)
    else:
        message = ""

    assert "view 'Practices', page 1" in message
    assert "HTTP 401" in message
    assert len(_token_requests(fresh_sandbox)) == 2


def test_refused_refresh_token_falls_back_to_client_credentials(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.token_lifetime = 1
    fresh_sandbox.script("status", match="/oauth/token", skip=1, status=400, body="caspio", times=1)
    fresh_sandbox.faults.latency = 0.1

    output = run_tap(tap_config(fresh_sandbox, views=["Practices"], page_size=10))

    grants = [(r.get("grant_type"), r["status"]) for r in _token_requests(fresh_sandbox)]
    assert grants[0] == ("client_credentials", 200)
    assert grants[1][1] == 400
    assert grants[2] == ("client_credentials", 200)
    assert len(output.records("Practices")) == len(fresh_sandbox.rows("Practices"))
