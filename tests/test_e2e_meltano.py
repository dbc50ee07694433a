"""`meltano run tap-huey <target>` against the sandbox, every loaded cell compared with the source."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from huey_sandbox.server import SandboxServer
from tests.singer import expected_by_key

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).parent / "meltano")
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=test"
NUL_REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def source() -> Iterator[SandboxServer]:
    if not (ROOT / ".meltano" / "loaders" / "target-postgres").exists():
        subprocess.run([MELTANO, "install"], cwd=ROOT, check=True, capture_output=True)
    with SandboxServer(rows=400, seed=17) as server:
        yield server


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"huey_test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


STATE_DATABASE = Path(tempfile.mkdtemp(prefix="tap-huey-e2e-")) / "meltano.db"


def meltano_run(server: SandboxServer, target: str, env: dict[str, str], *flags: str) -> str:
    """Run the pipeline; returns its log, failing the test with the log's tail on error.

    Meltano's state goes to a database of the tests' own, so that no bookmark is left behind in
    the project for a real pipeline to start from; every view is selected whatever the project says.
    """
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("TAP_HUEY", "TARGET_"))
    } | {
        "MELTANO_DATABASE_URI": f"sqlite:///{STATE_DATABASE}",
        "TAP_HUEY__SELECT": '["*.*"]',
        "TAP_HUEY_VIEWS": "[]",
        "TAP_HUEY_TIMEZONE": "UTC",
        "TAP_HUEY_CLIENT_ID": server.client_id,
        "TAP_HUEY_CLIENT_SECRET": server.client_secret,
        "TAP_HUEY_API_URL": server.url,
        "TARGET_POSTGRES_PASSWORD": "postgres",
        **env,
    }
    command = [MELTANO, "run", *flags, "tap-huey", target]
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def load_postgres(server: SandboxServer, schema: str, **env: str) -> str:
    return meltano_run(
        server,
        "target-postgres",
        {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema, **env},
        "--full-refresh",
    )


def table(schema: str, view: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Column types and rows of a loaded table."""
    with psycopg.connect(POSTGRES) as connection:
        types = {
            name: (udt[1:] + "[]" if kind == "ARRAY" else kind)
            for name, kind, udt in connection.execute(
                "SELECT column_name, data_type, udt_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, view),
            )
        }
        cursor = connection.execute(f'SELECT * FROM "{schema}"."{view}"')
        names = [d.name for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return types, rows


def _postgres_value(value: Any, schema_type: str, aware: bool) -> Any:
    if value is None:
        return None
    if schema_type == "date-time" and aware:  # timestamptz: the instant, compared as such
        return datetime.fromisoformat(value)
    if schema_type == "date-time":
        return datetime.fromisoformat(value).astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT)
    return value


def expected_postgres(
    server: SandboxServer, view: str, zone: str | None = None
) -> dict[Any, dict[str, Any]]:
    """The rows target-postgres should hold: date-times as naive UTC, or as instants (for
    timestamptz columns) when the tap ran with `zone`."""
    formats = {
        f["Name"]: "date-time" if f["Type"] in ("DATE/TIME", "TIMESTAMP") else ""
        for f in server.fields(view)
    }
    return {
        key: {
            name: _postgres_value(value, formats.get(name, ""), zone is not None)
            for name, value in record.items()
        }
        for key, record in expected_by_key(server, view, zone or "UTC").items()
    }


def loaded(
    schema: str, server: SandboxServer, view: str, deleted: bool = True
) -> dict[Any, dict[str, Any]]:
    """The loaded rows by key, without the target's `_sdc_` columns; `deleted=False` leaves out
    rows the target marked deleted."""
    _, rows = table(schema, view)
    key = server.key_of(view)
    return {
        row[key]: {k: v for k, v in row.items() if not k.startswith("_sdc_")}
        for row in rows
        if deleted or row.get("_sdc_deleted_at") is None
    }


CASPIO_TO_POSTGRES = {
    "STRING": "text",
    "TEXT": "text",
    "FILE": "text",
    "ATTACHMENT": "text",
    "RANDOM ID": "text",
    "PREFIXED AUTONUMBER": "text",
    "GUID": "text",
    "NUMBER": "numeric",
    "CURRENCY": "numeric",
    "INTEGER": "bigint",
    "AUTONUMBER": "bigint",
    "YES/NO": "boolean",
    "DATE/TIME": "timestamp without time zone",
    "TIMESTAMP": "timestamp without time zone",
    "LIST-STRING": "text[]",
    "LIST-NUMBER": "numeric[]",
    "LIST-DATE/TIME": "text[]",
}


def test_postgres_load_has_typed_columns_and_every_cell_equal_to_the_source(
    source: SandboxServer, schema: str
) -> None:
    load_postgres(source, schema)

    for view in source.views():
        types, _ = table(schema, view)
        for field in source.fields(view):
            if field["Type"] != "PASSWORD":
                assert types[field["Name"]] == CASPIO_TO_POSTGRES[field["Type"]], (
                    view,
                    field["Name"],
                )
        assert loaded(schema, source, view) == expected_postgres(source, view), view


def test_postgres_timestamps_hold_the_right_instant(source: SandboxServer, schema: str) -> None:
    load_postgres(source, schema, TAP_HUEY_VIEWS='["Type_Showcase"]')

    rows = loaded(schema, source, "Type_Showcase")
    assert rows[1]["Happened"] == datetime(2024, 6, 1, 12, 30)
    assert rows[1]["Stamped"] == datetime(2024, 6, 1, 2, 30)
    assert rows[8]["Happened"] == datetime(2024, 2, 29, 23, 59, 59, 999000)
    assert rows[7]["ShortText"] == f"NUL{NUL_REPLACEMENT}inside"
    assert rows[2]["ShortText"] is None and rows[3]["ShortText"] == ""
    assert rows[3]["Tags"] == [] and rows[2]["Tags"] is None
    assert rows[10]["Scores"] == [Decimal("12345678901234"), Decimal("1E-9")]
    assert rows[4]["Whole"] == 2147483647 and rows[4]["Amount"] == Decimal("999999999999.99")


def readme_timestamptz_sql(schema: str) -> str:
    """The README's block that turns a schema's timestamp columns into timestamptz, for `schema`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- timestamptz:start -->")[1].split("<!-- timestamptz:end -->")[0]
    sql = block.strip().removeprefix("```sql").removesuffix("```")
    assert "'huey'" in sql
    return sql.replace("'huey'", f"'{schema}'")


ZONE = "Asia/Tokyo"


def test_timestamptz_columns_made_as_the_readme_says_keep_their_type_and_instants(
    schema: str,
) -> None:
    with SandboxServer(rows=200, seed=29) as server:
        env = {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema, "TAP_HUEY_TIMEZONE": ZONE}
        suffix = uuid.uuid4().hex[:8]
        meltano_run(server, "target-postgres", env, "--state-id-suffix", suffix)
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(readme_timestamptz_sql(schema).encode())
        server.update("Providers", 17, {"VerifiedDate": "2025-03-30T01:30:00"})
        server.insert("Providers", 3)
        server.delete(
            "Provider_Locations", [next(iter(expected_by_key(server, "Provider_Locations")))]
        )

        log = meltano_run(server, "target-postgres", env, "--state-id-suffix", suffix)

        assert "from LastUpdated >=" in log  # the second run was incremental
        for view in server.views():
            types, _ = table(schema, view)
            for field in server.fields(view):
                if field["Type"] in ("DATE/TIME", "TIMESTAMP"):
                    assert types[field["Name"]] == "timestamp with time zone", (view, field)
            assert loaded(schema, server, view, deleted=False) == expected_postgres(
                server, view, ZONE
            ), view


def test_json_and_xml_runs_load_identical_tables(source: SandboxServer, schema: str) -> None:
    xml_schema = schema + "_xml"
    load_postgres(source, schema)
    try:
        load_postgres(source, xml_schema, TAP_HUEY_RESPONSE_FORMAT="xml")
        for view in source.views():
            from_json, from_xml = loaded(schema, source, view), loaded(xml_schema, source, view)
            if view == "Type_Showcase":
                from_json[7] |= {"ShortText": "NULinside", "LongText": "control  chars"}
            assert from_xml == from_json, view
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{xml_schema}" CASCADE')


@pytest.mark.parametrize("hard_delete", [False, True], ids=["soft", "hard"])
def test_rows_deleted_in_caspio_leave_the_warehouse_on_the_next_full_sync(
    hard_delete: bool, schema: str
) -> None:
    with SandboxServer(rows=200, seed=23) as server:
        env = {
            "TAP_HUEY_VIEWS": '["Provider_Locations"]',
            "TARGET_POSTGRES_HARD_DELETE": str(hard_delete).lower(),
        }
        load_postgres(server, schema, **env)
        doomed = [
            r["PK_ID"] for r in list(expected_by_key(server, "Provider_Locations").values())[:5]
        ]
        server.delete("Provider_Locations", doomed)

        load_postgres(server, schema, **env)

        _, rows = table(schema, "Provider_Locations")
        live = {r["PK_ID"] for r in rows if r["_sdc_deleted_at"] is None}
        assert live == set(expected_by_key(server, "Provider_Locations"))
        gone = {r["PK_ID"] for r in rows} & set(doomed)
        assert gone == (set() if hard_delete else set(doomed))


def test_second_meltano_run_reads_only_new_and_changed_rows_from_stored_state(
    source: SandboxServer, schema: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema, "TAP_HUEY_VIEWS": '["Providers"]'}
    meltano_run(source, "target-postgres", env, "--state-id-suffix", suffix)
    bookmark = max(r["LastUpdated"] for r in expected_by_key(source, "Providers").values())
    ties = {
        k for k, r in expected_by_key(source, "Providers").items() if r["LastUpdated"] == bookmark
    }
    changed = [11, 222, 399]
    for key in changed:
        source.update("Providers", key, {"Notes": f"checked again {key}"})
    new = source.insert("Providers", 2)
    source.clear_log()

    meltano_run(source, "target-postgres", env, "--state-id-suffix", suffix)

    requests = source.data_log("Providers")
    assert len(requests) == 1
    assert requests[0]["rows"] == len(set(changed) | set(new) | ties)
    rows = loaded(schema, source, "Providers")
    assert len(rows) == 402
    assert {key: rows[key]["Notes"] for key in changed} == {
        key: f"checked again {key}" for key in changed
    }


def _list_number(value: int | Decimal) -> Decimal:
    """LIST-NUMBER items are emitted with a decimal point: 30 as 30.0."""
    number = Decimal(str(value))
    return number if number.as_tuple().exponent < 0 else number.quantize(Decimal("0.1"))


def _csv_cell(value: Any, is_datetime: bool) -> str:
    if value is None:
        return ""
    if is_datetime:
        return str(datetime.fromisoformat(value))
    if isinstance(value, list):
        return repr([_list_number(v) if isinstance(v, (int, Decimal)) else v for v in value])
    return str(value)


def test_csv_target_writes_every_cell_as_the_source_has_it(
    source: SandboxServer, tmp_path: Path
) -> None:
    meltano_run(source, "target-csv", {"TARGET_CSV_OUTPUT_PATH": str(tmp_path)}, "--full-refresh")

    for view in source.views():
        datetimes = {
            f["Name"] for f in source.fields(view) if f["Type"] in ("DATE/TIME", "TIMESTAMP")
        }
        with (tmp_path / f"{view}.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        key = source.key_of(view)
        expected = {
            str(k): {name: _csv_cell(value, name in datetimes) for name, value in record.items()}
            for k, record in expected_by_key(source, view).items()
        }
        got = {row[key]: row for row in rows}
        assert sorted(got) == sorted(expected), view
        for k, row in expected.items():
            for name, cell in row.items():
                assert got[k][name] == cell, (view, k, name)


def test_jsonl_target_writes_every_record_as_the_tap_emits_it(
    source: SandboxServer, tmp_path: Path
) -> None:
    meltano_run(
        source, "target-jsonl", {"TARGET_JSONL_DESTINATION_PATH": str(tmp_path)}, "--full-refresh"
    )

    for view in source.views():
        lines = (tmp_path / f"{view}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line, parse_float=Decimal) for line in lines]
        key = source.key_of(view)
        assert {r[key]: r for r in records} == expected_by_key(source, view), view
