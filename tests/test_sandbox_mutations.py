"""Rows changing while a client reads: the server API and the mutate faults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import bearer, records, result


def _page(server: SandboxServer, number: int, size: int, headers: dict[str, str]) -> list[int]:
    params = {
        "q.orderBy": "ProviderID",
        "q.select": "ProviderID",
        "q.pageNumber": number,
        "q.pageSize": size,
    }
    return [r["ProviderID"] for r in result(records(server, "Providers", params, headers))]


def test_insert_adds_rows_with_new_keys_seen_by_the_api(fresh_sandbox: SandboxServer) -> None:
    keys = fresh_sandbox.insert("Providers", 3)

    assert keys == [601, 602, 603]
    assert [r["ProviderID"] for r in fresh_sandbox.rows("Providers")][-3:] == keys
    assert fresh_sandbox.mutations.inserted == {"Providers": [601, 602, 603]}
    found = result(
        records(
            fresh_sandbox, "Providers", {"q.where": "ProviderID > 600", "q.orderBy": "ProviderID"}
        )
    )
    assert found == fresh_sandbox.rows("Providers")[-3:]
    for row in found:
        # Both stamped now on insert: CreatedOn in Pacific time, LastUpdated in Eastern time.
        pacific = datetime.fromisoformat(row["CreatedOn"])
        eastern = datetime.fromisoformat(row["LastUpdated"])
        assert round((eastern - pacific).total_seconds() / 3600) == 3


def test_keys_are_never_reused_after_the_highest_row_is_deleted(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.delete("Practices", [150])

    assert fresh_sandbox.insert("Practices", 1) == [151]
    assert fresh_sandbox.mutations.deleted == {"Practices": [150]}


def test_delete_removes_rows_from_records_counts_and_ground_truth(
    fresh_sandbox: SandboxServer,
) -> None:
    fresh_sandbox.delete("Providers", [1, 2, 999])

    counted = result(records(fresh_sandbox, "Providers", {"q.select": "COUNT(*) AS n"}))
    first = _page(fresh_sandbox, 1, 5, bearer(fresh_sandbox))

    assert counted == [{"n": 598}]
    assert first == [3, 4, 5, 6, 7]
    assert len(fresh_sandbox.rows("Providers")) == 598
    assert fresh_sandbox.mutations.deleted == {"Providers": [1, 2]}


def test_delete_by_pk_id_on_the_join_view(fresh_sandbox: SandboxServer) -> None:
    row = fresh_sandbox.rows("Provider_Locations")[0]
    key = f"{row['Providers_ProviderID']},{row['Practices_PracticeID']}"

    fresh_sandbox.delete("Provider_Locations", [key])

    found = records(fresh_sandbox, "Provider_Locations", {"q.where": f"PK_ID = '{key}'"})
    assert result(found) == []
    assert len(fresh_sandbox.rows("Provider_Locations")) == 449


def test_update_changes_records_filters_and_moves_the_on_update_stamp(
    fresh_sandbox: SandboxServer,
) -> None:
    before = fresh_sandbox.rows("Providers")[9]
    headers = bearer(fresh_sandbox)
    # Filter on LastName once before the change, and on Credential only after it.
    assert (
        result(records(fresh_sandbox, "Providers", {"q.where": "LastName = 'Zzyzx'"}, headers))
        == []
    )

    after = fresh_sandbox.update("Providers", 10, {"lastname": "Zzyzx", "Credential": "XX"})

    assert after["LastName"] == "Zzyzx"
    assert "lastname" not in after
    assert after["LastUpdated"] > before["LastUpdated"]
    assert after["CreatedOn"] == before["CreatedOn"]
    by_name = result(
        records(fresh_sandbox, "Providers", {"q.where": "LastName = 'Zzyzx'"}, headers)
    )
    by_credential = result(
        records(fresh_sandbox, "Providers", {"q.where": "Credential = 'XX'"}, headers)
    )
    assert by_name == by_credential == [after]
    assert fresh_sandbox.rows("Providers")[9] == after


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"NoSuchField": 1}, KeyError),
        ({"PortalPassword": "x"}, KeyError),
        ({"providerid": 7}, ValueError),
    ],
)
def test_update_refuses_fields_the_view_does_not_return(
    fresh_sandbox: SandboxServer, changes: dict[str, Any], error: type[Exception]
) -> None:
    before = fresh_sandbox.rows("Providers")[9]

    with pytest.raises(error):
        fresh_sandbox.update("Providers", 10, changes)

    assert fresh_sandbox.rows("Providers")[9] == before


def test_update_of_an_unknown_key_is_refused(fresh_sandbox: SandboxServer) -> None:
    with pytest.raises(KeyError, match="no row whose ProviderID is 9999"):
        fresh_sandbox.update("Providers", 9999, {"LastName": "X"})


def test_insert_into_a_join_view_is_refused(fresh_sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError, match="cannot be inserted into"):
        fresh_sandbox.insert("Provider_Locations", 1)


def test_deleting_a_row_between_pages_makes_page_number_paging_skip_one(
    fresh_sandbox: SandboxServer,
) -> None:
    headers = bearer(fresh_sandbox)
    first = _page(fresh_sandbox, 1, 10, headers)

    fresh_sandbox.delete("Providers", [first[0]])
    second = _page(fresh_sandbox, 2, 10, headers)

    assert first == list(range(1, 11))
    assert second == list(range(12, 22))
    assert 11 not in first + second


def test_mutate_faults_change_the_view_after_each_page_and_paging_misses_rows(
    fresh_sandbox: SandboxServer,
) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.mutate_view = "Providers"
    fresh_sandbox.faults.mutate_deletes = 2
    fresh_sandbox.faults.mutate_inserts = 1

    pages: list[list[int]] = []
    while True:
        pages.append(_page(fresh_sandbox, len(pages) + 1, 100, headers))
        if not pages[-1]:
            break

    deleted = fresh_sandbox.mutations.deleted["Providers"]
    inserted = fresh_sandbox.mutations.inserted["Providers"]
    assert len(deleted) == 2 * len(pages)
    assert inserted == list(range(601, 601 + len(pages)))
    # Replay: page-number paging over the key order, the view changing after each page.
    keys, expected = list(range(1, 601)), []
    for number in range(1, len(pages) + 1):
        expected.append(keys[(number - 1) * 100 : number * 100])
        gone = set(deleted[2 * (number - 1) : 2 * number])
        keys = [key for key in keys if key not in gone] + [inserted[number - 1]]
    assert pages == expected
    assert [row["ProviderID"] for row in fresh_sandbox.rows("Providers")] == keys
    seen = {key for page in pages for key in page}
    never_deleted = set(range(1, 601)) - set(deleted)
    missed = never_deleted - seen
    assert missed == {key for key in never_deleted if key not in {k for p in expected for k in p}}
    assert len(missed) > 0


def test_mutate_faults_apply_only_to_their_view(fresh_sandbox: SandboxServer) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.mutate_view = "providers"
    fresh_sandbox.faults.mutate_deletes = 1

    records(fresh_sandbox, "Practices", headers=headers)
    records(fresh_sandbox, "Practices", headers=headers)
    records(fresh_sandbox, "Providers", headers=headers)

    assert list(fresh_sandbox.mutations.deleted) == ["Providers"]
    assert len(fresh_sandbox.mutations.deleted["Providers"]) == 1
    assert len(fresh_sandbox.rows("Practices")) == 150


def test_mutate_fault_on_a_view_without_inserts_still_answers_and_deletes(
    fresh_sandbox: SandboxServer,
) -> None:
    headers = bearer(fresh_sandbox)
    fresh_sandbox.faults.mutate_view = "Provider_Locations"
    fresh_sandbox.faults.mutate_deletes = 3
    fresh_sandbox.faults.mutate_inserts = 1

    response = records(fresh_sandbox, "Provider_Locations", headers=headers)

    assert response.status_code == 200
    assert len(fresh_sandbox.mutations.deleted["Provider_Locations"]) == 3
    assert len(fresh_sandbox.rows("Provider_Locations")) == 447
    assert "cannot be inserted into" in fresh_sandbox.data_log()[-1]["mutation_error"]
