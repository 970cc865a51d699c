"""Our own infrastructure behind the write and read side's ports."""
