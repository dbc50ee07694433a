"""An in-memory SQLite copy of every view, queried the way Caspio queries its tables."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from huey_sandbox.data import DATETIME_TYPES, LIST_TYPES, Generator, Row, View
from huey_sandbox.query import (
    Column,
    QueryError,
    SelectItem,
    WhereCompiler,
    caspio_datetime,
    canonical_datetime,
    parse_order,
    parse_select,
)
from tzlocal.windows_tz import win_tz


@dataclass
class Page:
    """What one records request returns: rows (as JSON fragments or dicts) and a total."""

    fragments: list[str] | None = None
    rows: list[Row] = field(default_factory=list)
    total: int | None = None

    @property
    def count(self) -> int:
        """How many rows the page holds."""
        return len(self.fragments) if self.fragments is not None else len(self.rows)


@dataclass
class Mutations:
    """Keys inserted and deleted while the sandbox ran, per view."""

    inserted: dict[str, list[Any]] = field(default_factory=dict)
    deleted: dict[str, list[Any]] = field(default_factory=dict)


def _sql_value(value: Any, type_: str) -> Any:
    if value is None:
        return None
    if type_ in DATETIME_TYPES:
        return canonical_datetime(value)
    if type_ in LIST_TYPES:
        return json.dumps(value)
    if type_ == "YES/NO":
        return int(value)
    return value


class ViewTable:
    """One view's rows: the Python values as Caspio returns them and a SQLite index over them."""

    def __init__(self, db: sqlite3.Connection, index: int, view: View) -> None:
        self.db = db
        self.view = view
        self.table = f"view_{index}"
        self.fields = [f for f in view.fields if f.returned]
        self.columns: dict[str, Column] = {}
        for position, f in enumerate(view.fields):
            self.columns[f.name.lower()] = Column(f.name, f'"c{position}"', f.type, f.unique)
        self.columns["pk_id"] = Column("PK_ID", '"pk_id"', "STRING", True)
        self.rows: dict[int, Row] = {}
        self.fragments: dict[int, str] = {}
        self.next_rid = 1
        self._create()
        self.insert(view.rows)

    def _create(self) -> None:
        definitions = ['"rid" INTEGER PRIMARY KEY', '"pk_id" TEXT COLLATE NOCASE']
        for column in self.columns.values():
            if column.name == "PK_ID":
                continue
            affinity = {"INTEGER": "INTEGER", "AUTONUMBER": "INTEGER", "YES/NO": "INTEGER"}.get(column.type)
            if column.type in ("NUMBER", "CURRENCY"):
                affinity = "REAL"
            definitions.append(f"{column.sql} {affinity or 'TEXT COLLATE NOCASE'}")
        self.db.execute(f"CREATE TABLE {self.table} ({', '.join(definitions)})")
        for column in self.columns.values():
            if column.type not in LIST_TYPES and column.type != "PASSWORD":
                name = column.sql.strip('"')
                self.db.execute(f"CREATE INDEX {self.table}_{name} ON {self.table} ({column.sql})")
        unique = self.view.unique_field
        for f in self.view.fields:
            if f.type == "TIMESTAMP" and unique is not None:
                pair = f"{self.columns[f.name.lower()].sql}, {self.columns[unique.name.lower()].sql}"
                self.db.execute(f"CREATE INDEX {self.table}_{f.name}_key ON {self.table} ({pair})")

    def resolve(self, name: str) -> Column:
        """The column a query names, case-insensitively, or Caspio's unknown-column error."""
        column = self.columns.get(name.lower())
        if column is None:
            raise QueryError(f"Invalid column name '{name}'.")
        return column

    def insert(self, rows: list[Row]) -> list[int]:
        """Add rows; returns their internal row ids."""
        names = [c for c in self.columns.values() if c.name != "PK_ID" and c.type != "PASSWORD"]
        placeholders = ", ".join("?" * (len(names) + 2))
        sql_names = ", ".join(['"rid"', '"pk_id"'] + [c.sql for c in names])
        batch, rids = [], []
        for row in rows:
            rid = self.next_rid
            self.next_rid += 1
            self.rows[rid] = row
            rids.append(rid)
            values = [_sql_value(row.get(c.name), c.type) for c in names]
            batch.append([rid, self.view.pk_id(row), *values])
        self.db.executemany(f"INSERT INTO {self.table} ({sql_names}) VALUES ({placeholders})", batch)
        return rids

    def delete(self, rids: list[int]) -> None:
        """Remove rows by internal row id."""
        for rid in rids:
            self.rows.pop(rid, None)
            self.fragments.pop(rid, None)
        self.db.executemany(f"DELETE FROM {self.table} WHERE rid = ?", [(rid,) for rid in rids])

    def update(self, rid: int, changes: Row) -> None:
        """Change some values of one row."""
        row = self.rows[rid] | changes
        self.rows[rid] = row
        self.fragments.pop(rid, None)
        sets = ", ".join(f"{self.resolve(name).sql} = ?" for name in changes)
        values = [_sql_value(v, self.resolve(k).type) for k, v in changes.items()]
        self.db.execute(f"UPDATE {self.table} SET {sets} WHERE rid = ?", [*values, rid])

    def fragment(self, rid: int) -> str:
        """The row's JSON text as `q.select=*` returns it, cached."""
        cached = self.fragments.get(rid)
        if cached is None:
            cached = json.dumps(self.rows[rid], ensure_ascii=False, separators=(",", ":"))
            self.fragments[rid] = cached
        return cached

    def query(
        self,
        *,
        select: str,
        where: str,
        order: str,
        group: str,
        limit: int,
        offset: int,
        want_total: bool,
    ) -> Page:
        """Run one records request."""
        items = parse_select(select or "*", self.resolve)
        condition, params = WhereCompiler(where, self.resolve).compile()
        if any(item.kind == "aggregate" for item in items) or group:
            return self._aggregate(items, condition, params, group, limit, offset)
        ordering = parse_order(order, self.resolve) if order else []
        clauses = [f"{c.sql} {'DESC' if descending else 'ASC'}" for c, descending in ordering]
        if not any(c.unique for c, _ in ordering):
            clauses.append("random()")
        sql = f"SELECT rid FROM {self.table} WHERE {condition} ORDER BY {', '.join(clauses)} LIMIT ? OFFSET ?"
        rids = [r[0] for r in self.db.execute(sql, [*params, limit, offset])]
        total = None
        if want_total:
            total = self.db.execute(f"SELECT COUNT(*) FROM {self.table} WHERE {condition}", params).fetchone()[0]
        if len(items) == 1 and items[0].kind == "star":
            return Page(fragments=[self.fragment(rid) for rid in rids], total=total)
        return Page(rows=[self._project(rid, items) for rid in rids], total=total)

    def _project(self, rid: int, items: list[SelectItem]) -> Row:
        row = self.rows[rid]
        out: Row = {}
        for item in items:
            if item.kind == "star":
                out.update(row)
            elif item.column is not None and item.column.name == "PK_ID":
                out[item.alias] = self.view.pk_id(row)
            elif item.column is not None:
                out[item.alias] = row.get(item.column.name)
        return out

    def _aggregate(
        self, items: list[SelectItem], condition: str, params: list[Any], group: str, limit: int, offset: int
    ) -> Page:
        grouped = parse_order(group, self.resolve) if group else []
        grouped_names = {c.name for c, _ in grouped}
        expressions = []
        for position, item in enumerate(items):
            if item.kind == "star":
                raise QueryError("Column '*' is invalid in the select list because it is not contained in an aggregate function.")
            if item.kind == "field":
                assert item.column is not None
                if item.column.name not in grouped_names:
                    raise QueryError(
                        f"Column '{item.column.name}' is invalid in the select list because it is not contained in "
                        "either an aggregate function or the GROUP BY clause."
                    )
                expressions.append(item.column.sql)
            else:
                argument = "*" if item.column is None else item.column.sql
                expressions.append(f"{item.function}({argument})")
            del position
        sql = f"SELECT {', '.join(expressions)} FROM {self.table} WHERE {condition}"
        if grouped:
            sql += f" GROUP BY {', '.join(c.sql for c, _ in grouped)} ORDER BY {', '.join(c.sql for c, _ in grouped)}"
        sql += " LIMIT ? OFFSET ?"
        rows = []
        for values in self.db.execute(sql, [*params, limit, offset]):
            out: Row = {}
            for number, (item, value) in enumerate(zip(items, values, strict=True), start=1):
                name = item.alias or f"Expr{number}"
                out[name] = _caspio_value(value, item)
            rows.append(out)
        return Page(rows=rows)


def _caspio_value(value: Any, item: SelectItem) -> Any:
    if value is None or item.column is None or item.function in ("COUNT", "SUM", "AVG"):
        return value
    if item.column.type in DATETIME_TYPES:
        return caspio_datetime(value)
    if item.column.type == "YES/NO":
        return bool(value)
    return value


class Store:
    """Every view, the generator that made them, and the mutations applied since."""

    def __init__(self, rows: int, seed: int) -> None:
        self.lock = threading.RLock()
        self.generator = Generator(rows, seed)
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.tables: dict[str, ViewTable] = {}
        for index, view in enumerate(self.generator.views()):
            self.tables[view.name.lower()] = ViewTable(self.db, index, view)
        self.mutations = Mutations()

    @property
    def view_names(self) -> list[str]:
        """View names in their defined case."""
        return [table.view.name for table in self.tables.values()]

    def table(self, name: str) -> ViewTable | None:
        """The view of this name, matched case-insensitively."""
        return self.tables.get(name.lower())

    def rows(self, view: str) -> list[Row]:
        """The view's current rows, as the API returns them for `q.select=*`."""
        with self.lock:
            table = self.tables[view.lower()]
            return [dict(row) for row in table.rows.values()]

    def key_of(self, view: str) -> str:
        """The name of the view's first unique field, else `PK_ID`."""
        unique = self.tables[view.lower()].view.unique_field
        return unique.name if unique else "PK_ID"

    def insert(self, view: str, count: int) -> list[Any]:
        """Insert new rows with new keys, stamped now; returns their keys."""
        with self.lock:
            table = self.tables[view.lower()]
            unique = table.view.unique_field
            if unique is None or unique.type != "AUTONUMBER":
                raise ValueError(f"view {view} has no AUTONUMBER key to insert by")
            make = {"providers": self.generator.provider, "practices": self.generator.practice}[view.lower()]
            start = max((row[unique.name] for row in table.rows.values()), default=0) + 1
            rows = [make(key) for key in range(start, start + count)]
            for row in rows:
                row.update(self.stamps(table, on_insert=True))
            table.insert(rows)
            keys = [row[unique.name] for row in rows]
            self.mutations.inserted.setdefault(table.view.name, []).extend(keys)
            return keys

    def delete(self, view: str, keys: list[Any]) -> None:
        """Delete rows by their unique key."""
        with self.lock:
            table = self.tables[view.lower()]
            key = self.key_of(view)
            wanted = {str(k) for k in keys}
            rids = [rid for rid, row in table.rows.items() if str(_key(table, row, key)) in wanted]
            table.delete(rids)
            self.mutations.deleted.setdefault(table.view.name, []).extend(keys)

    def update(self, view: str, key: Any, changes: Row | None = None) -> Row:
        """Change a row and stamp its OnUpdate TIMESTAMP fields with the current time."""
        with self.lock:
            table = self.tables[view.lower()]
            name = self.key_of(view)
            rid = next(rid for rid, row in table.rows.items() if str(_key(table, row, name)) == str(key))
            table.update(rid, (changes or {}) | self.stamps(table, on_insert=False))
            return dict(table.rows[rid])

    @staticmethod
    def stamps(table: ViewTable, *, on_insert: bool) -> Row:
        """Current values for the TIMESTAMP fields that Caspio sets on insert or update."""
        stamps: Row = {}
        for f in table.view.fields:
            if f.type != "TIMESTAMP" or not f.extras.get("OnInsert" if on_insert else "OnUpdate"):
                continue
            zone = ZoneInfo(win_tz.get(f.extras.get("TimeZone", "UTC"), "UTC"))
            now = datetime.now(zone).replace(tzinfo=None)
            stamps[f.name] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}"
        return stamps


def _key(table: ViewTable, row: Row, key: str) -> Any:
    return table.view.pk_id(row) if key == "PK_ID" else row[key]
