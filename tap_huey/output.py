"""Singer messages written with msgspec: exact decimals, and a flush only where it matters."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import msgspec
import simplejson
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override


def _encode_other(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_other, decimal_format="number")


class HueyMessageWriter(GenericSingerWriter[bytes, Message]):
    """Writes one JSON line per message; RECORD lines are flushed with the next other message.

    A target therefore never sees a STATE before the records it covers, and a run stopped
    between two flushes loses no state it had announced.
    """

    @override
    def serialize_message(self, message: Message) -> bytes:
        content = message.to_dict()
        try:
            return _ENCODER.encode(content) + b"\n"
        except (UnicodeEncodeError, msgspec.EncodeError):
            # Text msgspec cannot write as UTF-8 (a lone surrogate) is written escaped instead.
            text: str = simplejson.dumps(content, use_decimal=True, default=_encode_other)
            return text.encode() + b"\n"

    @override
    def write_message(self, message: Message) -> None:
        data = self.format_message(message)
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(data.decode("utf-8"))
        else:
            buffer.write(data)
        if not isinstance(message, RecordMessage):
            stream.flush()
