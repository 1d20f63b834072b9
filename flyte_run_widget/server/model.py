"""Building and advancing the ActionDetails proto that is the whole truth about an action.

details = new_action(run_id, "a0", task_spec, who, now_ns)
advance(details, ACTION_PHASE_RUNNING, now_ns)
"""

from __future__ import annotations

import functools
import getpass
import logging
import time

from flyteidl2.common import identifier_pb2, identity_pb2, phase_pb2
from flyteidl2.task import task_definition_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from google.protobuf import timestamp_pb2

from ..common import phase as phases
from ..common.idl import new_error

log = logging.getLogger(__name__)

QUEUED = phase_pb2.ACTION_PHASE_QUEUED
INITIALIZING = phase_pb2.ACTION_PHASE_INITIALIZING
RUNNING = phase_pb2.ACTION_PHASE_RUNNING
SUCCEEDED = phase_pb2.ACTION_PHASE_SUCCEEDED
FAILED = phase_pb2.ACTION_PHASE_FAILED
ABORTED = phase_pb2.ACTION_PHASE_ABORTED
TIMED_OUT = phase_pb2.ACTION_PHASE_TIMED_OUT

USER = rd.ErrorInfo.KIND_USER
SYSTEM = rd.ErrorInfo.KIND_SYSTEM


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def now_ns() -> int:
    return time.time_ns()


@functools.cache
def local_identity() -> identity_pb2.EnrichedIdentity:
    """The OS user the service runs as: on one machine, that is who started the run."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (some containers): still say something
        log.debug("no login name for the service's user; runs are created by 'local'", exc_info=True)
        user = "local"
    return identity_pb2.EnrichedIdentity(
        user=identity_pb2.User(
            id=identifier_pb2.UserIdentifier(subject=user),
            spec=identity_pb2.UserSpec(user_handle=user),
        )
    )


def new_action(
    run_id: identifier_pb2.RunIdentifier,
    name: str,
    task: task_definition_pb2.TaskSpec,
    who: identity_pb2.EnrichedIdentity,
    created_ns: int,
    source: int = 0,
) -> rd.ActionDetails:
    tid = task.task_template.id
    task_id = task_definition_pb2.TaskIdentifier(
        org=tid.org or run_id.org,
        project=tid.project or run_id.project,
        domain=tid.domain or run_id.domain,
        name=tid.name,
        version=tid.version,
    )
    short = task.short_name or tid.name.rsplit(".", 1)[-1]
    details = rd.ActionDetails(
        id=identifier_pb2.ActionIdentifier(run=run_id, name=name),
        metadata=rd.ActionMetadata(
            executed_by=who,
            task=rd.TaskActionMetadata(id=task_id, task_type=task.task_template.type, short_name=short),
            action_type=rd.ACTION_TYPE_TASK,
            source=source,  # type: ignore[arg-type]
        ),
        status=rd.ActionStatus(phase=QUEUED, start_time=timestamp(created_ns), attempts=1),
        task=task,
    )
    _add_attempt(details, created_ns)
    return details


def _add_attempt(details: rd.ActionDetails, ns: int) -> rd.ActionAttempt:
    attempt = details.attempts.add(phase=QUEUED, attempt=len(details.attempts) + 1, start_time=timestamp(ns))
    attempt.phase_transitions.add(phase=QUEUED, start_time=timestamp(ns))
    details.status.attempts = len(details.attempts)
    return attempt


def current(details: rd.ActionDetails) -> rd.ActionAttempt:
    return details.attempts[-1]


def retry(details: rd.ActionDetails, ns: int) -> rd.ActionAttempt:
    """Start the next attempt; the action follows it back to QUEUED."""
    attempt = _add_attempt(details, ns)
    details.status.phase = QUEUED
    details.status.ClearField("end_time")
    details.status.ClearField("duration_ms")
    details.ClearField("error_info")
    return attempt


def advance(details: rd.ActionDetails, phase: int, ns: int) -> None:
    """Move the current attempt (and so the action) to ``phase``, closing the previous
    phase transition. A terminal phase also sets end times and the duration."""
    attempt = current(details)
    if attempt.phase == phase:
        return
    ts = timestamp(ns)
    if attempt.phase_transitions:
        attempt.phase_transitions[-1].end_time.CopyFrom(ts)
    transition = attempt.phase_transitions.add(phase=phase, start_time=ts)  # type: ignore[arg-type]
    attempt.phase = phase  # type: ignore[assignment]
    details.status.phase = phase  # type: ignore[assignment]
    if phases.is_terminal(phase):
        transition.end_time.CopyFrom(ts)
        attempt.end_time.CopyFrom(ts)
        details.status.end_time.CopyFrom(ts)
        start = details.status.start_time.ToNanoseconds()
        details.status.duration_ms = max(0, (ns - start) // 1_000_000)


def fail(details: rd.ActionDetails, kind: int, code: str, message: str, ns: int, phase: int = FAILED) -> None:
    error = new_error(kind, code, message)
    current(details).error_info.CopyFrom(error)
    details.error_info.CopyFrom(error)
    advance(details, phase, ns)


def abort(details: rd.ActionDetails, reason: str, ns: int) -> None:
    details.abort_info.CopyFrom(rd.AbortInfo(reason=reason, aborted_by=local_identity()))
    advance(details, ABORTED, ns)


def is_done(details: rd.ActionDetails) -> bool:
    return phases.is_terminal(details.status.phase)
