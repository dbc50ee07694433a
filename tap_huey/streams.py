"""One stream per Caspio view: keyset paging, value conversion, and completeness checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import requests
from singer_sdk import Tap
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.types import Context
from singer_sdk.streams.rest import HTTPRequest, PageContext, RESTStream
from typing_extensions import override

from tap_huey.client import CaspioClient, view_path
from tap_huey.errors import BadPayload, CaspioAPIError, HueyError, hint
from tap_huey.fields import PK_ID, where_literal
from tap_huey.retry import RETRIED_EXCEPTIONS, describe_failure
from tap_huey.views import ViewSpec
from tap_huey.xml import parse_records

PROGRESS_EVERY_PAGES = 25
FAILURES: tuple[type[Exception], ...] = (FatalAPIError, *RETRIED_EXCEPTIONS)


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts: a page number, or the ordering values of the last row read."""

    number: int = 1
    after: tuple[Any, ...] | None = None


class ViewStream(RESTStream[PageToken]):
    """The records of one Caspio view."""

    check_sorted = False
    allow_redirects = False

    def __init__(self, tap: Tap, view: ViewSpec, client: CaspioClient) -> None:
        self.view = view
        self.client = client
        self.settings = client.settings
        self._converters: dict[str, Callable[[Any], Any]] = {
            f.name: f.converter() for f in view.fields
        }
        super().__init__(tap=tap, name=view.name, schema=view.schema())
        self.primary_keys = list(view.primary_keys)
        self.replication_key = view.replication_key
        self.STATE_MSG_FREQUENCY = self.settings.page_size
        self._page_number = 0
        self._start_filter: str | None = None
        self._read_complete = False

    @property
    @override
    def url_base(self) -> str:
        return self.settings.base_url

    @property
    @override
    def path(self) -> str:  # type: ignore[override]
        return view_path(self.view.name, "records")

    @property
    @override
    def authenticator(self) -> Any:
        return self.client.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.client.session

    @property
    @override
    def user_agent(self) -> str:
        return str(self.client.session.headers["User-Agent"])

    @property
    @override
    def timeout(self) -> int:
        return int(self.settings.request_timeout)

    @property
    @override
    def is_sorted(self) -> bool:
        return self.replication_key is not None and self.replication_key == self.view.order[0]

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        return bool(self.config.get("emit_activate_version_messages", True))

    @override
    def _write_activate_version_message(self, full_table_version: int) -> None:
        # The SDK announces the version before the first record; a target would then drop every
        # row at once and stay empty if the read failed. Activate only once every row is sent.
        if self._read_complete:
            super()._write_activate_version_message(full_table_version)

    @property
    @override
    def http_headers(self) -> dict[str, Any]:
        accept = "application/xml" if self.settings.response_format == "xml" else "application/json"
        return {"Accept": accept, "User-Agent": self.user_agent}

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def validate_response(self, response: requests.Response) -> None:
        self.client.validate(response)

    def _where(self, after: tuple[Any, ...] | None) -> str | None:
        """The `q.where` of a page: the user's filter, the bookmark, and the keyset bound."""
        clauses = [c for c in (self.view.where, self._start_filter) if c]
        if after is not None:
            clauses.append(self._after_clause(after))
        if not clauses:
            return None
        if len(clauses) == 1:
            return clauses[0]
        return " AND ".join(f"({c})" for c in clauses)

    def _after_clause(self, after: tuple[Any, ...]) -> str:
        """Rows after `after` in the `q.orderBy` order: a lexicographic keyset bound."""
        alternatives = []
        for position, column in enumerate(self.view.order):
            equal = [
                self._compare(c, "=", after[i]) for i, c in enumerate(self.view.order[:position])
            ]
            alternatives.append(" AND ".join([*equal, self._compare(column, ">", after[position])]))
        return (
            " OR ".join(f"({a})" for a in alternatives)
            if len(alternatives) > 1
            else alternatives[0]
        )

    def _compare(self, column: str, operator: str, raw: Any) -> str:
        if raw is None:
            return f"{column} IS NOT NULL" if operator == ">" else f"{column} IS NULL"
        return f"{column} {operator} {self.view.field(column).literal(raw)}"

    @override
    def get_http_request(self, *, page: PageContext[PageToken]) -> HTTPRequest:
        token = page.next_page_token or PageToken()
        params: dict[str, Any] = {}
        if self.view.select_pk_id:
            params["q.select"] = f"*,{PK_ID}"
        where = self._where(token.after)
        if where:
            params["q.where"] = where
        params["q.orderBy"] = ",".join(self.view.order)
        params["q.pageNumber"] = token.number
        params["q.pageSize"] = self.settings.page_size
        if self.settings.api_version == "v3" and token.number == 1 and token.after is None:
            params["q.getPaginationInfo"] = "true"
        return HTTPRequest(
            url=self.get_url(page.stream_context), headers=self.http_headers, params=params
        )

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        return self._parse(response)[0]

    def _parse(
        self, response: requests.Response
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        if self.settings.response_format == "xml":
            return parse_records(response.content)
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError as error:
            raise BadPayload(
                f"Caspio sent a body that is not JSON ({len(response.content)} bytes)"
            ) from error
        if not isinstance(body, dict) or not isinstance(body.get("Result"), list):
            raise BadPayload("Caspio's answer has no Result list")
        return body["Result"], body.get("Pagination")

    def _fetch(
        self, context: Context | None, token: PageToken
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page: build, send, class and parse; retried as a whole by the caller."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=token)
        )
        prepared = self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )
        response = self._request(prepared, context)
        return self._parse(response)

    def _bookmark_filter(self, context: Context | None) -> str | None:
        """`replication_key >= bookmark`, the bookmark written naive in the field's own zone."""
        if not self.replication_key:
            return None
        starts = []
        bookmark = self.get_starting_replication_key_value(context)
        if bookmark:
            moment = datetime.fromisoformat(str(bookmark).replace("Z", "+00:00"))
            starts.append(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
        if self.settings.start_date:
            starts.append(self.settings.start_date)
        if not starts:
            return None
        field = self.view.field(self.replication_key)
        if not field.is_datetime:
            return f"{self.replication_key} >= {field.literal(bookmark)}" if bookmark else None
        local = max(starts).astimezone(field.zone).replace(tzinfo=None)
        return f"{self.replication_key} >= {where_literal(local)}"

    def _key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(record.get(k) for k in self.view.primary_keys)

    def _fail(self, error: BaseException) -> HueyError:
        page = f"view '{self.name}', page {self._page_number}"
        if isinstance(error, CaspioAPIError):
            return CaspioAPIError(
                f"Reading {page} failed: {error} {hint(error.problem)}".strip(), error.problem
            )
        problem = getattr(error, "problem", None)
        return CaspioAPIError(
            f"Reading {page} failed after {self.settings.max_retries} retries: {describe_failure(error)}. "
            f"{hint(problem) or 'Run again later; the next run resumes from the saved state.'}",
            problem,
        )

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        self._start_filter = self._bookmark_filter(context)
        fetch = self.client.policy.wrap(
            self._fetch, self.logger, lambda: f"view '{self.name}' page {self._page_number}"
        )
        keyset = self.settings.paging == "keyset"
        self.logger.info(
            "View '%s': reading ordered by %s with %s paging%s.",
            self.name,
            ", ".join(self.view.order),
            "keyset" if keyset else "page-number",
            f", from {self._start_filter}" if self._start_filter else "",
        )
        started = time.monotonic()
        token = PageToken()
        previous: set[tuple[Any, ...]] = set()
        rows = 0
        expected: int | None = None
        while True:
            self._page_number += 1
            try:
                records, pagination = fetch(context, token)
            except FAILURES as error:
                self._write_state_message()
                raise self._fail(error) from None
            if pagination and expected is None and pagination.get("TotalCount") is not None:
                expected = int(pagination["TotalCount"])
            keys = [self._key(r) for r in records]
            repeated = [k for k in keys if k in previous]
            if repeated and (keyset or len(repeated) == len(keys)):
                raise CaspioAPIError(
                    f"View '{self.name}', page {self._page_number}: Caspio answered with rows it had already sent "
                    f"({len(repeated)} of {len(keys)}), so it is not honouring the paging parameters. "
                    "Stopped rather than emit duplicates; check that the API base URL points at Caspio."
                )
            if repeated:
                self.logger.warning(
                    "View '%s', page %d: %d rows shifted in from the previous page by edits during the read; skipped.",
                    self.name,
                    self._page_number,
                    len(repeated),
                )
                records = [r for r, k in zip(records, keys, strict=True) if k not in previous]
            yield from records
            rows += len(records)
            if self._page_number % PROGRESS_EVERY_PAGES == 0:
                self.logger.info(
                    "View '%s': %d rows in %d pages so far.", self.name, rows, self._page_number
                )
            if len(keys) < self.settings.page_size:
                break
            previous = set(keys)
            if keyset:
                last = records[-1] if records else {}
                token = PageToken(after=tuple(last.get(c) for c in self.view.order))
            else:
                token = PageToken(number=token.number + 1)
        self._check_complete(rows, expected)
        self._read_complete = True
        if self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)
        self.logger.info(
            "View '%s': %d rows in %d pages, %.1f s.",
            self.name,
            rows,
            self._page_number,
            time.monotonic() - started,
        )

    def _check_complete(self, rows: int, expected: int | None) -> None:
        """Compare the rows read with Caspio's own count; fail on a shortfall edits cannot explain."""
        where = self._where(None)
        if expected is None:
            expected = self.client.count(self.name, where)
        if rows >= expected:
            self.logger.info(
                "View '%s': read %d rows; Caspio counted %d at the start.",
                self.name,
                rows,
                expected,
            )
            return
        now = self.client.count(self.name, where)
        if rows >= now:
            self.logger.info(
                "View '%s': read %d rows; Caspio counted %d at the start and %d now (rows were deleted during the read).",
                self.name,
                rows,
                expected,
                now,
            )
            return
        raise CaspioAPIError(
            f"View '{self.name}': read {rows} rows but Caspio counts {now} (and counted {expected} at the start). "
            "Rows were lost in paging; run again, and report this if it repeats."
        )

    @override
    def post_process(
        self, row: dict[str, Any], context: Context | None = None
    ) -> dict[str, Any] | None:
        record: dict[str, Any] = {}
        for name, convert in self._converters.items():
            try:
                record[name] = convert(row.get(name))
            except (ValueError, ArithmeticError) as error:
                raise HueyError(
                    f"View '{self.name}', field '{name}': cannot read value {str(row.get(name))[:60]!r} "
                    f"as {self.view.field(name).type}: {error}"
                ) from None
        return record
