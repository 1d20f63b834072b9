"""What the tests of the package's own API (runs, actions, widgets, the runs table) share against
the embedded service: the package pointed at it, a condition awaited, small task functions.

    from run_support import package_client, wait_until  # noqa: F401 (a fixture)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from conftest import LocalService

import flyte_run_widget as frw


@pytest.fixture(name="client")
def package_client(service: LocalService) -> LocalService:
    """``frw.init`` on the test's own service (in place of conftest's raw ``client``)."""
    frw.init(service.endpoint, project="proj", domain="development")
    return service


def wait_until(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# Task functions: they travel to the task process by value, as a notebook's would.


def add(a: int, b: int = 2) -> int:
    print(f"adding {a} and {b}")
    return a + b


def sleepy(seconds: float) -> str:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke"
