"""An in-memory SQLite copy of every view, queried the way Caspio queries its tables."""

from __future__ import annotations

import gc
import operator
import re
import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import win_tz

from huey_sandbox import jsontext
from huey_sandbox.data import DATETIME_TYPES, LIST_TYPES, Generator, Row, View
from huey_sandbox.query import (
    Column,
    QueryError,
    SelectItem,
    WhereCompiler,
    canonical_datetime,
    caspio_datetime,
    parse_order,
    parse_select,
)

# Full ordered row-id lists kept for page-number paging, so that page 200 does not walk 199
# pages of index first; any change to a view forgets its lists.
_ORDER_CACHE_SIZE = 32
_KEY_BOUND = re.compile(r'\(("c\d+") (>=?) \?\)')
_GENERATED_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\Z")


@dataclass
class Page:
    """What one records request returns.

    Attributes:
        projected: the rows of a select other than `*` (fields, aliases, aggregates).
        fragments: for `q.select=*`, each row's JSON text as UTF-8, ready to join.
        joined: for `q.select=*`, when the store had them side by side already: the rows' texts
            joined by commas (then `fragments` is None).
        total: the count of every matching row, when asked for.
        rids: for `q.select=*`, the rows' internal ids, in order.
        source: for `q.select=*`, the view's rows by internal id.
    """

    projected: list[Row] | None = None
    fragments: list[bytes] | None = None
    total: int | None = None
    rids: list[int] = field(default_factory=list)
    source: dict[int, Row] = field(default_factory=dict)
    joined: memoryview | None = None

    @property
    def rows(self) -> list[Row]:
        """The rows, as dicts (shared with the store: do not change them)."""
        if self.projected is not None:
            return self.projected
        return [self.source[rid] for rid in self.rids]

    @property
    def count(self) -> int:
        """How many rows the page holds."""
        return len(self.projected) if self.projected is not None else len(self.rids)


@dataclass
class Mutations:
    """Keys inserted and deleted while the sandbox ran, per view."""

    inserted: dict[str, list[Any]] = field(default_factory=dict)
    deleted: dict[str, list[Any]] = field(default_factory=dict)


def _sql_value(value: Any, type_: str) -> Any:
    """A Python value as SQLite keeps it: date-times in a sortable form, YES/NO as 1 or 0."""
    if value is None:
        return None
    if type_ in DATETIME_TYPES:
        if _GENERATED_DATETIME.match(value):
            # The generator's `2024-01-02T03:04:05.6`, as `canonical_datetime` would keep it.
            return f"{value[:10]} {value[11:19]}.{value[20:26]:0<6}"
        return canonical_datetime(value)
    if type_ == "YES/NO":
        return int(value)
    return value


class ViewTable:
    """One view's rows: the Python values as Caspio returns them and a SQLite index over them.

    The Python rows are the truth; SQLite holds what clauses filter, order, group and aggregate
    on. A column is filled in (and indexed) the first time a query names it, so that a large
    sandbox starts without copying every field of every row: only `PK_ID` and the unique keys
    are there from the start. LIST and PASSWORD fields never are: no clause may use a LIST field,
    and a PASSWORD field reads as NULL.
    """

    def __init__(self, db: sqlite3.Connection, index: int, view: View) -> None:
        self.db = db
        self.view = view
        self.table = f"view_{index}"
        self.fields = [f for f in view.fields if f.returned]
        self.columns: dict[str, Column] = {}
        for position, f in enumerate(view.fields):
            self.columns[f.name.lower()] = Column(f.name, f'"c{position}"', f.type, f.unique)
        self.columns["pk_id"] = Column("PK_ID", '"pk_id"', "STRING", True)
        self.stored = {
            c.sql: c
            for c in self.columns.values()
            if c.name != "PK_ID" and c.type not in LIST_TYPES and c.type != "PASSWORD"
        }
        self.filled = [c for c in self.stored.values() if c.unique]
        self.rows: dict[int, Row] = {}
        self.fragments: dict[int, bytes] = {}
        self.next_rid = 1
        self.version = 0
        self.indexed: set[str] = set()
        self._orders: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self._keys: dict[str, tuple[list[Any], list[int]]] = {}
        self._packed = memoryview(b"")
        self._starts: list[int] = [0]
        self._order: list[int] = []
        self._position: dict[int, int] = {}
        self._packed_version = -1
        self._star_version = -1
        self._pk_id = self._pk_id_function()
        self._create()
        self.insert(view.rows)
        for column in self.columns.values():
            if column.unique:
                self.ensure_index(column)
        self._pack()
        key = view.unique_field
        if key is not None and key.type == "AUTONUMBER":  # ready for keyset paging at once
            self._keyset("1", [], [(self.columns[key.name.lower()], False)])

    def _pk_id_function(self) -> Callable[[Row], str]:
        if self.view.join_tables:
            return self.view.pk_id
        unique = self.view.unique_field
        assert unique is not None
        name = unique.name
        return lambda row: str(row[name])

    def pk_id(self, row: Row) -> str:
        """The row's `PK_ID`."""
        return self._pk_id(row)

    def _create(self) -> None:
        definitions = ['"rid" INTEGER PRIMARY KEY', '"pk_id" TEXT COLLATE NOCASE']
        for column in self.columns.values():
            if column.name == "PK_ID":
                continue
            affinity = {"INTEGER": "INTEGER", "AUTONUMBER": "INTEGER", "YES/NO": "INTEGER"}.get(
                column.type
            )
            if column.type in ("NUMBER", "CURRENCY"):
                affinity = "REAL"
            definitions.append(f"{column.sql} {affinity or 'TEXT COLLATE NOCASE'}")
        self.db.execute(f"CREATE TABLE {self.table} ({', '.join(definitions)})")

    def ensure_column(self, column: Column) -> None:
        """Fill in and index a column the first time a query names it."""
        if column.sql not in self.stored:
            return
        if column not in self.filled:
            name, type_ = column.name, column.type
            values = [(_sql_value(row.get(name), type_), rid) for rid, row in self.rows.items()]
            self.db.executemany(f"UPDATE {self.table} SET {column.sql} = ? WHERE rid = ?", values)
            self.filled.append(column)
        self.ensure_index(column)

    def ensure_index(self, column: Column) -> None:
        """Index a filled column (or `PK_ID`) once."""
        if column.sql in self.indexed:
            return
        name = column.sql.strip('"')
        self.db.execute(f"CREATE INDEX {self.table}_{name} ON {self.table} ({column.sql})")
        self.indexed.add(column.sql)
        unique = self.view.unique_field
        if column.type == "TIMESTAMP" and unique is not None:
            # Incremental reads filter and order on a timestamp and the key together.
            pair = f"{column.sql}, {self.columns[unique.name.lower()].sql}"
            self.db.execute(f"CREATE INDEX {self.table}_{name}_key ON {self.table} ({pair})")

    def resolve(self, name: str) -> Column:
        """The column a query names, case-insensitively, or Caspio's unknown-column error."""
        column = self.columns.get(name.lower())
        if column is None:
            raise QueryError(f"Invalid column name '{name}'.")
        return column

    def _changed(self) -> None:
        self.version += 1
        self._orders.clear()
        self._keys.clear()
        if self._packed_version != -1:
            self._packed, self._starts, self._order, self._position = memoryview(b""), [0], [], {}
            self._packed_version = -1

    def insert(self, rows: list[Row]) -> list[int]:
        """Add rows; returns their internal row ids."""
        if not rows:
            return []
        rids = list(range(self.next_rid, self.next_rid + len(rows)))
        self.next_rid += len(rows)
        self.rows.update(zip(rids, rows, strict=True))
        pk_id, filled = self._pk_id, self.filled
        values = [
            (rid, pk_id(row), *[_sql_value(row.get(c.name), c.type) for c in filled])
            for rid, row in zip(rids, rows, strict=True)
        ]
        names = ", ".join(['"rid"', '"pk_id"'] + [c.sql for c in filled])
        placeholders = ", ".join("?" * (len(filled) + 2))
        self.db.executemany(f"INSERT INTO {self.table} ({names}) VALUES ({placeholders})", values)
        self.encode(rids)
        self._changed()
        return rids

    def encode(self, rids: list[int]) -> None:
        """Keep each row's JSON text, as `q.select=*` returns it."""
        rows, fragments, encode = self.rows, self.fragments, jsontext.encode
        for rid in rids:
            fragments[rid] = encode(rows[rid])

    def delete(self, rids: list[int]) -> None:
        """Remove rows by internal row id."""
        for rid in rids:
            self.rows.pop(rid, None)
            self.fragments.pop(rid, None)
        self.db.executemany(f"DELETE FROM {self.table} WHERE rid = ?", [(rid,) for rid in rids])
        self._changed()

    def update(self, rid: int, changes: Row) -> None:
        """Change some values of one row; names must be given in their defined case."""
        row = self.rows[rid] | changes
        self.rows[rid] = row
        self.encode([rid])
        filled = {c.name: c for c in self.filled}
        kept = [(filled[name], value) for name, value in changes.items() if name in filled]
        if kept:
            sets = ", ".join(f"{column.sql} = ?" for column, _ in kept)
            values = [_sql_value(value, column.type) for column, value in kept]
            self.db.execute(f"UPDATE {self.table} SET {sets} WHERE rid = ?", [*values, rid])
        self._changed()

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
        used: list[Column] = []

        def resolve(name: str) -> Column:
            column = self.resolve(name)
            used.append(column)
            return column

        condition, params = WhereCompiler(where, resolve).compile()
        for column in used:
            self.ensure_column(column)
        if any(item.kind == "aggregate" for item in items) or group:
            return self._aggregate(items, condition, params, group, limit, offset, want_total)
        ordering = parse_order(order, self.resolve) if order else []
        for column, _ in ordering:
            self.ensure_column(column)
        clauses = [f"{c.sql} {'DESC' if descending else 'ASC'}" for c, descending in ordering]
        deterministic = any(c.unique for c, _ in ordering)
        if not deterministic:
            clauses.append("random()")
        total = None
        keyset = self._keyset(condition, params, ordering) if deterministic else None
        if keyset is not None:
            ordered, start = keyset
            rids = ordered[start + offset : start + offset + limit]
            total = len(ordered) - start
        elif deterministic and (offset > 0 or want_total):
            ordered = self._ordered(condition, params, clauses)
            rids = ordered[offset : offset + limit]
            total = len(ordered)
        else:
            sql = (
                f"SELECT rid FROM {self.table} WHERE {condition} "
                f"ORDER BY {', '.join(clauses)} LIMIT ? OFFSET ?"
            )
            rids = [r[0] for r in self.db.execute(sql, [*params, limit, offset])]
            if want_total:
                sql = f"SELECT COUNT(*) FROM {self.table} WHERE {condition}"
                total = self.db.execute(sql, params).fetchone()[0]
        if len(items) == 1 and items[0].kind == "star":
            joined = self._joined(rids)
            if joined is not None:
                return Page(joined=joined, total=total, rids=rids, source=self.rows)
            fragments = list(map(self.fragments.__getitem__, rids))
            return Page(fragments=fragments, total=total, rids=rids, source=self.rows)
        rows = self.rows
        return Page(projected=[self._project(rows[rid], items) for rid in rids], total=total)

    def _pack(self) -> None:
        """Join every row's text, in row-id order, for `_joined` to cut pages from."""
        order = list(self.fragments)
        texts = list(self.fragments.values())
        self._packed = memoryview(b",".join(texts))
        self._starts = [0, *accumulate(len(text) + 1 for text in texts)]
        self._order = order
        self._position = dict(zip(order, range(len(order)), strict=True))
        self._packed_version = self.version

    def _joined(self, rids: list[int]) -> memoryview | None:
        """The rows' texts joined by commas, cut from one packed copy of the whole view.

        Paging in row order (by the key, as rows were added) asks for runs of neighbouring
        rows; copying one slice beats gathering a thousand texts. The packed copy is made at
        start, and again on the second `*` request after a change, so that a view changing at
        every request does not pay for it.
        """
        if not rids:
            return None
        if self._packed_version != self.version:
            seen, self._star_version = self._star_version, self.version
            if seen != self.version:
                return None
            self._pack()
        first = self._position.get(rids[0])
        if first is None or self._order[first : first + len(rids)] != rids:
            return None
        return self._packed[self._starts[first] : self._starts[first + len(rids)] - 1]

    def _keyset(
        self, condition: str, params: list[Any], ordering: list[tuple[Column, bool]]
    ) -> tuple[list[int], int] | None:
        """Keyset paging on an AUTONUMBER key, answered without SQL.

        For `q.where=Key > n` (or `>=`, or no clause) with `q.orderBy=Key` (ascending): the row
        ids in key order, remembered until the view changes, and where the page starts. None
        for any other query. SQL would give the same rows, a good deal slower.
        """
        if len(ordering) != 1 or ordering[0][1] or ordering[0][0].type != "AUTONUMBER":
            return None
        column = ordering[0][0]
        bound: Any = None
        after = False
        if condition != "1":
            match = _KEY_BOUND.fullmatch(condition)
            if match is None or match.group(1) != column.sql or len(params) != 1:
                return None
            bound, after = params[0], match.group(2) == ">"
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                return None
        cached = self._keys.get(column.sql)
        if cached is None:
            name = column.name
            keys = [row[name] for row in self.rows.values()]
            if all(map(operator.lt, keys, keys[1:])):  # as usual: keys grow with the row ids
                cached = (keys, list(self.rows))
            else:
                pairs = sorted((row[name], rid) for rid, row in self.rows.items())
                cached = ([key for key, _ in pairs], [rid for _, rid in pairs])
            self._keys[column.sql] = cached
        keys, rids = cached
        if bound is None:
            return rids, 0
        return rids, (bisect_right if after else bisect_left)(keys, bound)

    def _ordered(self, condition: str, params: list[Any], clauses: list[str]) -> list[int]:
        """Every matching row id in a deterministic order, remembered until the view changes."""
        key = (condition, tuple(params), tuple(clauses))
        ordered = self._orders.get(key)
        if ordered is None:
            sql = f"SELECT rid FROM {self.table} WHERE {condition} ORDER BY {', '.join(clauses)}"
            ordered = [r[0] for r in self.db.execute(sql, params)]
            self._orders[key] = ordered
            while len(self._orders) > _ORDER_CACHE_SIZE:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(key)
        return ordered

    def _project(self, row: Row, items: list[SelectItem]) -> Row:
        out: Row = {}
        for item in items:
            if item.kind == "star":
                out.update(row)
            elif item.column is not None and item.column.name == "PK_ID":
                out[item.alias] = self._pk_id(row)
            elif item.column is not None:
                out[item.alias] = row.get(item.column.name)
        return out

    def _aggregate_value(self, value: Any, item: SelectItem) -> Any:
        """An aggregate's or grouped field's value as the API shows it."""
        column = item.column
        if value is None or column is None or item.function in ("COUNT", "SUM", "AVG"):
            return value
        if column.type in DATETIME_TYPES:
            # The value of a row, as that row shows it (`.120` stays `.120`, not `.12`).
            sql = f"SELECT rid FROM {self.table} WHERE {column.sql} = ? LIMIT 1"
            found = self.db.execute(sql, [value]).fetchone()
            if found is not None:
                return self.rows[found[0]].get(column.name)
            return caspio_datetime(value)
        if column.type == "YES/NO":
            return bool(value)
        return value

    def _aggregate(
        self,
        items: list[SelectItem],
        condition: str,
        params: list[Any],
        group: str,
        limit: int,
        offset: int,
        want_total: bool,
    ) -> Page:
        grouped = parse_order(group, self.resolve) if group else []
        grouped_names = {c.name for c, _ in grouped}
        for column in [c for c, _ in grouped] + [i.column for i in items if i.column]:
            self.ensure_column(column)
        expressions = []
        for item in items:
            if item.kind == "star":
                raise QueryError(
                    "Column '*' is invalid in the select list because it is not contained in an "
                    "aggregate function."
                )
            if item.kind == "field":
                assert item.column is not None
                if item.column.name not in grouped_names:
                    raise QueryError(
                        f"Column '{item.column.name}' is invalid in the select list because it "
                        "is not contained in either an aggregate function or the GROUP BY clause."
                    )
                expressions.append(item.column.sql)
            else:
                argument = "*" if item.column is None else item.column.sql
                expressions.append(f"{item.function}({argument})")
        source = f"SELECT {', '.join(expressions)} FROM {self.table} WHERE {condition}"
        if grouped:
            keys = ", ".join(c.sql for c, _ in grouped)
            source += f" GROUP BY {keys} ORDER BY {keys}"
        rows = []
        for values in self.db.execute(f"{source} LIMIT ? OFFSET ?", [*params, limit, offset]):
            out: Row = {}
            for number, (item, value) in enumerate(zip(items, values, strict=True), start=1):
                name = item.alias or f"Expr{number}"
                out[name] = self._aggregate_value(value, item)
            rows.append(out)
        total = None
        if want_total:
            total = self.db.execute(f"SELECT COUNT(*) FROM ({source})", params).fetchone()[0]
        return Page(projected=rows, total=total)


class Store:
    """Every view, the generator that made them, and the mutations applied since."""

    def __init__(self, rows: int, seed: int) -> None:
        self.lock = threading.RLock()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.tables: dict[str, ViewTable] = {}
        # Hundreds of thousands of small dicts: the cyclic collector would walk them again and
        # again while they are made.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.generator = Generator(rows, seed)
            for index, view in enumerate(self.generator.views()):
                self.tables[view.name.lower()] = ViewTable(self.db, index, view)
        finally:
            if collecting:
                gc.enable()
        self.next_keys: dict[str, int] = {}
        for table in self.tables.values():
            unique = table.view.unique_field
            if unique is not None and unique.type == "AUTONUMBER":
                highest = max((row[unique.name] for row in table.rows.values()), default=0)
                self.next_keys[table.view.name] = highest + 1
        self.mutations = Mutations()

    @property
    def view_names(self) -> list[str]:
        """View names in their defined case."""
        return [table.view.name for table in self.tables.values()]

    def table(self, name: str) -> ViewTable | None:
        """The view of this name, matched case-insensitively."""
        return self.tables.get(name.lower())

    def _table(self, view: str) -> ViewTable:
        table = self.tables.get(view.lower())
        if table is None:
            raise KeyError(f"no view named {view!r}; the views are {self.view_names}")
        return table

    def rows(self, view: str) -> list[Row]:
        """The view's current rows, as the API returns them for `q.select=*`."""
        with self.lock:
            return [dict(row) for row in self._table(view).rows.values()]

    def count(self, view: str) -> int:
        """How many rows the view holds now."""
        with self.lock:
            return len(self._table(view).rows)

    def keys(self, view: str) -> list[Any]:
        """The view's current keys (its unique field's values, or `PK_ID` strings)."""
        with self.lock:
            table = self._table(view)
            key = self.key_of(view)
            return [_key(table, row, key) for row in table.rows.values()]

    def key_of(self, view: str) -> str:
        """The name of the view's first unique field, else `PK_ID`."""
        unique = self._table(view).view.unique_field
        return unique.name if unique else "PK_ID"

    def insert(self, view: str, count: int) -> list[Any]:
        """Insert new rows with new keys, stamped now; returns their keys.

        Keys are never reused, as AUTONUMBER never reuses them, even after the highest row
        was deleted. Only the providers and practices views can be inserted into.
        """
        with self.lock:
            table = self._table(view)
            makers = {"providers": self.generator.provider, "practices": self.generator.practice}
            make = makers.get(view.lower())
            unique = table.view.unique_field
            if make is None or unique is None:
                raise ValueError(
                    f"view {table.view.name} cannot be inserted into; only Providers and "
                    "Practices can"
                )
            start = self.next_keys[table.view.name]
            self.next_keys[table.view.name] = start + count
            rows = [make(key) for key in range(start, start + count)]
            for row in rows:
                row.update(self.stamps(table, on_insert=True))
            table.insert(rows)
            keys = [row[unique.name] for row in rows]
            self.mutations.inserted.setdefault(table.view.name, []).extend(keys)
            return keys

    def delete(self, view: str, keys: list[Any]) -> list[Any]:
        """Delete rows by their unique key; returns the keys that matched a row."""
        with self.lock:
            table = self._table(view)
            key = self.key_of(view)
            wanted = {str(k): k for k in keys}
            found = [
                (rid, wanted[str(_key(table, row, key))])
                for rid, row in table.rows.items()
                if str(_key(table, row, key)) in wanted
            ]
            table.delete([rid for rid, _ in found])
            deleted = [k for _, k in found]
            if deleted:
                self.mutations.deleted.setdefault(table.view.name, []).extend(deleted)
            return deleted

    def update(self, view: str, key: Any, changes: Row | None = None) -> Row:
        """Change a row and stamp its OnUpdate TIMESTAMP fields with the current time.

        Field names match case-insensitively; a name the view does not return, or an
        AUTONUMBER key, is refused.
        """
        with self.lock:
            table = self._table(view)
            name = self.key_of(view)
            rid = next(
                (r for r, row in table.rows.items() if str(_key(table, row, name)) == str(key)),
                None,
            )
            if rid is None:
                raise KeyError(f"view {table.view.name} has no row whose {name} is {key!r}")
            defined: Row = {}
            for field_name, value in (changes or {}).items():
                f = table.view.field(field_name)
                if f is None or not f.returned:
                    raise KeyError(f"view {table.view.name} has no editable field {field_name!r}")
                if f.type == "AUTONUMBER":
                    raise ValueError(
                        f"{table.view.name}.{f.name} is an AUTONUMBER key: not editable"
                    )
                if f.type in DATETIME_TYPES and value is not None:
                    canonical_datetime(value)
                defined[f.name] = value
            table.update(rid, defined | self.stamps(table, on_insert=False))
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
    return table.pk_id(row) if key == "PK_ID" else row[key]
