"""Bad input gets a clear error that names the cause and the fix."""

from __future__ import annotations

import socket
import sys
import time

import pytest
from flyteidl2.core import tasks_pb2
from flyteidl2.task import task_definition_pb2

import flyte_run_widget as frw
from flyte_run_widget.errors import (
    ConfigError,
    InvalidArgumentError,
    RunNotFoundError,
    ServiceUnavailableError,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def container_spec(*command: str) -> task_definition_pb2.TaskSpec:
    return task_definition_pb2.TaskSpec(
        task_template=tasks_pb2.TaskTemplate(
            type="container", container=tasks_pb2.Container(image="local", command=list(command))
        )
    )


def test_unreachable_endpoint_fails_fast_and_says_so():
    port = _free_port()
    frw.init(f"localhost:{port}")
    start = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match=f"localhost:{port}") as info:
        frw.Run.get("anything")
    assert time.monotonic() - start < 6
    assert "check that the service runs" in str(info.value)


def test_tls_to_a_plain_service_names_the_fix(service):
    frw.init(service.endpoint, insecure=False)
    with pytest.raises(ServiceUnavailableError, match="insecure=True"):
        frw.Run.get("anything")


@pytest.mark.parametrize(
    "endpoint",
    ["", "ftp://host:1", "host:notaport", "http://host/path", "dns:///", "host:99999"],
)
def test_malformed_endpoint(endpoint):
    with pytest.raises(ConfigError, match="endpoint"):
        frw.init(endpoint)


def test_api_key_never_sent_in_clear_text_off_loopback():
    with pytest.raises(ConfigError, match="clear text"):
        frw.init("http://flyte.example.com:80", api_key="secret")


def test_unknown_run(service):
    frw.init(service.endpoint)
    with pytest.raises(RunNotFoundError, match="'ghost' was not found"):
        frw.Run.get("ghost")


def test_create_run_without_container(service):
    frw.init(service.endpoint)
    spec = task_definition_pb2.TaskSpec(task_template=tasks_pb2.TaskTemplate(type="python-task"))
    with pytest.raises(InvalidArgumentError, match="container"):
        frw.run(spec)
    assert list(frw.Run.listall()) == []


def test_garbage_outputs_pb_fails_the_run_with_a_system_error(service):
    frw.init(service.endpoint)
    code = "import sys,os; open(os.path.join(sys.argv[1], 'outputs.pb'), 'wb').write(b'\\xff\\x00garbage')"
    spec = container_spec(sys.executable, "-c", code, "{{.Outputs}}")
    r = frw.run(spec)
    r.wait(quiet=True)
    assert r.phase == "failed"
    err = r.details().action_details.error_info
    assert "outputs.pb" in err.message


def test_wrong_inputs_are_rejected_before_the_run_starts(service):
    frw.init(service.endpoint)

    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="inputs do not fit"):
        frw.run(f, y=1)
    assert list(frw.Run.listall()) == []


def test_bad_phase_and_sort_arguments(service):
    frw.init(service.endpoint)
    with pytest.raises(ValueError, match="unknown phase 'runing'"):
        list(frw.Run.listall(in_phase=["runing"]))
    with pytest.raises(ValueError, match="'asc' or 'desc'"):
        list(frw.Run.listall(sort_by=("created_at", "up")))  # type: ignore[arg-type]
