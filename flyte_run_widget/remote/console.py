"""Terminal rendering with rich: the live ``wait()`` panel and ``show_logs()``.

with WaitDisplay(run, quiet=False) as display:
    display.update(details)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..client import streams
from ..common.phase import is_success, tone
from .log_lines import Rejoin, format_line, keep

if TYPE_CHECKING:
    from .action_base import ActionBase, ActionDetails

# The terminal's colour for each tone (common/phase.py decides which phase has which).
_STYLE = {
    "success": "bold green",
    "failure": "bold red",
    "stopped": "bold yellow",
    "active": "bold cyan",
    "idle": "bold magenta",
}


def _elapsed(details: ActionDetails | None, started: float) -> float:
    if details is not None:
        st = details.pb2.status
        if st.HasField("start_time") and st.start_time.seconds:
            end = st.end_time.ToMilliseconds() / 1000 if st.HasField("end_time") else time.time()
            return max(0.0, end - st.start_time.ToMilliseconds() / 1000)
    return time.monotonic() - started


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class WaitDisplay:
    """A live panel with phase, elapsed time and attempts; a final line when it ends.
    ``label`` names what is waited for ("run 'abc'", "action 'a1' of run 'abc'")."""

    def __init__(self, label: str, node: ActionBase, *, quiet: bool) -> None:
        self.label = label
        self.node = node
        self.quiet = quiet
        self.details: ActionDetails | None = None
        self._started = time.monotonic()
        self._console = Console(file=sys.stdout, highlight=False)
        self._live: Live | None = None

    def _panel(self) -> Any:
        shown = self.details if self.details else self.node
        attempts = self.details.attempts if self.details else 0
        text = Text.assemble(
            (self.label, "bold"),
            "  ",
            (shown.phase.upper(), _STYLE[tone(shown.raw_phase)]),
            f"  {format_duration(_elapsed(self.details, self._started))}",
            f"  attempt {attempts}" if attempts else "",
        )
        return Panel(text, expand=False)

    def __enter__(self) -> WaitDisplay:
        if not self.quiet:
            self._live = Live(
                get_renderable=self._panel, console=self._console, refresh_per_second=4, transient=True
            )
            self._live.start()
        return self

    def update(self, details: ActionDetails) -> None:
        self.details = details

    def finish(self, details: ActionDetails) -> None:
        self.details = details
        if self.quiet:
            return
        if self._live is not None:
            self._live.stop()
            self._live = None
        ad = details
        took = format_duration(_elapsed(ad, self._started))
        if is_success(ad.raw_phase):
            self._console.print(Text.assemble(("✓ ", "green"), f"{self.label} {ad.phase} in {took}"))
            return
        body = Text.assemble(("✗ ", "red"), f"{self.label} {ad.phase} after {took}")
        err, abort = ad.error_info, ad.abort_info
        if err is not None and err.message:
            body.append(f"\n{err.message.rstrip()}", style="red")
        elif abort is not None and abort.reason:
            body.append(f"\nreason: {abort.reason}", style="yellow")
        self._console.print(body)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


#: Raw mode prints the last ``max_lines`` of what the log holds, then follows: the log so far
#: arrives at once, so a pause this long in a running attempt's stream marks its end.
_BACKLOG_PAUSE = 0.25


async def print_logs(
    node: ActionBase,
    details: ActionDetails,
    *,
    attempt: int | None,
    max_lines: int | None,
    show_ts: bool,
    raw: bool,
    filter_system: bool,
) -> None:
    """``raw`` writes every line as it comes, or with ``max_lines`` the last ``max_lines`` lines
    and then every new one (``tail -n max_lines -f``); otherwise a live panel keeps the last
    ``max_lines`` (default 100)."""
    number = attempt if attempt is not None else max(1, details.attempts)
    texts = _texts(streams.follow_logs(node.client, node.action_id, number), show_ts, filter_system)
    if raw:
        await _print_raw(texts, max_lines, finished=details.done())
        return
    tail: deque[str] = deque(maxlen=max_lines or 100)
    console = Console(file=sys.stdout, highlight=False)

    def render() -> Any:
        body = Text.from_ansi("".join(tail).rstrip("\n")) if tail else Text("(no lines yet)", style="dim")
        title = f"Logs: {node._label} attempt {number}"
        return Panel(Group(body), title=title, title_align="left", expand=True)

    with Live(get_renderable=render, console=console, refresh_per_second=4):
        async for batch in texts:
            tail.extend(batch)


async def _texts(
    batches: AsyncIterator[streams.LogBatch], show_ts: bool, filter_system: bool
) -> AsyncIterator[list[str]]:
    """Batches of whole lines as text, each with its newline."""
    rejoin = Rejoin()
    async for batch in batches:
        whole = rejoin.feed(batch)
        if whole:
            yield [format_line(ln, show_ts=show_ts) for ln in keep(whole, filter_system=filter_system)]
    rest = rejoin.flush()
    if rest:
        yield [format_line(ln, show_ts=show_ts) for ln in keep(rest, filter_system=filter_system)]


async def _print_raw(texts: AsyncIterator[list[str]], max_lines: int | None, *, finished: bool) -> None:
    out = sys.stdout
    if max_lines is None:
        async for batch in texts:
            out.write("".join(batch))
            out.flush()
        return
    tail: deque[str] = deque(maxlen=max_lines)
    following = False
    started = False  # the pause is timed from the first batch: subscribing takes a while
    it = aiter(texts)
    pending: asyncio.Future[list[str]] = asyncio.ensure_future(anext(it))
    try:
        while True:
            if started and not following and not finished:
                done, _ = await asyncio.wait({pending}, timeout=_BACKLOG_PAUSE)
                if not done:  # the log so far is in: its end, then the rest as it comes
                    following = True
                    out.write("".join(tail))
                    out.flush()
                    continue
            try:
                batch = await pending
            except StopAsyncIteration:
                break
            if following:
                out.write("".join(batch))
                out.flush()
            else:
                tail.extend(batch)
                started = True
            pending = asyncio.ensure_future(anext(it))
    finally:
        pending.cancel()
    if not following:
        out.write("".join(tail))
        out.flush()
