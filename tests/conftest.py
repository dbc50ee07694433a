"""Shared fixtures: a sandbox on a free loopback port, and a tap config pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from huey_sandbox.server import SandboxServer


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """A shared sandbox for tests that neither mutate data nor script faults."""
    with SandboxServer(rows=2500, seed=11) as server:
        yield server


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of its own, for tests that change data or inject faults."""
    with SandboxServer(rows=600, seed=5) as server:
        yield server


def tap_config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    """A tap config for a sandbox, with fast retries, reading page after page unless told."""
    config: dict[str, Any] = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "api_url": server.url,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "max_parallel_requests": 1,
    }
    config.update(overrides)
    return config


def tap_env(server: SandboxServer, **variables: str) -> dict[str, str]:
    """This process's environment without TAP_HUEY_* values, plus a sandbox's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HUEY")}
    return env | {
        "TAP_HUEY_CLIENT_ID": server.client_id,
        "TAP_HUEY_CLIENT_SECRET": server.client_secret,
        "TAP_HUEY_API_URL": server.url,
        **{f"TAP_HUEY_{name.upper()}": value for name, value in variables.items()},
    }
