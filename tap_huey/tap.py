"""tap-huey: Huey Clinician Data, read through Caspio's REST API, as Singer streams."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import cached_property, partial
from types import FrameType
from typing import Any

import click
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_huey.client import CaspioClient
from tap_huey.errors import HueyConfigError, HueyError
from tap_huey.fields import CaspioField
from tap_huey.output import HueyMessageWriter, OutputClosed
from tap_huey.settings import CONFIG_SCHEMA, NUMBER_SETTINGS, Settings, load_settings
from tap_huey.streams import ViewStream
from tap_huey.views import (
    V2_SAMPLE_SIZE,
    ViewSpec,
    build_view,
    fields_from_metadata,
    fields_from_sample,
)


@contextmanager
def reported_plainly() -> Iterator[None]:
    """Turn an expected failure into one ERROR line and exit code 1, without a stack trace."""
    try:
        yield
    except HueyError as error:
        TapHuey.logger.error("%s", error)
        sys.exit(1)


class TapHuey(Tap):
    """Singer tap for Huey Clinician Data."""

    name = "tap-huey"
    package_name = "tap-huey"
    dynamic_catalog = True
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = HueyMessageWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stopping = False
        try:
            super().__init__(*args, **kwargs)
        except HueyError:
            raise
        except ValueError as error:  # a TAP_HUEY_* variable that does not parse as its type
            raise HueyConfigError(f"A setting could not be read: {error}") from None

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK writes the state and exits 0; a stopped run must not look like a finished one.
        if self._stopping:
            # A second signal: the first one's stop is stuck writing to a reader that went away.
            # Writing anything more, even at exit, would block again.
            self.logger.error("Stopped by signal %d again; exiting without writing more.", signum)
            os._exit(128 + signum)
        self._stopping = True
        writer = self.message_writer
        if isinstance(writer, HueyMessageWriter) and writer.writing:
            # Writing now would cut the output mid-line: stop once the write under way is done.
            self.logger.error("Signal %d: stopping once the output written now is taken.", signum)
            writer.after_write = partial(self._stop, signum)
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        self.logger.error(
            "Stopped by signal %d before the sync finished; the state written resumes it.", signum
        )
        with suppress(OutputClosed):  # a reader that went away gets nothing more
            if isinstance(self.message_writer, HueyMessageWriter):
                self.message_writer.write_held()
            if self.state:  # before the input state is loaded there is nothing to resume from
                self._state_writer.write_state(self.state)
        sys.exit(128 + signum)

    @cached_property
    def settings(self) -> Settings:
        """The validated settings."""
        settings, errors = load_settings(dict(self.config))
        if settings is None:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return settings

    @cached_property
    def client(self) -> CaspioClient:
        """The one HTTP client, token and retry policy of this run."""
        return CaspioClient(self.settings, self.logger)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        for name in NUMBER_SETTINGS:  # environment variables arrive as text
            value = self._config.get(name)
            if isinstance(value, str):
                with suppress(ValueError):
                    self._config[name] = float(value)
        errors = [self._redacted(e) for e in super()._validate_config(raise_errors=False)]
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        if not errors:
            _, errors = load_settings(dict(self.config))
            if errors and raise_errors:
                raise ConfigValidationError(
                    "Config validation failed", errors=errors, schema=self.config_jsonschema
                )
        return errors

    def _redacted(self, message: str) -> str:
        """A validation message with the client secret's value taken out."""
        if "client_secret" in message:
            return "client_secret must be a string (its value is not shown)."
        return message

    def _wanted_views(self, listed: list[str]) -> list[str]:
        """The listed views the settings and the input catalog ask for, in Caspio's case."""
        wanted = listed
        if self.settings.views:
            by_lower = {name.lower(): name for name in listed}
            missing = [v for v in self.settings.views if v.lower() not in by_lower]
            if missing:
                raise HueyConfigError(
                    f"View(s) {', '.join(repr(m) for m in missing)} not found. "
                    f"The profile can read: {', '.join(listed) or 'no views'}."
                )
            wanted = [by_lower[v.lower()] for v in self.settings.views]
        catalog = self.input_catalog
        if catalog is not None and any(entry.tap_stream_id for entry in catalog.streams):
            selected = {
                entry.tap_stream_id
                for entry in catalog.streams
                if entry.metadata.resolve_selection().get((), False)
            }
            gone = sorted(selected - set(listed))
            if gone:
                raise HueyConfigError(
                    f"The catalog selects view(s) {', '.join(repr(g) for g in gone)}, which the profile "
                    f"no longer lists (renamed, removed or access withdrawn). It can read: "
                    f"{', '.join(listed) or 'no views'}. Deselect them, or run with --refresh-catalog."
                )
            wanted = [name for name in wanted if name in selected]
        return wanted

    def describe_view(self, name: str) -> ViewSpec:
        """Read a view's field metadata (v3) or infer it from sample records (v2)."""
        if self.settings.api_version == "v3":
            fields: list[CaspioField] = fields_from_metadata(
                self.client.fields(name), self.settings, name
            )
            return build_view(name, fields, self.settings, inferred=False, unique_known=True)
        sample = self.client.sample(name, V2_SAMPLE_SIZE)
        return build_view(
            name,
            fields_from_sample(sample, self.settings),
            self.settings,
            inferred=True,
            unique_known=False,
        )

    @override
    def discover_streams(self) -> Sequence[Stream]:
        with reported_plainly():
            names = self._wanted_views(self.client.list_views())
            return [ViewStream(self, self.describe_view(name), self.client) for name in names]

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        with reported_plainly():
            super().invoke(*args, **kwargs)

    @classmethod
    @override
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        with reported_plainly():
            super().cb_discover(ctx, param, value)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        with reported_plainly():
            super().cb_test(ctx, param, value)


if __name__ == "__main__":
    TapHuey.cli()
