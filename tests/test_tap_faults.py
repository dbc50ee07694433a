"""Faults: each is recovered with every row exactly once, or fails plainly with a resumable state."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from huey_sandbox.server import SandboxServer
from tap_huey.client import view_path
from tap_huey.errors import CaspioAPIError
from tap_huey.xml import parse_records
from tests.conftest import tap_config
from tests.singer import by_key, expected_by_key, run_cli, run_tap

RECOVERABLE: dict[str, dict[str, Any]] = {
    "429 with Retry-After": {
        "kind": "rate_limit",
        "status": 429,
        "retry_after": 0.02,
        "skip": 2,
        "times": 2,
    },
    "429 without Retry-After": {"kind": "rate_limit", "status": 429, "skip": 1, "times": 3},
    "rate limit answered as 400": {"kind": "rate_limit", "status": 400, "skip": 3, "times": 1},
    "500 with HTML": {"kind": "status", "status": 500, "body": "html", "skip": 2, "times": 2},
    "502 with HTML": {"kind": "status", "status": 502, "body": "html", "skip": 0, "times": 1},
    "503 empty": {"kind": "status", "status": 503, "body": "empty", "skip": 4, "times": 2},
    "504 empty": {"kind": "status", "status": 504, "body": "empty", "skip": 5, "times": 1},
    "dropped connection": {"kind": "drop", "skip": 2, "times": 2},
    "truncated body": {"kind": "truncate", "skip": 1, "times": 2},
    "garbled body": {"kind": "garble", "skip": 3, "times": 1},
    "stale token as 400": {"kind": "stale_token", "skip": 2, "times": 1},
    "token endpoint 503": {"kind": "status", "match": "/oauth/token", "status": 503, "times": 2},
    "token endpoint dropped": {"kind": "drop", "match": "/oauth/token", "times": 1},
    "field list 500": {"kind": "status", "match": "/fields", "status": 500, "times": 1},
    "view list 429": {"kind": "rate_limit", "match": "/views", "status": 429, "times": 1},
}


def _assert_exact(
    server: SandboxServer, records: list[dict[str, Any]], view: str = "Providers"
) -> None:
    assert by_key(records, server.key_of(view)) == expected_by_key(server, view)


@pytest.mark.parametrize(
    ("response_format", "parallel"),
    [("json", 1), ("xml", 1), ("json", 4)],
    ids=["json", "xml", "ranges"],
)
@pytest.mark.parametrize("fault", list(RECOVERABLE))
def test_each_fault_is_recovered_with_every_row_exactly_once(
    fresh_sandbox: SandboxServer,
    fault: str,
    response_format: str,
    parallel: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fresh_sandbox.script(**RECOVERABLE[fault])
    fresh_sandbox.faults.latency = 0.1 if parallel > 1 else 0.0
    config = tap_config(
        fresh_sandbox,
        views=["Providers"],
        page_size=20,
        response_format=response_format,
        max_parallel_requests=parallel,
    )

    output = run_tap(config)

    records = output.records("Providers")
    _assert_exact(fresh_sandbox, records)
    assert fresh_sandbox.faults.scripted == []
    bookmark = output.last_state["bookmarks"]["Providers"]["replication_key_value"]
    assert bookmark == records[-1]["LastUpdated"]
    assert "Retrying" in caplog.text or "refused the access token" in caplog.text


def test_retry_warning_names_status_request_id_and_wait(
    fresh_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_sandbox.script("status", status=503, skip=1, times=1)

    run_tap(tap_config(fresh_sandbox, views=["Practices"], page_size=50))

    failed = next(e for e in fresh_sandbox.log if e["status"] == 503)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and "Retrying" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith("Retrying view 'Practices', page 2 in 0.0")
    assert "HTTP 503" in warnings[0]
    assert f"Caspio request id {failed['id']}" in warnings[0]


def test_many_faults_at_random_rates_still_give_every_row_once(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.error_rate = 0.15
    fresh_sandbox.faults.drop_rate = 0.05
    fresh_sandbox.faults.truncate_rate = 0.05
    fresh_sandbox.faults.revoke_after = 7
    fresh_sandbox.faults.latency = 0.1
    config = tap_config(fresh_sandbox, page_size=20, max_retries=8, max_parallel_requests=4)

    output = run_tap(config)

    faulted = [e for e in fresh_sandbox.log if e["fault"]]
    assert len(faulted) >= 5
    for view in fresh_sandbox.views():
        _assert_exact(fresh_sandbox, output.records(view), view)


def test_per_second_rate_limit_is_waited_out_honouring_retry_after(
    fresh_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_sandbox.faults.rate_limit = 4
    fresh_sandbox.faults.rate_limit_retry_after = 1
    config = tap_config(
        fresh_sandbox, views=["Providers"], page_size=50, backoff_max_seconds=2, max_retries=8
    )

    output = run_tap(config)

    _assert_exact(fresh_sandbox, output.records("Providers"))
    assert any(e["status"] == 429 for e in fresh_sandbox.log)
    assert "in 1.0 s" in caplog.text


def test_exhausted_retries_exit_nonzero_naming_view_page_and_cause_with_a_resumable_state(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    fresh_sandbox.script("status", status=503, body="html", skip=2, times=100)
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=50, max_retries=2)

    output = run_cli([], config, tmp_path)

    errors = [
        line for line in output.stderr.splitlines() if " ERROR " in line or "Traceback" in line
    ]
    assert output.exit_code == 1
    assert any(
        "Reading view 'Providers', page 3 failed after 2 retries: HTTP 503" in line
        for line in errors
    ), errors
    assert "Traceback" not in output.stderr
    records = output.records("Providers")
    assert len(records) == 100
    assert (
        output.last_state["bookmarks"]["Providers"]["replication_key_value"]
        == records[-1]["LastUpdated"]
    )


def test_a_fatal_4xx_is_not_retried(fresh_sandbox: SandboxServer) -> None:
    config = tap_config(
        fresh_sandbox, views=["Practices"], view_overrides={"Practices": {"where": "Nope = 1"}}
    )

    with pytest.raises(CaspioAPIError, match="SqlServerError: Invalid column name 'Nope'"):
        run_tap(config)

    assert [e["status"] for e in fresh_sandbox.data_log()] == [400]


def _secrets(server: SandboxServer) -> list[str]:
    state = server.sandbox
    basic = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    return [server.client_secret, basic, *state.tokens, *state.refresh_tokens]


@pytest.mark.parametrize("auth_style", ["body", "basic"])
def test_no_secret_or_token_appears_in_any_output_at_debug_level(
    fresh_sandbox: SandboxServer, tmp_path: Path, auth_style: str
) -> None:
    fresh_sandbox.faults.revoke_after = 3
    fresh_sandbox.script("status", status=500, skip=5, times=1)
    config = tap_config(
        fresh_sandbox, views=["Providers", "Practices"], page_size=100, auth_style=auth_style
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HUEY")} | {
        "LOGLEVEL": "DEBUG"
    }

    synced = run_cli([], config, tmp_path, env=env)
    discovered = run_cli(["--discover"], config, tmp_path, env=env)
    refused = run_cli(
        [], config | {"client_secret": "wrong-" + fresh_sandbox.client_secret}, tmp_path, env=env
    )

    assert synced.exit_code == 0 and discovered.exit_code == 0 and refused.exit_code == 1
    assert "DEBUG" in synced.stderr
    assert len(fresh_sandbox.sandbox.tokens) >= 2
    printed = "\n".join(
        [
            synced.stderr,
            *synced.lines,
            discovered.stderr,
            *discovered.lines,
            refused.stderr,
            *refused.lines,
        ]
    )
    for secret in _secrets(fresh_sandbox):
        assert secret not in printed
    assert json.dumps(fresh_sandbox.log).count(fresh_sandbox.client_secret) == 0


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []
    location = ""

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        if type(self).location:
            self.send_response(307)
            self.send_header("Location", type(self).location + self.path)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def redirecting_host() -> Iterator[tuple[str, type[_Recorder]]]:
    other_handler = type("Other", (_Recorder,), {"seen": [], "location": ""})
    other = ThreadingHTTPServer(("127.0.0.2", 0), other_handler)
    redirect_handler = type(
        "Redirect", (_Recorder,), {"seen": [], "location": f"http://127.0.0.2:{other.server_port}"}
    )
    redirect = ThreadingHTTPServer(("127.0.0.1", 0), redirect_handler)
    for server in (other, redirect):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{redirect.server_port}", other_handler
    for server in (other, redirect):
        server.shutdown()


def test_authorization_never_follows_a_redirect(
    sandbox: SandboxServer, redirecting_host: tuple[str, type[_Recorder]], tmp_path: Path
) -> None:
    url, other = redirecting_host
    config = tap_config(sandbox, api_url=url, token_url=f"{sandbox.url}/oauth/token")

    output = run_cli(["--discover"], config, tmp_path)

    assert output.exit_code == 1
    assert "HTTP 307" in output.stderr
    assert other.seen == []


def test_tls_certificates_are_verified(tmp_path: Path, sandbox: SandboxServer) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    import ssl

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tap_config(
        sandbox,
        api_url=f"https://127.0.0.1:{server.server_port}",
        token_url=f"{sandbox.url}/oauth/token",
    )

    output = run_cli(["--discover"], config, tmp_path)
    server.shutdown()

    assert output.exit_code == 1
    assert "TLS connection failed" in output.stderr
    assert "Traceback" not in output.stderr


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Response><Result><Row><Name>&lol2;</Name></Row></Result></Response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Result><Row><Name>&xxe;</Name></Row></Result></Response>"""


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"]
)
def test_hostile_xml_is_refused_without_expanding_anything(payload: bytes) -> None:
    with pytest.raises(CaspioAPIError, match="DTD or entity declaration"):
        parse_records(payload)


def test_well_formed_xml_parses_empty_and_missing_elements_apart() -> None:
    rows, pagination = parse_records(
        b"<Response><Result><Row><A></A><B>x</B><L><item Key='2' Value='b'/><item Key='1' Value='a'/></L></Row></Result>"
        b"<Pagination><TotalCount>1</TotalCount></Pagination></Response>"
    )

    assert rows == [{"A": "", "B": "x", "L": {"2": "b", "1": "a"}}]
    assert pagination == {"TotalCount": "1"}


def test_view_names_are_percent_encoded_in_paths() -> None:
    assert view_path("Prov iders' é", "records") == "/views/Prov%20iders%27%20%C3%A9/records"


def test_view_name_with_spaces_quotes_and_accents_fails_plainly_when_unknown(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    output = run_cli([], tap_config(sandbox, views=["Prov iders' é"]), tmp_path)

    assert output.exit_code == 1
    assert 'View(s) "Prov iders\' é" not found' in output.stderr
    assert "Traceback" not in output.stderr


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"client_id": ""}, "client_id is required"),
    ({"client_secret": "  "}, "client_secret is required"),
    ({"page_size": "1000"}, "page_size"),
    ({"page_size": 0}, "page_size"),
    ({"max_retries": -1}, "max_retries"),
    ({"timezone": "EST5EDT-ish"}, "timezone"),
    ({"timezone": "Eastern Standard Time"}, "timezone"),
    ({"api_url": "ftp://huey.example.com"}, "api_url must be a URL"),
    ({"api_url": "https://user:pw@huey.example.com"}, "api_url must not hold credentials"),
    ({"token_url": "http://auth.example.com/oauth/token"}, "token_url must use HTTPS"),
    ({"api_version": "v1"}, "api_version"),
    ({"views": "Providers"}, "views"),
    ({"view_overrides": {"Providers": {"primary_keys": "ProviderID"}}}, "primary_keys"),
    ({"view_overrides": {"Providers": {"sort": "x"}}}, "view_overrides"),
    (
        {"view_overrides": {"Providers": {"primary_keys": ["NoSuchField"]}}},
        "names 'NoSuchField', which view 'Providers' does not have",
    ),
    ({"view_overrides": {"Providers": {"replication_key": "Nope"}}}, "names 'Nope'"),
    ({"start_date": "2025-13-45"}, "start_date"),
    ({"response_format": "XML "}, "response_format"),
]


@pytest.mark.parametrize(
    ("overrides", "expected"), MALFORMED, ids=[m[1][:40] + str(i) for i, m in enumerate(MALFORMED)]
)
def test_each_malformed_setting_ends_in_a_plain_error(
    sandbox: SandboxServer, tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    output = run_cli(["--discover"], tap_config(sandbox, **overrides), tmp_path)

    assert output.exit_code == 1
    assert expected in output.stderr
    assert "Traceback" not in output.stderr
