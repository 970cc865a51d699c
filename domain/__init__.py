"""The pure model of aiwp: aggregates, their events and value objects. No I/O, no clock, no randomness."""
