"""What every command of ``flyte-run-widget`` shares: exit codes, the terminal, untrusted text
made inert, and errors mapped to exit codes.

    console = stdout_console()
    console.print(Text.assemble("run ", inert(name), " aborted"))
"""

from __future__ import annotations

import argparse
import re
import sys
from enum import IntEnum
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from .errors import (
    AlreadyFinishedError,
    ArgumentTypeError,
    ArgumentValueError,
    FlyteRunWidgetError,
    NotFoundError,
    ServiceUnavailableError,
)


class Exit(IntEnum):
    """Exit codes scripts can rely on (listed in ``--help`` and the README)."""

    OK = 0
    ERROR = 1  # anything else: the service refused, the task spec, a timeout, ...
    USAGE = 2  # a bad option or value (argparse's own code)
    NO_SERVICE = 3  # no Run service is running (status: not running), or it cannot be reached
    NOT_FOUND = 4  # no such run (or attempt, or log)
    ALREADY_FINISHED = 5  # abort: the run had already ended
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = """exit codes:
  0  success (status: a service is running)
  1  any other error
  2  bad usage: unknown option, bad phase name, bad number
  3  no Run service is running for the data folder, or it cannot be reached
  4  no such run, attempt or log
  5  abort: the run had already ended
  130  interrupted (Ctrl-C)"""

#: For every subcommand's parser: its --help lists the exit codes too.
HELP_FORMAT: dict[str, Any] = {
    "epilog": EXIT_CODES_HELP,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}

# C0 and C1 control characters (ESC starts every terminal escape sequence; BEL ends OSC ones;
# CR and BS overwrite what was printed), DEL, and the bidirectional overrides that make text
# read in another order than it is (CVE-2021-42574). Tab and newline stay.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Colour and style (SGR) sequences: the only escapes a log line keeps, and only on a terminal.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN``: printed, it cannot move the
    cursor, set the window title, clear the screen or reorder what follows it."""
    return _CONTROL.sub(_escape, text)


def inert_log(text: str, *, colour: bool) -> Text:
    """A log line (or several) for the terminal: colours kept when ``colour`` (re-emitted by
    rich, never passed through), every other escape made visible."""
    if not colour:
        return Text(inert(_SGR.sub("", text)))
    parts: list[str] = []
    last = 0
    for m in _SGR.finditer(text):
        parts += (inert(text[last : m.start()]), m.group())
        last = m.end()
    parts.append(inert(text[last:]))
    return Text.from_ansi("".join(parts), end="")


def make_console(file: TextIO) -> Console:
    # markup and emoji off: a run or task name like "[bold]" or ":x:" is printed as it is.
    console = Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True)
    if not console.is_terminal:
        # Piped into a script: whole values, never cut to 80 columns with an ellipsis.
        console.width = 100_000
    return console


def stdout_console() -> Console:
    return make_console(sys.stdout)


def stderr_console() -> Console:
    return make_console(sys.stderr)


def exit_code(error: FlyteRunWidgetError) -> Exit:
    if isinstance(error, ServiceUnavailableError):
        return Exit.NO_SERVICE
    if isinstance(error, NotFoundError):
        return Exit.NOT_FOUND
    if isinstance(error, AlreadyFinishedError):
        return Exit.ALREADY_FINISHED
    if isinstance(error, ArgumentValueError | ArgumentTypeError):
        return Exit.USAGE
    return Exit.ERROR


def report(error: FlyteRunWidgetError) -> int:
    """Print ``error: message`` on stderr; the exit code for it."""
    stderr_console().print(Text.assemble(("error: ", "bold red"), inert(str(error))))
    return int(exit_code(error))
