"""Run tap-huey in-process or as a command and read the Singer messages it writes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import win_tz

from huey_sandbox.server import SandboxServer
from tap_huey.tap import TapHuey

BIN = Path(sys.executable).parent


@dataclass
class Output:
    """What one run of the tap wrote."""

    lines: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0
    stderr: str = ""

    def __post_init__(self) -> None:
        self.messages = [
            json.loads(line, parse_float=Decimal)
            for line in self.lines
            if line.startswith('{"type"')
        ]

    def records(self, stream: str) -> list[dict[str, Any]]:
        """The records of one stream, in the order written."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def streams(self) -> list[str]:
        """The streams that got a SCHEMA message, in order."""
        return [m["stream"] for m in self.messages if m["type"] == "SCHEMA"]

    def schema(self, stream: str) -> dict[str, Any]:
        """The last SCHEMA message of a stream."""
        return [m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream][-1]

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any]:
        """The last STATE value written."""
        return self.states[-1]


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> Output:
    """Sync in this process, capturing stdout."""
    buffer = io.StringIO()
    tap = TapHuey(config=config, state=state, catalog=catalog, parse_env_config=False)
    with contextlib.redirect_stdout(buffer):
        tap.sync_all()
    return Output(buffer.getvalue().splitlines())


def discover(config: dict[str, Any]) -> dict[str, Any]:
    """The catalog discovery produces, in this process."""
    tap = TapHuey(config=config, parse_env_config=False)
    return tap.catalog_dict


def run_cli(
    args: list[str],
    config: dict[str, Any] | None,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Output:
    """Run the `tap-huey` command with a config file; returns its output and exit code."""
    command = [str(BIN / "tap-huey"), *args]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        command[1:1] = ["--config", str(path)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=(
            env
            if env is not None
            else {k: v for k, v in os.environ.items() if not k.startswith("TAP_HUEY")}
        ),
        cwd=tmp_path,
    )
    return Output(result.stdout.splitlines(), exit_code=result.returncode, stderr=result.stderr)


def expected_records(server: SandboxServer, view: str, zone: str = "UTC") -> list[dict[str, Any]]:
    """The sandbox's rows as the tap should emit them, written out independently of the tap."""
    fields = server.fields(view)
    converted = []
    for row in server.rows(view):
        record: dict[str, Any] = {}
        for described in fields:
            name, type_ = described["Name"], described["Type"]
            if type_ == "PASSWORD":
                continue
            value = row.get(name)
            if type_ == "TIMESTAMP":
                record[name] = _instant(value, win_tz[described["TimeZone"]])
            elif type_ == "DATE/TIME":
                record[name] = _instant(value, zone)
            elif type_.startswith("LIST-"):
                items = None if value is None else [value[k] for k in sorted(value, key=int)]
                if items is not None and type_ == "LIST-DATE/TIME":
                    items = [_instant(i, zone) for i in items]
                if items is not None and type_ == "LIST-NUMBER":
                    items = [Decimal(repr(i)) if isinstance(i, float) else i for i in items]
                record[name] = items
            elif type_ in ("NUMBER", "CURRENCY") and value is not None:
                record[name] = Decimal(repr(value)) if isinstance(value, float) else value
            else:
                record[name] = value
        converted.append(record)
    return converted


def expected_by_key(
    server: SandboxServer, view: str, zone: str = "UTC"
) -> dict[Any, dict[str, Any]]:
    """`expected_records` keyed by the view's key, with `PK_ID` added where that is the key."""
    records = expected_records(server, view, zone)
    key = server.key_of(view)
    if key == "PK_ID":
        for record in records:
            record["PK_ID"] = f"{record['Providers_ProviderID']},{record['Practices_PracticeID']}"
    return by_key(records, key)


def _instant(value: str | None, zone: str) -> str | None:
    """Caspio's digits as they came, with the zone's offset at that wall-clock time."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value).replace(
        tzinfo=timezone.utc if zone == "UTC" else ZoneInfo(zone)
    )
    return value + moment.isoformat()[-6:]


def by_key(records: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    """Records keyed by one field; fails on a duplicate key."""
    keyed: dict[Any, dict[str, Any]] = {}
    for record in records:
        assert record[key] not in keyed, f"duplicate {key} {record[key]!r}"
        keyed[record[key]] = record
    return keyed
