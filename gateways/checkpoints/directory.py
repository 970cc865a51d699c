"""Checkpoints as files in a directory: created exclusively, never replaced."""

from __future__ import annotations

import os
import tempfile
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
        # A temporary file of this call's own (two signers at once never write into the same one), on disk before
        # it is linked: a hard link fails when the name exists, so the file appears whole or not at all, and never
        # replaces one.
        handle, partial = tempfile.mkstemp(dir=self.path, prefix=f".{name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.link(partial, self.path / name)
        except FileExistsError:
            raise CheckpointExists(f"{self.path / name} already exists") from None
        finally:
            os.unlink(partial)
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name itself survives a crash
        finally:
            os.close(directory)
