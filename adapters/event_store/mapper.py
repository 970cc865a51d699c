"""The store's mapper: events as msgspec JSON (see `domain.codec`), optionally compressed and encrypted.

The library's default JSON transcoder costs about 20 times more per event.

An event about a data subject (`metadata.subject`) has the string leaves of its personal fields sealed
with that subject's key before it is stored (ADR 0008): the store, the bus, the read models and the audit
trail only ever hold the sealed strings. `decode` keeps them sealed (the read side); the write side loads
the subjects' keys and decodes with `decode_revealed`. An event without a subject encodes exactly as before.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import JSONTranscoder, Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import Environment

from adapters.event_store.sealing import MARK, reveal_json, seal_state, subjects_in
from adapters.subject_keys import KeyRing
from domain.codec import decode_event, encode_event, topic_of
from domain.events import EventMetadata
from domain.personal import personal_plan

_encoder = msgspec.json.Encoder(decimal_format="string")


class _Stamped(msgspec.Struct):
    """Only the metadata of an event's JSON: who it is about, without decoding the rest."""

    metadata: EventMetadata


_stamped = msgspec.json.Decoder(_Stamped)


def _metadata_of(state: bytes) -> EventMetadata:
    return _stamped.decode(state).metadata


class NoKeyRing(RuntimeError):
    """An event about a data subject reached a store that has no key ring: it is refused, not stored in clear."""


class MsgspecMapper(Mapper[Any]):
    """The mapper the platform's event store uses."""

    keyring: KeyRing | None = None  # set by `EventSourcedStore.seal_with`

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        metadata = getattr(domain_event, "metadata", None)
        if metadata is not None and metadata.subject:
            stored_state = self._sealed(domain_event, metadata.tenant_id, metadata.subject)
        else:
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

    def _sealed(self, event: Any, tenant_id: str, subject: str) -> bytes:
        kind: type = type(event)
        plan = personal_plan(kind)
        if plan is None:
            return encode_event(event)
        if self.keyring is None:
            raise NoKeyRing(f"{type(event).__name__} is about a data subject, and this store has no key ring")
        state = msgspec.to_builtins(event)
        class_version = getattr(type(event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        key = self.keyring.sealing_key(tenant_id, subject)
        return _encoder.encode(seal_state(state, plan, key, tenant_id, subject))

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode(
            stored_event.topic, stored_event.state, stored_event.originator_id, stored_event.originator_version
        )

    def decode(self, topic: str, state: bytes, stream_id: Any, version: int) -> Any:
        """Decrypts, decompresses and decodes one stored payload; errors name the stream and version."""
        return self.decode_plain(topic, self.plaintext(topic, state, stream_id, version), stream_id, version)

    def plaintext(self, topic: str, state: bytes, stream_id: Any, version: int) -> bytes:
        """The stored payload's JSON (decrypted and decompressed), sealed strings still sealed."""
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
        except ValueError as error:
            msg = f"stored event {stream_id} v{version} ({topic}) does not decode: {error}"
            raise MapperDeserialisationError(msg) from error
        return state

    def decode_plain(self, topic: str, state: bytes, stream_id: Any, version: int) -> Any:
        try:
            return decode_event(topic, state)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            msg = f"stored event {stream_id} v{version} ({topic}) does not decode: {error}"
            raise MapperDeserialisationError(msg) from error

    def sealed_subjects(self, state: bytes) -> set[tuple[str, str]]:
        """(tenant, subject) of the key a payload's JSON needs to be revealed; empty for most events."""
        if not subjects_in(state):
            return set()
        metadata = _metadata_of(state)
        return {(metadata.tenant_id, metadata.subject)} if metadata.subject else set()

    def decode_revealed(self, topic: str, state: bytes, stream_id: Any, version: int) -> Any:
        """Decodes a payload's JSON with the sealed strings of the event's own subject opened, or `[erased]`; the
        key must be loaded. A sealed string of another subject (pasted into a prompt, say) stays sealed: opened
        here, it would be sealed again under this subject's key and outlive its own subject's erasure."""
        if MARK in state and self.keyring is not None:
            metadata = _metadata_of(state)
            if metadata.subject:
                state = reveal_json(state, metadata.tenant_id, self.keyring.key, only=metadata.subject)
        return self.decode_plain(topic, state, stream_id, version)


def store_mapper(cipher_key: str | None) -> MsgspecMapper:
    """The mapper the store's readers use: with the store's cipher when it has a key, so events read as written."""
    cipher = AESCipher(Environment("aiwp", {"CIPHER_KEY": cipher_key})) if cipher_key else None
    return MsgspecMapper(transcoder=JSONTranscoder(), cipher=cipher)
