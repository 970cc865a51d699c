"""Checkpoints as files in a directory: created exclusively, never replaced."""

from __future__ import annotations

import os
from pathlib import Path

from gateways.checkpoints import CheckpointExists


class DirectoryCheckpoints:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return [entry.name for entry in self.path.iterdir() if entry.is_file()]

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def create(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        partial = self.path / f".{name}.partial"
        partial.write_bytes(data)
        try:
            # A hard link fails when the name exists: the file appears whole, or not at all, and never replaces one.
            os.link(partial, self.path / name)
        except FileExistsError:
            raise CheckpointExists(f"{self.path / name} already exists") from None
        finally:
            partial.unlink()
