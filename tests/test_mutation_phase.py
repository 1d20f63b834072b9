"""Phases beyond tests/test_units.py: what counts as success, the error for a name that is no
phase, and the names of PAUSED and RECOVERED when the flyteidl2 build lacks them (docs/mutation.md
lists the mutants these kill)."""

from __future__ import annotations

import types

import pytest
from flyteidl2.common import phase_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from flyte_run_widget.common import phase


@pytest.mark.parametrize("raw", [*range(0, 12), 42])
def test_only_succeeded_and_recovered_are_success(raw):
    assert phase.is_success(raw) is (raw in (5, 10))
    if phase.is_success(raw):
        assert phase.is_terminal(raw), "a success is a final phase"


@pytest.mark.parametrize("given", [4, "running", "RUNNING", " Running ", "ACTION_PHASE_RUNNING"])
def test_every_spelling_of_a_phase(given):
    assert phase.raw_phase(given) == 4


def test_a_name_that_is_no_phase_lists_the_real_ones():
    with pytest.raises(ValueError) as info:
        phase.raw_phase("finished")
    message = str(info.value)
    known = "queued, waiting_for_resources, initializing, running, succeeded, failed, aborted, timed_out"
    assert message.startswith(f"unknown phase 'finished'; use one of: {known}")
    assert "unspecified" not in message
    # The enum's own error is kept as the cause (the project's rule: raise ... from e).
    assert isinstance(info.value.__cause__, ValueError) and info.value.__suppress_context__


def _older_action_phase() -> types.SimpleNamespace:
    """flyteidl2's phase module as builds before PAUSED (9) and RECOVERED (10) had it: the same
    enum, built from a descriptor that stops at TIMED_OUT."""
    proto = descriptor_pb2.FileDescriptorProto(name="older/phase.proto", package="older", syntax="proto3")
    enum = proto.enum_type.add(name="ActionPhase")
    for name, number in phase_pb2.ActionPhase.items():
        if number <= 8:
            enum.value.add(name=name, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    wrapper = EnumTypeWrapper(pool.FindEnumTypeByName("older.ActionPhase"))
    return types.SimpleNamespace(ActionPhase=wrapper, **dict(wrapper.items()))


@pytest.fixture
def older_idl(monkeypatch):
    older = _older_action_phase()
    with pytest.raises(ValueError):
        older.ActionPhase.Name(9)  # the stand-in really lacks the later phases
    monkeypatch.setattr(phase, "phase_pb2", older)


def test_later_phases_keep_their_names_on_an_older_idl(older_idl):
    assert phase.friendly_phase(4) == "running"
    assert phase.friendly_phase(9) == "paused"
    assert phase.friendly_phase(10) == "recovered"
    assert phase.friendly_phase(11) == "unknown(11)"
    assert phase.raw_phase("paused") == 9
    assert phase.raw_phase("RECOVERED") == 10
    assert phase.raw_phase("ACTION_PHASE_RECOVERED") == 10
    assert phase.is_terminal(10) and phase.is_success(10) and not phase.is_terminal(9)
    with pytest.raises(ValueError, match=r"^unknown phase 'resting'; use one of: queued, .*, timed_out$"):
        phase.raw_phase("resting")
