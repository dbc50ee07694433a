"""Singer messages written with msgspec: exact decimals, records in batches, a flush only where it matters."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import simplejson
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

from tap_huey.errors import HueyError

# RECORD messages held before they are written in one go; any other message writes them first.
HELD_RECORDS = 500


def _encode_other(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_other, decimal_format="number")


def encode(content: dict[str, Any]) -> bytes:
    """One message as a JSON line."""
    try:
        return _ENCODER.encode(content) + b"\n"
    except (UnicodeEncodeError, msgspec.EncodeError):
        # Text msgspec cannot write as UTF-8 (a lone surrogate) is written escaped instead.
        text: str = simplejson.dumps(content, use_decimal=True, default=_encode_other)
        return text.encode() + b"\n"


def encode_lines(contents: list[dict[str, Any]]) -> bytes:
    """Messages as JSON lines, in one call when every one of them encodes as it is."""
    try:
        return _ENCODER.encode_lines(contents)
    except (UnicodeEncodeError, msgspec.EncodeError):
        return b"".join(map(encode, contents))


class OutputClosed(HueyError):
    """The reader of the tap's standard output went away."""


def _write_all(buffer: Any, data: bytes) -> None:
    """Write every byte: a signal during a blocked write can make `write` return early."""
    view = memoryview(data)
    while view:
        written = buffer.write(view)
        view = view[written if written is not None else len(view) :]


class HueyMessageWriter(GenericSingerWriter[bytes, Message]):
    """Writes one JSON line per message; RECORD lines go out in batches, before any other message.

    A target therefore never sees a STATE before the records it covers. Records still held
    when a run dies are ones no STATE has covered yet, so the next run reads them again.
    """

    def __init__(self) -> None:
        super().__init__()
        self._held: list[dict[str, Any]] = []
        self.writing = False
        self.closed = False
        # Called once the write under way has finished (set by a signal handler during one).
        self.after_write: Callable[[], None] | None = None

    @override
    def serialize_message(self, message: Message) -> bytes:
        return encode(message.to_dict())

    def hold_record(
        self, stream: str, record: dict[str, Any], version: int | None, extracted: datetime
    ) -> None:
        """A RECORD message, as RecordMessage.to_dict gives it, without building one."""
        held = self._held
        if version is None:
            held.append(
                {"type": "RECORD", "stream": stream, "record": record, "time_extracted": extracted}
            )
        else:
            held.append(
                {
                    "type": "RECORD",
                    "stream": stream,
                    "record": record,
                    "version": version,
                    "time_extracted": extracted,
                }
            )
        if len(held) >= HELD_RECORDS:
            self._write(b"", flush=False)

    @override
    def write_message(self, message: Message) -> None:
        if message.__class__ is RecordMessage:
            self._held.append(message.to_dict())
            if len(self._held) >= HELD_RECORDS:
                self._write(b"", flush=False)
            return
        self._write(self.format_message(message), flush=True)

    def _close(self, stream: Any) -> None:
        """Stop writing: nothing more reaches a closed pipe, not even at exit."""
        self.closed = True
        self._held.clear()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)

    def write_held(self) -> None:
        """Write the records held so far (at the end of a view, when no STATE follows them)."""
        if self._held:
            self._write(b"", flush=True)

    def _write(self, tail: bytes, flush: bool) -> None:
        """The held records, then `tail`; they are forgotten only once written."""
        if self.closed:
            self._held.clear()
            return
        data = encode_lines(self._held) + tail if self._held else tail
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        self.writing = True
        try:
            if buffer is None:
                stream.write(data.decode("utf-8"))
            else:
                _write_all(buffer, data)
            self._held.clear()
            if flush:
                stream.flush()
        except BrokenPipeError:
            self._close(stream)
            raise OutputClosed(
                "The program reading tap-huey's output closed it (broken pipe); the run stopped."
            ) from None
        finally:
            self.writing = False
        callback, self.after_write = self.after_write, None
        if callback is not None:
            callback()
