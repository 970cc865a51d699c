"""The store's mapper: events as msgspec JSON (see `domain.codec`), optionally compressed and encrypted.

The library's default JSON transcoder costs about 20 times more per event.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from domain.codec import decode_event, encode_event, topic_of


class MsgspecMapper(Mapper[Any]):
    """The mapper the platform's event store uses."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored_state = encode_event(domain_event)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic_of(type(domain_event)),
            state=stored_state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode(
            stored_event.topic, stored_event.state, stored_event.originator_id, stored_event.originator_version
        )

    def decode(self, topic: str, state: bytes, stream_id: Any, version: int) -> Any:
        """Decrypts, decompresses and decodes one stored payload; errors name the stream and version."""
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            return decode_event(topic, state)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            msg = f"stored event {stream_id} v{version} ({topic}) does not decode: {error}"
            raise MapperDeserialisationError(msg) from error
