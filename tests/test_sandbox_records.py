"""Reading records: q.select, q.orderBy, q.limit, paging, pagination info, names' case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import V2, pk_id, records, result

VIEWS = ["Providers", "Practices", "Provider_Locations", "Type_Showcase"]


def _by_key(server: SandboxServer, view: str = "Providers") -> list[dict[str, Any]]:
    key = server.key_of(view)
    return sorted(server.rows(view), key=lambda row: row[key])


def test_select_lists_fields_in_the_order_asked(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox, "Providers", {"q.select": "LastName, ProviderID", "q.orderBy": "ProviderID"}
        )
    )

    expected = [
        {"LastName": r["LastName"], "ProviderID": r["ProviderID"]} for r in _by_key(sandbox)
    ]
    assert rows == expected[:100]
    assert list(rows[0]) == ["LastName", "ProviderID"]


def test_select_aliases_rename_fields(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "Providers",
            {"q.select": "ProviderID AS id, LicenseState as state", "q.orderBy": "ProviderID"},
        )
    )

    first = _by_key(sandbox)[0]
    assert rows[0] == {"id": first["ProviderID"], "state": first["LicenseState"]}


def test_select_star_returns_every_field_but_passwords_as_the_ground_truth(
    sandbox: SandboxServer,
) -> None:
    rows = result(records(sandbox, "Providers", {"q.select": "*", "q.orderBy": "ProviderID"}))

    assert rows == _by_key(sandbox)[:100]
    assert len(rows[0]) == 22


def test_select_pk_id_on_the_join_view_gives_the_source_keys_joined_by_a_comma(
    sandbox: SandboxServer,
) -> None:
    rows = result(
        records(
            sandbox,
            "Provider_Locations",
            {
                "q.select": "PK_ID, Providers_ProviderID, Practices_PracticeID",
                "q.orderBy": "Providers_ProviderID, Practices_PracticeID, PK_ID",
                "q.limit": 1000,
            },
        )
    )

    truth = sorted(
        sandbox.rows("Provider_Locations"),
        key=lambda r: (r["Providers_ProviderID"], r["Practices_PracticeID"]),
    )[:1000]
    assert rows == [
        {
            "PK_ID": f"{r['Providers_ProviderID']},{r['Practices_PracticeID']}",
            "Providers_ProviderID": r["Providers_ProviderID"],
            "Practices_PracticeID": r["Practices_PracticeID"],
        }
        for r in truth
    ]
    assert rows[0]["PK_ID"].startswith("1,")


def test_select_pk_id_on_a_table_view_is_its_key_as_text(sandbox: SandboxServer) -> None:
    rows = result(records(sandbox, "Practices", {"q.select": "PK_ID", "q.orderBy": "PracticeID"}))

    assert rows[:3] == [{"PK_ID": "1"}, {"PK_ID": "2"}, {"PK_ID": "3"}]


def test_count_min_and_max_with_aliases_summarise_the_view(sandbox: SandboxServer) -> None:
    truth = sandbox.rows("Providers")
    fees = [r["VisitFee"] for r in truth if r["VisitFee"] is not None]
    verified = [r["VerifiedDate"] for r in truth]

    rows = result(
        records(
            sandbox,
            "Providers",
            {
                "q.select": "COUNT(*) AS n, MIN(VisitFee) AS cheapest, MAX(VisitFee) AS dearest, "
                "MIN(VerifiedDate) AS first_check, MAX(VerifiedDate) AS last_check, "
                "COUNT(VisitFee) AS priced"
            },
        )
    )

    assert rows == [
        {
            "n": 2500,
            "cheapest": min(fees),
            "dearest": max(fees),
            "first_check": min(verified),
            "last_check": max(verified),
            "priced": len(fees),
        }
    ]


def test_count_with_a_where_clause_counts_the_matching_rows(sandbox: SandboxServer) -> None:
    expected = sum(1 for r in sandbox.rows("Providers") if r["LicenseState"] == "CA")

    rows = result(
        records(sandbox, "Providers", {"q.select": "COUNT(*) AS n", "q.where": "LicenseState='CA'"})
    )

    assert rows == [{"n": expected}]


def test_aggregate_without_alias_is_named_by_position(sandbox: SandboxServer) -> None:
    rows = result(records(sandbox, "Practices", {"q.select": "COUNT(*), MAX(PracticeID)"}))

    assert rows == [{"Expr1": 625, "Expr2": 625}]


def test_group_by_counts_each_group_in_group_order(sandbox: SandboxServer) -> None:
    counts: dict[str, int] = {}
    for row in sandbox.rows("Providers"):
        counts[row["Credential"]] = counts.get(row["Credential"], 0) + 1

    rows = result(
        records(
            sandbox,
            "Providers",
            {"q.select": "Credential, COUNT(*) AS n", "q.groupBy": "Credential"},
        )
    )

    assert rows == [
        {"Credential": k, "n": counts[k]} for k in sorted(counts, key=lambda k: k.lower())
    ]


def test_order_by_several_fields_ascending_and_descending(sandbox: SandboxServer) -> None:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        years = row["YearsInPractice"]
        # SQL Server's order: NULLs first ascending, so last descending.
        return (row["LicenseState"], years is None, -(years or 0), row["ProviderID"])

    rows = result(
        records(
            sandbox,
            "Providers",
            {
                "q.select": "ProviderID",
                "q.orderBy": "LicenseState ASC, YearsInPractice DESC, ProviderID",
                "q.limit": 1000,
            },
        )
    )

    expected = sorted(sandbox.rows("Providers"), key=key)[:1000]
    assert [r["ProviderID"] for r in rows] == [r["ProviderID"] for r in expected]


def test_order_by_descending_key(sandbox: SandboxServer) -> None:
    rows = result(
        records(sandbox, "Providers", {"q.select": "ProviderID", "q.orderBy": "ProviderID DESC"})
    )

    assert [r["ProviderID"] for r in rows] == list(range(2500, 2400, -1))


def test_limit_defaults_to_100_rows(sandbox: SandboxServer) -> None:
    assert len(result(records(sandbox, "Providers"))) == 100


def test_limit_returns_up_to_1000_rows(sandbox: SandboxServer) -> None:
    assert len(result(records(sandbox, "Providers", {"q.limit": 1000}))) == 1000
    assert len(result(records(sandbox, "Providers", {"q.limit": 7}))) == 7


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_limit_outside_1_to_1000_is_refused(sandbox: SandboxServer, limit: str) -> None:
    response = records(sandbox, "Providers", {"q.limit": limit})

    assert response.status_code == 400
    assert response.json()["Code"] == "IncorrectQueryParameter"


def test_limit_is_ignored_when_a_page_number_is_sent(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "Providers",
            {"q.limit": 10, "q.pageNumber": 2, "q.orderBy": "ProviderID", "q.select": "ProviderID"},
        )
    )

    assert [r["ProviderID"] for r in rows] == list(range(26, 51))


def test_page_number_alone_pages_by_25(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "Providers",
            {"q.pageNumber": 3, "q.orderBy": "ProviderID", "q.select": "ProviderID"},
        )
    )

    assert [r["ProviderID"] for r in rows] == list(range(51, 76))


def test_page_size_alone_gives_the_first_page(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "Providers",
            {"q.pageSize": 40, "q.orderBy": "ProviderID", "q.select": "ProviderID"},
        )
    )

    assert [r["ProviderID"] for r in rows] == list(range(1, 41))


@pytest.mark.parametrize("size", ["4", "1001", "0", "-5", "x"])
def test_page_size_outside_5_to_1000_is_refused_with_incorrect_query_parameter(
    sandbox: SandboxServer, size: str
) -> None:
    response = records(sandbox, "Providers", {"q.pageSize": size, "q.pageNumber": 1})

    assert response.status_code == 400
    assert response.json()["Code"] == "IncorrectQueryParameter"


@pytest.mark.parametrize("size", [5, 1000])
def test_page_size_at_the_bounds_is_served(sandbox: SandboxServer, size: int) -> None:
    assert len(result(records(sandbox, "Providers", {"q.pageSize": size}))) == size


def test_page_number_zero_is_refused(sandbox: SandboxServer) -> None:
    response = records(sandbox, "Providers", {"q.pageNumber": 0})

    assert response.status_code == 400
    assert response.json()["Code"] == "IncorrectQueryParameter"


def test_pagination_info_on_v3_gives_total_count_page_number_and_size(
    sandbox: SandboxServer,
) -> None:
    body = records(
        sandbox,
        "Providers",
        {"q.pageNumber": 3, "q.pageSize": 7, "q.getPaginationInfo": "true", "q.orderBy": "NPI"},
    ).json()

    assert body["Pagination"] == {"TotalCount": 2500, "PageNumber": 3, "PageSize": 7}
    assert len(body["Result"]) == 7


def test_pagination_info_counts_only_matching_rows(sandbox: SandboxServer) -> None:
    expected = sum(1 for r in sandbox.rows("Providers") if r["AcceptingNewPatients"])

    body = records(
        sandbox,
        "Providers",
        {"q.where": "AcceptingNewPatients = 1", "q.getPaginationInfo": "True", "q.pageSize": 10},
    ).json()

    assert body["Pagination"] == {"TotalCount": expected, "PageNumber": 1, "PageSize": 10}


def test_pagination_info_without_paging_reports_the_limit(sandbox: SandboxServer) -> None:
    body = records(sandbox, "Practices", {"q.getPaginationInfo": "true"}).json()

    assert body["Pagination"] == {"TotalCount": 625, "PageNumber": 1, "PageSize": 100}


def test_pagination_info_is_absent_on_v2(sandbox: SandboxServer) -> None:
    body = records(
        sandbox, "Providers", {"q.getPaginationInfo": "true", "q.pageSize": 10}, base=V2
    ).json()

    assert list(body) == ["Result"]


def test_without_pagination_info_the_body_holds_only_the_result(sandbox: SandboxServer) -> None:
    assert list(records(sandbox, "Providers", {"q.pageSize": 10}).json()) == ["Result"]


def test_parameter_names_are_case_insensitive(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "Providers",
            {
                "Q.PAGESIZE": 7,
                "q.PageNumber": 2,
                "Q.orderby": "ProviderID",
                "q.SELECT": "ProviderID",
            },
        )
    )

    assert [r["ProviderID"] for r in rows] == list(range(8, 15))


def test_view_and_field_names_are_case_insensitive(sandbox: SandboxServer) -> None:
    rows = result(
        records(
            sandbox,
            "PROVIDERS",
            {
                "q.select": "providerid, LASTNAME",
                "q.orderBy": "PROVIDERID",
                "q.where": "providerid < 3",
            },
        )
    )

    truth = _by_key(sandbox)
    assert rows == [{"ProviderID": r["ProviderID"], "LastName": r["LastName"]} for r in truth[:2]]


def test_page_past_the_end_is_an_empty_result(sandbox: SandboxServer) -> None:
    response = records(sandbox, "Providers", {"q.pageNumber": 4, "q.pageSize": 1000})

    assert response.status_code == 200
    assert response.json() == {"Result": []}
    assert response.text == '{"Result":[]}'


def test_last_partial_page_holds_the_remainder(sandbox: SandboxServer) -> None:
    rows = result(
        records(sandbox, "Providers", {"q.pageNumber": 3, "q.pageSize": 1000, "q.orderBy": "NPI"})
    )

    assert len(rows) == 500


def test_without_order_by_identical_requests_return_rows_in_different_orders(
    sandbox: SandboxServer,
) -> None:
    params = {"q.select": "ProviderID", "q.limit": 1000}

    first = [r["ProviderID"] for r in result(records(sandbox, "Providers", params))]
    second = [r["ProviderID"] for r in result(records(sandbox, "Providers", params))]

    assert len(first) == len(second) == 1000
    assert first != second


def test_ordering_on_a_column_with_ties_orders_ties_differently_each_time(
    sandbox: SandboxServer,
) -> None:
    params = {"q.select": "ProviderID", "q.orderBy": "LicenseState", "q.limit": 1000}

    first = [r["ProviderID"] for r in result(records(sandbox, "Providers", params))]
    second = [r["ProviderID"] for r in result(records(sandbox, "Providers", params))]

    assert first != second


@pytest.mark.parametrize("view", VIEWS)
def test_paging_ordered_by_the_unique_key_returns_every_row_exactly_once(
    sandbox: SandboxServer, view: str
) -> None:
    key = sandbox.key_of(view)
    seen: list[dict[str, Any]] = []
    number = 1
    while True:
        page = result(
            records(sandbox, view, {"q.orderBy": key, "q.pageNumber": number, "q.pageSize": 400})
        )
        if not page:
            break
        seen.extend(page)
        number += 1

    truth = sandbox.rows(view)
    assert len(seen) == len(truth)
    assert sorted(json.dumps(r, sort_keys=True) for r in seen) == sorted(
        json.dumps(r, sort_keys=True) for r in truth
    )
    keys = [pk_id(view, row, sandbox) for row in seen]
    assert len(set(keys)) == len(keys)
    assert number == -(-len(truth) // 400) + 1


def test_keyset_paging_by_the_key_returns_every_row_once_in_key_order(
    sandbox: SandboxServer,
) -> None:
    seen: list[int] = []
    last = 0
    while True:
        page = result(
            records(
                sandbox,
                "Providers",
                {
                    "q.where": f"ProviderID > {last}",
                    "q.orderBy": "ProviderID",
                    "q.pageSize": 1000,
                    "q.select": "ProviderID",
                },
            )
        )
        if not page:
            break
        seen.extend(r["ProviderID"] for r in page)
        last = seen[-1]

    assert seen == list(range(1, 2501))


def test_keyset_bounds_at_or_between_keys_and_their_counts(sandbox: SandboxServer) -> None:
    body = records(
        sandbox,
        "Providers",
        {
            "q.where": "ProviderID >= 2497.5",
            "q.orderBy": "ProviderID",
            "q.select": "ProviderID",
            "q.getPaginationInfo": "true",
        },
    ).json()
    inclusive = result(
        records(
            sandbox,
            "Providers",
            {"q.where": "ProviderID >= 2498", "q.orderBy": "ProviderID", "q.select": "ProviderID"},
        )
    )

    assert [r["ProviderID"] for r in body["Result"]] == [2498, 2499, 2500]
    assert body["Pagination"] == {"TotalCount": 3, "PageNumber": 1, "PageSize": 100}
    assert [r["ProviderID"] for r in inclusive] == [2498, 2499, 2500]


def test_repeated_reads_after_changes_match_the_ground_truth(fresh_sandbox: SandboxServer) -> None:
    fresh_sandbox.delete("Providers", [5, 6, 7, 8, 9, 300])
    fresh_sandbox.update("Providers", 20, {"Notes": "changed"})
    fresh_sandbox.insert("Providers", 2)

    for _ in range(3):
        seen: list[dict[str, Any]] = []
        last = 0
        while True:
            page = result(
                records(
                    fresh_sandbox,
                    "Providers",
                    {
                        "q.where": f"ProviderID > {last}",
                        "q.orderBy": "ProviderID",
                        "q.pageSize": 50,
                    },
                )
            )
            if not page:
                break
            seen.extend(page)
            last = page[-1]["ProviderID"]
        by_number = [
            row
            for number in range(1, 14)
            for row in result(
                records(
                    fresh_sandbox,
                    "Providers",
                    {"q.orderBy": "ProviderID", "q.pageNumber": number, "q.pageSize": 50},
                )
            )
        ]
        assert seen == by_number == fresh_sandbox.rows("Providers")
        assert len(seen) == 596
        assert [r["ProviderID"] for r in seen if r["Notes"] == "changed"] == [20]
        assert [r["ProviderID"] for r in seen[:5]] == [1, 2, 3, 4, 10]
