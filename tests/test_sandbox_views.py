"""Both REST bases: listing and describing views, v3 field metadata, PASSWORD fields."""

from __future__ import annotations

import pytest

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import V2, V3, get, records, result

VIEWS = ["Providers", "Practices", "Provider_Locations", "Type_Showcase"]
EVERY_TYPE = {
    "STRING",
    "TEXT",
    "NUMBER",
    "CURRENCY",
    "INTEGER",
    "AUTONUMBER",
    "DATE/TIME",
    "TIMESTAMP",
    "YES/NO",
    "LIST-STRING",
    "LIST-NUMBER",
    "LIST-DATE/TIME",
    "FILE",
    "ATTACHMENT",
    "RANDOM ID",
    "PREFIXED AUTONUMBER",
    "GUID",
    "PASSWORD",
}


@pytest.mark.parametrize("base", [V3, V2])
def test_both_bases_list_every_view_in_its_defined_case(sandbox: SandboxServer, base: str) -> None:
    assert result(get(sandbox, "/views", base=base)) == VIEWS


@pytest.mark.parametrize("base", [V3, V2])
@pytest.mark.parametrize(
    "asked", ["provider_locations", "PROVIDER_LOCATIONS", "Provider_Locations"]
)
def test_describe_matches_the_view_name_case_insensitively_and_answers_in_the_defined_case(
    sandbox: SandboxServer, base: str, asked: str
) -> None:
    described = result(get(sandbox, f"/views/{asked}", base=base))

    assert described == {
        "Name": "Provider_Locations",
        "Note": "Providers joined to the practices they work at",
    }


def test_v3_fields_describe_every_field_in_display_order(sandbox: SandboxServer) -> None:
    fields = result(get(sandbox, "/views/providers/fields"))

    assert fields == sandbox.fields("Providers")
    assert [f["DisplayOrder"] for f in fields] == list(range(1, 24))
    assert fields[0] == {
        "Name": "ProviderID",
        "TableFieldName": "Providers.ProviderID",
        "Type": "AUTONUMBER",
        "Unique": True,
        "UniqueAllowNulls": False,
        "Editable": False,
        "Description": None,
        "DisplayOrder": 1,
        "Label": "Provider ID",
        "IsFormula": False,
    }


def test_v3_fields_cover_every_caspio_field_type_across_the_views(sandbox: SandboxServer) -> None:
    types = {f["Type"] for view in VIEWS for f in result(get(sandbox, f"/views/{view}/fields"))}

    assert types == EVERY_TYPE


def test_v3_fields_carry_the_properties_of_their_type(sandbox: SandboxServer) -> None:
    practices = {f["Name"]: f for f in result(get(sandbox, "/views/Practices/fields"))}
    providers = {f["Name"]: f for f in result(get(sandbox, "/views/Providers/fields"))}
    locations = result(get(sandbox, "/views/Provider_Locations/fields"))

    assert providers["LastUpdated"]["TimeZone"] == "Eastern Standard Time"
    assert (providers["LastUpdated"]["OnInsert"], providers["LastUpdated"]["OnUpdate"]) == (
        True,
        True,
    )
    assert providers["CreatedOn"]["OnUpdate"] is False
    assert providers["Specialties"]["ListField"]["3"] == "Pediatrics"
    assert len(providers["Specialties"]["ListField"]) == 15
    assert providers["FullName"]["IsFormula"] is True
    assert practices["PracticeCode"]["Format"] == "AlphaNumeric"
    assert practices["PracticeCode"]["Length"] == 8
    assert (practices["Reference"]["Prefix"], practices["Reference"]["Length"]) == ("PR-", 6)
    assert [f["TableFieldName"] for f in locations[:2]] == [
        "Providers.ProviderID",
        "Practices.PracticeID",
    ]
    assert "PK_ID" not in [f["Name"] for f in locations]


def test_v2_has_no_fields_endpoint(sandbox: SandboxServer) -> None:
    response = get(sandbox, "/views/Providers/fields", base=V2)

    assert response.status_code == 404
    assert response.json()["Code"] == "ObjectNotFound"


@pytest.mark.parametrize("base", [V3, V2])
def test_records_are_served_on_both_bases(sandbox: SandboxServer, base: str) -> None:
    rows = result(records(sandbox, "Practices", {"q.orderBy": "PracticeID"}, base=base))

    assert rows == sandbox.rows("Practices")[:100]


def test_password_fields_never_appear_in_records(sandbox: SandboxServer) -> None:
    providers = result(records(sandbox, "Providers", {"q.limit": 1000}))
    showcase = result(records(sandbox, "Type_Showcase"))

    assert len(providers) == 1000
    assert all("PortalPassword" not in row for row in providers)
    assert len(showcase) == 10
    assert all("Secret" not in row for row in showcase)


@pytest.mark.parametrize(
    "select",
    ["PortalPassword", "ProviderID, portalpassword", "PortalPassword AS p", "MAX(PortalPassword)"],
)
def test_selecting_a_password_field_is_refused(sandbox: SandboxServer, select: str) -> None:
    response = records(sandbox, "Providers", {"q.select": select})

    assert response.status_code == 400
    assert response.json()["Code"] == "IncorrectQueryParameter"
