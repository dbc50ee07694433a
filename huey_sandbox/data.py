"""Synthetic, deterministic Huey data: the views, their field metadata and their rows."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

Row = dict[str, Any]

LIST_TYPES = ("LIST-STRING", "LIST-NUMBER", "LIST-DATE/TIME")
DATETIME_TYPES = ("DATE/TIME", "TIMESTAMP")
INTEGER_TYPES = ("INTEGER", "AUTONUMBER")
NUMBER_TYPES = ("NUMBER", "CURRENCY")

SPECIALTIES = {
    1: "Family Medicine",
    2: "Internal Medicine",
    3: "Pediatrics",
    4: "Cardiology",
    5: "Dermatology",
    6: "Psychiatry",
    7: "Obstetrics & Gynecology",
    8: "Orthopaedic Surgery",
    9: "Neurology",
    10: "Oncology",
    11: "Emergency Medicine",
    12: "Geriatrics",
    13: "Endocrinology",
    14: "Ophthalmology",
    15: "Urology",
}
CREDENTIALS = ("MD", "DO", "NP", "PA-C", "DPM", "DDS", "LCSW", "CNM")
LICENCE_TYPES = ("Physician", "Nurse Practitioner", "Physician Assistant", "Podiatrist", "Dentist")
LICENCE_STATUSES = ("Active", "Active", "Active", "Inactive", "Expired", "Retired")
FACILITY_TYPES = ("Clinic", "Hospital", "Urgent Care", "Group Practice", "FQHC", "Telehealth")
NOTES = (
    "",
    "Verified against state board.",
    'Prefers "Dr." in correspondence.',
    "Line one\nLine two\nLine three",
    "Tab\tseparated and trailing space ",
    "Speaks Español, Français & Tiếng Việt 🩺",
    "O'Neil's clinic moved; see practice record.",
    "Windows line end\r\nsecond line",
    "Backslash \\ and slash / kept",
    "📞 call before visiting 👩‍⚕️",
)
AWKWARD_NAMES = (
    ("Zoë", "O'Connor"),
    ("José", "Núñez"),
    ("Ægir", "Ångström"),
    ("Đức", "Nguyễn"),
    ("Siobhán", "Ó Briain"),
    ("Jürgen", "D'Angelo"),
    ("Łukasz", "Wiśniewski"),
    ("Renée", "L'Écuyer"),
)
STATES = ("CA", "NY", "TX", "FL", "WA", "OR", "IL", "MA", "AZ", "CO", "GA", "NC")


@dataclass(frozen=True)
class Field:
    """One field of a view, described the way Caspio's v3 field list describes it."""

    name: str
    type: str
    table: str
    unique: bool = False
    label: str = ""
    description: str = ""
    is_formula: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def returned(self) -> bool:
        """Whether the field ever appears in a record (PASSWORD fields never do)."""
        return self.type != "PASSWORD"

    def metadata(self, display_order: int) -> dict[str, Any]:
        """The field's description as `GET /views/{name}/fields` returns it."""
        prefix = f"{self.table}_"
        table_field = self.name[len(prefix) :] if self.name.startswith(prefix) else self.name
        described: dict[str, Any] = {
            "Name": self.name,
            "TableFieldName": f"{self.table}.{table_field}",
            "Type": self.type,
            "Unique": self.unique,
            "UniqueAllowNulls": False,
            "Editable": self.type not in ("AUTONUMBER", "TIMESTAMP") and not self.is_formula,
            "Description": self.description or None,
            "DisplayOrder": display_order,
            "Label": self.label or self.name,
            "IsFormula": self.is_formula,
        }
        described.update(self.extras)
        return described


@dataclass
class View:
    """A view: its name, note, fields, and whether it is a join of several tables."""

    name: str
    note: str
    fields: list[Field]
    join_tables: tuple[str, ...] = ()
    rows: list[Row] = field(default_factory=list)

    def field(self, name: str) -> Field | None:
        """The field of this name, matched case-insensitively."""
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    @property
    def unique_field(self) -> Field | None:
        """The first unique field, by display order."""
        return next((f for f in self.fields if f.unique), None)

    def pk_id(self, row: Row) -> str:
        """The row's `PK_ID`: the source tables' keys joined by commas on a join view."""
        if self.join_tables:
            return ",".join(str(row[f"{table}_{key}"]) for table, key in _join_keys(self))
        unique = self.unique_field
        assert unique is not None
        return str(row[unique.name])


def _join_keys(view: View) -> list[tuple[str, str]]:
    keys = []
    for table in view.join_tables:
        key = next(
            f.name for f in view.fields if f.name.startswith(f"{table}_") and f.name.endswith("ID")
        )
        keys.append((table, key.split("_", 1)[1]))
    return keys


def _list_field(values: dict[int, str]) -> dict[str, Any]:
    return {"ListField": {str(k): v for k, v in values.items()}}


def _timestamp(zone: str, on_insert: bool, on_update: bool) -> dict[str, Any]:
    return {"TimeZone": zone, "OnInsert": on_insert, "OnUpdate": on_update}


def provider_fields() -> list[Field]:
    """The providers view's fields, in display order."""
    t = "Providers"
    return [
        Field("ProviderID", "AUTONUMBER", t, unique=True, label="Provider ID"),
        Field("NPI", "STRING", t, unique=True, label="National Provider Identifier"),
        Field("FirstName", "STRING", t),
        Field("LastName", "STRING", t),
        Field("FullName", "STRING", t, is_formula=True, description="FirstName + ' ' + LastName"),
        Field("Credential", "STRING", t),
        Field("PrimarySpecialty", "STRING", t),
        Field("Specialties", "LIST-STRING", t, extras=_list_field(SPECIALTIES)),
        Field("LicenseNumber", "STRING", t),
        Field("LicenseState", "STRING", t),
        Field("LicenseType", "STRING", t),
        Field("LicenseStatus", "STRING", t),
        Field("LicenseExpiration", "DATE/TIME", t),
        Field("VerifiedDate", "DATE/TIME", t),
        Field("AcceptingNewPatients", "YES/NO", t),
        Field("YearsInPractice", "INTEGER", t),
        Field("VisitFee", "CURRENCY", t),
        Field("Rating", "NUMBER", t),
        Field("Photo", "FILE", t),
        Field("Notes", "TEXT", t),
        Field("PortalPassword", "PASSWORD", t),
        Field("CreatedOn", "TIMESTAMP", t, extras=_timestamp("Pacific Standard Time", True, False)),
        Field(
            "LastUpdated", "TIMESTAMP", t, extras=_timestamp("Eastern Standard Time", True, True)
        ),
    ]


def practice_fields() -> list[Field]:
    """The practices view's fields, in display order."""
    t = "Practices"
    return [
        Field("PracticeID", "AUTONUMBER", t, unique=True),
        Field(
            "PracticeCode",
            "RANDOM ID",
            t,
            unique=True,
            extras={"Format": "AlphaNumeric", "Length": 8},
        ),
        Field("Reference", "PREFIXED AUTONUMBER", t, extras={"Prefix": "PR-", "Length": 6}),
        Field("ExternalGUID", "GUID", t),
        Field("PracticeName", "STRING", t),
        Field("PhysicalAddress", "STRING", t),
        Field("PhysicalCity", "STRING", t),
        Field("PhysicalState", "STRING", t),
        Field("PhysicalZip", "STRING", t),
        Field("MailingAddress", "TEXT", t),
        Field("County", "STRING", t),
        Field("Phone", "STRING", t),
        Field("Fax", "STRING", t),
        Field("Website", "STRING", t),
        Field("FacilityType", "STRING", t),
        Field("Status", "STRING", t),
        Field("Logo", "ATTACHMENT", t),
        Field(
            "LastModified", "TIMESTAMP", t, extras=_timestamp("Central Standard Time", True, True)
        ),
    ]


def location_fields() -> list[Field]:
    """The provider-location join view's fields: table-prefixed, with no unique field."""
    link = "Provider_Practice_Location_Links"
    return [
        Field("Providers_ProviderID", "INTEGER", "Providers"),
        Field("Practices_PracticeID", "INTEGER", "Practices"),
        Field("Providers_LastName", "STRING", "Providers"),
        Field("Practices_PracticeName", "STRING", "Practices"),
        Field(f"{link}_IsPrimaryLocation", "YES/NO", link),
        Field(
            f"{link}_AppointmentLengthsMinutes",
            "LIST-NUMBER",
            link,
            extras=_list_field({1: "15", 2: "30", 3: "45", 4: "60"}),
        ),
        Field(f"{link}_OpeningDates", "LIST-DATE/TIME", link, extras=_list_field({})),
        Field(f"{link}_LinkedOn", "DATE/TIME", link),
    ]


def showcase_fields() -> list[Field]:
    """The golden view's fields: every Caspio type once."""
    t = "Type_Showcase"
    return [
        Field("RowID", "AUTONUMBER", t, unique=True),
        Field("ShortText", "STRING", t),
        Field("LongText", "TEXT", t),
        Field("Amount", "CURRENCY", t),
        Field("Measure", "NUMBER", t),
        Field("Whole", "INTEGER", t),
        Field("Flag", "YES/NO", t),
        Field("Happened", "DATE/TIME", t),
        Field(
            "Stamped", "TIMESTAMP", t, extras=_timestamp("AUS Eastern Standard Time", True, True)
        ),
        Field("Tags", "LIST-STRING", t, extras=_list_field({1: "a", 2: "b", 10: "j"})),
        Field("Scores", "LIST-NUMBER", t, extras=_list_field({1: "1", 2: "2.5"})),
        Field("Milestones", "LIST-DATE/TIME", t, extras=_list_field({})),
        Field("Document", "FILE", t),
        Field("Upload", "ATTACHMENT", t),
        Field("Token", "RANDOM ID", t, extras={"Format": "AlphaNumeric", "Length": 10}),
        Field("Ref", "PREFIXED AUTONUMBER", t, extras={"Prefix": "SC-", "Length": 4}),
        Field("Uid", "GUID", t),
        Field("Secret", "PASSWORD", t),
        Field("Doubled", "NUMBER", t, is_formula=True, description="Measure * 2"),
    ]


_SPECIALTY_IDS = tuple(sorted(SPECIALTIES))
_SPECIALTY_KEYS = {k: str(k) for k in SPECIALTIES}
_GRID_700 = 700 * 24 * 60 // 10  # ten-minute steps in the 700 days `moment` spreads over
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PRACTICE_STATUSES = ("Open", "Open", "Open", "Closed")
_LENGTH_IDS = range(1, 5)
_OPENING_IDS = range(1, 9)


def _below(rng: random.Random) -> Callable[[int], int]:
    """`rng._randbelow`, draw for draw, without the method lookups: the generator's hot path."""
    getrandbits = rng.getrandbits

    def below(n: int) -> int:
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r

    return below


def _sample(below: Callable[[int], int], population: Sequence[int], k: int) -> list[int]:
    """`random.Random.sample(population, k)` for k <= 5, draw for draw, without its checks."""
    n = len(population)
    if not 0 <= k <= min(n, 5):
        raise ValueError(f"cannot sample {k} of {n}")
    result = []
    if n <= 21:
        pool = list(population)
        for i in range(k):
            j = below(n - i)
            result.append(pool[j])
            pool[j] = pool[n - i - 1]
        return result
    selected: set[int] = set()
    for _ in range(k):
        j = below(n)
        while j in selected:
            j = below(n)
        selected.add(j)
        result.append(population[j])
    return result


class Generator:
    """Builds every view's rows from one seed, so that a seed always gives the same data."""

    def __init__(self, rows: int, seed: int) -> None:
        self.size = max(rows, 1)
        self.seed = seed
        self.rng = random.Random(seed)
        faker = Faker(["en_US", "es_MX", "fr_FR", "de_DE", "vi_VN", "en_IE"])
        faker.seed_instance(seed)
        self.first_names = [faker.first_name() for _ in range(400)]
        self.last_names = [faker.last_name() for _ in range(600)]
        us = Faker("en_US")
        us.seed_instance(seed + 1)
        self.streets = [us.street_address() for _ in range(500)]
        self.cities = [us.city() for _ in range(200)]
        self.companies = [us.company() for _ in range(300)]
        self.counties = [f"{us.last_name()} County" for _ in range(80)]
        self.epoch = datetime(2024, 1, 1)
        self._texts: dict[int, str] = {}
        self._expiries: dict[int, str] = {}
        self._random = self.rng.random
        self._below = _below(self.rng)

    def views(self) -> list[View]:
        """Every view with its rows."""
        providers = View("Providers", "Licensed health-care providers", provider_fields())
        providers.rows = [self.provider(i + 1) for i in range(self.size)]
        practices = View("Practices", "Practice locations", practice_fields())
        practices.rows = [self.practice(i + 1) for i in range(max(self.size // 4, 1))]
        locations = View(
            "Provider_Locations",
            "Providers joined to the practices they work at",
            location_fields(),
            join_tables=("Providers", "Practices"),
        )
        locations.rows = self.locations(providers.rows, practices.rows)
        showcase = View("Type_Showcase", "One row per awkward value", showcase_fields())
        showcase.rows = showcase_rows()
        return [providers, practices, locations, showcase]

    def moment(self, spread_days: int = 700) -> datetime:
        """A second-resolution moment; a coarse grid makes ties common, as in real edits."""
        return self.epoch + timedelta(minutes=self._minutes(spread_days))

    def _minutes(self, spread_days: int = 700) -> int:
        """Minutes after the epoch of a moment on the ten-minute grid (the draw `moment` makes)."""
        return self._below(spread_days * 24 * 60 // 10) * 10

    def _text(self, minutes: int) -> str:
        """The moment `minutes` after the epoch as Caspio's date-time text, cached."""
        text = self._texts.get(minutes)
        if text is None:
            text = (self.epoch + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")
            self._texts[minutes] = text
        return text

    def _stamp(self, text: str) -> str:
        """`text`, with a millisecond fraction one time in five (the draws `_stamp` makes)."""
        if self._random() < 0.2:
            return f"{text}.{1 + self._below(999):03d}"
        return text

    def _expiry(self, days: int) -> str:
        text = self._expiries.get(days)
        if text is None:
            text = (datetime(2026, 1, 1) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
            self._expiries[days] = text
        return text

    def provider(self, provider_id: int) -> Row:
        """One provider row."""
        below, random_, texts, text = self._below, self._random, self._texts, self._text
        if provider_id % 97 == 5:
            first, last = AWKWARD_NAMES[(provider_id // 97) % len(AWKWARD_NAMES)]
        else:
            first_names, last_names = self.first_names, self.last_names
            first = first_names[below(len(first_names))]
            last = last_names[below(len(last_names))]
        picked = _sample(below, _SPECIALTY_IDS, below(4))
        # rng.shuffle(picked), draw for draw
        for i in range(len(picked) - 1, 0, -1):
            j = below(i + 1)
            picked[i], picked[j] = picked[j], picked[i]
        specialties: dict[str, str] | None = {_SPECIALTY_KEYS[k]: SPECIALTIES[k] for k in picked}
        if random_() < 0.05:
            specialties = None
        state = STATES[below(len(STATES))]
        created = below(_GRID_700) * 10
        updated = created + below(400) * 10
        expiry = None
        if random_() > 0.15:
            expiry = self._expiry(below(900))
            if random_() < 0.2:
                expiry = f"{expiry}.{1 + below(999):03d}"
        credential = CREDENTIALS[below(len(CREDENTIALS))]
        licence_number = f"{state}{100000 + below(899999)}"
        licence_type = LICENCE_TYPES[below(len(LICENCE_TYPES))]
        licence_status = LICENCE_STATUSES[below(len(LICENCE_STATUSES))]
        minutes = below(_GRID_700) * 10
        verified = texts.get(minutes) or text(minutes)
        if random_() < 0.2:
            verified = f"{verified}.{1 + below(999):03d}"
        accepting = random_() < 0.6
        years = below(45) if random_() > 0.1 else None
        fee = round(40 + 860 * random_(), 2) if random_() > 0.1 else None
        rating = round(1 + 4 * random_(), 12)
        photo = f"/Huey/photos/provider-{provider_id}.jpg" if random_() < 0.3 else None
        notes = NOTES[below(len(NOTES))]
        created_text = texts.get(created) or text(created)
        updated_text = texts.get(updated) or text(updated)
        if random_() < 0.2:
            updated_text = f"{updated_text}.{1 + below(999):03d}"
        return {
            "ProviderID": provider_id,
            "NPI": str(1_000_000_000 + provider_id * 7),
            "FirstName": first,
            "LastName": last,
            "FullName": f"{first} {last}",
            "Credential": credential,
            "PrimarySpecialty": SPECIALTIES[picked[0]] if picked else "",
            "Specialties": specialties,
            "LicenseNumber": licence_number,
            "LicenseState": state,
            "LicenseType": licence_type,
            "LicenseStatus": licence_status,
            "LicenseExpiration": expiry,
            "VerifiedDate": verified,
            "AcceptingNewPatients": accepting,
            "YearsInPractice": years,
            "VisitFee": fee,
            "Rating": rating,
            "Photo": photo,
            "Notes": notes,
            "CreatedOn": created_text,
            "LastUpdated": updated_text,
        }

    def practice(self, practice_id: int) -> Row:
        """One practice row."""
        rng, below, random_ = self.rng, self._below, self._random
        street = self.streets[below(len(self.streets))]
        city = self.cities[below(len(self.cities))]
        state = STATES[below(len(STATES))]
        zip_code = f"{10000 + below(89999)}"
        mailing = (
            None if random_() < 0.3 else f"PO Box {1 + below(9998)}\n{city}, {state} {zip_code}"
        )
        name = self.companies[below(len(self.companies))]
        code = "".join(rng.choices(_CODE_ALPHABET, k=7)) + str(practice_id % 10)
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        practice_name = f"{name} {FACILITY_TYPES[below(len(FACILITY_TYPES))]}"
        county = self.counties[below(len(self.counties))]
        phone = self._phone()
        fax = self._phone() if random_() < 0.5 else ""
        website = f"https://www.practice{practice_id}.example.org" if random_() < 0.7 else None
        facility = FACILITY_TYPES[below(len(FACILITY_TYPES))]
        status = _PRACTICE_STATUSES[below(len(_PRACTICE_STATUSES))]
        logo = f"logo-{practice_id}.png" if random_() < 0.2 else None
        return {
            "PracticeID": practice_id,
            "PracticeCode": code,
            "Reference": f"PR-{practice_id:06d}",
            "ExternalGUID": guid,
            "PracticeName": practice_name,
            "PhysicalAddress": street,
            "PhysicalCity": city,
            "PhysicalState": state,
            "PhysicalZip": zip_code,
            "MailingAddress": mailing,
            "County": county,
            "Phone": phone,
            "Fax": fax,
            "Website": website,
            "FacilityType": facility,
            "Status": status,
            "Logo": logo,
            "LastModified": self._stamp(self._text(self._minutes())),
        }

    def _phone(self) -> str:
        below = self._below
        return f"({200 + below(799)}) {200 + below(799)}-{1000 + below(8999)}"

    def locations(self, providers: list[Row], practices: list[Row]) -> list[Row]:
        """Provider-practice links: a primary location and sometimes one secondary."""
        below, random_ = self._below, self._random
        wanted = max(len(providers) * 3 // 4, 1)
        link = "Provider_Practice_Location_Links"
        primary, lengths_name = f"{link}_IsPrimaryLocation", f"{link}_AppointmentLengthsMinutes"
        opening_name, linked_name = f"{link}_OpeningDates", f"{link}_LinkedOn"
        practice_indexes = range(len(practices))
        rows: list[Row] = []
        for provider in providers:
            if len(rows) >= wanted:
                break
            count = 2 if random_() < 0.35 else 1
            picked = _sample(below, practice_indexes, min(count, len(practices)))
            for position, index in enumerate(picked):
                if len(rows) >= wanted:
                    break
                practice = practices[index]
                lengths = _sample(below, _LENGTH_IDS, below(4))
                opening = {
                    str(k): self._stamp(self._text(self._minutes(900)))
                    for k in _sample(below, _OPENING_IDS, below(3))
                }
                rows.append(
                    {
                        "Providers_ProviderID": provider["ProviderID"],
                        "Practices_PracticeID": practice["PracticeID"],
                        "Providers_LastName": provider["LastName"],
                        "Practices_PracticeName": practice["PracticeName"],
                        primary: position == 0,
                        lengths_name: {str(k): k * 15 for k in lengths} if lengths else {},
                        opening_name: opening or None,
                        linked_name: self._stamp(self._text(self._minutes())),
                    }
                )
        return rows


def showcase_rows() -> list[Row]:
    """Fixed rows with every awkward value the golden tests compare cell by cell."""
    base: Row = {
        "ShortText": "plain",
        "LongText": "plain long text",
        "Amount": 606.67,
        "Measure": 3.141592653589793,
        "Whole": 42,
        "Flag": True,
        "Happened": "2024-06-01T12:30:00",
        "Stamped": "2024-06-01T12:30:00",
        "Tags": {"2": "b", "1": "a"},
        "Scores": {"1": 1, "2": 2.5},
        "Milestones": {"1": "2024-01-01T00:00:00"},
        "Document": "/Huey/docs/a.pdf",
        "Upload": "scan.png",
        "Token": "AbC123xYz9",
        "Ref": "SC-0001",
        "Uid": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Doubled": 6.283185307179586,
    }
    nulls = dict.fromkeys(base, None) | {"Flag": False}
    variants: list[Row] = [
        {},
        nulls,
        nulls | {"ShortText": "", "LongText": "", "Tags": {}, "Scores": {}, "Milestones": {}},
        {
            "Whole": 2147483647,
            "Amount": 999999999999.99,
            "Measure": 123456789012.123456,
            "Doubled": -0.000001,
        },
        {"Whole": -2147483648, "Amount": -0.01, "Measure": 0, "Doubled": 1e-7},
        {
            "ShortText": "Zoë 'single' \"double\" back\\slash",
            "LongText": "Line 1\nLine 2\r\nTabs\tand emoji 😀👩🏽‍⚕️ 中文 עברית",
        },
        {"ShortText": "NUL\x00inside", "LongText": "control \x01\x02 chars"},
        {
            "Happened": "2024-02-29T23:59:59.999",
            "Stamped": "2024-10-06T02:30:00.5",
            "Milestones": {"10": "2024-03-10T02:30:00", "2": "2023-12-31T23:59:59"},
        },
        {
            "Happened": "2026-03-08T02:30:00",
            "Stamped": "2026-04-05T02:30:00",
            "Tags": {"10": "j", "2": "b"},
        },
        {"LongText": "x" * 6000, "Scores": {"2": 1e-9, "1": 12345678901234}},
    ]
    return [{"RowID": i + 1} | base | variant for i, variant in enumerate(variants)]
