"""The privacy context: data subjects and their erasure (ADR 0008)."""
