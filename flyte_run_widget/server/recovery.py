"""What a restarted service does with the actions a previous one left unfinished (runs' roots
and children alike): an attempt whose relay still runs (or that ended while no service was
there) is adopted and followed to its end; any other action ends FAILED, saying the service
restarted, and what it had started below it is stopped (a child cannot outlive its parent).

    ended = recover(executor)    # once, before serving
"""

from __future__ import annotations

import logging
import signal
import time
from typing import TYPE_CHECKING

from . import model
from .hub import log_key
from .log_files import LogWriter
from .process import SYSTEM_LINE, TaskProcess, is_alive, signal_group
from .store import ROOT_ACTION, RunRow

if TYPE_CHECKING:
    from .executor import Executor

log = logging.getLogger("flyte_run_widget.server.executor")

RESTARTED = "the service restarted while this run was running"


def recover(executor: Executor) -> int:
    """Returns how many actions were ended."""
    ended: list[tuple[str, str]] = []
    for row in executor.store.unfinished():
        details = row.details
        run, action = row.name, details.id.name
        attempt = model.current(details)
        files = executor.files(run, action, attempt.attempt)
        process = TaskProcess.adopt(files, executor.notifier(log_key(run, action, attempt.attempt)))
        if process is not None:
            _adopt(executor, row, process)
            continue
        pid, marker = executor.store.process_of(run, action, attempt.attempt)
        relay_pid, relay_marker = files.relay_pid()
        message = RESTARTED if action == ROOT_ACTION else RESTARTED.replace("this run", "this action")
        leftovers = [(p, m) for p, m in ((pid, marker), (relay_pid, relay_marker)) if p is not None]
        # The group outlives its leader: signal it whether or not the leader is still there.
        if any(is_alive(p, m) for p, m in leftovers):
            message += "; its leftover process was stopped"
        for p, _ in leftovers:
            signal_group(p, signal.SIGKILL)
        with LogWriter(executor.layout.log_file(run, action, attempt.attempt)) as writer:
            writer.append(time.time_ns(), SYSTEM_LINE, message.encode())
        model.fail(details, model.SYSTEM, "ServiceRestarted", message, model.now_ns())
        executor.store.save_action(details)
        ended.append((run, action))
    for run, action in ended:
        executor.end_descendants(run, action)
    return len(ended)


def _adopt(executor: Executor, row: RunRow, process: TaskProcess) -> None:
    from .executor import LiveAction

    details = row.details
    pid = process.pid
    # Noted once the relay has ended: while it runs it is the log's only writer.
    note = (
        f"the service restarted while the task ran; it was followed again (relay pid {pid})"
        if process.running()
        else "the service restarted; the task had ended while it was down"
    )
    live = LiveAction(
        details=details,
        run_spec=row.run_spec,
        process=process,
        note=note,
        input_uri=row.input_uri,
        output_base=row.output_base,
    )
    executor.adopt(live, process)
    if details.id.name == ROOT_ACTION:
        log.warning("adopted run %s (relay pid %d)", row.name, pid)
    else:
        log.warning("adopted action %s of run %s (relay pid %d)", details.id.name, row.name, pid)
