"""WatchActions responses written as bytes (server/tree_wire.py) are the messages protobuf
itself would build: any action summary, filter result and children's phase counts, and lengths
past one varint byte."""

from __future__ import annotations

from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_run_widget.server.tree_wire import enriched_bytes, response_bytes

_phases = st.integers(min_value=0, max_value=12)
_counts = st.dictionaries(_phases, st.integers(min_value=0, max_value=2**31 - 1), max_size=6)
_names = st.text(min_size=1, max_size=300)


@st.composite
def _actions(draw: st.DrawFn) -> tuple[rd.Action, bool, dict[int, int]]:
    action = rd.Action(id=ids.ActionIdentifier(name=draw(_names)))
    action.metadata.parent = draw(st.text(max_size=40))
    action.metadata.group = draw(st.text(max_size=2000))  # summaries over 127 and 16,383 bytes
    action.status.phase = draw(_phases)  # type: ignore[assignment]
    action.status.attempts = draw(st.integers(min_value=0, max_value=5))
    return action, draw(st.booleans()), draw(_counts)


@settings(max_examples=100, deadline=None)
@given(st.lists(_actions(), max_size=12))
def test_bytes_parse_to_the_messages_protobuf_builds(items):
    expected = rs.WatchActionsResponse()
    parts = []
    for action, meets, counts in items:
        enriched = expected.enriched_actions.add(action=action, meets_filter=meets)
        for phase, count in counts.items():
            enriched.children_phase_counts[phase] = count
        parts.append(enriched_bytes(action.SerializeToString(), meets, counts))
    assert rs.WatchActionsResponse.FromString(response_bytes(parts)) == expected


def test_an_action_past_two_varint_bytes_keeps_its_length():
    action = rd.Action(id=ids.ActionIdentifier(name="x"))
    action.metadata.group = "g" * 20_000  # its length needs a three-byte varint
    body = enriched_bytes(action.SerializeToString(), True, {4: 70_000})
    (got,) = rs.WatchActionsResponse.FromString(response_bytes([body])).enriched_actions
    assert got.action == action and got.meets_filter and dict(got.children_phase_counts) == {4: 70_000}
