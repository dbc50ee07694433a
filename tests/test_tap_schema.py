"""Discovery: one stream per view, schemas from Caspio's field metadata, keys and bookmarks."""

from __future__ import annotations

from typing import Any

import pytest

from huey_sandbox.server import SandboxServer
from tap_huey.fields import CaspioField, normalise_type
from tests.conftest import tap_config
from tests.singer import discover

NULLABLE = "null"

TYPE_SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("STRING", {"type": ["string", NULLABLE]}),
    ("TEXT", {"type": ["string", NULLABLE]}),
    ("NUMBER", {"type": ["number", NULLABLE]}),
    ("CURRENCY", {"type": ["number", NULLABLE]}),
    ("INTEGER", {"type": ["integer", NULLABLE]}),
    ("AUTONUMBER", {"type": ["integer", NULLABLE]}),
    ("DATE/TIME", {"type": ["string", NULLABLE], "format": "date-time"}),
    ("TIMESTAMP", {"type": ["string", NULLABLE], "format": "date-time"}),
    ("YES/NO", {"type": ["boolean", NULLABLE]}),
    ("LIST-STRING", {"type": ["array", NULLABLE], "items": {"type": ["string", NULLABLE]}}),
    ("LIST-NUMBER", {"type": ["array", NULLABLE], "items": {"type": ["number", NULLABLE]}}),
    (
        "LIST-DATE/TIME",
        {
            "type": ["array", NULLABLE],
            "items": {"type": ["string", NULLABLE], "format": "date-time"},
        },
    ),
    ("FILE", {"type": ["string", NULLABLE]}),
    ("ATTACHMENT", {"type": ["string", NULLABLE]}),
    ("RANDOM ID", {"type": ["string", NULLABLE]}),
    ("PREFIXED AUTONUMBER", {"type": ["string", NULLABLE]}),
    ("GUID", {"type": ["string", NULLABLE]}),
]


@pytest.mark.parametrize(("caspio_type", "schema"), TYPE_SCHEMAS)
def test_each_caspio_type_maps_to_its_nullable_json_schema(
    caspio_type: str, schema: dict[str, Any]
) -> None:
    field = CaspioField("F", normalise_type(caspio_type))

    assert field.json_schema() == schema


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [
        ("RANDOM_ID", "RANDOM ID"),
        ("RandomID", "RANDOM ID"),
        ("random id", "RANDOM ID"),
        ("PREFIXED_AUTONUMBER", "PREFIXED AUTONUMBER"),
        ("DATE_TIME", "DATE/TIME"),
        ("DATETIME", "DATE/TIME"),
        ("Yes/No", "YES/NO"),
        ("YES_NO", "YES/NO"),
        ("LIST_STRING", "LIST-STRING"),
        ("LIST-DATE_TIME", "LIST-DATE/TIME"),
        ("List - Number", "LIST-NUMBER"),
    ],
)
def test_type_tokens_are_normalised_whatever_their_separators(
    spelling: str, normalised: str
) -> None:
    assert normalise_type(spelling) == normalised


def test_password_fields_are_left_out_of_the_schema() -> None:
    assert CaspioField("P", "PASSWORD").hidden is True
    assert CaspioField("P", "STRING").hidden is False


def _streams(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["tap_stream_id"]: entry for entry in catalog["streams"]}


def test_discovery_makes_one_stream_per_view_named_as_caspio_lists_it(
    sandbox: SandboxServer,
) -> None:
    streams = _streams(discover(tap_config(sandbox)))

    assert sorted(streams) == sorted(sandbox.views())
    assert sorted(streams) == ["Practices", "Provider_Locations", "Providers", "Type_Showcase"]


def test_discovered_schema_covers_every_returned_field_and_omits_password(
    sandbox: SandboxServer,
) -> None:
    streams = _streams(discover(tap_config(sandbox)))

    for view in sandbox.views():
        properties = streams[view]["schema"]["properties"]
        returned = [f["Name"] for f in sandbox.fields(view) if f["Type"] != "PASSWORD"]
        expected = returned + (["PK_ID"] if view == "Provider_Locations" else [])
        assert list(properties) == expected
        assert all(NULLABLE in schema["type"] for schema in properties.values())
    assert "PortalPassword" not in streams["Providers"]["schema"]["properties"]
    assert "Secret" not in streams["Type_Showcase"]["schema"]["properties"]


def test_showcase_schema_maps_every_type_exactly(sandbox: SandboxServer) -> None:
    properties = _streams(discover(tap_config(sandbox)))["Type_Showcase"]["schema"]["properties"]

    types = {name: (schema["type"][0], schema.get("format")) for name, schema in properties.items()}
    assert types == {
        "RowID": ("integer", None),
        "ShortText": ("string", None),
        "LongText": ("string", None),
        "Amount": ("number", None),
        "Measure": ("number", None),
        "Whole": ("integer", None),
        "Flag": ("boolean", None),
        "Happened": ("string", "date-time"),
        "Stamped": ("string", "date-time"),
        "Tags": ("array", None),
        "Scores": ("array", None),
        "Milestones": ("array", None),
        "Document": ("string", None),
        "Upload": ("string", None),
        "Token": ("string", None),
        "Ref": ("string", None),
        "Uid": ("string", None),
        "Doubled": ("number", None),
    }


def test_keys_are_first_unique_field_else_pk_id_and_on_update_timestamp_is_replication_key(
    sandbox: SandboxServer,
) -> None:
    streams = _streams(discover(tap_config(sandbox)))

    summary = {
        name: (
            entry["key_properties"],
            entry.get("replication_key"),
            entry.get("replication_method"),
        )
        for name, entry in streams.items()
    }
    assert summary == {
        "Providers": (["ProviderID"], "LastUpdated", "INCREMENTAL"),
        "Practices": (["PracticeID"], "LastModified", "INCREMENTAL"),
        "Provider_Locations": (["PK_ID"], None, "FULL_TABLE"),
        "Type_Showcase": (["RowID"], "Stamped", "INCREMENTAL"),
    }


def test_view_overrides_set_primary_keys_and_replication_key_case_insensitively(
    sandbox: SandboxServer,
) -> None:
    config = tap_config(
        sandbox,
        view_overrides={
            "provider_locations": {
                "primary_keys": ["providers_providerid", "Practices_PracticeID"]
            },
            "Providers": {"replication_key": "createdon"},
        },
    )

    streams = _streams(discover(config))

    assert streams["Provider_Locations"]["key_properties"] == [
        "Providers_ProviderID",
        "Practices_PracticeID",
    ]
    assert "PK_ID" not in streams["Provider_Locations"]["schema"]["properties"]
    assert streams["Providers"]["replication_key"] == "CreatedOn"


def test_views_setting_limits_streams_and_matches_names_case_insensitively(
    sandbox: SandboxServer,
) -> None:
    streams = _streams(discover(tap_config(sandbox, views=["providers", "TYPE_SHOWCASE"])))

    assert sorted(streams) == ["Providers", "Type_Showcase"]


def test_v2_infers_schema_from_sample_records_and_keys_on_pk_id(sandbox: SandboxServer) -> None:
    streams = _streams(discover(tap_config(sandbox, api_version="v2")))

    providers = streams["Providers"]
    properties = providers["schema"]["properties"]
    assert providers["key_properties"] == ["PK_ID"]
    assert providers.get("replication_key") is None
    assert properties["ProviderID"]["type"] == ["integer", NULLABLE]
    assert properties["VisitFee"]["type"] == ["number", NULLABLE]
    assert properties["AcceptingNewPatients"]["type"] == ["boolean", NULLABLE]
    assert properties["LastUpdated"] == {"type": ["string", NULLABLE], "format": "date-time"}
    assert properties["Specialties"]["type"] == ["array", NULLABLE]
    assert properties["Notes"]["type"] == ["string", NULLABLE]
    assert "PortalPassword" not in properties
