"""`huey-sandbox serve` as a subprocess: its announcement, a short session, and Ctrl-C."""

from __future__ import annotations

import base64
import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

TIMEOUT = 30


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    executable = Path(sys.executable).with_name("huey-sandbox")
    process = subprocess.Popen(
        [str(executable), "serve", "--rows", "300", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "huey-sandbox printed nothing"
        yield process, json.loads(process.stdout.readline())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


def test_serve_announces_its_url_credentials_and_views_in_one_json_line(
    served: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    _, announced = served

    assert sorted(announced) == [
        "client_id",
        "client_secret",
        "startup_seconds",
        "token_url",
        "url",
        "v2",
        "v3",
        "views",
    ]
    assert announced["url"].startswith("http://127.0.0.1:")
    assert announced["token_url"] == announced["url"] + "/oauth/token"
    assert announced["v3"] == announced["url"] + "/integrations/rest/v3"
    assert announced["v2"] == announced["url"] + "/rest/v2"
    assert announced["views"] == {
        "Providers": 300,
        "Practices": 75,
        "Provider_Locations": 225,
        "Type_Showcase": 10,
    }


def test_serve_answers_a_session_then_exits_0_on_sigint(
    served: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    process, announced = served
    client_id, secret = announced["client_id"], announced["client_secret"]

    by_body = requests.post(
        announced["token_url"],
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=TIMEOUT,
    )
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    by_basic = requests.post(
        announced["token_url"],
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {pair}"},
        timeout=TIMEOUT,
    )
    assert (by_body.status_code, by_basic.status_code) == (200, 200)
    headers = {"Authorization": f"Bearer {by_basic.json()['access_token']}"}
    views = requests.get(announced["v3"] + "/views", headers=headers, timeout=TIMEOUT)
    assert views.json() == {
        "Result": ["Providers", "Practices", "Provider_Locations", "Type_Showcase"]
    }
    seen: list[int] = []
    for number in range(1, 5):
        page = requests.get(
            announced["v2"] + "/views/Providers/records",
            params={"q.orderBy": "ProviderID", "q.pageNumber": number, "q.pageSize": 100},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert page.status_code == 200
        seen.extend(row["ProviderID"] for row in page.json()["Result"])
    assert seen == list(range(1, 301))

    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    code = process.wait(10)

    assert code == 0
    assert time.monotonic() - started < 10
    assert process.stderr is not None
    assert "huey-sandbox stopped" in process.stderr.read()


def test_serve_exits_0_on_sigterm(served: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    process, _ = served

    process.send_signal(signal.SIGTERM)

    assert process.wait(10) == 0


def test_serve_applies_fault_options() -> None:
    executable = Path(sys.executable).with_name("huey-sandbox")
    process = subprocess.Popen(
        [
            str(executable),
            "serve",
            "--rows",
            "200",
            "--client-id",
            "me",
            "--client-secret",
            "s3cret",
            "--forbid-view",
            "Practices",
            "--token-lifetime",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready
        announced = json.loads(process.stdout.readline())
        granted = requests.post(
            announced["token_url"],
            data={"grant_type": "client_credentials", "client_id": "me", "client_secret": "s3cret"},
            timeout=TIMEOUT,
        )
        headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        refused = requests.get(
            announced["v3"] + "/views/Practices/records", headers=headers, timeout=TIMEOUT
        )

        assert (announced["client_id"], announced["client_secret"]) == ("me", "s3cret")
        assert granted.json()["expires_in"] == 60
        assert refused.status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
