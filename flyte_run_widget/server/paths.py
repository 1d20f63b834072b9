"""Where a run keeps its files, with names checked before any path is built from them."""

from __future__ import annotations

import re
from pathlib import Path

from .faults import invalid

_NAME = re.compile(r"[a-z0-9_-]{1,63}")


def check_name(name: str, what: str = "run name") -> str:
    """The name itself, or INVALID_ARGUMENT saying what a valid one looks like."""
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise invalid(f"{what} {shown!r} is not valid: use 1 to 63 characters from a-z, 0-9, '-' and '_'")
    return name


class Layout:
    """The data folder: ``state.db``, ``server.json`` and ``runs/<run>/<action>/...``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir

    @property
    def db(self) -> Path:
        return self.root / "state.db"

    def action_dir(self, run: str, action: str) -> Path:
        return self.root / "runs" / check_name(run) / check_name(action, "action name")

    def inputs_file(self, run: str, action: str) -> Path:
        return self.action_dir(run, action) / "inputs.pb"

    def attempt_dir(self, run: str, action: str, attempt: int) -> Path:
        return self.action_dir(run, action) / f"attempt-{int(attempt)}"

    def log_file(self, run: str, action: str, attempt: int) -> Path:
        return self.action_dir(run, action) / f"attempt-{int(attempt)}.log"
