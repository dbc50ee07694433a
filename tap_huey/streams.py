"""One stream per Caspio view: keyset paging, value conversion, and completeness checks."""

from __future__ import annotations

import functools
import itertools
import json
import operator
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import requests
from singer_sdk import Tap
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams.rest import HTTPRequest, PageContext, RESTStream
from typing_extensions import override

from tap_huey.client import CaspioClient, view_path
from tap_huey.errors import BadPayload, CaspioAPIError, HueyError, hint
from tap_huey.fields import PK_ID, where_literal
from tap_huey.output import HueyMessageWriter, OutputClosed
from tap_huey.paging import PageToken, comparable, outside, split, splittable
from tap_huey.retry import RETRIED_EXCEPTIONS, describe_failure
from tap_huey.views import ViewSpec
from tap_huey.xml import parse_records

PROGRESS_EVERY_PAGES = 25
_JSON = msgspec.json.Decoder(float_hook=Decimal)
# Reading key ranges side by side pays off when a page takes longer to arrive than to handle.
PARALLEL_WHEN_PAGE_TAKES = 0.08
MAX_BUFFERED_PAGES = 4
FAILURES: tuple[type[Exception], ...] = (FatalAPIError, *RETRIED_EXCEPTIONS)
# A page as read: when it arrived, and its rows.
Page = tuple[datetime, list[dict[str, Any]]]
# The schema's properties (as a list and as a set), and those whose values need converting.
Plan = tuple[list[str], frozenset[str], list[tuple[str, type, Callable[[Any], Any]]]]


def parse_json_page(content: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The records and the optional pagination block of a JSON records answer.

    Raises:
        BadPayload: when the body is not JSON or has no `Result` list (cut short, garbled).
    """
    try:
        body = _JSON.decode(content)
    except msgspec.DecodeError:
        # msgspec refuses what the standard library accepts, such as an escaped lone surrogate
        # in text; only a body neither can read is cut short or garbled.
        try:
            body = json.loads(content, parse_float=Decimal)
        except ValueError as error:
            raise BadPayload(
                f"Caspio sent a body that is not JSON ({len(content)} bytes)"
            ) from error
    if not isinstance(body, dict) or not isinstance(body.get("Result"), list):
        raise BadPayload("Caspio's answer has no Result list")
    return body["Result"], body.get("Pagination")


class ViewStream(RESTStream[PageToken]):
    """The records of one Caspio view."""

    check_sorted = False
    allow_redirects = False
    # post_process emits every value in its schema type already; the SDK's second pass only costs.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, view: ViewSpec, client: CaspioClient) -> None:
        self.view = view
        self.client = client
        self.settings = client.settings
        self._plan: Plan | None = None
        super().__init__(tap=tap, name=view.name, schema=view.schema())
        self.primary_keys = list(view.primary_keys)
        self.replication_key = view.replication_key
        self.STATE_MSG_FREQUENCY = self.settings.page_size
        self._page_number = 0
        self._start_filter: str | None = None
        self._read_complete = False
        self._all_selected: bool | None = None
        self._last_wait = 0.0
        self._expected: int | None = None
        self._extracted_at: datetime | None = None
        self._sorted_state: dict[str, Any] | None = None
        self._state_checked = False
        keys = view.primary_keys
        self._key: Callable[[dict[str, Any]], Any] = (
            operator.itemgetter(*keys) if keys else lambda record: ()
        )

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
    def _write_record_message(self, record: dict[str, Any]) -> None:
        # post_process already emits only the schema's properties; when none is deselected and
        # one map applies, the record goes straight to the writer, without the SDK's per-record
        # walk over the selection mask and message object.
        writer = self._tap.message_writer
        if self._all_selected is None:
            self._all_selected = all(self.mask.values())
        if (
            not self._all_selected
            or len(self.stream_maps) != 1
            or not isinstance(writer, HueyMessageWriter)
        ):
            super()._write_record_message(record)
            return
        stream_map = self.stream_maps[0]
        mapped = stream_map.transform(record)
        if mapped is not None:
            writer.hold_record(
                stream_map.stream_alias,
                mapped,
                self._stream_version,
                self._extracted_at or utc_now(),
            )
        self.state_manager.is_flushed = False

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict[str, Any], Any, Any]:
        # The SDK writes no STATE when the bookmark did not move: the records held back for
        # writing in batches are written when the view ends, however it ends. A failure (a value
        # that cannot be read, say) leaves a state covering exactly the records sent.
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        except HueyError as error:
            if write_messages and not isinstance(error, OutputClosed):
                self._write_state_message()
            raise
        finally:
            writer = self._tap.message_writer
            if isinstance(writer, HueyMessageWriter):
                writer.write_held()

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        # For a view read in bookmark order, the SDK sets the bookmark to each record's value in
        # turn; once it has made the entry, a plain string or integer is set here directly.
        state = self._sorted_state
        if state is not None and context is None and self.replication_key:
            value = latest_record.get(self.replication_key)
            if value.__class__ is str or value.__class__ is int:
                state["replication_key_value"] = value
                return
        super()._increment_stream_state(latest_record, context=context)
        if state is None and not self._state_checked:
            self._state_checked = True
            self._sorted_state = self._sorted_bookmark(context)

    def _sorted_bookmark(self, context: Context | None) -> dict[str, Any] | None:
        """The state entry holding the bookmark, when the SDK keeps it as the latest value."""
        if (
            context is not None
            or not self.replication_key
            or not self.is_sorted
            or self.replication_method != REPLICATION_INCREMENTAL
            or self.state_partitioning_keys is not None
        ):
            return None
        state = self.stream_state
        return state if state.get("replication_key") == self.replication_key else None

    @override
    def _process_record(
        self,
        record: dict[str, Any],
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # Views have no partitions and no child streams: nothing to add to a record or to sync.
        if partition_context or self.child_streams:
            super()._process_record(record, child_context, partition_context)

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

    def _where(self, token: PageToken | None = None) -> str | None:
        """The `q.where` of a page: the user's filter, the bookmark, its range and keyset bound."""
        clauses = [c for c in (self.view.where, self._start_filter) if c]
        first = self.view.order[0]
        if token is not None and token.lower is not None and token.after is None:
            clauses.append(f"{first} > {token.lower}")
        if token is not None and token.upper is not None:
            clauses.append(f"{first} <= {token.upper}")
        if token is not None and token.after is not None:
            clauses.append(self._after_clause(token.after))
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
        where = self._where(token)
        if where:
            params["q.where"] = where
        params["q.orderBy"] = ",".join(self.view.order)
        params["q.pageNumber"] = token.number
        params["q.pageSize"] = self.settings.page_size
        first_page = token.number == 1 and token.after is None and token.lower is None
        if self.settings.api_version == "v3" and first_page:
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
        return parse_json_page(response.content)

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
        self._last_wait = response.elapsed.total_seconds()
        return self._parse(response)

    def _bookmark_filter(self, context: Context | None) -> str | None:
        """`replication_key >= bookmark`, the bookmark written naive in the field's own zone."""
        if not self.replication_key:
            return None
        field = self.view.field(self.replication_key)
        bookmark = self.get_starting_replication_key_value(context)
        if not field.is_datetime:
            return f"{field.name} >= {field.literal(bookmark)}" if bookmark is not None else None
        starts = []
        if bookmark:
            starts.append(self._wall_clock(str(bookmark), field.zone))
        if self.settings.start_date:
            starts.append(self.settings.start_date.astimezone(field.zone).replace(tzinfo=None))
        if not starts:
            return None
        return f"{field.name} >= {where_literal(max(starts))}"

    @staticmethod
    def _wall_clock(bookmark: str, zone: ZoneInfo) -> datetime:
        """A bookmark as the naive wall-clock time Caspio keeps, in `zone`.

        A bookmark this tap wrote holds Caspio's own digits and the zone's offset for them; those
        digits are used as they are, so that a time in a daylight-saving gap, which has no instant
        of its own, resumes where it stopped. Any other value is converted to the zone.
        """
        moment = datetime.fromisoformat(bookmark.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        naive = moment.replace(tzinfo=None)
        if naive.replace(tzinfo=zone).utcoffset() == moment.utcoffset():
            return naive
        return moment.astimezone(zone).replace(tzinfo=None)

    def _out_of_range(self, token: PageToken, records: list[dict[str, Any]]) -> bool:
        """Whether a page holds rows before its keyset start or outside its key range."""
        field = self.view.field(self.view.order[0])
        if not splittable(field) or not records:
            return False
        bounded = token.lower is not None or token.upper is not None
        start = token.after[0] if token.after else None
        if not bounded and start is None:
            return False
        for record in (records[0], records[-1]):  # pages come sorted: the ends decide
            raw = record.get(field.name)
            if bounded and outside(field, token, raw):
                return True
            if (
                start is not None
                and raw is not None
                and comparable(field, raw) < comparable(field, start)
            ):
                return True
        return False

    def _fail(self, error: BaseException, page: str) -> HueyError:
        if isinstance(error, requests.exceptions.SSLError):
            return CaspioAPIError(
                f"Reading {page} failed: {describe_failure(error)}. Check api_url."
            )
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

    def _pages(
        self, context: Context | None, token: PageToken, label: str
    ) -> Generator[Page, None, None]:
        """The pages of one run of the view (or of one key range), until a short page.

        Raises:
            CaspioAPIError: when Caspio fails for good, or answers with rows already sent.
        """
        keyset = self.settings.paging == "keyset"
        previous: set[tuple[Any, ...]] = set()
        page = 0
        while True:
            page += 1
            where = f"view '{self.name}', {label}page {page}"
            fetch = self.client.policy.wrap(self._fetch, self.logger, functools.partial(str, where))
            try:
                records, pagination = fetch(context, token)
            except FAILURES as error:
                raise self._fail(error, where) from None
            fetched = utc_now()
            if pagination and self._expected is None and pagination.get("TotalCount") is not None:
                self._expected = int(pagination["TotalCount"])
            keys = self._keys(records)
            repeated = [k for k in keys if k in previous]
            if (keys and len(repeated) == len(keys)) or self._out_of_range(token, records):
                raise CaspioAPIError(
                    f"Reading {where}: Caspio answered with rows it had already sent or rows outside "
                    "the requested range, so it is not honouring the paging parameters. "
                    "Stopped rather than emit duplicates; check that api_url points at Caspio."
                )
            if repeated and keyset:
                self.logger.info(
                    "Reading %s: %d rows edited since they were read come again with their new values.",
                    where,
                    len(repeated),
                )
            elif repeated:
                self.logger.warning(
                    "Reading %s: %d rows shifted in from the previous page by edits during the read; skipped.",
                    where,
                    len(repeated),
                )
                records = [r for r, k in zip(records, keys, strict=True) if k not in previous]
            full = len(keys) == self.settings.page_size
            # The next page is worked out before this one is handed on: its rows are converted
            # in place from then on, possibly by another thread.
            if full and keyset:
                last = records[-1]
                token = PageToken(
                    after=tuple(last.get(c) for c in self.view.order), upper=token.upper
                )
            elif full:
                token = PageToken(number=token.number + 1)
            yield fetched, records
            if not full:
                return
            previous = set(keys)

    def _keys(self, records: list[dict[str, Any]]) -> list[Any]:
        """The primary key of each record (a tuple for a compound key)."""
        try:
            return list(map(self._key, records))
        except KeyError:  # a row without its key field: compared as null
            keys = self.view.primary_keys
            return [
                tuple(r.get(k) for k in keys) if len(keys) > 1 else r.get(keys[0]) for r in records
            ]

    def _may_split(self) -> bool:
        """Whether settings allow reading a view as key ranges at all."""
        field = self.view.field(self.view.order[0])
        return (
            self.settings.max_parallel_requests > 1
            and self.settings.paging == "keyset"
            and splittable(field)
        )

    def _ranges(self, page: list[dict[str, Any]], read: int) -> list[PageToken]:
        """Key ranges for the rest of a large view after `page` (`read` rows so far), read side by
        side; empty to read on in order, which a server answering fast does not need."""
        parallel = self.settings.max_parallel_requests
        field = self.view.field(self.view.order[0])
        last = page[-1] if page else {}
        low = last.get(field.name)
        if not self._may_split() or low is None or len(page) < self.settings.page_size:
            return []
        if self._last_wait < PARALLEL_WHEN_PAGE_TAKES:
            return []
        if (
            self._expected is not None
            and self._expected < read + 2 * parallel * self.settings.page_size
        ):
            return []
        where = self._where()
        select = f"COUNT(*) AS n, MAX({field.name}) AS hi"
        params: dict[str, Any] = {"q.select": select}
        if where:
            params["q.where"] = where
        stats = self.client.get_result(
            self.path, params, what=f"the key range of view '{self.name}'"
        )
        if not stats or stats[0].get("hi") is None:
            return []
        total = int(stats[0]["n"])
        if self._expected is None:
            self._expected = total
        pages = -(-(total - read) // self.settings.page_size)
        if pages < 2 * parallel:
            return []
        after = tuple(last.get(c) for c in self.view.order)
        ranges = split(field, low, stats[0]["hi"], pages)
        return [
            PageToken(after=after if index == 0 else None, lower=lower, upper=upper)
            for index, (lower, upper) in enumerate(ranges)
        ]

    def _side_by_side(self, context: Context | None, ranges: list[PageToken]) -> Iterator[Page]:
        """The pages of every range, fetched `max_parallel_requests` ranges at a time, yielded in order."""
        parallel = self.settings.max_parallel_requests
        stop = threading.Event()
        done = object()

        def offer(pages: queue.Queue[Any], item: Any) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read(index: int, token: PageToken, pages: queue.Queue[Any]) -> None:
            label = f"range {index + 1} of {len(ranges)}, "
            try:
                for page in self._pages(context, token, label):
                    if stop.is_set() or not offer(pages, page):
                        return
                offer(pages, done)
            except BaseException as error:  # handed to the reader, who raises it in order
                offer(pages, error)

        queues: list[queue.Queue[Any]] = []
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"huey-{self.name}")
        try:
            for index in range(len(ranges)):
                while len(queues) < min(index + parallel, len(ranges)):
                    queues.append(queue.Queue(maxsize=MAX_BUFFERED_PAGES))
                    pool.submit(read, len(queues) - 1, ranges[len(queues) - 1], queues[-1])
                while (item := queues[index].get()) is not done:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        self._start_filter = self._bookmark_filter(context)
        self._expected = None
        self._sorted_state, self._state_checked = None, False
        self.logger.info(
            "View '%s': reading ordered by %s with %s paging%s.",
            self.name,
            ", ".join(self.view.order),
            "keyset" if self.settings.paging == "keyset" else "page-number",
            f", from {self._start_filter}" if self._start_filter else "",
        )
        started = time.monotonic()
        rows = 0
        try:
            pages: Iterator[Page]
            sequential = self._pages(context, PageToken(), "")
            pages = sequential
            head = [next(sequential)]
            if self._may_split() and len(head[0][1]) == self.settings.page_size:
                # The first page also counts the rows: the second, a page like any other, tells
                # whether pages are slow enough to be worth reading side by side.
                head.extend(itertools.islice(sequential, 1))
            ranges = self._ranges(head[-1][1], sum(len(page) for _, page in head))
            if ranges:
                sequential.close()
                self.logger.info(
                    "View '%s': reading the rest as %d key ranges, %d at a time.",
                    self.name,
                    len(ranges),
                    self.settings.max_parallel_requests,
                )
                pages = self._side_by_side(context, ranges)
            for self._extracted_at, page in itertools.chain(head, pages):
                self._page_number += 1
                yield from page
                rows += len(page)
                if self._page_number % PROGRESS_EVERY_PAGES == 0:
                    self.logger.info(
                        "View '%s': %d rows in %d pages so far.", self.name, rows, self._page_number
                    )
        except HueyError:
            self._write_state_message()
            raise
        self._check_complete(rows, self._expected)
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
        where = self._where()
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

    def _conversion_plan(self) -> Plan:
        """The schema's properties in order, and those whose values need converting."""
        if self._plan is None:
            fields = {f.name: f for f in self.view.fields}
            names = [name for name in self.schema.get("properties", {}) if name in fields]
            converted = [
                (n, fields[n].emitted_type, fields[n].converter())
                for n in names
                if not fields[n].is_text
            ]
            self._plan = (names, frozenset(names), converted)
        return self._plan

    @override
    def post_process(
        self, row: dict[str, Any], context: Context | None = None
    ) -> dict[str, Any] | None:
        names, expected, converted = self._conversion_plan()
        if row.keys() == expected:  # the usual row: exactly the schema's fields, converted in place
            record = row
        else:
            get = row.get
            record = {name: get(name) for name in names}
        for name, emitted, convert in converted:
            value = record[name]
            if value is None or value.__class__ is emitted:
                continue
            try:
                record[name] = convert(value)
            except (ValueError, ArithmeticError) as error:
                raise HueyError(
                    f"View '{self.name}', field '{name}': cannot read value {str(value)[:60]!r} "
                    f"as {self.view.field(name).type}: {error}"
                ) from None
        return record
