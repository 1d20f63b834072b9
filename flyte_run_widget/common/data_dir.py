"""The embedded service's data folder, as both sides find it: the client starts the service for
it and reads ``server.json`` there; the service keeps its runs there and writes ``server.json``."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "FLYTE_RUN_WIDGET_DATA"
#: Written by the running service (endpoint, pid), read by the client to find it.
SERVER_FILE = "server.json"


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flyte-run-widget"
