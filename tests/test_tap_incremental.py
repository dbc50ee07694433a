"""Correct while data changes: keyset paging, bookmarks, resumable state, completeness."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from huey_sandbox.server import SandboxServer
from tap_huey.errors import HueyError
from tap_huey.tap import TapHuey
from tests.conftest import tap_config
from tests.singer import Output, by_key, run_tap


def _ids(records: list[dict[str, Any]]) -> Counter[int]:
    return Counter(r["ProviderID"] for r in records)


def _mutating(server: SandboxServer) -> set[int]:
    """Insert and delete rows after every page; returns the keys present before the read."""
    server.faults.mutate_view = "Providers"
    server.faults.mutate_inserts = 2
    server.faults.mutate_deletes = 2
    return {r["ProviderID"] for r in server.rows("Providers")}


@pytest.mark.parametrize("parallel", [1, 4])
def test_keyset_sync_during_inserts_and_deletes_emits_every_stable_row_exactly_once(
    fresh_sandbox: SandboxServer, parallel: int
) -> None:
    before = _mutating(fresh_sandbox)
    fresh_sandbox.faults.latency = 0.1 if parallel > 1 else 0.0
    config = tap_config(
        fresh_sandbox, views=["Providers"], page_size=25, max_parallel_requests=parallel
    )

    output = run_tap(config)

    seen = _ids(output.records("Providers"))
    deleted = set(fresh_sandbox.mutations.deleted["Providers"])
    stable = before - deleted
    assert deleted and fresh_sandbox.mutations.inserted["Providers"]
    assert stable <= set(seen)
    assert max(seen.values()) == 1


def test_page_number_paging_during_the_same_edits_loses_rows(fresh_sandbox: SandboxServer) -> None:
    before = _mutating(fresh_sandbox)
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=25, paging="page_number")

    seen = set(_ids(run_tap(config).records("Providers")))

    stable = before - set(fresh_sandbox.mutations.deleted["Providers"])
    assert len(stable - seen) > 0


def test_second_run_reads_only_rows_changed_since_the_bookmark_ties_included(
    fresh_sandbox: SandboxServer,
) -> None:
    first = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=100))
    state = first.last_state
    bookmark = state["bookmarks"]["Providers"]["replication_key_value"]
    at_bookmark = {
        r["ProviderID"] for r in first.records("Providers") if r["LastUpdated"] == bookmark
    }
    changed = {5, 17, 333}
    for key in changed:
        fresh_sandbox.update("Providers", key, {"Notes": f"edited {key}"})
    fresh_sandbox.clear_log()

    second = run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=100), state=state)

    records = by_key(second.records("Providers"), "ProviderID")
    assert set(records) == changed | at_bookmark
    assert all(records[key]["Notes"] == f"edited {key}" for key in changed)
    local = datetime.fromisoformat(bookmark).astimezone(ZoneInfo("America/New_York"))
    where = fresh_sandbox.data_log("Providers")[0]["query"]["q.where"]
    assert where == f"LastUpdated >= '{local.strftime('%Y-%m-%d %H:%M:%S')}" + (
        f".{local.microsecond // 1000:03d}'" if local.microsecond else "'"
    )
    assert len(fresh_sandbox.data_log("Providers")) == 1


def test_bookmark_is_written_naive_in_the_fields_zone_whatever_the_timezone_setting(
    fresh_sandbox: SandboxServer,
) -> None:
    state = {
        "bookmarks": {
            "Providers": {
                "replication_key": "LastUpdated",
                "replication_key_value": "2025-06-01T12:00:00+00:00",
            }
        }
    }
    config = tap_config(fresh_sandbox, views=["Providers"], timezone="Asia/Tokyo")

    output = run_tap(config, state=state)

    assert (
        fresh_sandbox.data_log("Providers")[0]["query"]["q.where"]
        == "LastUpdated >= '2025-06-01 08:00:00'"
    )
    instant = datetime.fromisoformat("2025-06-01T12:00:00+00:00")
    expected = {
        r["ProviderID"]
        for r in fresh_sandbox.rows("Providers")
        if datetime.fromisoformat(r["LastUpdated"]).replace(tzinfo=ZoneInfo("America/New_York"))
        >= instant
    }
    assert set(_ids(output.records("Providers"))) == expected
    assert all(r["VerifiedDate"].endswith("+09:00") for r in output.records("Providers"))


def test_start_date_bounds_the_first_run(fresh_sandbox: SandboxServer) -> None:
    config = tap_config(fresh_sandbox, views=["Practices"], start_date="2025-01-01T00:00:00Z")

    output = run_tap(config)

    assert (
        fresh_sandbox.data_log("Practices")[0]["query"]["q.where"]
        == "LastModified >= '2024-12-31 18:00:00'"
    )
    cutoff = datetime(2024, 12, 31, 18)
    expected = {
        r["PracticeID"]
        for r in fresh_sandbox.rows("Practices")
        if datetime.fromisoformat(r["LastModified"]) >= cutoff
    }
    assert {r["PracticeID"] for r in output.records("Practices")} == expected


def test_user_where_with_quotes_is_combined_with_the_bookmark(fresh_sandbox: SandboxServer) -> None:
    config = tap_config(
        fresh_sandbox,
        views=["Providers"],
        start_date="2025-01-01T00:00:00+00:00",
        view_overrides={"Providers": {"where": "LastName LIKE N'O''%' OR LicenseState = 'CA'"}},
    )

    output = run_tap(config)

    where = fresh_sandbox.data_log("Providers")[0]["query"]["q.where"]
    assert (
        where
        == "(LastName LIKE N'O''%' OR LicenseState = 'CA') AND (LastUpdated >= '2024-12-31 19:00:00')"
    )
    cutoff = datetime(2024, 12, 31, 19)
    expected = {
        r["ProviderID"]
        for r in fresh_sandbox.rows("Providers")
        if (r["LastName"].startswith("O'") or r["LicenseState"] == "CA")
        and datetime.fromisoformat(r["LastUpdated"]) >= cutoff
    }
    assert set(_ids(output.records("Providers"))) == expected


def _failing_run(server: SandboxServer, config: dict[str, Any]) -> tuple[Output, str]:
    """Run until retries run out on page 5; return what was written and the error."""
    server.script("status", status=503, skip=4, times=50)
    buffer = io.StringIO()
    message = ""
    try:
        with contextlib.redirect_stdout(buffer):
            TapHuey(config=config, parse_env_config=False).sync_all()
    except HueyError as error:
        message = str(error)
    server.faults.scripted.clear()
    return Output(buffer.getvalue().splitlines()), message


def test_run_killed_after_some_pages_resumes_from_its_last_state_without_losing_rows(
    fresh_sandbox: SandboxServer,
) -> None:
    config = tap_config(fresh_sandbox, views=["Providers"], page_size=50, max_retries=1)
    first, message = _failing_run(fresh_sandbox, config)

    second = run_tap(config, state=first.last_state)

    first_records = first.records("Providers")
    assert message.startswith("Reading view 'Providers', page 5 failed after 1 retries: HTTP 503")
    assert len(first_records) == 200
    assert (
        first.last_state["bookmarks"]["Providers"]["replication_key_value"]
        == first_records[-1]["LastUpdated"]
    )
    second_ids = _ids(second.records("Providers"))
    everything = {r["ProviderID"] for r in fresh_sandbox.rows("Providers")}
    assert set(_ids(first_records)) | set(second_ids) == everything
    assert len(second_ids) < len(everything)
    assert max(second_ids.values()) == 1


def test_server_that_ignores_paging_is_stopped_with_a_clear_error(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.faults.ignore_paging = True

    with pytest.raises(HueyError, match="not honouring the paging parameters"):
        run_tap(tap_config(fresh_sandbox, views=["Providers"], page_size=50))

    assert len(fresh_sandbox.data_log()) == 2


def test_completeness_check_logs_caspio_count(
    fresh_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")

    run_tap(tap_config(fresh_sandbox, views=["Practices"]))

    rows = len(fresh_sandbox.rows("Practices"))
    assert f"View 'Practices': read {rows} rows; Caspio counted {rows} at the start." in caplog.text
