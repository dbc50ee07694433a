"""Where each page starts: keyset tokens, and the key ranges a large view is split into."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tap_huey.fields import (
    INTEGER_TYPES,
    NUMBER_TYPES,
    CaspioField,
    parse_caspio_datetime,
    where_literal,
)

PAGES_PER_RANGE = 4


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts.

    Attributes:
        number: the `q.pageNumber` (always 1 with keyset paging).
        after: the ordering values of the last row read, for keyset paging.
        lower: a `q.where` literal the first ordering column must exceed (a range's start).
        upper: a `q.where` literal the first ordering column must not exceed (a range's end).
    """

    number: int = 1
    after: tuple[Any, ...] | None = None
    lower: str | None = None
    upper: str | None = None


def comparable(field: CaspioField, raw: Any) -> Any:
    """A raw value (or a `q.where` literal) of a splittable field, as a Python value to compare."""
    if field.is_datetime:
        return parse_caspio_datetime(str(raw).strip("'"))
    return Decimal(str(raw))


def outside(field: CaspioField, token: PageToken, raw: Any) -> bool:
    """Whether a row's first ordering value lies outside the range a page asked for."""
    if raw is None:
        return token.lower is not None or token.upper is not None
    value = comparable(field, raw)
    if token.lower is not None and value <= comparable(field, token.lower):
        return True
    return token.upper is not None and value > comparable(field, token.upper)


def splittable(field: CaspioField) -> bool:
    """Whether a view can be cut into ranges of this (first ordering) field."""
    return field.type in INTEGER_TYPES | NUMBER_TYPES or field.is_datetime


def split(
    field: CaspioField, low: Any, high: Any, pages: int
) -> list[tuple[str | None, str | None]]:
    """Cut the values after `low` up to `high` into ranges of about `PAGES_PER_RANGE` pages.

    Ranges are `(lower, upper]` as `q.where` literals; the first has no lower bound (it continues
    from the last row read) and the last no upper bound (so rows added beyond `high` are read).
    Rows sharing a value always fall in one range, so ties never straddle a boundary.
    """
    count = max(math.ceil(pages / PAGES_PER_RANGE), 1)
    if field.is_datetime:
        start, end = parse_caspio_datetime(str(low)), parse_caspio_datetime(str(high))
        step = (end - start) / count
        cuts = [
            where_literal(start + step * i)
            for i in range(1, count)
            if step > timedelta(milliseconds=1)
        ]
    else:
        start_number, end_number = Decimal(str(low)), Decimal(str(high))
        step_number = (end_number - start_number) / count
        points = [start_number + step_number * i for i in range(1, count)]
        if field.type in INTEGER_TYPES:
            points = [Decimal(math.floor(p)) for p in points]
        cuts = [str(p) for p in points if p > start_number]
    cuts = list(dict.fromkeys(cuts))
    bounds: list[str | None] = [None, *cuts, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
