"""An embedded PostgreSQL server (the `pgserver` package) in a local data folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or joins) the server of a data folder; `stop()` shuts it down if this process started it."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (containers, CI); pgserver does not use that dir.
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only the embedded mode needs it

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(data_dir, cleanup_mode="stop")
        self.url: str = self._server.get_uri()
        log.info("embedded PostgreSQL ready in %s", data_dir)

    def stop(self) -> None:
        self._server.cleanup()
