"""Syncing: every row once, exact values, the requests a run makes, XML equal to JSON."""

from __future__ import annotations

import json
import math
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from huey_sandbox.server import SandboxServer
from tests.conftest import tap_config
from tests.singer import Output, by_key, expected_by_key, run_tap


def _key(server: SandboxServer, view: str) -> str:
    return server.key_of(view)


def _expected(server: SandboxServer, view: str, zone: str = "UTC") -> dict[Any, dict[str, Any]]:
    return expected_by_key(server, view, zone)


@pytest.fixture(scope="module")
def full_sync(sandbox: SandboxServer) -> Output:
    sandbox.clear_log()
    return run_tap(tap_config(sandbox))


def test_full_sync_emits_every_row_of_every_view_exactly_once_with_exact_values(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    for view in sandbox.views():
        got = by_key(full_sync.records(view), _key(sandbox, view))
        assert got == _expected(sandbox, view), view


def test_a_full_sync_makes_exactly_one_token_call(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    token_requests = [e for e in sandbox.log if e["path"] == "/oauth/token"]

    assert len(token_requests) == 1
    assert token_requests[0]["grant_type"] == "client_credentials"
    assert token_requests[0]["auth"] == "body"


def test_every_data_request_pages_with_page_size_and_number_and_a_unique_last_order_column(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    unique_last = {
        "Providers": "ProviderID",
        "Practices": "PracticeID",
        "Provider_Locations": "PK_ID",
        "Type_Showcase": "RowID",
    }
    requests = sandbox.data_log()

    assert requests
    for entry in requests:
        query = entry["query"]
        assert "q.limit" not in {k.lower() for k in query}
        assert query["q.pageSize"] == "1000"
        assert query["q.pageNumber"] == "1"
        assert query["q.orderBy"].split(",")[-1] == unique_last[entry["view"]]


def test_paging_makes_one_request_per_page_and_no_trailing_empty_page(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    per_view: dict[str, int] = {}
    for entry in sandbox.data_log():
        per_view[entry["view"]] = per_view.get(entry["view"], 0) + 1

    expected = {view: max(math.ceil(len(sandbox.rows(view)) / 1000), 1) for view in sandbox.views()}
    assert {v: n for v, n in expected.items() if len(sandbox.rows(v)) % 1000} == {
        v: per_view[v] for v in expected if len(sandbox.rows(v)) % 1000
    }
    assert per_view == {"Providers": 3, "Practices": 1, "Provider_Locations": 2, "Type_Showcase": 1}


def test_keyset_pages_continue_after_the_last_key_read(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    providers = [e["query"] for e in sandbox.data_log("Providers")]

    assert "q.where" not in providers[0]
    assert providers[0]["q.getPaginationInfo"] == "true"
    assert providers[1]["q.where"].startswith("(LastUpdated > '")
    assert "AND ProviderID > " in providers[1]["q.where"]


def test_view_whose_row_count_is_an_exact_multiple_of_the_page_size_ends_with_one_empty_page(
    sandbox: SandboxServer,
) -> None:
    sandbox.clear_log()

    output = run_tap(tap_config(sandbox, views=["Type_Showcase"], page_size=5))

    assert len(output.records("Type_Showcase")) == 10
    counts = [e["rows"] for e in sandbox.data_log("Type_Showcase")]
    assert counts == [5, 5, 0]


def test_small_pages_read_every_row_once(sandbox: SandboxServer) -> None:
    sandbox.clear_log()

    output = run_tap(tap_config(sandbox, views=["Practices"], page_size=7, max_parallel_requests=1))

    rows = len(sandbox.rows("Practices"))
    assert by_key(output.records("Practices"), "PracticeID") == _expected(sandbox, "Practices")
    assert len(sandbox.data_log("Practices")) == math.ceil(rows / 7) + (1 if rows % 7 == 0 else 0)


def test_numbers_keep_their_exact_decimal_text_in_the_singer_output(sandbox: SandboxServer) -> None:
    output = run_tap(tap_config(sandbox, views=["Type_Showcase"]))

    lines = {
        json.loads(line)["record"]["RowID"]: line
        for line in output.lines
        if '"type":"RECORD"' in line.replace(" ", "")
    }
    assert '"Amount":606.67' in lines[1]
    assert '"Amount":999999999999.99' in lines[4]
    assert '"Measure":123456789012.12346' in lines[4]
    assert '"Whole":2147483647' in lines[4]
    assert '"Whole":-2147483648' in lines[5]
    assert '"Amount":-0.01' in lines[5]


def test_showcase_values_are_converted_exactly(sandbox: SandboxServer) -> None:
    output = run_tap(tap_config(sandbox, views=["Type_Showcase"], timezone="America/New_York"))

    rows = by_key(output.records("Type_Showcase"), "RowID")
    assert rows[1]["Happened"] == "2024-06-01T12:30:00-04:00"
    assert rows[1]["Stamped"] == "2024-06-01T12:30:00+10:00"
    assert rows[1]["Tags"] == ["a", "b"]
    assert rows[1]["Scores"] == [1, Decimal("2.5")]
    assert rows[1]["Milestones"] == ["2024-01-01T00:00:00-05:00"]
    assert rows[2]["ShortText"] is None and rows[2]["Tags"] is None and rows[2]["Flag"] is False
    assert rows[3]["ShortText"] == "" and rows[3]["Tags"] == [] and rows[3]["Milestones"] == []
    assert rows[6]["ShortText"] == "Zoë 'single' \"double\" back\\slash"
    assert rows[6]["LongText"] == "Line 1\nLine 2\r\nTabs\tand emoji 😀👩🏽‍⚕️ 中文 עברית"
    assert rows[7]["ShortText"] == "NUL\x00inside"
    assert rows[8]["Happened"] == "2024-02-29T23:59:59.999-05:00"
    assert rows[8]["Stamped"] == "2024-10-06T02:30:00.5+10:00"
    assert rows[8]["Milestones"] == ["2023-12-31T23:59:59-05:00", "2024-03-10T02:30:00-05:00"]
    assert rows[9]["Tags"] == ["b", "j"]
    assert rows[10]["Scores"] == [Decimal("12345678901234"), Decimal("1e-9")]
    assert len(rows[10]["LongText"]) == 6000


def test_provider_values_use_the_timestamp_zone_from_field_metadata(sandbox: SandboxServer) -> None:
    output = run_tap(tap_config(sandbox, views=["Providers"], timezone="Europe/Berlin"))

    record = by_key(output.records("Providers"), "ProviderID")[1]
    raw = next(r for r in sandbox.rows("Providers") if r["ProviderID"] == 1)
    assert record == _expected(sandbox, "Providers", "Europe/Berlin")[1]
    assert record["LastUpdated"].startswith(raw["LastUpdated"])
    assert record["LastUpdated"][-6:] in ("-05:00", "-04:00")
    assert record["CreatedOn"][-6:] in ("-08:00", "-07:00")
    assert record["VerifiedDate"][-6:] in ("+01:00", "+02:00")


def test_xml_and_json_runs_emit_identical_records(
    sandbox: SandboxServer, full_sync: Output
) -> None:
    xml = run_tap(tap_config(sandbox, response_format="xml"))

    for view in sandbox.views():
        key = _key(sandbox, view)
        got, want = by_key(xml.records(view), key), by_key(full_sync.records(view), key)
        if view == "Type_Showcase":
            want[7] = want[7] | {"ShortText": "NULinside", "LongText": "control  chars"}
        assert got == want, view


def test_xml_run_asks_caspio_for_xml(sandbox: SandboxServer) -> None:
    sandbox.clear_log()

    run_tap(tap_config(sandbox, views=["Practices"], response_format="xml"))

    assert [e["status"] for e in sandbox.data_log("Practices")] == [200]


def test_v2_sync_reads_every_row_keyed_by_pk_id(sandbox: SandboxServer) -> None:
    sandbox.clear_log()

    output = run_tap(tap_config(sandbox, api_version="v2", views=["Practices"]))

    records = by_key(output.records("Practices"), "PK_ID")
    assert sorted(records) == sorted(str(r["PracticeID"]) for r in sandbox.rows("Practices"))
    paths = {e["path"] for e in sandbox.log if e["path"] != "/oauth/token"}
    assert all(p.startswith("/rest/v2/") for p in paths)
    assert sandbox.data_log("Practices")[-1]["query"]["q.select"] == "COUNT(*) AS n"


def test_user_where_filter_is_combined_with_keyset_paging(sandbox: SandboxServer) -> None:
    sandbox.clear_log()
    config = tap_config(
        sandbox,
        views=["Providers"],
        page_size=50,
        view_overrides={"Providers": {"where": "LicenseState = N'CA' OR LastName LIKE N'O''%'"}},
    )

    output = run_tap(config)

    wanted = {
        r["ProviderID"]
        for r in sandbox.rows("Providers")
        if r["LicenseState"] == "CA" or r["LastName"].startswith("O'")
    }
    assert sorted(r["ProviderID"] for r in output.records("Providers")) == sorted(wanted)
    later = sandbox.data_log("Providers")[1]["query"]["q.where"]
    assert later.startswith("(LicenseState = N'CA' OR LastName LIKE N'O''%') AND (")


def test_a_server_answering_fast_is_read_page_after_page_even_when_parallel_is_allowed(
    fresh_sandbox: SandboxServer,
) -> None:
    output = run_tap(
        tap_config(fresh_sandbox, views=["Practices"], page_size=5, max_parallel_requests=4)
    )

    records = output.records("Practices")
    assert by_key(records, "PracticeID") == _expected(fresh_sandbox, "Practices")
    queries = [e["query"] for e in fresh_sandbox.data_log("Practices")]
    assert not any("COUNT(*)" in q.get("q.select", "") for q in queries)
    assert len(queries) == len(records) // 5 + 1


def test_large_view_is_read_as_key_ranges_side_by_side_and_emitted_in_order(
    fresh_sandbox: SandboxServer,
) -> None:
    sandbox = fresh_sandbox
    sandbox.faults.latency = 0.1

    output = run_tap(tap_config(sandbox, views=["Practices"], page_size=5, max_parallel_requests=4))

    records = output.records("Practices")
    assert by_key(records, "PracticeID") == _expected(sandbox, "Practices")
    raw = {r["PracticeID"]: r["LastModified"] for r in sandbox.rows("Practices")}
    order = [(datetime.fromisoformat(raw[r["PracticeID"]]), r["PracticeID"]) for r in records]
    assert order == sorted(order)
    queries = [e["query"] for e in sandbox.data_log("Practices")]
    assert "q.select" not in queries[1]  # a second page, in order, whose time decides
    assert queries[2]["q.select"] == "COUNT(*) AS n, MAX(LastModified) AS hi"
    ranged = [q for q in queries[3:] if "LastModified <= " in q.get("q.where", "")]
    assert len(ranged) > 10
    assert len(queries) < len(records) / 5 * 1.5
    bookmark = output.last_state["bookmarks"]["Practices"]["replication_key_value"]
    assert bookmark == records[-1]["LastModified"]
