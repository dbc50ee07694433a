"""q.where: T-SQL clauses, checked against the same filter computed in Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import pk_id, records, result

Row = dict[str, Any]


def _matching(server: SandboxServer, where: str, view: str = "Providers") -> list[Any]:
    """Every key the clause selects, in key order, read page by page."""
    key = server.key_of(view)
    keys: list[Any] = []
    number = 1
    while True:
        params = {"q.where": where, "q.orderBy": key, "q.select": key}
        page = result(records(server, view, params | {"q.pageNumber": number, "q.pageSize": 1000}))
        keys.extend(row[key] for row in page)
        if len(page) < 1000:
            return keys
        number += 1


def _expected(
    server: SandboxServer, keep: Callable[[Row], bool], view: str = "Providers"
) -> list[Any]:
    key = server.key_of(view)
    if key == "PK_ID":
        return sorted(pk_id(view, row, server) for row in server.rows(view) if keep(row))
    return sorted(row[key] for row in server.rows(view) if keep(row))


def _lower(value: str | None) -> str:
    return (value or "").lower()


CASES: list[tuple[str, Callable[[Row], bool]]] = [
    (
        "YearsInPractice >= 20",
        lambda r: r["YearsInPractice"] is not None and r["YearsInPractice"] >= 20,
    ),
    (
        "YearsInPractice < 3",
        lambda r: r["YearsInPractice"] is not None and r["YearsInPractice"] < 3,
    ),
    (
        "YearsInPractice <> 10",
        lambda r: r["YearsInPractice"] is not None and r["YearsInPractice"] != 10,
    ),
    (
        "YearsInPractice != 10",
        lambda r: r["YearsInPractice"] is not None and r["YearsInPractice"] != 10,
    ),
    (
        "20 <= YearsInPractice",
        lambda r: r["YearsInPractice"] is not None and r["YearsInPractice"] >= 20,
    ),
    ("VisitFee > 500.5", lambda r: r["VisitFee"] is not None and r["VisitFee"] > 500.5),
    ("Rating BETWEEN 2 AND 3.5", lambda r: 2 <= r["Rating"] <= 3.5),
    ("Rating NOT BETWEEN 2 AND 3.5", lambda r: not 2 <= r["Rating"] <= 3.5),
    ("ProviderID BETWEEN 100 AND 199", lambda r: 100 <= r["ProviderID"] <= 199),
    ("LicenseState = N'CA'", lambda r: r["LicenseState"] == "CA"),
    ("LicenseState = 'ny'", lambda r: r["LicenseState"] == "NY"),
    ("licensestate = 'Tx'", lambda r: r["LicenseState"] == "TX"),
    ("LastName = N'O''Connor'", lambda r: r["LastName"] == "O'Connor"),
    ("FullName = N'Zoë O''Connor'", lambda r: r["FullName"] == "Zoë O'Connor"),
    (
        "Notes = 'O''Neil''s clinic moved; see practice record.'",
        lambda r: r["Notes"].startswith("O'Neil"),
    ),
    ("Notes = ''", lambda r: r["Notes"] == ""),
    ("PrimarySpecialty <> ''", lambda r: r["PrimarySpecialty"] != ""),
    ("Credential IN ('MD', 'DO')", lambda r: r["Credential"] in ("MD", "DO")),
    ("Credential NOT IN (N'MD', N'DO', 'NP')", lambda r: r["Credential"] not in ("MD", "DO", "NP")),
    ("ProviderID IN (1, 5, 2500, 9999)", lambda r: r["ProviderID"] in (1, 5, 2500)),
    ("LastName LIKE 'S%'", lambda r: _lower(r["LastName"]).startswith("s")),
    ("FullName LIKE '%an%'", lambda r: "an" in _lower(r["FullName"])),
    ("LastName NOT LIKE '%e%'", lambda r: "e" not in _lower(r["LastName"])),
    ("Credential LIKE 'P_-C'", lambda r: r["Credential"] == "PA-C"),
    ("VisitFee IS NULL", lambda r: r["VisitFee"] is None),
    ("LicenseExpiration IS NOT NULL", lambda r: r["LicenseExpiration"] is not None),
    (
        "Photo IS NULL AND YearsInPractice IS NULL",
        lambda r: r["Photo"] is None and r["YearsInPractice"] is None,
    ),
    ("AcceptingNewPatients = 1", lambda r: r["AcceptingNewPatients"] is True),
    ("AcceptingNewPatients = 0", lambda r: r["AcceptingNewPatients"] is False),
    (
        "VerifiedDate >= '2025-01-01 00:00:00'",
        lambda r: r["VerifiedDate"] >= "2025-01-01T00:00:00",
    ),
    (
        "VerifiedDate < '2024-03-01T12:00:00'",
        lambda r: r["VerifiedDate"] < "2024-03-01T12:00:00",
    ),
    (
        "LastUpdated BETWEEN '2024-06-01 00:00:00' AND '2024-06-30 23:59:59'",
        lambda r: "2024-06-01T00:00:00" <= r["LastUpdated"] <= "2024-06-30T23:59:59",
    ),
    (
        "(LicenseState = 'CA' OR LicenseState = 'NY') AND NOT AcceptingNewPatients = 1",
        lambda r: r["LicenseState"] in ("CA", "NY") and not r["AcceptingNewPatients"],
    ),
    (
        "LicenseState = 'CA' OR LicenseState = 'NY' AND YearsInPractice > 30",
        lambda r: (
            r["LicenseState"] == "CA"
            or (
                r["LicenseState"] == "NY"
                and r["YearsInPractice"] is not None
                and r["YearsInPractice"] > 30
            )
        ),
    ),
    (
        "NOT (ProviderID > 10)",
        lambda r: r["ProviderID"] <= 10,
    ),
    (
        "((ProviderID < 50) AND (LicenseStatus = 'Active' OR LicenseStatus = 'Retired'))",
        lambda r: r["ProviderID"] < 50 and r["LicenseStatus"] in ("Active", "Retired"),
    ),
    ("[LicenseType] = 'Dentist'", lambda r: r["LicenseType"] == "Dentist"),
]


@pytest.mark.parametrize(("where", "keep"), CASES, ids=[case[0] for case in CASES])
def test_where_clause_selects_exactly_the_rows_python_selects(
    sandbox: SandboxServer, where: str, keep: Callable[[Row], bool]
) -> None:
    expected = _expected(sandbox, keep)

    assert _matching(sandbox, where) == expected
    assert len(expected) > 0


def test_where_on_a_text_field_keeps_newlines(sandbox: SandboxServer) -> None:
    expected = _expected(sandbox, lambda r: r["Notes"] == "Line one\nLine two\nLine three")

    assert _matching(sandbox, "Notes = 'Line one\nLine two\nLine three'") == expected
    assert len(expected) > 0


def test_where_on_the_join_view_filters_on_table_prefixed_fields(sandbox: SandboxServer) -> None:
    expected = _expected(
        sandbox,
        lambda r: r["Provider_Practice_Location_Links_IsPrimaryLocation"] is False,
        "Provider_Locations",
    )

    found = _matching(
        sandbox, "Provider_Practice_Location_Links_IsPrimaryLocation = 0", "Provider_Locations"
    )

    assert found == expected


def test_where_on_pk_id_of_the_join_view_matches_the_joined_keys(sandbox: SandboxServer) -> None:
    first = sandbox.rows("Provider_Locations")[0]
    wanted = f"{first['Providers_ProviderID']},{first['Practices_PracticeID']}"

    rows = result(
        records(
            sandbox,
            "Provider_Locations",
            {"q.where": f"PK_ID = '{wanted}'", "q.select": "PK_ID, Providers_LastName"},
        )
    )

    assert rows == [{"PK_ID": wanted, "Providers_LastName": first["Providers_LastName"]}]


def test_where_with_getpaginationinfo_counts_the_filter(sandbox: SandboxServer) -> None:
    expected = len(_expected(sandbox, lambda r: r["LicenseState"] == "WA"))

    body = records(
        sandbox,
        "Providers",
        {"q.where": "LicenseState = 'WA'", "q.getPaginationInfo": "true", "q.pageSize": 5},
    ).json()

    assert body["Pagination"]["TotalCount"] == expected


@pytest.mark.parametrize(
    "where",
    [
        "NoSuchField = 1",
        "ProviderID >",
        "ProviderID = = 1",
        "(ProviderID = 1",
        "ProviderID = 1)",
        "ProviderID = 1 AND",
        "LastName = 'unterminated",
        "ProviderID ; DROP TABLE x",
        "VerifiedDate > 'yesterday'",
        "VerifiedDate > '2024-13-40 00:00:00'",
        "VerifiedDate > 5",
        "YearsInPractice = 'ten'",
        "Specialties IS NULL",
        "LastName",
    ],
)
def test_bad_where_clause_is_refused_as_sql_server_error(
    sandbox: SandboxServer, where: str
) -> None:
    response = records(sandbox, "Providers", {"q.where": where})

    assert response.status_code == 400
    assert response.json()["Code"] == "SqlServerError"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q.select": "NoSuchField"}, "SqlServerError"),
        ({"q.select": "ProviderID,,LastName"}, "SqlServerError"),
        ({"q.select": "LastName + FirstName"}, "SqlServerError"),
        ({"q.select": "SUM(*)"}, "SqlServerError"),
        ({"q.select": "MIN(Specialties)"}, "SqlServerError"),
        ({"q.select": "LastName, COUNT(*)"}, "SqlServerError"),
        ({"q.orderBy": "NoSuchField"}, "SqlServerError"),
        ({"q.orderBy": "ProviderID SIDEWAYS"}, "SqlServerError"),
        ({"q.orderBy": "Specialties"}, "SqlServerError"),
        ({"q.groupBy": "NoSuchField", "q.select": "COUNT(*)"}, "SqlServerError"),
    ],
)
def test_bad_select_order_or_group_is_refused(
    sandbox: SandboxServer, params: dict[str, str], code: str
) -> None:
    response = records(sandbox, "Providers", params)

    assert response.status_code == 400
    assert response.json()["Code"] == code
