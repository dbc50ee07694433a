"""The sandbox's HTTP API: Caspio's token endpoint and its v2 and v3 REST bases, on aiohttp."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from huey_sandbox import jsontext
from huey_sandbox.faults import Faults, ScriptedFault
from huey_sandbox.query import QueryError
from huey_sandbox.store import Page, Store

BASES = {"integrations/rest/v3": "v3", "rest/v2": "v2"}
MAX_URI = 2047
# Caspio keeps at most this many refresh tokens per account and drops the oldest first.
MAX_REFRESH_TOKENS = 1000
# The request log keeps this many latest entries, so that a long-running sandbox stays small.
LOG_LIMIT = 100_000
SECRET_PARAMS = {"client_secret", "refresh_token", "access_token", "token", "password"}
RATE_LIMIT_BODY = [
    {"message": "You have exceeded your API call rate limits.", "name": "api-calls-rate"}
]
HTML_ERROR = (
    "<html><head><title>{0} Service Unavailable</title></head><body><h1>{0}</h1></body></html>"
)
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# An XML parser turns a bare carriage return into a line feed; a character reference keeps it.
_XML_TEXT_ENTITIES = {"\r": "&#13;"}
_HTTP_CODES = {404: "ObjectNotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}
logger = logging.getLogger("huey_sandbox")


@dataclass
class Token:
    """An issued access token."""

    expires_at: float
    data_requests: int = 0
    revoked: bool = False


@dataclass
class Sandbox:
    """The sandbox's state: data, credentials, tokens, faults and the request log."""

    store: Store
    client_id: str
    client_secret: str
    faults: Faults
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: OrderedDict[str, None] = field(default_factory=OrderedDict)
    token_calls: int = 0
    data_requests: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (refresh tokens stay valid).

        The sandbox still knows them, so that a stale token meets `stale_token_status`.
        """
        with self.lock:
            for token in self.tokens.values():
                token.revoked = True


SANDBOX = web.AppKey("sandbox", Sandbox)
# aiohttp older than 3.14 has no RequestKey; there a plain string key does the same.
_RequestKey: Any = getattr(web, "RequestKey", None)
REQUEST_ID: Any = _RequestKey("request_id", str) if _RequestKey else "request_id"
LOG_ENTRY: Any = _RequestKey("log_entry", dict) if _RequestKey else "log_entry"


class CaspioError(Exception):
    """An error answered in Caspio's shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def wants_xml(request: web.Request) -> bool:
    """Whether the client asked for XML in its Accept header."""
    return "application/xml" in request.headers.get("Accept", "").lower()


def xml_text(value: Any) -> str:
    """A value as XML element text; characters XML 1.0 cannot carry are dropped."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = json.dumps(value)
    else:
        text = str(value)
    return escape(_XML_INVALID.sub("", text), _XML_TEXT_ENTITIES)


def xml_element(name: str, value: Any, list_field: bool = False) -> str:
    """One field as an element; None is left out, so that empty and missing differ."""
    if value is None:
        return ""
    if list_field or isinstance(value, dict):
        items = "".join(
            f"<item Key={quoteattr(str(k))} Value={quoteattr(_XML_INVALID.sub('', xml_text_raw(v)))}/>"
            for k, v in value.items()
        )
        return f"<{name}>{items}</{name}>"
    if isinstance(value, list):
        return f"<{name}>" + "".join(xml_element("Item", v) for v in value) + f"</{name}>"
    return f"<{name}>{xml_text(value)}</{name}>"


def xml_text_raw(value: Any) -> str:
    """A list item's value as attribute text, before escaping."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return str(value)


def xml_document(result: Any, pagination: dict[str, int] | None = None) -> str:
    """A whole response body as XML."""
    if isinstance(result, list) and all(isinstance(item, str) for item in result):
        inner = "".join(xml_element("View", name) for name in result)
    elif isinstance(result, list):
        inner = "".join(
            "<Row>" + "".join(xml_element(k, v) for k, v in row.items()) + "</Row>"
            for row in result
        )
    else:
        inner = "".join(xml_element(k, v) for k, v in result.items())
    tail = ""
    if pagination is not None:
        tail = (
            "<Pagination>"
            + "".join(xml_element(k, v) for k, v in pagination.items())
            + "</Pagination>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Response><Result>{inner}</Result>{tail}</Response>'
    )


def error_response(request: web.Request, error: CaspioError) -> web.Response:
    """Caspio's error body, in JSON or XML as the client asked."""
    body = {
        "Code": error.code,
        "Message": error.message,
        "Resource": str(request.url.with_query(None)),
        "RequestId": request[REQUEST_ID],
    }
    if wants_xml(request):
        text = "<Error>" + "".join(xml_element(k, v) for k, v in body.items()) + "</Error>"
        return web.Response(
            status=error.status, text=text, content_type="application/xml", headers=error.headers
        )
    return web.json_response(body, status=error.status, headers=error.headers)


def query_params(request: web.Request) -> dict[str, str]:
    """Query parameters with lower-cased names: Caspio's names are case-insensitive."""
    return {key.lower(): value for key, value in request.query.items()}


def loggable_query(request: web.Request) -> dict[str, str]:
    """The query string with anything secret-looking removed."""
    return {k: v for k, v in request.query.items() if k.lower() not in SECRET_PARAMS}


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving the sandbox."""
    app = web.Application(middlewares=[_middleware(sandbox)], client_max_size=1024**2)
    app[SANDBOX] = sandbox
    app.router.add_post("/oauth/token", _token)
    for base in BASES:
        app.router.add_get(f"/{base}/views", _list_views)
        app.router.add_get(f"/{base}/views/{{name}}", _describe_view)
        app.router.add_get(f"/{base}/views/{{name}}/fields", _fields)
        app.router.add_get(f"/{base}/views/{{name}}/records", _records)
    return app


def _middleware(sandbox: Sandbox) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        request_id = uuid.uuid4().hex
        request[REQUEST_ID] = request_id
        entry: dict[str, Any] = {
            "id": request_id,
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": loggable_query(request),
            "auth": _auth_style(request),
            "status": None,
            "fault": None,
        }
        with sandbox.lock:
            sandbox.log.append(entry)
        request[LOG_ENTRY] = entry
        if sandbox.faults.latency > 0:
            await asyncio.sleep(sandbox.faults.latency)
        response: web.StreamResponse
        try:
            response = await _guarded(sandbox, request, handler)
        except CaspioError as error:
            response = error_response(request, error)
        except web.HTTPException as error:
            code = _HTTP_CODES.get(error.status, "BadRequest")
            response = error_response(request, CaspioError(error.status, code, error.reason))
        except Exception as error:
            logger.exception("huey-sandbox failed on %s %s", request.method, request.path)
            response = error_response(
                request,
                CaspioError(500, "InternalServerError", f"An internal error occurred: {error}"),
            )
        if not response.prepared:
            response.headers["X-Caspio-Request-ID"] = request_id
        entry["status"] = None if entry["fault"] == "drop" else response.status
        return response

    return middleware


async def _guarded(sandbox: Sandbox, request: web.Request, handler: Any) -> web.StreamResponse:
    uri = f"{request.scheme}://{request.host}{request.raw_path}"
    if len(uri) > MAX_URI:
        raise CaspioError(
            414,
            "RequestUriTooLong",
            f"The request URI is {len(uri)} characters long; the limit is {MAX_URI}.",
        )
    if sandbox.faults.over_rate_limit():
        request[LOG_ENTRY]["fault"] = "rate_limit"
        return _rate_limited(
            sandbox.faults.rate_limit_status, sandbox.faults.rate_limit_retry_after
        )
    fault = sandbox.faults.take_scripted(request.path) or sandbox.faults.take_random(request.path)
    if fault is not None:
        request[LOG_ENTRY]["fault"] = fault.kind
        if fault.kind in ("status", "rate_limit", "stale_token"):
            return _fault_response(request, fault)
    response: web.StreamResponse = await handler(request)
    if fault is not None and fault.kind in ("drop", "truncate", "garble"):
        return await _broken_response(request, response, fault)
    return response


def _rate_limited(status: int, retry_after: float | None) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return web.json_response(RATE_LIMIT_BODY, status=status, headers=headers)


def _fault_response(request: web.Request, fault: ScriptedFault) -> web.Response:
    if fault.kind == "rate_limit":
        return _rate_limited(fault.status, fault.retry_after)
    if fault.kind == "stale_token":
        raise CaspioError(400, "IncorrectQueryParameter", "Invalid or expired access token.")
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if fault.body == "empty":
        return web.Response(status=fault.status, headers=headers)
    if fault.body == "caspio":
        raise CaspioError(
            fault.status, "InternalServerError", "An internal error occurred.", headers
        )
    return web.Response(
        status=fault.status,
        text=HTML_ERROR.format(fault.status),
        content_type="text/html",
        headers=headers,
    )


async def _broken_response(
    request: web.Request, response: web.StreamResponse, fault: ScriptedFault
) -> web.StreamResponse:
    assert isinstance(response, web.Response)
    body = response.body if isinstance(response.body, bytes) else b""
    transport = request.transport
    if fault.kind == "drop" or transport is None:
        if transport is not None:
            transport.close()
        return web.Response(status=500)
    if fault.kind == "garble":
        cut = web.Response(
            status=200, body=body[: max(len(body) // 2, 1)], content_type=response.content_type
        )
        cut.headers["X-Caspio-Request-ID"] = request[REQUEST_ID]
        return cut
    stream = web.StreamResponse(status=200, headers={"X-Caspio-Request-ID": request[REQUEST_ID]})
    stream.content_type = response.content_type
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport.close()
    return stream


def _auth_style(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme = header.split(" ", 1)[0].lower()
    return {"basic": "basic", "bearer": "bearer"}.get(scheme)


def _render(
    request: web.Request, result: Any, pagination: dict[str, int] | None = None
) -> web.Response:
    if wants_xml(request):
        return web.Response(text=xml_document(result, pagination), content_type="application/xml")
    body: dict[str, Any] = {"Result": result}
    if pagination is not None:
        body["Pagination"] = pagination
    return web.Response(
        body=jsontext.encode(body), content_type="application/json", charset="utf-8"
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def _token(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    form = await request.post()
    grant = str(form.get("grant_type", ""))
    entry = request[LOG_ENTRY]
    entry["grant_type"] = grant
    with sandbox.lock:
        sandbox.token_calls += 1
    basic = _basic_credentials(request)
    if basic is None and request.headers.get("Authorization", "").lower().startswith("basic"):
        entry["auth"] = "basic"
        return _oauth_error(401, "invalid_client", "The Basic authorization header is malformed.")
    client_id, client_secret = basic or (
        str(form.get("client_id", "")),
        str(form.get("client_secret", "")),
    )
    entry["auth"] = "basic" if basic else ("body" if form.get("client_id") else None)
    if grant not in ("client_credentials", "refresh_token"):
        return _oauth_error(
            400, "unsupported_grant_type", f"Grant type '{grant}' is not supported."
        )
    if not (
        secrets.compare_digest(client_id, sandbox.client_id)
        and secrets.compare_digest(client_secret, sandbox.client_secret)
    ):
        # RFC 6749 5.2: 400, but 401 with a challenge when the client used the Basic header.
        if basic is None:
            return _oauth_error(400, "invalid_client", "Client authentication failed.")
        refused = _oauth_error(401, "invalid_client", "Client authentication failed.")
        refused.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
        return refused
    if grant == "refresh_token":
        if basic is None:
            return _oauth_error(
                400,
                "invalid_client",
                "The refresh-token grant needs HTTP Basic client credentials.",
            )
        if str(form.get("refresh_token", "")) not in sandbox.refresh_tokens:
            return _oauth_error(400, "invalid_grant", "The refresh token is invalid or expired.")
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    lifetime = sandbox.faults.token_lifetime
    with sandbox.lock:
        sandbox.tokens[access] = Token(expires_at=time.monotonic() + lifetime)
        sandbox.refresh_tokens[refresh] = None
        while len(sandbox.refresh_tokens) > MAX_REFRESH_TOKENS:
            sandbox.refresh_tokens.popitem(last=False)
    return web.json_response(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": lifetime,
            "refresh_token": refresh,
        }
    )


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, client_secret = decoded.partition(":")
    return (client_id, client_secret) if colon else None


def _authorise(request: web.Request, *, data_request: bool) -> Sandbox:
    sandbox: Sandbox = request.app[SANDBOX]
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise CaspioError(
            401, "Unauthorized", "Authorization header with a bearer token is required."
        )
    with sandbox.lock:
        token = sandbox.tokens.get(header[7:].strip())
        if token is not None and data_request:
            token.data_requests += 1
        expired = token is None or token.expires_at <= time.monotonic()
        revoked = token is not None and (
            token.revoked
            or (
                sandbox.faults.revoke_after > 0
                and token.data_requests > sandbox.faults.revoke_after
            )
        )
    if expired or revoked:
        if sandbox.faults.stale_token_status == 400 and token is not None:
            raise CaspioError(400, "IncorrectQueryParameter", "Invalid or expired access token.")
        raise CaspioError(401, "Unauthorized", "The access token is invalid or has expired.")
    return sandbox


def _table(sandbox: Sandbox, request: web.Request) -> Any:
    name = request.match_info["name"]
    table = sandbox.store.table(name)
    if table is None:
        raise CaspioError(404, "ObjectNotFound", f"Cannot find view '{name}'.")
    return table


async def _list_views(request: web.Request) -> web.Response:
    sandbox = _authorise(request, data_request=False)
    return _render(request, sandbox.store.view_names)


async def _describe_view(request: web.Request) -> web.Response:
    sandbox = _authorise(request, data_request=False)
    view = _table(sandbox, request).view
    return _render(request, {"Name": view.name, "Note": view.note})


async def _fields(request: web.Request) -> web.Response:
    sandbox = _authorise(request, data_request=False)
    if "/rest/v2/" in request.path:
        raise CaspioError(404, "ObjectNotFound", "Resource not found.")
    view = _table(sandbox, request).view
    fields = [f.metadata(position) for position, f in enumerate(view.fields, start=1)]
    if wants_xml(request):
        body = "".join(
            "<Field>"
            + "".join(xml_element(k, v, list_field=k == "ListField") for k, v in f.items())
            + "</Field>"
            for f in fields
        )
        text = f'<?xml version="1.0" encoding="utf-8"?><Response><Result>{body}</Result></Response>'
        return web.Response(text=text, content_type="application/xml")
    return _render(request, fields)


def _integer(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise CaspioError(
            400, "IncorrectQueryParameter", f"Parameter '{name}' must be an integer."
        ) from error
    if not low <= value <= high:
        raise CaspioError(
            400, "IncorrectQueryParameter", f"Parameter '{name}' must be between {low} and {high}."
        )
    return value


async def _records(request: web.Request) -> web.Response:
    sandbox = _authorise(request, data_request=True)
    table = _table(sandbox, request)
    view_name = table.view.name
    request[LOG_ENTRY]["view"] = view_name
    if view_name.lower() in {v.lower() for v in sandbox.faults.forbidden_views}:
        raise CaspioError(
            403,
            "UnsufficientPrivileges",
            f"The profile has no permission to read view '{view_name}'.",
        )
    params = query_params(request)
    version = BASES["integrations/rest/v3" if "/v3/" in request.path else "rest/v2"]
    paging = "q.pagenumber" in params or "q.pagesize" in params
    if paging:
        number = _integer(params, "q.pagenumber", 1, 1, 10**9)
        size = _integer(params, "q.pagesize", 25, 5, 1000)
        limit, offset = size, (number - 1) * size
    else:
        number, size = 1, _integer(params, "q.limit", 100, 1, 1000)
        limit, offset = size, 0
    want_total = version == "v3" and params.get("q.getpaginationinfo", "").lower() in ("true", "1")
    where = params.get("q.where", "")
    if sandbox.faults.ignore_paging:
        offset, where = 0, ""
    try:
        with sandbox.store.lock:
            page = table.query(
                select=params.get("q.select", ""),
                where=where,
                order=params.get("q.orderby", ""),
                group=params.get("q.groupby", ""),
                limit=limit,
                offset=offset,
                want_total=want_total,
            )
    except QueryError as error:
        raise CaspioError(400, error.code, error.message) from error
    request[LOG_ENTRY]["rows"] = page.count
    with sandbox.lock:
        sandbox.data_requests[view_name] = sandbox.data_requests.get(view_name, 0) + 1
    pagination = (
        {"TotalCount": page.total or 0, "PageNumber": number, "PageSize": size}
        if want_total
        else None
    )
    response = _render_page(request, table, page, pagination)
    _mutate(sandbox, view_name, request[LOG_ENTRY])
    return response


def _render_page(
    request: web.Request, table: Any, page: Page, pagination: dict[str, int] | None
) -> web.Response:
    if (page.fragments is None and page.joined is None) or wants_xml(request):
        return _render(request, page.rows, pagination)
    head, tail = b'{"Result":[', b"]}"
    if pagination is not None:
        tail = b'],"Pagination":' + jsontext.encode(pagination) + b"}"
    if page.joined is not None:
        return web.Response(
            body=b"".join((head, page.joined, tail)),
            content_type="application/json",
            charset="utf-8",
        )
    fragments = page.fragments
    if fragments:
        # One copy of the page: the envelope rides on the first and last rows.
        fragments = [head + fragments[0], *fragments[1:]]
        fragments[-1] += tail
        body = b",".join(fragments)
    else:
        body = head + tail
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _mutate(sandbox: Sandbox, view_name: str, entry: dict[str, Any]) -> None:
    """Change the view between page requests, as other users of the account would."""
    faults = sandbox.faults
    if not faults.mutate_view or faults.mutate_view.lower() != view_name.lower():
        return
    store = sandbox.store
    with store.lock:
        if faults.mutate_deletes:
            keys = store.keys(view_name)
            with faults._lock:
                doomed = faults._rng.sample(keys, min(faults.mutate_deletes, len(keys)))
            store.delete(view_name, doomed)
        if faults.mutate_inserts:
            try:
                store.insert(view_name, faults.mutate_inserts)
            except ValueError as error:
                entry["mutation_error"] = str(error)
