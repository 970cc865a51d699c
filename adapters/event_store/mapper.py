"""Encodes msgspec Struct events straight to JSON bytes, and back into the class their topic names.

The library's default JSON transcoder costs about 20 times more per event. Versioned classes
(`class_version` > 1) keep the library's convention: the stored state carries `class_version`, and
`upcast_vN_vN+1(state)` static methods bring an old dict up to date before it is decoded.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

_encoder = msgspec.json.Encoder(decimal_format="string")
_untyped = msgspec.json.Decoder()


@cache
def _decoder_for(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


class MsgspecMapper(Mapper[Any]):
    """The mapper the platform's event store uses (set by `MAPPER_TOPIC` or by construction)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state = msgspec.to_builtins(domain_event)
            state["class_version"] = class_version
            stored_state = _encoder.encode(state)
        else:
            stored_state = _encoder.encode(domain_event)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(cls),
            state=stored_state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        try:
            state = stored_event.state
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            class_version = getattr(cls, "class_version", 1)
            if class_version == 1:
                return _decoder_for(cls).decode(state)
            data: dict[str, Any] = _untyped.decode(state)
            version = data.pop("class_version", 1)
            while version < class_version:
                getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
                version += 1
            return msgspec.convert(data, cls)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            msg = (
                f"stored event {stored_event.originator_id} v{stored_event.originator_version} "
                f"({stored_event.topic}) does not decode: {error}"
            )
            raise MapperDeserialisationError(msg) from error
