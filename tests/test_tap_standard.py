"""The Singer SDK's standard tap tests, run against a sandbox of our own."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from huey_sandbox.server import SandboxServer
from tap_huey.tap import TapHuey
from tests.conftest import tap_config

_SANDBOX = SandboxServer(rows=300, seed=21).start()
atexit.register(_SANDBOX.stop)

TestTapHuey = get_tap_test_class(
    tap_class=TapHuey,
    config=tap_config(_SANDBOX),
    parse_env_config=False,
    suite_config=SuiteConfig(max_records_limit=None),
)
