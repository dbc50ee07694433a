"""Defects found by trying to break the tap, each pinned by a test that failed before its fix."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from singer_sdk.singerlib import RecordMessage

from huey_sandbox.server import SandboxServer
from tap_huey.errors import HueyError
from tap_huey.fields import CaspioField
from tap_huey.output import HueyMessageWriter
from tap_huey.streams import parse_json_page
from tap_huey.tap import TapHuey
from tests.conftest import tap_config, tap_env
from tests.singer import BIN, Output, by_key, expected_by_key, run_cli, run_tap


def _ordered(server: SandboxServer) -> list[dict[str, Any]]:
    return sorted(server.rows("Providers"), key=lambda r: (r["LastUpdated"], r["ProviderID"]))


@pytest.mark.timeout(90)
def test_a_failure_while_key_ranges_are_buffered_ends_the_run_instead_of_hanging(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.latency = 0.1
    late = _ordered(fresh_sandbox)[4 * 5 + 2]
    fresh_sandbox.update("Providers", late["ProviderID"], {"YearsInPractice": "many"})
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=5, max_parallel_requests=4)

    started = time.monotonic()
    with pytest.raises(HueyError, match="field 'YearsInPractice': cannot read value 'many'"):
        run_tap(config)

    assert time.monotonic() - started < 30


@pytest.mark.timeout(90)
def test_sigterm_during_a_parallel_read_exits_nonzero_with_a_resumable_state(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    fresh_sandbox.faults.latency = 0.1
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=5, max_parallel_requests=4)
    (tmp_path / "config.json").write_text(json.dumps(config))
    stdout = (tmp_path / "out.jsonl").open("w")
    process = subprocess.Popen(
        [str(BIN / "tap-huey"), "--config", str(tmp_path / "config.json")],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    stdout.close()

    output = Output((tmp_path / "out.jsonl").read_text().splitlines())
    records = output.records("Providers")
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert 0 < len(records) < len(fresh_sandbox.rows("Providers"))
    resumed = run_tap(tap_config(fresh_sandbox, views=["Providers"]), state=output.last_state)
    seen = {r["ProviderID"] for r in records} | {
        r["ProviderID"] for r in resumed.records("Providers")
    }
    assert seen == {r["ProviderID"] for r in fresh_sandbox.rows("Providers")}


def test_integer_replication_key_resumes_from_its_bookmark(fresh_sandbox: SandboxServer) -> None:
    config = tap_config(
        fresh_sandbox,
        views=["Practices"],
        view_overrides={"Practices": {"replication_key": "PracticeID"}},
    )
    first = run_tap(config)
    bookmark = first.last_state["bookmarks"]["Practices"]["replication_key_value"]
    fresh_sandbox.insert("Practices", 2)

    second = run_tap(config, state=first.last_state)

    assert bookmark == max(r["PracticeID"] for r in fresh_sandbox.rows("Practices")) - 2
    wheres = [e["query"].get("q.where") for e in fresh_sandbox.data_log("Practices")]
    assert wheres == [None, f"PracticeID >= {bookmark}"]
    assert sorted(r["PracticeID"] for r in second.records("Practices")) == [
        bookmark,
        bookmark + 1,
        bookmark + 2,
    ]


def test_rows_edited_during_an_incremental_read_come_again_and_the_run_succeeds(
    fresh_sandbox: SandboxServer,
) -> None:
    first_page = _ordered(fresh_sandbox)[:5]
    fresh_sandbox.faults.mutate_view = ""
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=5)
    edited = first_page[0]["ProviderID"]

    def edit_after_first_page() -> None:
        while not fresh_sandbox.data_log("Providers"):
            time.sleep(0.001)
        fresh_sandbox.update("Providers", edited, {"Notes": "edited mid-read"})

    fresh_sandbox.faults.latency = 0.05
    editor = threading.Thread(target=edit_after_first_page)
    editor.start()
    output = run_tap(config)
    editor.join()

    records = output.records("Providers")
    assert [r["Notes"] for r in records if r["ProviderID"] == edited][-1] == "edited mid-read"
    assert {r["ProviderID"] for r in records} == {
        r["ProviderID"] for r in fresh_sandbox.rows("Providers")
    }


def test_bookmark_in_a_daylight_saving_gap_resumes_at_that_wall_clock_time(
    fresh_sandbox: SandboxServer,
) -> None:
    config = tap_config(
        fresh_sandbox,
        views=["Type_Showcase"],
        timezone="America/New_York",
        view_overrides={"Type_Showcase": {"replication_key": "Happened"}},
    )
    state = {
        "bookmarks": {
            "Type_Showcase": {
                "replication_key": "Happened",
                "replication_key_value": "2026-03-08T02:30:00-05:00",
            }
        }
    }

    output = run_tap(config, state=state)

    assert (
        fresh_sandbox.data_log("Type_Showcase")[0]["query"]["q.where"]
        == "Happened >= '2026-03-08 02:30:00'"
    )
    assert [r["RowID"] for r in output.records("Type_Showcase")] == [9]


def test_server_ignoring_paging_stops_key_ranges_before_any_duplicate(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.latency = 0.1
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=10, max_parallel_requests=4)
    fresh_sandbox.faults.ignore_paging = True

    with pytest.raises(HueyError, match="not honouring the paging parameters"):
        run_tap(config)


def test_a_single_refused_token_is_renewed_even_with_no_retries_allowed(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.revoke_after = 2

    output = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=100, max_retries=0))

    assert len(by_key(output.records("Providers"), "ProviderID")) == len(
        fresh_sandbox.rows("Providers")
    )


def test_failing_token_endpoint_is_retried_once_per_policy_not_nested(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    fresh_sandbox.script("status", match="/oauth/token", status=503, times=100)

    output = run_cli([], tap_config(fresh_sandbox, views=["Practices"], max_retries=2), tmp_path)

    assert output.exit_code == 1
    assert (
        f"Caspio's token endpoint {fresh_sandbox.url}/oauth/token kept failing: HTTP 503"
        in output.stderr
    )
    assert len([e for e in fresh_sandbox.log if e["path"] == "/oauth/token"]) == 3


def test_a_catalog_selecting_a_view_caspio_no_longer_lists_fails_plainly(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    catalog = json.loads("\n".join(run_cli(["--discover"], tap_config(sandbox), tmp_path).lines))
    catalog["streams"][0]["tap_stream_id"] = catalog["streams"][0]["stream"] = "Practice_Sites"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    output = run_cli(["--catalog", str(tmp_path / "catalog.json")], tap_config(sandbox), tmp_path)

    assert output.exit_code == 1
    assert (
        "The catalog selects view(s) 'Practice_Sites', which the profile no longer lists"
        in output.stderr
    )
    assert "Traceback" not in output.stderr


@pytest.mark.parametrize("secret", [["s3cr3t-Value-XYZ"], 98765432, {"value": "s3cr3t-Value-XYZ"}])
def test_a_secret_of_the_wrong_type_is_never_printed(
    sandbox: SandboxServer, tmp_path: Path, secret: Any
) -> None:
    output = run_cli(["--discover"], tap_config(sandbox, client_secret=secret), tmp_path)

    assert output.exit_code == 1
    assert "client_secret must be a string (its value is not shown)" in output.stderr
    assert "s3cr3t-Value-XYZ" not in output.stderr and "98765432" not in output.stderr


def test_number_settings_come_from_the_environment_and_nulls_take_defaults(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = tap_env(
        sandbox, views='["Type_Showcase"]', request_timeout="60", backoff_max_seconds="2.5"
    )

    from_env = run_cli(["--config", "ENV"], None, tmp_path, env=env)
    with_nulls = run_tap(
        tap_config(sandbox, views=["Type_Showcase"], max_retries=None, request_timeout=None)
    )

    assert from_env.exit_code == 0, from_env.stderr[-1500:]
    assert len(from_env.records("Type_Showcase")) == 10
    assert len(with_nulls.records("Type_Showcase")) == 10


def test_malformed_environment_value_is_a_plain_error(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = tap_env(sandbox, page_size="abc")

    output = run_cli(["--config", "ENV"], None, tmp_path, env=env)

    assert output.exit_code == 1
    assert "A setting could not be read" in output.stderr
    assert "Traceback" not in output.stderr


def test_local_mean_time_offsets_with_seconds_are_given_in_utc() -> None:
    from zoneinfo import ZoneInfo

    field = CaspioField("Old", "DATE/TIME", zone=ZoneInfo("Europe/Amsterdam"))

    assert field.converter()("1930-06-01T12:00:00") == "1930-06-01T10:40:28+00:00"
    assert field.converter()("2024-06-01T12:00:00") == "2024-06-01T12:00:00+02:00"


def test_a_time_of_day_that_does_not_exist_is_refused_even_on_a_known_day() -> None:
    convert = CaspioField("When", "DATE/TIME", zone=ZoneInfo("America/New_York")).converter()

    assert convert("2024-06-01T12:00:00") == "2024-06-01T12:00:00-04:00"  # the day is now known
    for impossible in ("2024-06-01T24:00:00", "2024-06-01T12:60:00", "2024-06-01T12:00:00Z"):
        with pytest.raises(ValueError):
            convert(impossible)


def test_a_stop_signal_during_a_write_lets_it_finish_then_writes_state_and_exits(
    sandbox: SandboxServer,
) -> None:
    bookmark = {"replication_key": "LastUpdated", "replication_key_value": "2024-01-01T00:00:00Z"}
    state = {"bookmarks": {"Providers": bookmark}}
    tap = TapHuey(config=tap_config(sandbox), state=state, parse_env_config=False)
    writer = tap.message_writer
    assert isinstance(writer, HueyMessageWriter)
    writer.hold_record("Providers", {"ProviderID": 1}, None, datetime.now(timezone.utc))
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        writer.writing = True  # as if the signal came while records were being written
        tap._handle_termination(signal.SIGTERM, None)
        assert out.getvalue() == ""  # nothing written in the middle of that write
        writer.writing = False
        with pytest.raises(SystemExit) as stopped:
            writer.write_held()  # the write finishes; the stop follows it

    assert stopped.value.code == 128 + signal.SIGTERM
    assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == ["RECORD", "STATE"]


def test_a_stop_signal_before_the_sync_starts_writes_no_empty_state(
    sandbox: SandboxServer,
) -> None:
    tap = TapHuey(config=tap_config(sandbox), parse_env_config=False)
    out = io.StringIO()

    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stopped:
        tap._handle_termination(signal.SIGTERM, None)

    assert stopped.value.code == 128 + signal.SIGTERM
    assert out.getvalue() == ""  # a `{}` state would make the next run start from scratch


def _tap_process(server: SandboxServer, tmp_path: Path, **settings: Any) -> subprocess.Popen[bytes]:
    """tap-huey reading `Providers` page after page, its output in a pipe this test reads (or not)."""
    config = tap_config(server, views=["Providers"], page_size=100, **settings)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return subprocess.Popen(
        [str(BIN / "tap-huey"), "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("w"),
    )


@pytest.mark.timeout(90)
def test_sigterm_while_the_reader_is_not_reading_leaves_whole_lines_and_a_state_that_resumes(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    process = _tap_process(fresh_sandbox, tmp_path)
    time.sleep(2.5)  # the pipe filled long ago: the tap is blocked in the middle of a write

    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    out, _ = process.communicate(timeout=30)

    lines = out.decode().splitlines()
    assert process.returncode == 128 + signal.SIGTERM
    assert [json.loads(line)["type"] for line in lines][-1] == "STATE"  # every line whole
    output = Output(lines)
    records = output.records("Providers")
    bookmark = output.last_state["bookmarks"]["Providers"]["replication_key_value"]
    assert records and bookmark == records[-1]["LastUpdated"]
    resumed = run_tap(tap_config(fresh_sandbox, views=["Providers"]), state=output.last_state)
    seen = {r["ProviderID"] for r in records + resumed.records("Providers")}
    assert seen == {r["ProviderID"] for r in fresh_sandbox.rows("Providers")}


@pytest.mark.timeout(90)
def test_a_second_signal_while_the_output_is_stuck_ends_the_run_at_once(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    process = _tap_process(fresh_sandbox, tmp_path)  # its output is never read
    time.sleep(2.5)

    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert process.poll() is None  # the first waits for the write under way
    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert "again; exiting without writing more" in (tmp_path / "stderr.log").read_text()
    assert process.stdout is not None
    process.stdout.close()


@pytest.mark.timeout(90)
def test_a_reader_that_closes_the_output_gets_one_plain_error(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    process = _tap_process(fresh_sandbox, tmp_path)
    assert process.stdout is not None

    process.stdout.read(100)
    process.stdout.close()

    assert process.wait(timeout=30) == 1
    stderr = (tmp_path / "stderr.log").read_text()
    assert "closed it (broken pipe)" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


@pytest.mark.parametrize(
    ("name", "value"), [("YearsInPractice", "many"), ("VisitFee", "NaN"), ("Rating", "-Infinity")]
)
def test_a_value_that_cannot_be_read_leaves_a_state_covering_the_records_sent(
    fresh_sandbox: SandboxServer, tmp_path: Path, name: str, value: str
) -> None:
    bad = _ordered(fresh_sandbox)[250]
    fresh_sandbox.update("Providers", bad["ProviderID"], {name: value})
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=100)

    output = run_cli([], config, tmp_path)

    assert output.exit_code == 1
    assert f"field '{name}': cannot read value '{value}'" in output.stderr
    assert "Traceback" not in output.stderr
    assert json.loads(output.lines[-1])["type"] == "STATE"
    records = output.records("Providers")
    bookmark = output.last_state["bookmarks"]["Providers"]["replication_key_value"]
    assert len(records) >= 200 and bookmark == records[-1]["LastUpdated"]


def test_records_held_for_a_batch_are_written_even_with_a_lone_surrogate_among_them() -> None:
    writer = HueyMessageWriter()
    now = datetime.now(timezone.utc)
    writer.hold_record("S", {"Text": "fine"}, None, now)
    writer.hold_record("S", {"Text": "Dr. Zo\ud83d"}, 7, now)
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        writer.write_held()

    lines = out.getvalue().splitlines()
    assert [json.loads(line)["record"]["Text"] for line in lines] == ["fine", "Dr. Zo\ud83d"]
    assert '"Dr. Zo\\ud83d"' in lines[1] and json.loads(lines[1])["version"] == 7


class _LoneSurrogate(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"Result":[{"ShortText":"Dr. Zo\\ud83d","RowID":1}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_text_with_a_lone_surrogate_escape_is_read_and_written_escaped() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoneSurrogate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        content = requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=10).content
    finally:
        server.shutdown()

    rows, _ = parse_json_page(content)
    line = HueyMessageWriter().serialize_message(RecordMessage(stream="S", record=rows[0]))

    assert rows[0]["ShortText"] == "Dr. Zo\ud83d"
    assert b'"Dr. Zo\\ud83d"' in line


def test_unknown_windows_zone_names_the_view_and_field() -> None:
    from tap_huey.settings import load_settings
    from tap_huey.views import fields_from_metadata

    settings, _ = load_settings({"client_id": "a", "client_secret": "b"})
    assert settings is not None

    with pytest.raises(
        HueyError,
        match="View 'Providers', field 'Stamp': unknown time zone 'Mid-Atlantic Standard Time'",
    ):
        fields_from_metadata(
            [{"Name": "Stamp", "Type": "TIMESTAMP", "TimeZone": "Mid-Atlantic Standard Time"}],
            settings,
            "Providers",
        )


def test_expected_records_helper_matches_a_plain_sync(sandbox: SandboxServer) -> None:
    output = run_tap(tap_config(sandbox, views=["Practices"]))

    assert by_key(output.records("Practices"), "PracticeID") == expected_by_key(
        sandbox, "Practices"
    )
