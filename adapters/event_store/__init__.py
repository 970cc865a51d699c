"""The event store: the eventsourcing library's recorder, a msgspec mapper, group commit."""
