"""tap-huey's settings: their JSON schema, and the checks made before any request."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import typing as th

DEFAULT_API_URL = "https://c2axa376.caspio.com"
API_BASES = {"v3": "/integrations/rest/v3", "v2": "/rest/v2"}

VIEW_OVERRIDE = th.ObjectType(
    th.Property(
        "primary_keys", th.ArrayType(th.StringType), description="Fields that identify a row."
    ),
    th.Property(
        "replication_key", th.StringType, description="A field whose value grows on every change."
    ),
    th.Property(
        "where", th.StringType, description="A filter passed to Caspio's `q.where`, in T-SQL."
    ),
    additional_properties=False,
)

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        required=True,
        title="Client ID",
        description="The web services profile's Client ID.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        required=True,
        secret=True,
        title="Client Secret",
        description="The web services profile's Client Secret.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="Integration URL",
        description="The account's integration URL, without a path. HTTPS; plain HTTP only for loopback addresses.",
    ),
    th.Property(
        "token_url",
        th.StringType,
        title="Token URL",
        description="The OAuth token endpoint. Default: `<api_url>/oauth/token`.",
    ),
    th.Property(
        "auth_style",
        th.StringType,
        default="body",
        allowed_values=["body", "basic"],
        description="`body`: client credentials in the form body; `basic`: in an HTTP Basic header.",
    ),
    th.Property(
        "api_version",
        th.StringType,
        default="v3",
        allowed_values=["v3", "v2"],
        description="Caspio REST API version. v2 has no field metadata: schemas are inferred from sample records.",
    ),
    th.Property(
        "views",
        th.ArrayType(th.StringType),
        description="Names of the views to expose (case-insensitive). Default: every view the profile can list.",
    ),
    th.Property(
        "view_overrides",
        th.ObjectType(additional_properties=VIEW_OVERRIDE),
        description="Per view name: `primary_keys`, `replication_key`, and `where` (a filter passed to `q.where`).",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Earliest replication-key value to read; naive values are taken as UTC.",
    ),
    th.Property(
        "timezone",
        th.StringType,
        default="UTC",
        description="The IANA zone that DATE/TIME values are in (TIMESTAMP fields name their own).",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=5, maximum=1000),
        default=1000,
        description="Records per request, 5 to 1,000.",
    ),
    th.Property(
        "response_format",
        th.StringType,
        default="json",
        allowed_values=["json", "xml"],
        description="Ask Caspio for `json` or `xml`; both give identical records.",
    ),
    th.Property(
        "paging",
        th.StringType,
        default="keyset",
        allowed_values=["keyset", "page_number"],
        description=(
            "`keyset` reads the rows after the last key read, which edits during a read cannot shift; "
            "`page_number` follows `q.pageNumber` and exists for comparison only."
        ),
    ),
    th.Property(
        "max_parallel_requests",
        th.IntegerType(minimum=1, maximum=16),
        default=4,
        description=(
            "Requests in flight at once for a large view, read as key ranges side by side and emitted "
            "in order. 1 reads page after page."
        ),
    ),
    th.Property(
        "emit_activate_version_messages",
        th.BooleanType,
        default=True,
        description=(
            "Emit Singer `ACTIVATE_VERSION` around each full-table view, so that targets which support it "
            "drop rows deleted in Caspio."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=20),
        default=5,
        description="Retries of a failed request (429, 5xx, dropped or cut-off responses) before the run fails.",
    ),
    th.Property(
        "backoff_base_seconds",
        th.NumberType(minimum=0),
        default=1.0,
        description="First wait before a retry; each later wait doubles, with jitter.",
    ),
    th.Property(
        "backoff_max_seconds",
        th.NumberType(minimum=0),
        default=60.0,
        description="Longest single wait before a retry, `Retry-After` included.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(minimum=1),
        default=120.0,
        description="Seconds to wait for Caspio to answer one request.",
    ),
).to_dict()


LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
NUMBER_SETTINGS = ("backoff_base_seconds", "backoff_max_seconds", "request_timeout")


def _setting(config: dict[str, Any], name: str, default: Any) -> Any:
    """A setting's value, its default when absent or null."""
    value = config.get(name)
    return default if value is None else value


def is_loopback(host: str) -> bool:
    """Whether a host name or address stays on this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, value: str, errors: list[str]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        errors.append(f"{name} must be a URL such as https://<account>.caspio.com, not {value!r}.")
    elif parts.scheme == "http" and not is_loopback(parts.hostname):
        errors.append(
            f"{name} must use HTTPS ({value!r} is plain HTTP, allowed only for loopback addresses)."
        )
    elif parts.username or parts.password or parts.query:
        errors.append(f"{name} must not hold credentials or a query string.")


@dataclass(frozen=True)
class ViewOverride:
    """A user's corrections for one view."""

    primary_keys: tuple[str, ...] = ()
    replication_key: str | None = None
    where: str | None = None


@dataclass(frozen=True)
class Settings:
    """The validated settings, in the types the tap works with."""

    client_id: str
    client_secret: str = field(repr=False)
    api_url: str
    token_url: str
    auth_style: str
    api_version: str
    views: tuple[str, ...]
    overrides: dict[str, ViewOverride]
    start_date: datetime | None
    zone: ZoneInfo
    page_size: int
    response_format: str
    paging: str
    max_parallel_requests: int
    max_retries: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    request_timeout: float

    @property
    def base_url(self) -> str:
        """The REST base of the chosen API version."""
        return self.api_url + API_BASES[self.api_version]

    def override(self, view: str) -> ViewOverride:
        """The overrides for a view, its name matched case-insensitively."""
        lowered = view.lower()
        return next(
            (o for name, o in self.overrides.items() if name.lower() == lowered), ViewOverride()
        )


def load_settings(config: dict[str, Any]) -> tuple[Settings | None, list[str]]:
    """Check the settings the schema cannot; returns them or the list of problems."""
    errors: list[str] = []
    for name in ("client_id", "client_secret"):
        if not str(config.get(name) or "").strip():
            errors.append(f"{name} is required: the web services profile's Client ID and Secret.")
    api_url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
    for suffix in API_BASES.values():
        api_url = api_url.removesuffix(suffix)
    _check_url("api_url", api_url, errors)
    token_url = str(config.get("token_url") or f"{api_url}/oauth/token")
    _check_url("token_url", token_url, errors)
    zone: ZoneInfo = ZoneInfo("UTC")
    zone_name = str(config.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(
            f"timezone {zone_name!r} is not an IANA time zone such as 'America/New_York'."
        )
    page_size = _setting(config, "page_size", 1000)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 5 <= page_size <= 1000:
        errors.append(f"page_size must be a whole number from 5 to 1000, not {page_size!r}.")
    start_date = None
    if config.get("start_date"):
        try:
            start_date = datetime.fromisoformat(str(config["start_date"]).replace("Z", "+00:00"))
            if start_date.tzinfo is None:
                start_date = start_date.replace(tzinfo=timezone.utc)
        except ValueError:
            errors.append(f"start_date {config['start_date']!r} is not an ISO 8601 date-time.")
    overrides = {}
    for view, raw in (config.get("view_overrides") or {}).items():
        if not isinstance(raw, dict):
            errors.append(
                f"view_overrides.{view} must be an object with primary_keys, replication_key or where."
            )
            continue
        keys = raw.get("primary_keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            errors.append(f"view_overrides.{view}.primary_keys must be a list of field names.")
            keys = []
        overrides[view] = ViewOverride(
            tuple(keys), raw.get("replication_key") or None, raw.get("where") or None
        )
    views = config.get("views") or []
    if not isinstance(views, list) or not all(isinstance(v, str) and v.strip() for v in views):
        errors.append("views must be a list of view names.")
        views = []
    if errors:
        return None, errors
    return (
        Settings(
            client_id=str(config["client_id"]).strip(),
            client_secret=str(config["client_secret"]),
            api_url=api_url,
            token_url=token_url,
            auth_style=str(config.get("auth_style") or "body"),
            api_version=str(config.get("api_version") or "v3"),
            views=tuple(views),
            overrides=overrides,
            start_date=start_date,
            zone=zone,
            page_size=int(page_size),
            response_format=str(config.get("response_format") or "json"),
            paging=str(config.get("paging") or "keyset"),
            max_parallel_requests=int(_setting(config, "max_parallel_requests", 4)),
            max_retries=int(_setting(config, "max_retries", 5)),
            backoff_base_seconds=float(_setting(config, "backoff_base_seconds", 1.0)),
            backoff_max_seconds=float(_setting(config, "backoff_max_seconds", 60.0)),
            request_timeout=float(_setting(config, "request_timeout", 120.0)),
        ),
        [],
    )
