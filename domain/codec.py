"""The JSON form of events: how they are stored, how they travel, and how old versions are read.

Versioned classes (`class_version` > 1) follow the eventsourcing library's convention: the JSON
carries `class_version`, and `upcast_vN_vN+1(state)` static methods bring an old dict up to date.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from eventsourcing.utils import get_topic, resolve_topic

_encoder = msgspec.json.Encoder(decimal_format="string")
_untyped = msgspec.json.Decoder()


@cache
def _decoder_for(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


def topic_of(cls: type[Any]) -> str:
    """`module:QualName`, the name under which stored events remember their class."""
    return get_topic(cls)


def encode_event(event: Any) -> bytes:
    """The JSON of an event (or snapshot), with `class_version` when the class is past version 1."""
    class_version = getattr(type(event), "class_version", 1)
    if class_version > 1:
        state = msgspec.to_builtins(event)
        state["class_version"] = class_version
        return _encoder.encode(state)
    return _encoder.encode(event)


def decode_event(topic: str, data: bytes) -> Any:
    """The event of the class the topic names, upcast from the version it was written with."""
    cls = resolve_topic(topic)
    class_version = getattr(cls, "class_version", 1)
    if class_version == 1:
        return _decoder_for(cls).decode(data)
    state: dict[str, Any] = _untyped.decode(data)
    version = state.pop("class_version", 1)
    while version < class_version:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
    return msgspec.convert(state, cls)
