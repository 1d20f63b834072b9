"""``flyte-run-widget runs``, ``logs``, ``abort`` and ``open``: runs of a Run service, from a
terminal. Without ``--endpoint`` they talk to the data folder's running service (never start
one: a script that asks about runs should not leave a service behind).

    flyte-run-widget runs --phase running --limit 20
    flyte-run-widget logs r3k9x2m1q --follow
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import webbrowser
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import cast
from urllib.parse import quote

from flyteidl2.logs.dataplane.payload_pb2 import LogLine
from flyteidl2.workflow import run_service_pb2
from rich import box
from rich.table import Table
from rich.text import Text

from .cli_output import HELP_FORMAT, Exit, inert, inert_log, stdout_console
from .cli_service import data_dir_of, find_service, not_running
from .client import loop as _loop
from .client import rpc
from .client.local_service import embedded_token
from .client.streams import follow_logs
from .common.data_dir import default_data_dir
from .common.phase import friendly_phase, raw_phase, tone
from .errors import AlreadyFinishedError, ArgumentValueError, NotFoundError, RunNotFoundError
from .remote.console import _STYLE as PHASE_STYLE
from .remote.console import format_duration
from .remote.log_lines import Rejoin, format_line, keep
from .remote.run import Run

# Without --follow, a running attempt's log is printed up to the first line written after the
# call, or up to where its stream goes quiet (the service sends what the log holds at once, then
# only new lines), or, with no line at all yet, nothing after _FIRST_BATCH_WAIT.
_FIRST_BATCH_WAIT = 3.0
_QUIET = 1.0


def phase_name(text: str) -> str:
    """An argparse type: a phase name as the service knows it (``running``, ``FAILED``, ...)."""
    try:
        return friendly_phase(raw_phase(text))
    except ArgumentValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def connect(args: argparse.Namespace) -> None:
    """Point this process's client at ``--endpoint``, else at the data folder's running service."""
    project, domain = args.project, args.domain
    if args.endpoint:
        rpc.init(args.endpoint, project=project, domain=domain)
        return
    data_dir = data_dir_of(args)
    info = find_service(data_dir)
    if info is None:
        raise not_running(data_dir)
    # Its own token (none for a service started without one), never a remote service's key
    # from the environment.
    rpc.init(info.endpoint, project=project, domain=domain, api_key=embedded_token(data_dir) or "")


def _get(name: str) -> Run:
    try:
        return Run.get(name)
    except RunNotFoundError as e:
        cfg = rpc.get_client().config
        raise RunNotFoundError(
            f"no run named {name!r} in project {cfg.project!r}, domain {cfg.domain!r}: list them with"
            " `flyte-run-widget runs`, or pass --project/--domain",
            code=e.code,
            details=e.details,
        ) from e


def _seconds(ts: object) -> float | None:
    seconds = getattr(ts, "seconds", 0) + getattr(ts, "nanos", 0) / 1e9
    return seconds or None


def _row(run: Run) -> dict[str, object]:
    status = run.pb2.action.status
    start, end = _seconds(status.start_time), _seconds(status.end_time)
    if start is not None and end is None and not run.done():
        end = time.time()
    who = run.pb2.action.metadata.executed_by.user
    return {
        "name": run.name,
        "task": run.task_name,
        "phase": run.phase,
        "started": start,
        "duration": (end - start) if start is not None and end is not None else None,
        "created_by": who.spec.email or who.id.subject,
        "url": run.url,
    }


def runs(args: argparse.Namespace) -> int:
    connect(args)
    # syncify turns the async generator into an iterator; mypy sees the undecorated type.
    listed: Iterable[Run] = Run.listall(  # type: ignore[assignment]
        in_phase=args.phase or None, task_name=args.task, sort_by=("created_at", "desc"), limit=args.limit
    )
    found = list(listed)
    rows = [_row(r) for r in found]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return int(Exit.OK)
    console = stdout_console()
    if not rows:
        wanted = f" in phase {', '.join(args.phase)}" if args.phase else ""
        console.print(Text(f"no runs{wanted}", style="dim"))
        return int(Exit.OK)
    # Piped: columns apart by spaces, no lines to cut away.
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, header_style="bold", pad_edge=False)
    for column in ("name", "task", "phase", "started", "duration", "created by"):
        table.add_column(column, no_wrap=column != "task")
    for run, row in zip(found, rows, strict=True):
        started = row["started"]
        duration = row["duration"]
        table.add_row(
            inert(run.name),
            inert(str(row["task"])),
            Text(run.phase, style=PHASE_STYLE[tone(run.raw_phase)]),
            f"{datetime.fromtimestamp(started):%Y-%m-%d %H:%M:%S}" if isinstance(started, float) else "-",
            format_duration(duration) if isinstance(duration, float) else "-",
            inert(str(row["created_by"])) or "-",
        )
    console.print(table)
    return int(Exit.OK)


async def _batches(run: Run, attempt: int, follow: bool) -> AsyncIterator[Sequence[LogLine]]:
    """The attempt's log lines in batches: to the end of the log (``follow``, or a finished run),
    else the lines written before this call (or, for a log that stops growing, until it goes
    quiet)."""
    finished = run.done()
    cutoff = None if follow or finished else time.time_ns()
    first = True
    lines = cast(AsyncGenerator[Sequence[LogLine], None], follow_logs(run.client, run.action_id, attempt))
    async with contextlib.aclosing(lines) as stream:
        while True:
            wait = None if cutoff is None else (_FIRST_BATCH_WAIT if first else _QUIET)
            try:
                batch = await asyncio.wait_for(anext(stream), wait)
            except (StopAsyncIteration, TimeoutError):
                return
            first = False
            if cutoff is None:
                yield batch
                continue
            # A line stamped after the call is the first of those the log did not hold yet.
            older = [ln for ln in batch if ln.timestamp.ToNanoseconds() <= cutoff]
            yield older
            if len(older) < len(batch):
                return


async def _print_log(run: Run, attempt: int | None, follow: bool, timestamps: bool, system: bool) -> int:
    details = await run.details.aio()
    number = attempt if attempt is not None else max(1, details.action_details.attempts)
    console = stdout_console()
    colour = console.is_terminal
    rejoin = Rejoin()

    def show(lines: Sequence[LogLine]) -> None:
        text = "".join(format_line(ln, show_ts=timestamps) for ln in keep(lines, filter_system=not system))
        if not text:
            return
        if colour:
            console.print(inert_log(text, colour=True), end="")
        else:
            sys.stdout.write(inert_log(text, colour=False).plain)
            sys.stdout.flush()

    try:
        async for batch in _batches(run, number, follow):
            show(rejoin.feed(batch))
    except NotFoundError as e:
        raise NotFoundError(
            f"run {run.name!r} has no log for attempt {number}: {e}; leave --attempt out for the latest",
            code=e.code,
            details=e.details,
        ) from e
    show(rejoin.flush())
    return int(Exit.OK)


def logs(args: argparse.Namespace) -> int:
    connect(args)
    run = _get(args.run)
    return _loop.run_sync(_print_log(run, args.attempt, args.follow, args.timestamps, not args.no_system))


def abort(args: argparse.Namespace) -> int:
    connect(args)
    run = _get(args.run)
    try:
        _loop.run_sync(
            run.client.unary(
                "AbortRun",
                run_service_pb2.AbortRunRequest(run_id=run.action_id.run, reason=args.reason),
                what=f"aborting run {run.name!r}",
            )
        )
    except AlreadyFinishedError as e:
        run.sync()
        raise AlreadyFinishedError(
            f"run {run.name!r} already ended ({run.phase}); there is nothing to abort",
            code=e.code,
            details=e.details,
        ) from e
    run.sync()
    console = stdout_console()
    console.print(Text.assemble("run ", inert(run.name), " ", (run.phase, PHASE_STYLE[tone(run.raw_phase)])))
    return int(Exit.OK)


def open_run(args: argparse.Namespace) -> int:
    connect(args)
    url = _get(args.run).url
    print(url, flush=True)
    if args.print_only:
        return int(Exit.OK)
    # The page sends this service's token with each of its calls: it travels in the fragment,
    # which the browser never sends to a server, and the page takes it out of the address bar.
    # Only the token of the data folder's own service, never a key meant for a remote one.
    token = None if args.endpoint else embedded_token(data_dir_of(args))
    target = f"{url}#token={quote(token, safe='')}" if token else url
    if not webbrowser.open(target):
        hint = " (it will ask for the token in the service's --token-file)" if token else ""
        stdout_console().print(
            Text(f"no browser found here: open the address above yourself{hint}", style="dim")
        )
    return int(Exit.OK)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", default=None, help=f"the local service's data folder (default {default_data_dir()})"
    )
    parser.add_argument("--endpoint", default=None, help="another Run service (host:port, https://host)")
    parser.add_argument("--project", default=None, help="the runs' project (default flytesnacks)")
    parser.add_argument("--domain", default=None, help="the runs' domain (default development)")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", **HELP_FORMAT, help="a table of runs, newest first")
    _common(p)
    p.add_argument(
        "--phase",
        action="append",
        type=phase_name,
        help="only runs in this phase (queued, running, succeeded, failed, aborted, ...; repeatable)",
    )
    p.add_argument("--task", default=None, help="only runs of this task")
    p.add_argument("--limit", type=positive, default=50, help="at most this many runs (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    p.set_defaults(func=runs)

    p = sub.add_parser("logs", **HELP_FORMAT, help="a run's log; --follow keeps printing until the run ends")
    _common(p)
    p.add_argument("run", help="the run's name")
    p.add_argument("-f", "--follow", action="store_true", help="follow the log until the run ends")
    p.add_argument("--attempt", type=positive, default=None, help="attempt 1, 2, ... (default the latest)")
    p.add_argument("--timestamps", action="store_true", help="an ISO timestamp before each line")
    p.add_argument("--no-system", action="store_true", help="leave out the service's own lines")
    p.set_defaults(func=logs)

    p = sub.add_parser("abort", **HELP_FORMAT, help="abort a run; exit code 5 when it had already ended")
    _common(p)
    p.add_argument("run", help="the run's name")
    p.add_argument("--reason", default="Aborted from the flyte-run-widget command line", help="why")
    p.set_defaults(func=abort)

    p = sub.add_parser("open", **HELP_FORMAT, help="open a run's page in a browser (and print its address)")
    _common(p)
    p.add_argument("run", help="the run's name")
    p.add_argument("--print", dest="print_only", action="store_true", help="only print the address")
    p.set_defaults(func=open_run)
