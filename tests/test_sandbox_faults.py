"""Every fault the sandbox injects: latency, rate limits, broken answers, stale tokens."""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Iterator

import pytest
import requests

from huey_sandbox.faults import Faults, ScriptedFault
from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import TIMEOUT, V3, bearer, get, records, result, token_response

RATE_LIMIT_BODY = [
    {"message": "You have exceeded your API call rate limits.", "name": "api-calls-rate"}
]


def test_latency_delays_every_request(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.latency = 0.3

    started = time.monotonic()
    response = records(fresh_sandbox, "Practices", headers=headers)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3
    assert len(response.json()["Result"]) == 100


def test_rate_limit_answers_429_with_caspio_body_and_no_retry_after(
    fresh_sandbox: SandboxServer,
) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.rate_limit = 1

    allowed = records(fresh_sandbox, "Practices", headers=headers)
    refused = records(fresh_sandbox, "Practices", headers=headers)

    assert allowed.status_code == 200
    assert refused.status_code == 429
    assert refused.json() == RATE_LIMIT_BODY
    assert "Retry-After" not in refused.headers
    assert refused.headers["X-Caspio-Request-ID"] == fresh_sandbox.log[-1]["id"]
    assert [(e["status"], e["fault"]) for e in fresh_sandbox.data_log()] == [
        (200, None),
        (429, "rate_limit"),
    ]


def test_rate_limit_sends_retry_after_when_configured(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.rate_limit = 1
    fresh_sandbox.faults.rate_limit_retry_after = 1.5

    records(fresh_sandbox, "Practices", headers=headers)
    refused = records(fresh_sandbox, "Practices", headers=headers)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1.5"


def test_rate_limit_can_answer_400_with_the_same_body(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.rate_limit = 1
    fresh_sandbox.faults.rate_limit_status = 400

    records(fresh_sandbox, "Practices", headers=headers)
    refused = records(fresh_sandbox, "Practices", headers=headers)

    assert refused.status_code == 400
    assert refused.json() == RATE_LIMIT_BODY


def test_rate_limit_counts_token_calls_too(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.rate_limit = 1

    first = token_response(fresh_sandbox)
    second = token_response(fresh_sandbox)

    assert (first.status_code, second.status_code) == (200, 429)
    assert fresh_sandbox.token_calls == 1


def test_scripted_503_has_an_html_body(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("status", status=503)

    failed = records(fresh_sandbox, "Practices", headers=headers)
    recovered = records(fresh_sandbox, "Practices", headers=headers)

    assert failed.status_code == 503
    assert failed.headers["Content-Type"].startswith("text/html")
    assert failed.text.startswith("<html>")
    assert "Retry-After" not in failed.headers
    assert recovered.status_code == 200


def test_scripted_500_can_have_an_empty_body_and_retry_after(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("status", status=500, body="empty", retry_after=2)

    failed = records(fresh_sandbox, "Practices", headers=headers)

    assert failed.status_code == 500
    assert failed.content == b""
    assert failed.headers["Retry-After"] == "2"
    assert failed.headers["X-Caspio-Request-ID"] == fresh_sandbox.log[-1]["id"]


def test_scripted_status_can_answer_in_caspio_shape(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("status", status=502, body="caspio")

    failed = records(fresh_sandbox, "Practices", headers=headers)

    assert failed.status_code == 502
    assert failed.json()["Code"] == "InternalServerError"
    assert failed.json()["RequestId"] == failed.headers["X-Caspio-Request-ID"]


def test_scripted_fault_skips_then_fails_the_given_number_of_times(
    fresh_sandbox: SandboxServer,
) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("status", status=503, skip=1, times=2)

    statuses = [records(fresh_sandbox, "Practices", headers=headers).status_code for _ in range(4)]

    assert statuses == [200, 503, 503, 200]


def test_scripted_fault_matches_only_its_path(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("status", status=503, match="/oauth/token")

    listed = get(fresh_sandbox, "/views", headers=headers)
    refused = token_response(fresh_sandbox)
    granted = token_response(fresh_sandbox)

    assert (listed.status_code, refused.status_code, granted.status_code) == (200, 503, 200)


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'explode'"):
        ScriptedFault("explode")


def test_dropped_connection_raises_connection_error(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("drop")

    with pytest.raises(requests.exceptions.ConnectionError):
        records(fresh_sandbox, "Practices", headers=headers)

    assert records(fresh_sandbox, "Practices", headers=headers).status_code == 200
    assert [(e["status"], e["fault"]) for e in fresh_sandbox.data_log()] == [
        (None, "drop"),
        (200, None),
    ]


def test_truncated_body_raises_chunked_encoding_error(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("truncate")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        records(fresh_sandbox, "Practices", headers=headers)

    assert fresh_sandbox.data_log()[-1]["fault"] == "truncate"


def test_truncated_body_is_shorter_than_its_content_length(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("truncate")
    connection = http.client.HTTPConnection("127.0.0.1", fresh_sandbox.port, timeout=TIMEOUT)

    try:
        connection.request("GET", f"{V3}/views/Practices/records", headers=headers)
        response = connection.getresponse()
        declared = int(response.headers["Content-Length"])
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert len(cut.value.partial) == declared // 2
    assert cut.value.expected == declared - declared // 2


def test_garbled_body_is_200_but_not_json(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    whole = records(fresh_sandbox, "Practices", {"q.orderBy": "PracticeID"}, headers=headers)
    fresh_sandbox.script("garble")

    garbled = records(fresh_sandbox, "Practices", {"q.orderBy": "PracticeID"}, headers=headers)

    assert garbled.status_code == 200
    assert len(garbled.content) == len(whole.content) // 2
    assert whole.content.startswith(garbled.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbled.content)


def test_token_is_revoked_after_the_configured_number_of_data_requests(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.revoke_after = 2
    headers = bearer(fresh_sandbox)

    statuses = [records(fresh_sandbox, "Practices", headers=headers).status_code for _ in range(3)]
    renewed = records(fresh_sandbox, "Practices", headers=bearer(fresh_sandbox))

    assert statuses == [200, 200, 401]
    assert renewed.status_code == 200


def test_listing_views_does_not_count_towards_revocation(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.revoke_after = 1
    headers = bearer(fresh_sandbox)

    listed = [get(fresh_sandbox, "/views", headers=headers).status_code for _ in range(3)]
    data = [records(fresh_sandbox, "Practices", headers=headers).status_code for _ in range(2)]

    assert listed == [200, 200, 200]
    assert data == [200, 401]


def test_revoke_tokens_invalidates_every_token_issued_so_far(fresh_sandbox: SandboxServer) -> None:
    old = bearer(fresh_sandbox)
    assert records(fresh_sandbox, "Practices", headers=old).status_code == 200

    fresh_sandbox.revoke_tokens()

    refused = records(fresh_sandbox, "Practices", headers=old)
    assert refused.status_code == 401
    assert refused.json()["Code"] == "Unauthorized"
    assert records(fresh_sandbox, "Practices", headers=bearer(fresh_sandbox)).status_code == 200


def test_stale_token_can_be_answered_400_incorrect_query_parameter(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.stale_token_status = 400
    old = bearer(fresh_sandbox)
    fresh_sandbox.revoke_tokens()

    stale = records(fresh_sandbox, "Practices", headers=old)
    unknown = records(fresh_sandbox, "Practices", headers={"Authorization": "Bearer nope"})

    assert stale.status_code == 400
    assert stale.json()["Code"] == "IncorrectQueryParameter"
    assert unknown.status_code == 401


def test_revocation_after_n_requests_honours_the_stale_token_status(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.stale_token_status = 400
    fresh_sandbox.faults.revoke_after = 1
    headers = bearer(fresh_sandbox)

    first = records(fresh_sandbox, "Practices", headers=headers)
    second = records(fresh_sandbox, "Practices", headers=headers)

    assert first.status_code == 200
    assert (second.status_code, second.json()["Code"]) == (400, "IncorrectQueryParameter")


def test_scripted_stale_token_answers_400_once(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.script("stale_token")

    stale = records(fresh_sandbox, "Practices", headers=headers)
    fine = records(fresh_sandbox, "Practices", headers=headers)

    assert (stale.status_code, stale.json()["Code"]) == (400, "IncorrectQueryParameter")
    assert fine.status_code == 200


def test_ignore_paging_answers_every_page_with_the_first(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.ignore_paging = True
    base = {"q.orderBy": "ProviderID", "q.select": "ProviderID", "q.pageSize": 10}

    pages = [
        [r["ProviderID"] for r in result(records(fresh_sandbox, "Providers", params, headers))]
        for params in (
            base | {"q.pageNumber": 1},
            base | {"q.pageNumber": 2},
            base | {"q.pageNumber": 1, "q.where": "ProviderID > 10"},
        )
    ]

    assert pages == [list(range(1, 11))] * 3


def test_forbidden_views_answer_403(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.faults.forbidden_views = {"Provider_Locations"}

    refused = records(fresh_sandbox, "provider_locations")

    assert refused.status_code == 403
    assert refused.json()["Code"] == "UnsufficientPrivileges"


def _outcome(server: SandboxServer, headers: dict[str, str]) -> str:
    try:
        response = records(server, "Practices", headers=headers)
    except requests.exceptions.ChunkedEncodingError:
        return "truncate"
    except requests.exceptions.ConnectionError:
        return "drop"
    return str(response.status_code)


def _expected_outcomes(seed: int, count: int, error: float, drop: float, cut: float) -> list[str]:
    rng = random.Random(seed)
    outcomes = []
    for _ in range(count):
        draw = rng.random()
        if draw < error:
            outcomes.append("503" if draw < error / 2 else "500")
        elif draw - error < drop:
            outcomes.append("drop")
        elif draw - error - drop < cut:
            outcomes.append("truncate")
        else:
            outcomes.append("200")
    return outcomes


@pytest.fixture
def flaky_sandbox() -> Iterator[SandboxServer]:
    faults = Faults(seed=3, error_rate=0.2, drop_rate=0.1, truncate_rate=0.1)
    with SandboxServer(rows=200, seed=5, faults=faults) as server:
        yield server


def test_random_fault_rates_follow_the_seed(flaky_sandbox: SandboxServer) -> None:
    headers = bearer(flaky_sandbox)

    outcomes = [_outcome(flaky_sandbox, headers) for _ in range(40)]

    assert outcomes == _expected_outcomes(3, 40, 0.2, 0.1, 0.1)
    assert {"200", "500", "503", "drop", "truncate"} == set(outcomes)
    faults = [e["fault"] for e in flaky_sandbox.data_log()]
    assert faults == [
        {"200": None, "500": "status", "503": "status"}.get(outcome, outcome)
        for outcome in outcomes
    ]


def test_random_faults_spare_token_and_metadata_requests(flaky_sandbox: SandboxServer) -> None:
    statuses = [token_response(flaky_sandbox).status_code for _ in range(10)]
    headers = bearer(flaky_sandbox)
    listed = [get(flaky_sandbox, "/views", headers=headers).status_code for _ in range(10)]

    assert statuses == [200] * 10
    assert listed == [200] * 10
