"""Action phases and which of them are final.

>>> friendly_phase(4)
'running'
>>> is_terminal(42)
False
"""

from __future__ import annotations

from flyteidl2.common import phase_pb2

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
    except ValueError:
        for number, name in _LATER_NAMES.items():
            if key == _PREFIX + name.upper():
                return number
        known = ", ".join(friendly_phase(v) for v in phase_pb2.ActionPhase.values() if v)
        raise ValueError(f"unknown phase {friendly!r}; use one of: {known}") from None


def is_terminal(raw: int) -> bool:
    return raw in TERMINAL_PHASES


def is_success(raw: int) -> bool:
    return raw in SUCCESS_PHASES
