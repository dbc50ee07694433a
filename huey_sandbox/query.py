"""Caspio's `q.*` parameters: a parser for the T-SQL subset clients send, compiled to SQLite."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huey_sandbox.data import DATETIME_TYPES, INTEGER_TYPES, LIST_TYPES, NUMBER_TYPES


class QueryError(Exception):
    """A query Caspio would refuse, with the error code it would answer."""

    def __init__(self, message: str, code: str = "SqlServerError") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Column:
    """A column a query may name: its SQLite name and its Caspio type."""

    name: str
    sql: str
    type: str
    unique: bool


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<string>[Nn]?'(?:[^']|'')*')
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    |(?P<ident>\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><>|!=|<=|>=|=|<|>)
    |(?P<punct>[(),*])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "BETWEEN", "TRUE", "FALSE"}
_DATETIME_LITERAL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?$"
)


@dataclass(frozen=True)
class Token:
    """One lexical token of a `q.where` clause."""

    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    """Split a clause into tokens, refusing any character the grammar does not know."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise QueryError(f"Incorrect syntax near '{text[position : position + 10]}'.")
        kind = match.lastgroup or ""
        if kind != "space":
            value = match.group()
            if kind == "ident" and value.upper() in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, position))
        position = match.end()
    return tokens


def canonical_datetime(text: str) -> str:
    """A date-time literal or value in the sortable form the store keeps."""
    match = _DATETIME_LITERAL.match(text.strip())
    if not match:
        raise QueryError(
            "Conversion failed when converting date and/or time from character string."
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as error:
        raise QueryError(
            "The conversion of a varchar data type to a datetime data type resulted in an out-of-range value."
        ) from error
    micro = (fraction or "").ljust(6, "0")[:6]
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + micro


def caspio_datetime(canonical: str) -> str:
    """The store's sortable form back in Caspio's JSON form."""
    whole, _, fraction = canonical.partition(".")
    fraction = fraction.rstrip("0")
    return whole.replace(" ", "T") + (f".{fraction}" if fraction else "")


class WhereCompiler:
    """Recursive-descent parser of a `q.where` clause that emits SQLite with parameters."""

    def __init__(self, text: str, resolve: Callable[[str], Column]) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.resolve = resolve
        self.params: list[Any] = []

    def compile(self) -> tuple[str, list[Any]]:
        """The whole clause as SQL and its parameters."""
        if not self.tokens:
            return "1", []
        sql = self.expression()
        if self.index < len(self.tokens):
            raise QueryError(f"Incorrect syntax near '{self.tokens[self.index].text}'.")
        return sql, self.params

    def peek(self, offset: int = 0) -> Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def accept(self, *words: str) -> bool:
        token = self.peek()
        if token and token.kind in ("keyword", "punct", "op") and token.text.upper() in words:
            self.index += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            token = self.peek()
            raise QueryError(f"Incorrect syntax near '{token.text if token else word}'.")

    def expression(self) -> str:
        parts = [self.conjunction()]
        while self.accept("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.accept("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        if self.accept("NOT"):
            return f"(NOT {self.negation()})"
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return f"({inner})"
        return self.predicate()

    def predicate(self) -> str:
        left, left_column = self.operand(None)
        token = self.peek()
        if token is None:
            raise QueryError(
                "An expression of non-boolean type specified in a context where a condition is expected."
            )
        if token.kind == "op":
            self.index += 1
            operator = "<>" if token.text == "!=" else token.text
            right, right_column = self.operand(left_column)
            if left == "?" and right_column is not None:
                left, _ = self.rebind_last(left, right_column)
            return f"({left} {operator} {right})"
        if self.accept("IS"):
            negated = self.accept("NOT")
            self.expect("NULL")
            return f"({left} IS {'NOT ' if negated else ''}NULL)"
        negated = self.accept("NOT")
        if self.accept("IN"):
            self.expect("(")
            items = [self.operand(left_column)[0]]
            while self.accept(","):
                items.append(self.operand(left_column)[0])
            self.expect(")")
            return f"({left} {'NOT ' if negated else ''}IN ({', '.join(items)}))"
        if self.accept("LIKE"):
            pattern, _ = self.operand(None)
            return f"({left} {'NOT ' if negated else ''}LIKE {pattern})"
        if self.accept("BETWEEN"):
            low, _ = self.operand(left_column)
            self.expect("AND")
            high, _ = self.operand(left_column)
            return f"({left} {'NOT ' if negated else ''}BETWEEN {low} AND {high})"
        raise QueryError(f"Incorrect syntax near '{token.text}'.")

    def rebind_last(self, placeholder: str, column: Column) -> tuple[str, None]:
        """Convert a literal written before the column it is compared with (the last one bound:
        the column itself binds nothing)."""
        position = len(self.params) - 1
        self.params[position] = convert_literal(self.params[position], column)
        return placeholder, None

    def operand(self, against: Column | None) -> tuple[str, Column | None]:
        token = self.peek()
        if token is None:
            raise QueryError("Incorrect syntax near the end of the clause.")
        self.index += 1
        if token.kind == "ident":
            column = self.resolve(token.text.strip("[]"))
            if column.type in LIST_TYPES:
                raise QueryError(
                    f"The data types of list field '{column.name}' cannot be compared."
                )
            return column.sql, column
        if token.kind == "string":
            raw = token.text[2:-1] if token.text[0] in "Nn" else token.text[1:-1]
            value: Any = raw.replace("''", "'")
        elif token.kind == "number":
            value = float(token.text) if re.search(r"[.eE]", token.text) else int(token.text)
        elif token.kind == "keyword" and token.text.upper() in ("TRUE", "FALSE"):
            value = int(token.text.upper() == "TRUE")
        elif token.kind == "keyword" and token.text.upper() == "NULL":
            return "NULL", None
        else:
            raise QueryError(f"Incorrect syntax near '{token.text}'.")
        self.params.append(convert_literal(value, against) if against else value)
        return "?", None


def convert_literal(value: Any, column: Column) -> Any:
    """A literal as SQL Server would convert it to compare with a column of this type."""
    if column.type in DATETIME_TYPES:
        if not isinstance(value, str):
            raise QueryError("Operand type clash: numeric is incompatible with datetime.")
        return canonical_datetime(value)
    if column.type in NUMBER_TYPES + INTEGER_TYPES + ("YES/NO",) and isinstance(value, str):
        try:
            return float(value)
        except ValueError as error:
            raise QueryError(
                f"Error converting data type nvarchar to numeric ('{value}')."
            ) from error
    return value


@dataclass(frozen=True)
class SelectItem:
    """One item of `q.select`: a field, `*`, or an aggregate, with its output name."""

    kind: str
    column: Column | None
    alias: str
    function: str = ""


_AGGREGATE = re.compile(
    r"^(COUNT|MIN|MAX|SUM|AVG)\s*\(\s*(\*|\[?[A-Za-z_][A-Za-z0-9_]*\]?)\s*\)$", re.I
)
_ALIAS = re.compile(r"^(.*?)\s+AS\s+\[?([A-Za-z_][A-Za-z0-9_]*)\]?$", re.I | re.S)
_NAME = re.compile(r"^\[?([A-Za-z_][A-Za-z0-9_]*)\]?$")


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def parse_select(text: str, resolve: Callable[[str], Column]) -> list[SelectItem]:
    """Parse `q.select` into items; `*` stands for every returned field."""
    items: list[SelectItem] = []
    for part in split_top_level(text):
        if not part:
            raise QueryError("Incorrect syntax near ','.")
        alias_match = _ALIAS.match(part)
        expression, alias = (
            (alias_match.group(1).strip(), alias_match.group(2)) if alias_match else (part, "")
        )
        if expression == "*":
            items.append(SelectItem("star", None, "*"))
            continue
        aggregate = _AGGREGATE.match(expression)
        if aggregate:
            function, argument = aggregate.group(1).upper(), aggregate.group(2)
            column = None if argument == "*" else resolve(argument.strip("[]"))
            if argument == "*" and function != "COUNT":
                raise QueryError("Incorrect syntax near '*'.")
            if column is not None and column.type == "PASSWORD":
                raise QueryError(
                    f"Field '{column.name}' of type PASSWORD cannot be selected.",
                    "IncorrectQueryParameter",
                )
            if column is not None and column.type in LIST_TYPES:
                raise QueryError(
                    f"Operand data type of list field '{column.name}' is invalid for "
                    f"{function.lower()} operator."
                )
            items.append(SelectItem("aggregate", column, alias or "", function))
            continue
        name = _NAME.match(expression)
        if not name:
            raise QueryError(f"Incorrect syntax near '{expression[:20]}'.")
        column = resolve(name.group(1))
        if column.type == "PASSWORD":
            raise QueryError(
                f"Field '{column.name}' of type PASSWORD cannot be selected.",
                "IncorrectQueryParameter",
            )
        items.append(SelectItem("field", column, alias or column.name))
    return items


def parse_order(text: str, resolve: Callable[[str], Column]) -> list[tuple[Column, bool]]:
    """Parse `q.orderBy` into (column, descending) pairs."""
    order = []
    for part in split_top_level(text):
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError(f"Incorrect syntax near '{part}'.")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"Incorrect syntax near '{words[1]}'.")
        column = resolve(words[0].strip("[]"))
        if column.type in LIST_TYPES:
            raise QueryError(f"List field '{column.name}' cannot be used in an ORDER BY clause.")
        order.append((column, direction == "DESC"))
    return order
