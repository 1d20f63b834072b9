"""Action phases: their names, which are final, and how each reads at a glance.

>>> friendly_phase(4)
'running'
>>> is_terminal(42)
False
>>> tone(8)
'failure'
"""

from __future__ import annotations

from flyteidl2.common import phase_pb2

from ..errors import ArgumentValueError

_PREFIX = "ACTION_PHASE_"

#: Phases after which an action never changes again.
TERMINAL_PHASES: frozenset[int] = frozenset(
    {
        phase_pb2.ACTION_PHASE_SUCCEEDED,
        phase_pb2.ACTION_PHASE_FAILED,
        phase_pb2.ACTION_PHASE_ABORTED,
        phase_pb2.ACTION_PHASE_TIMED_OUT,
        10,  # RECOVERED: success-like, only in later IDL versions
    }
)

#: Phases that count as a successful end.
SUCCESS_PHASES: frozenset[int] = frozenset({phase_pb2.ACTION_PHASE_SUCCEEDED, 10})

#: Phases of an action on its way, queued up to running (the widget's badge pulses).
ACTIVE_PHASES: frozenset[int] = frozenset(
    {
        phase_pb2.ACTION_PHASE_QUEUED,
        phase_pb2.ACTION_PHASE_WAITING_FOR_RESOURCES,
        phase_pb2.ACTION_PHASE_INITIALIZING,
        phase_pb2.ACTION_PHASE_RUNNING,
    }
)

# Names of phases newer IDL versions added; older flyteidl2 builds lack them.
_LATER_NAMES = {9: "paused", 10: "recovered"}


def friendly_phase(raw: int) -> str:
    """The SDK's lower-case phase name; numbers this IDL does not know read ``unknown(N)``."""
    try:
        name = phase_pb2.ActionPhase.Name(raw)
    except ValueError:
        return _LATER_NAMES.get(raw, f"unknown({raw})")
    return name.removeprefix(_PREFIX).lower()


def raw_phase(friendly: str | int) -> int:
    """The enum number for ``"running"``, ``"RUNNING"``, ``"ACTION_PHASE_RUNNING"`` or a number."""
    if isinstance(friendly, int):
        return friendly
    key = friendly.strip().upper()
    if not key.startswith(_PREFIX):
        key = _PREFIX + key
    try:
        return int(phase_pb2.ActionPhase.Value(key))
    except ValueError as e:
        for number, name in _LATER_NAMES.items():
            if key == _PREFIX + name.upper():
                return number
        known = ", ".join(friendly_phase(v) for v in phase_pb2.ActionPhase.values() if v)
        raise ArgumentValueError(f"unknown phase {friendly!r}; use one of: {known}") from e


def is_terminal(raw: int) -> bool:
    return raw in TERMINAL_PHASES


def is_success(raw: int) -> bool:
    return raw in SUCCESS_PHASES


def tone(raw: int) -> str:
    """How a phase reads at a glance: ``success``, ``failure`` (failed, timed out), ``stopped``
    (aborted), ``active`` (queued up to running) or ``idle`` (unspecified, paused, unknown).
    The terminal colours by it; the widget's js/src/badge.js and theme.css hold the same split
    for the browser, checked against this by tests/test_phase_vocabulary.py."""
    if raw in SUCCESS_PHASES:
        return "success"
    if raw == phase_pb2.ACTION_PHASE_ABORTED:
        return "stopped"
    if raw in TERMINAL_PHASES:
        return "failure"
    return "active" if raw in ACTIVE_PHASES else "idle"
