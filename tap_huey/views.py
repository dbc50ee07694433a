"""What the tap knows of a view: its fields, keys, replication key and JSON schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tap_huey.errors import HueyConfigError, HueyError
from tap_huey.fields import PK_ID, CaspioField, parse_caspio_datetime
from tap_huey.settings import Settings

V2_SAMPLE_SIZE = 100
_LOOKS_LIKE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True)
class ViewSpec:
    """One view as a stream sees it.

    Attributes:
        name: the view name exactly as Caspio lists it.
        fields: the fields records carry, PASSWORD fields left out, `PK_ID` added when selected.
        primary_keys: the fields that identify a row.
        replication_key: the field that grows on every change, if any.
        where: the user's own filter from `view_overrides`.
        select_pk_id: whether `PK_ID` must be named in `q.select`.
        inferred: whether the schema was inferred from sample records (v2).
    """

    name: str
    fields: tuple[CaspioField, ...]
    primary_keys: tuple[str, ...]
    replication_key: str | None
    where: str | None
    select_pk_id: bool
    inferred: bool = False

    def field(self, name: str) -> CaspioField:
        """The field of this name."""
        return next(f for f in self.fields if f.name == name)

    @property
    def order(self) -> tuple[str, ...]:
        """The `q.orderBy` columns: the replication key if any, then the primary key."""
        keys = tuple(k for k in self.primary_keys if k != self.replication_key)
        return ((self.replication_key,) if self.replication_key else ()) + keys

    def schema(self) -> dict[str, Any]:
        """The stream's JSON schema."""
        return {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "additionalProperties": False,
        }


def _resolve(name: str, fields: list[CaspioField], view: str, setting: str) -> str:
    lowered = name.lower()
    match = next((f.name for f in fields if f.name.lower() == lowered), None)
    if match is None and lowered == PK_ID.lower():
        return PK_ID
    if match is None:
        known = ", ".join(f.name for f in fields)
        raise HueyConfigError(
            f"view_overrides.{view}.{setting} names {name!r}, which view '{view}' does not have. Its fields: {known}."
        )
    return match


def build_view(
    name: str, fields: list[CaspioField], settings: Settings, *, inferred: bool, unique_known: bool
) -> ViewSpec:
    """Choose keys and the replication key for a view and fix its field list."""
    override = settings.override(name)
    visible = sorted((f for f in fields if not f.hidden), key=lambda f: f.display_order)
    if override.primary_keys:
        keys = tuple(_resolve(k, visible, name, "primary_keys") for k in override.primary_keys)
    else:
        unique = next((f for f in visible if f.unique), None) if unique_known else None
        keys = (unique.name,) if unique else (PK_ID,)
    replication_key = None
    if override.replication_key:
        replication_key = _resolve(override.replication_key, visible, name, "replication_key")
    else:
        stamped = next((f for f in visible if f.type == "TIMESTAMP" and f.on_update), None)
        replication_key = stamped.name if stamped else None
    select_pk_id = PK_ID in keys and all(f.name != PK_ID for f in visible)
    if select_pk_id:
        visible.append(
            CaspioField(
                PK_ID, "STRING", unique=True, display_order=10**6, description="Caspio's row id"
            )
        )
    return ViewSpec(
        name, tuple(visible), keys, replication_key, override.where, select_pk_id, inferred
    )


def fields_from_metadata(
    described: list[dict[str, Any]], settings: Settings, view: str = ""
) -> list[CaspioField]:
    """Fields from v3's field list; a unique field that allows nulls does not count as unique."""
    fields = []
    for entry in described:
        try:
            field = CaspioField.from_metadata(entry, settings.zone)
        except ValueError as error:
            raise HueyError(
                f"View '{view}', field '{entry.get('Name')}': {error}; it is neither a Windows time zone "
                "id known to tzlocal nor an IANA zone. Leave the view out of `views`, or report the zone."
            ) from None
        if entry.get("UniqueAllowNulls"):
            field = CaspioField(
                field.name,
                field.type,
                False,
                field.display_order,
                field.zone,
                field.on_update,
                field.description,
            )
        fields.append(field)
    return fields


def _infer_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None and v != ""]
    if not present:
        return "STRING"
    if all(isinstance(v, bool) for v in present):
        return "YES/NO"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INTEGER"
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in present):
        return "NUMBER"
    if all(isinstance(v, dict) for v in present):
        items = [i for v in present for i in v.values() if i is not None]
        if items and all(
            isinstance(i, (int, float, Decimal)) and not isinstance(i, bool) for i in items
        ):
            return "LIST-NUMBER"
        if items and all(isinstance(i, str) and _LOOKS_LIKE_DATETIME.match(i) for i in items):
            return "LIST-DATE/TIME"
        return "LIST-STRING"
    if all(isinstance(v, str) and _LOOKS_LIKE_DATETIME.match(v) for v in present):
        try:
            for v in present:
                parse_caspio_datetime(v)
            return "DATE/TIME"
        except ValueError:
            return "STRING"
    return "STRING"


def fields_from_sample(records: list[dict[str, Any]], settings: Settings) -> list[CaspioField]:
    """Fields inferred from sample records (v2, which has no field metadata)."""
    names: list[str] = []
    for record in records:
        names.extend(n for n in record if n not in names)
    return [
        CaspioField(
            name,
            _infer_type([r.get(name) for r in records]),
            display_order=position,
            zone=settings.zone,
        )
        for position, name in enumerate(names, start=1)
    ]
