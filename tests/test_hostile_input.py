"""Hostile text is stored intact: log lines, task names, labels and error messages with HTML,
``<script>``, event handlers, ``javascript:`` links, ANSI bombs, NUL bytes, invalid UTF-8 and a
10 MB line come back from TailLogs / GetRunDetails as sent (bytes preserved where the protocol
allows; invalid UTF-8 replaced only when decoded), and no response exceeds 4 MiB.
"""

from __future__ import annotations

import sys

import grpc
import pytest
from conftest import ServiceClient, container_task, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2
from flyteidl2.workflow import run_service_pb2 as rs

from flyte_run_widget.server.log_files import MAX_LINE_BYTES

HTML = '<div id="pwn">x</div><img src=x onerror="alert(1)"><script>alert(2)</script>'
ANSI_BOMB = b"\x1b[31m" * 100_000 + b"red"
BIG = 10 * 1024 * 1024

# Each log line as raw bytes, in order; the task prints them and exits with an error.pb.
HOSTILE_LINES: list[bytes] = [
    HTML.encode(),
    b"<a href=\"javascript:alert('x')\">click</a> <svg onload=alert(3)>",
    b"<iframe src='https://example.com/'></iframe><link rel=stylesheet href=//evil.example/x.css>",
    ANSI_BOMB,
    b"nul\x00in\x00the\x00middle",
    b"bad utf8: \xff\xfe \xc3\x28 \xed\xa0\x80 end",
    b"\x1b]8;;javascript:alert(4)\x1b\\osc link\x1b]8;;\x1b\\ \x1b[2J\x1b[H",
    b"A" * BIG,
    b"after the big line",
]
ERROR_MESSAGE = "boom <script>alert(5)</script>\x00 <img src=x onerror=alert(6)> javascript:alert(7)"

TASK = f"""
import os, sys
from flyteidl2.core import execution_pb2
lines = {HOSTILE_LINES[:3]!r} + [b"\\x1b[31m" * 100_000 + b"red"]
lines += {HOSTILE_LINES[4:7]!r} + [b"A" * {BIG}, {HOSTILE_LINES[8]!r}]
out = sys.stdout.buffer
for line in lines:
    out.write(line + b"\\n")
out.flush()
doc = execution_pb2.ErrorDocument(error=execution_pb2.ContainerError(
    code="Hostile<b>", message={ERROR_MESSAGE!r}, origin=execution_pb2.ExecutionError.USER))
open(os.path.join(sys.argv[1], "error.pb"), "wb").write(doc.SerializeToString())
sys.exit(1)
"""

LABELS = {
    "html": HTML,
    "<key onmouseover=alert(8)>": "javascript:alert(9)",
    "nul": "a\x00b",
    "ansi": "\x1b[31mred\x1b[0m",
}
TASK_NAME = "tests.<img src=x onerror=alert(10)>"
SHORT_NAME = "<script>alert(11)</script>"


def default_limits(endpoint: str) -> ServiceClient:
    """A client with grpc's default 4 MiB receive limit, like the Flyte SDK."""
    return ServiceClient(endpoint)


@pytest.fixture
def hostile_run(service, client):
    spec = python_task(TASK, "{{.Outputs}}", name=TASK_NAME)
    spec.short_name = SHORT_NAME
    run = client.create(spec, name="hostile", labels=LABELS)
    details = client.wait(run.action.id, timeout=60)
    return run, details


def test_hostile_text_is_stored_and_read_back_intact(service, client, hostile_run):
    run, details = hostile_run
    assert details.status.phase == 6  # FAILED, with the task's own error
    assert details.error_info.message == ERROR_MESSAGE
    assert details.error_info.code == "Hostile<b>"

    got = client.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run.action.id.run), timeout=10).details
    assert dict(got.run_spec.labels.values) == LABELS
    assert got.action.metadata.task.id.name == TASK_NAME
    assert got.action.metadata.task.short_name == SHORT_NAME
    assert got.action.error_info.message == ERROR_MESSAGE
    listed = client.runs.ListRuns(rs.ListRunsRequest(), timeout=10).runs
    assert dict(listed[0].labels) == LABELS

    # Every byte of every line, in order: long lines come in pieces, nothing else changes.
    lines = client.log_lines(run.action.id, timeout=60)
    messages = [ln.message for ln in lines if ln.originator != 2]  # not the service's own lines
    # Short lines arrive whole; long ones in pieces whose concatenation is the line: all pieces
    # but the last end without a newline (the line goes on in the next message).
    for line in HOSTILE_LINES:
        if len(line) < 64 * 1024:
            assert line.decode("utf-8", errors="replace") + "\n" in messages, line[:80]
    expected = "".join(line.decode("utf-8", errors="replace") + "\n" for line in HOSTILE_LINES)
    assert "".join(messages) == expected
    assert len(messages) > len(HOSTILE_LINES)  # the long lines did come in pieces
    assert max(len(m.encode()) for m in messages) <= MAX_LINE_BYTES + 1
    assert "".join(messages).count("A") >= BIG
    # Invalid UTF-8 is replaced at decode time only: the stored record still holds the bytes.
    log = service.data_dir / "runs" / "hostile" / "a0" / "attempt-1.log"
    raw = log.read_bytes()
    for line in HOSTILE_LINES[:7]:
        assert line in raw or line[:MAX_LINE_BYTES] in raw


def test_labels_too_large_for_any_response_are_refused(service, client):
    """Regression: 5 MiB of labels were accepted, after which GetRunDetails, ListRuns and
    CreateRun's own response were all over 4 MiB, so no default gRPC client could read them."""
    with pytest.raises(grpc.RpcError) as info:
        client.create(python_task("pass"), name="big-labels", labels={"blob": "x" * (5 * 1024 * 1024)})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most" in info.value.details()
    assert client.runs.ListRuns(rs.ListRunsRequest(), timeout=10).runs == []


def test_list_runs_pages_stay_under_4_mib(service):
    """Regression: a page held up to 100 runs whatever their size; runs with ~900 KB of labels
    made a ListRuns response of many MiB. Pages now stop early and carry a token."""
    c = default_limits(service.endpoint)
    try:
        for i in range(6):
            c.create(
                container_task([sys.executable, "-c", "pass"]), name=f"fat-{i}", labels={"l": "y" * 900_000}
            )
        names, token, pages = [], "", 0
        while True:
            req = rs.ListRunsRequest(request=list_pb2.ListRequest(limit=100, token=token))
            resp = c.runs.ListRuns(req, timeout=10)  # would fail RESOURCE_EXHAUSTED over 4 MiB
            assert resp.ByteSize() <= 4 * 1024 * 1024
            names += [r.action.id.run.name for r in resp.runs]
            pages += 1
            token = resp.token
            if not token:
                break
        assert sorted(names) == [f"fat-{i}" for i in range(6)]
        assert pages > 1
    finally:
        c.close()


HUGE_ERROR = f"""
import os, sys
from flyteidl2.core import execution_pb2 as e
doc = e.ErrorDocument(error=e.ContainerError(code="Huge", message="E" * {6 * 1024 * 1024}))
open(os.path.join(sys.argv[1], "error.pb"), "wb").write(doc.SerializeToString())
sys.exit(1)
"""


def test_huge_error_message_is_cut_in_responses(service):
    """Regression: a task's 6 MiB error message went out whole in every details response."""
    c = default_limits(service.endpoint)
    try:
        run = c.create(python_task(HUGE_ERROR, "{{.Outputs}}"), name="huge-error")
        details = c.wait(run.action.id, timeout=60)  # WatchActionDetails under the 4 MiB limit
        assert details.error_info.message.startswith("EEEE")
        assert "more characters" in details.error_info.message
        got = c.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run.action.id.run), timeout=10)
        assert got.details.action.error_info.code == "Huge"
        aid = ids.ActionIdentifier(run=run.action.id.run, name="a0")
        c.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=aid), timeout=10)
    finally:
        c.close()


HUGE_OUTPUTS = f"""
import os, sys
from flyteidl2.core import literals_pb2
from flyteidl2.task import common_pb2
text = literals_pb2.Primitive(string_value="o" * {5 * 1024 * 1024})
lit = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=text))
out = common_pb2.Outputs(literals=[common_pb2.NamedLiteral(name="o0", value=lit)])
open(os.path.join(sys.argv[1], "outputs.pb"), "wb").write(out.SerializeToString())
"""


def test_outputs_too_large_for_a_response_get_an_explicit_error(service):
    """Regression: GetActionData sent 5 MiB of outputs in one response (default clients failed
    with a generic RESOURCE_EXHAUSTED from their own limit); now the service says why."""
    c = ServiceClient(service.endpoint)
    try:
        run = c.create(python_task(HUGE_OUTPUTS, "{{.Outputs}}"), name="huge-outputs")
        assert c.wait(run.action.id, timeout=60).status.phase == 5
        with pytest.raises(grpc.RpcError) as info:
            c.runs.GetActionData(rs.GetActionDataRequest(action_id=run.action.id), timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "huge-outputs" in info.value.details() and "bytes" in info.value.details()
    finally:
        c.close()
