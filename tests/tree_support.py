"""Shared by the action-tree tests (their service is conftest's ``tree_service``): a gRPC stub,
polling for a condition (never a fixed sleep), and reading the tree."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
import psutil
from conftest import LocalService
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2, phase_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc

P = phase_pb2
T = TypeVar("T")
PROJECT, DOMAIN = "treeproj", "development"


def stub(service: LocalService) -> run_service_pb2_grpc.RunServiceStub:
    return run_service_pb2_grpc.RunServiceStub(grpc.insecure_channel(service.endpoint))


def run_id(name: str) -> ids.RunIdentifier:
    return ids.RunIdentifier(project=PROJECT, domain=DOMAIN, name=name)


def eventually(check: Callable[[], T | None], timeout: float = 120, what: str = "the condition") -> T:
    """Poll ``check`` until it returns something truthy (the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def actions(svc: LocalService, run: str, parent: str | None = None) -> list[rd.Action]:
    """Every action of ``run`` (children of ``parent`` only, if given), page by page."""
    filters = []
    if parent is not None:
        filters.append(list_pb2.Filter(function=list_pb2.Filter.EQUAL, field="parent_name", values=[parent]))
    out: list[rd.Action] = []
    token = ""
    while True:
        request = rs.ListActionsRequest(
            run_id=run_id(run), request=list_pb2.ListRequest(limit=100, token=token, filters=filters)
        )
        response = stub(svc).ListActions(request)
        out += response.actions
        token = response.token
        if not token:
            return out


def by_task(found: list[rd.Action], short_name: str) -> list[rd.Action]:
    return [a for a in found if a.metadata.task.short_name == short_name]


def phase_name(action: rd.Action) -> str:
    return P.ActionPhase.Name(action.status.phase).removeprefix("ACTION_PHASE_")


def pids_in(folder: Path) -> list[int]:
    return [int(p.read_text()) for p in folder.glob("*.pid") if p.read_text()]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def write_pid(folder: str, name: str) -> None:
    """Called inside a task: the test learns the task process's pid."""
    path = Path(folder) / f"{name}.pid"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.replace(path)


def wait_gate(path: str) -> None:
    """Called inside a task: block until the test creates ``path``."""
    while not os.path.exists(path):
        time.sleep(0.02)
