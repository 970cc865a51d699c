"""Where signed audit checkpoints are kept, outside the database: a directory, or S3 (MinIO)."""


class CheckpointExists(Exception):
    """An object of that name is already stored: checkpoints are never replaced."""


class CheckpointStorageError(Exception):
    """The storage could not be reached or refused; the message names where and the error code, no secret."""
