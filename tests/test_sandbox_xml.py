"""`Accept: application/xml` for every kind of response."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree

from huey_sandbox.server import SandboxServer
from tests.test_sandbox_support import V2, V3, bearer, get, records

XML = {"Accept": "application/xml"}


def _xml(response: Any) -> Element:
    assert response.headers["Content-Type"].startswith("application/xml")
    return ElementTree.fromstring(response.content)


def _children(element: Element | None) -> list[Element]:
    assert element is not None
    return list(element)


def _headers(server: SandboxServer) -> dict[str, str]:
    return bearer(server) | XML


@pytest.mark.parametrize("base", [V3, V2])
def test_view_list_in_xml_names_each_view(sandbox: SandboxServer, base: str) -> None:
    root = _xml(get(sandbox, "/views", headers=_headers(sandbox), base=base))

    assert root.tag == "Response"
    assert [view.text for view in _children(root.find("Result"))] == sandbox.views()
    assert [view.tag for view in _children(root.find("Result"))] == ["View"] * 4


def test_describe_in_xml_gives_name_and_note(sandbox: SandboxServer) -> None:
    root = _xml(get(sandbox, "/views/practices", headers=_headers(sandbox)))

    assert root.findtext("Result/Name") == "Practices"
    assert root.findtext("Result/Note") == "Practice locations"


def test_fields_in_xml_describe_each_field_with_list_items(sandbox: SandboxServer) -> None:
    root = _xml(get(sandbox, "/views/Providers/fields", headers=_headers(sandbox)))

    fields = root.findall("Result/Field")
    assert [f.findtext("Name") for f in fields] == [f["Name"] for f in sandbox.fields("Providers")]
    specialties = next(f for f in fields if f.findtext("Name") == "Specialties")
    items = specialties.findall("ListField/item")
    assert len(items) == 15
    assert (items[2].get("Key"), items[2].get("Value")) == ("3", "Pediatrics")
    assert specialties.findtext("Type") == "LIST-STRING"
    assert specialties.find("Description") is None
    stamp = next(f for f in fields if f.findtext("Name") == "LastUpdated")
    assert stamp.findtext("TimeZone") == "Eastern Standard Time"
    assert stamp.findtext("OnUpdate") == "true"


def test_records_in_xml_are_rows_of_elements_named_after_fields(sandbox: SandboxServer) -> None:
    params = {"q.orderBy": "ProviderID", "q.limit": 3}
    json_rows = records(sandbox, "Providers", params).json()["Result"]

    root = _xml(records(sandbox, "Providers", params, headers=_headers(sandbox)))

    rows = root.findall("Result/Row")
    assert len(rows) == 3
    for row, expected in zip(rows, json_rows, strict=True):
        present = {name: value for name, value in expected.items() if value is not None}
        assert [child.tag for child in row] == list(present)
        assert row.findtext("ProviderID") == str(expected["ProviderID"])
        assert row.findtext("FullName") == expected["FullName"]
        assert row.findtext("AcceptingNewPatients") == str(expected["AcceptingNewPatients"]).lower()


def _showcase(server: SandboxServer) -> list[Element]:
    root = _xml(records(server, "Type_Showcase", {"q.orderBy": "RowID"}, headers=_headers(server)))
    return root.findall("Result/Row")


def test_xml_list_values_are_items_with_key_and_value(sandbox: SandboxServer) -> None:
    first = _showcase(sandbox)[0]

    assert [(i.get("Key"), i.get("Value")) for i in first.findall("Tags/item")] == [
        ("2", "b"),
        ("1", "a"),
    ]
    assert [(i.get("Key"), i.get("Value")) for i in first.findall("Scores/item")] == [
        ("1", "1"),
        ("2", "2.5"),
    ]
    assert first.findtext("Flag") == "true"
    assert first.findtext("Amount") == "606.67"


def test_xml_leaves_null_fields_out_and_keeps_empty_strings_as_empty_elements(
    sandbox: SandboxServer,
) -> None:
    rows = _showcase(sandbox)
    nulls, empties = rows[1], rows[2]

    assert [child.tag for child in nulls] == ["RowID", "Flag"]
    assert nulls.findtext("Flag") == "false"
    assert [child.tag for child in empties] == [
        "RowID",
        "ShortText",
        "LongText",
        "Flag",
        "Tags",
        "Scores",
        "Milestones",
    ]
    assert empties.find("ShortText") is not None
    assert empties.findtext("ShortText") == ""
    assert _children(empties.find("Tags")) == []


def test_xml_keeps_quotes_newlines_carriage_returns_and_emoji(sandbox: SandboxServer) -> None:
    awkward = _showcase(sandbox)[5]
    truth = sandbox.rows("Type_Showcase")[5]

    assert awkward.findtext("ShortText") == truth["ShortText"]
    assert awkward.findtext("LongText") == truth["LongText"]
    assert "\r\n" in awkward.findtext("LongText", "")


def test_xml_drops_characters_xml_cannot_carry(sandbox: SandboxServer) -> None:
    control = _showcase(sandbox)[6]

    assert control.findtext("ShortText") == "NULinside"
    assert control.findtext("LongText") == "control  chars"


def test_xml_pagination_follows_the_result(sandbox: SandboxServer) -> None:
    root = _xml(
        records(
            sandbox,
            "Providers",
            {"q.pageSize": 5, "q.pageNumber": 2, "q.getPaginationInfo": "true"},
            headers=_headers(sandbox),
        )
    )

    assert len(root.findall("Result/Row")) == 5
    assert root.findtext("Pagination/TotalCount") == "2500"
    assert root.findtext("Pagination/PageNumber") == "2"
    assert root.findtext("Pagination/PageSize") == "5"


def test_xml_aggregates_are_rows_too(sandbox: SandboxServer) -> None:
    root = _xml(
        records(sandbox, "Practices", {"q.select": "COUNT(*) AS n"}, headers=_headers(sandbox))
    )

    assert [(child.tag, child.text) for child in _children(root.find("Result/Row"))] == [
        ("n", "625")
    ]


def test_xml_page_past_the_end_is_an_empty_result(sandbox: SandboxServer) -> None:
    root = _xml(records(sandbox, "Providers", {"q.pageNumber": 101}, headers=_headers(sandbox)))

    assert _children(root.find("Result")) == []


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/views/Nope/records", {}, 404, "ObjectNotFound"),
        ("/views/Providers/records", {"q.where": "Nope = 1"}, 400, "SqlServerError"),
        ("/views/Providers/records", {"q.pageSize": 1}, 400, "IncorrectQueryParameter"),
    ],
)
def test_errors_in_xml_hold_code_message_request_id_and_resource(
    sandbox: SandboxServer, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    response = get(sandbox, path, params, headers=_headers(sandbox))

    assert response.status_code == status
    root = _xml(response)
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["Code", "Message", "Resource", "RequestId"]
    assert root.findtext("Code") == code
    assert root.findtext("RequestId") == response.headers["X-Caspio-Request-ID"]
    assert root.findtext("Resource") == response.url.split("?")[0]


def test_unauthorised_request_is_answered_in_xml(sandbox: SandboxServer) -> None:
    response = get(sandbox, "/views", headers=XML)

    assert response.status_code == 401
    assert _xml(response).findtext("Code") == "Unauthorized"
