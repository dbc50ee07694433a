"""Caspio field metadata: type names, JSON schema, and the conversion of each value."""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

PK_ID = "PK_ID"

STRING_TYPES = frozenset(
    {
        "STRING",
        "TEXT",
        "FILE",
        "ATTACHMENT",
        "RANDOM ID",
        "PREFIXED AUTONUMBER",
        "GUID",
    }
)
INTEGER_TYPES = frozenset({"INTEGER", "AUTONUMBER"})
NUMBER_TYPES = frozenset({"NUMBER", "CURRENCY"})
DATETIME_TYPES = frozenset({"DATE/TIME", "TIMESTAMP"})
LIST_TYPES = {"LIST-STRING": "STRING", "LIST-NUMBER": "NUMBER", "LIST-DATE/TIME": "DATE/TIME"}
HIDDEN_TYPES = frozenset({"PASSWORD"})

_CASPIO_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$"
)
_DATE_ONLY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def normalise_type(raw: str | None) -> str:
    """Caspio's type token in one spelling: `RANDOM_ID`, `RandomID` and `RANDOM ID` alike.

    Args:
        raw: the `Type` of a field description.

    Returns:
        The upper-case token with words separated by single spaces, `/` and `-` kept.
    """
    text = (raw or "STRING").strip().upper().replace("_", " ")
    text = re.sub(r"\s*([/-])\s*", r"\1", text)
    text = re.sub(r"\s+", " ", text)
    compact = text.replace(" ", "")
    aliases = {
        "RANDOMID": "RANDOM ID",
        "PREFIXEDAUTONUMBER": "PREFIXED AUTONUMBER",
        "DATETIME": "DATE/TIME",
        "DATE/TIME": "DATE/TIME",
        "YESNO": "YES/NO",
        "YES/NO": "YES/NO",
        "LISTSTRING": "LIST-STRING",
        "LIST-STRING": "LIST-STRING",
        "LISTNUMBER": "LIST-NUMBER",
        "LIST-NUMBER": "LIST-NUMBER",
        "LISTDATETIME": "LIST-DATE/TIME",
        "LIST-DATETIME": "LIST-DATE/TIME",
        "LIST-DATE/TIME": "LIST-DATE/TIME",
        "AUTONUMBER": "AUTONUMBER",
    }
    return aliases.get(compact, text)


def zone_from_caspio(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The IANA zone for a TIMESTAMP field's `TimeZone`, a Windows zone id or an IANA name.

    Args:
        name: the field's `TimeZone`, such as `Pacific Standard Time`.
        fallback: the zone to use when the field names none.

    Returns:
        The zone, or `fallback` when `name` is empty.

    Raises:
        ValueError: when the name is neither a Windows nor an IANA zone.
    """
    if not name:
        return fallback
    iana = win_tz.get(name.strip(), name.strip())
    if iana.upper() in ("UTC", "COORDINATED UNIVERSAL TIME"):
        iana = "UTC"
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def parse_caspio_datetime(text: str) -> datetime:
    """A naive date-time from Caspio's `2020-10-07T04:54:19[.607]` form.

    Raises:
        ValueError: when the text is not such a date-time, or names a day that does not exist.
    """
    text = text.strip()
    if len(text) in (19, 23, 26) and text[10] == "T":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                return moment
    match = _CASPIO_DATETIME.match(text)
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        micro = int((fraction or "0").ljust(6, "0")[:6])
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
    match = _DATE_ONLY.match(text)
    if match:
        year, month, day = (int(part) for part in match.groups())
        return datetime(year, month, day)
    raise ValueError(f"{text!r} is not a Caspio date-time")


def to_rfc3339(moment: datetime) -> str:
    """An aware date-time as RFC 3339, with microseconds only when there are any."""
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def where_literal(moment: datetime) -> str:
    """A naive date-time as a `q.where` literal in the form Caspio accepts."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return f"'{text}'"


@dataclass(frozen=True)
class CaspioField:
    """One field of a view, as the tap needs it.

    Attributes:
        name: the field name, as records spell it.
        type: the normalised Caspio type.
        unique: whether Caspio enforces unique values.
        display_order: the field's position in the view.
        zone: the zone its DATE/TIME or TIMESTAMP values are in.
        on_update: whether Caspio stamps the field on every update (TIMESTAMP only).
        description: the field's description or label, for the catalog.
    """

    name: str
    type: str
    unique: bool = False
    display_order: int = 0
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    on_update: bool = False
    description: str | None = None

    @classmethod
    def from_metadata(cls, described: Mapping[str, Any], default_zone: ZoneInfo) -> CaspioField:
        """Build from one entry of `GET /views/{name}/fields`."""
        type_ = normalise_type(described.get("Type"))
        zone = default_zone
        if type_ == "TIMESTAMP":
            zone = zone_from_caspio(described.get("TimeZone"), default_zone)
        return cls(
            name=str(described["Name"]),
            type=type_,
            unique=bool(described.get("Unique")),
            display_order=int(described.get("DisplayOrder") or 0),
            zone=zone,
            on_update=bool(described.get("OnUpdate")),
            description=described.get("Description") or described.get("Label") or None,
        )

    @property
    def hidden(self) -> bool:
        """Whether the field never appears in records (PASSWORD)."""
        return self.type in HIDDEN_TYPES

    @property
    def is_datetime(self) -> bool:
        """Whether values are date-times."""
        return self.type in DATETIME_TYPES

    def json_schema(self) -> dict[str, Any]:
        """The field's JSON schema; every property is nullable."""
        schema = _scalar_schema(self.type)
        if self.type in LIST_TYPES:
            items = _scalar_schema(LIST_TYPES[self.type])
            items["type"] = [items["type"], "null"]
            schema = {"type": "array", "items": items}
        schema["type"] = [schema["type"], "null"]
        if self.description:
            schema["description"] = self.description
        return schema

    @property
    def is_text(self) -> bool:
        """Whether values pass through as they come (text types)."""
        return self.type not in INTEGER_TYPES | NUMBER_TYPES | DATETIME_TYPES | {"YES/NO"} and (
            self.type not in LIST_TYPES
        )

    @property
    def emitted_type(self) -> builtins.type:
        """The class a value already has when it needs no conversion (NoneType: always converted)."""
        if self.type in INTEGER_TYPES:
            return int
        if self.type in NUMBER_TYPES:
            return Decimal
        if self.type == "YES/NO":
            return bool
        return type(None)

    def converter(self) -> Callable[[Any], Any]:
        """A function that turns one raw JSON or XML value into the value the tap emits."""
        if self.type == "LIST-NUMBER":
            return lambda value: _convert_list(value, _convert_list_number)
        if self.type in LIST_TYPES:
            item = CaspioField(self.name, LIST_TYPES[self.type], zone=self.zone).converter()
            return lambda value: _convert_list(value, item)
        if self.type in DATETIME_TYPES:
            return DateTimeConverter(self.zone)
        if self.type in INTEGER_TYPES:
            return _passing(int, _convert_integer)
        if self.type in NUMBER_TYPES:
            return _passing(Decimal, _convert_number)
        if self.type == "YES/NO":
            return _passing(bool, _convert_boolean)
        return convert_text

    def literal(self, raw: Any) -> str:
        """A raw value of this field as a `q.where` literal."""
        if raw is None:
            return "NULL"
        if self.is_datetime:
            return where_literal(parse_caspio_datetime(str(raw)))
        if self.type == "YES/NO":
            return "1" if _convert_boolean(raw) else "0"
        if self.type in INTEGER_TYPES | NUMBER_TYPES and not isinstance(raw, str):
            return str(raw)
        return "N'" + str(raw).replace("'", "''") + "'"


def _passing(kind: type, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert`, skipped for values that already have the exact type (the common case)."""

    def converter(value: Any) -> Any:
        return value if value.__class__ is kind else convert(value)

    return converter


def _scalar_schema(type_: str) -> dict[str, Any]:
    if type_ in INTEGER_TYPES:
        return {"type": "integer"}
    if type_ in NUMBER_TYPES:
        return {"type": "number"}
    if type_ in DATETIME_TYPES:
        return {"type": "string", "format": "date-time"}
    if type_ == "YES/NO":
        return {"type": "boolean"}
    return {"type": "string"}


def convert_text(value: Any) -> Any:
    """A text value as a string, None kept."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert_integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _convert_number(value: Any) -> Decimal | None:
    # Always a Decimal, so that a list of numbers has one item type (databases insist on it).
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not a number") from error
    if not number.is_finite():  # NaN and infinities have no JSON number, nor a place in a column
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _convert_list_number(value: Any) -> Decimal | None:
    # Written with a decimal point (1 as 1.0), so that a reader parsing the JSON does not get a
    # list mixing integers and decimals, which typed array columns refuse.
    number = _convert_number(value)
    exponent = number.as_tuple().exponent if number is not None else 0
    if number is None or not isinstance(exponent, int) or exponent < 0:
        return number
    return number.quantize(Decimal("0.1"))


def _convert_boolean(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not a YES/NO value")


_CASPIO_VALUE = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,7})?)?"
)
# The time of day after a date whose offset is known, as Caspio sends it: `T12:30:00[.607]`.
_CASPIO_TIME = re.compile(r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,7})?")


class DateTimeConverter:
    """Caspio's naive date-times as RFC 3339 with the offset of a zone.

    The digits Caspio sent are kept (a fraction stays as long as it came); the offset is looked
    up once per calendar day (per minute on a day when the offset changes), which also checks
    that the day exists.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone: tzinfo = timezone.utc if zone.key == "UTC" else zone
        self.offsets: dict[str, str] = {}

    def _at(self, wall_clock: str) -> str:
        """The offset at a wall-clock time; empty when it has seconds (local mean time, pre-1900s)."""
        offset = datetime.fromisoformat(wall_clock).replace(tzinfo=self.zone).isoformat()[19:]
        return "" if len(offset) > 6 else offset

    def _offset(self, minute: str) -> str:
        """The offset at a wall-clock minute; cached per day unless the day holds a change."""
        day = minute[:10]
        if len(self.offsets) > 1 << 16:
            self.offsets.clear()
        first, last = self._at(day + "T00:00"), self._at(day + "T23:59")
        if first == last and first:
            self.offsets[day] = first
            return first
        return self._at(minute)

    def __call__(self, value: Any) -> str | None:
        # The common case: Caspio's own form, on a day whose offset is cached (and so exists).
        if value.__class__ is str:
            offset = self.offsets.get(value[:10])
            if offset and _CASPIO_TIME.fullmatch(value, 10):
                return value + offset
        return self._convert(value)

    def _convert(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        text = str(value).strip().replace(" ", "T", 1)
        if not _CASPIO_VALUE.fullmatch(text):
            return to_rfc3339(parse_caspio_datetime(text).replace(tzinfo=self.zone))
        offset = self.offsets.get(text[:10]) or self._offset(text[:16])
        if not offset:  # RFC 3339 offsets have no seconds: give such an instant in UTC
            local = parse_caspio_datetime(text).replace(tzinfo=self.zone)
            return to_rfc3339(local.astimezone(timezone.utc))
        if len(text) == 16:
            text += ":00"
        return text + offset


def _item_order(key: str) -> tuple[int, Any]:
    try:
        return (0, int(key))
    except ValueError:
        return (1, key)


def _convert_list(value: Any, item: Callable[[Any], Any]) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value:
            return []
        try:
            keys = sorted(value, key=int)  # item ids, as Caspio numbers them
        except (TypeError, ValueError):
            keys = sorted(value, key=lambda k: _item_order(str(k)))
        return [item(value[key]) for key in keys]
    if isinstance(value, list):
        return [item(v) for v in value]
    if value == "":
        return []
    raise ValueError(f"{value!r} is not a Caspio list")
