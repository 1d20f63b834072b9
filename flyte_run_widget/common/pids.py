"""Whether a process id still names a running process: the client asks it of the service named in
``server.json``, the service of the task relays it adopts after a restart."""

from __future__ import annotations

import os
from pathlib import Path


def _proc_state(pid: int) -> str | None:
    """The state letter from ``/proc/PID/stat`` (Linux; None elsewhere or when gone)."""
    try:
        # The command name in field 2 may contain spaces and parentheses: split after its last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count); another user's process counts."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")
