"""Pure units: phases, literals, endpoints, config files, the sync/.aio() machinery."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client.config import build_config, parse_endpoint
from flyte_run_widget.common.phase import friendly_phase, is_terminal, raw_phase
from flyte_run_widget.errors import ConfigError, ConversionError
from flyte_run_widget.remote.literals import PICKLE, from_literal, to_inputs, to_literal


@pytest.mark.parametrize(
    ("raw", "name", "terminal"),
    [
        (1, "queued", False),
        (4, "running", False),
        (5, "succeeded", True),
        (7, "aborted", True),
        (8, "timed_out", True),
        (9, "paused", False),
        (10, "recovered", True),
        (42, "unknown(42)", False),
    ],
)
def test_phases(raw, name, terminal):
    assert friendly_phase(raw) == name
    assert is_terminal(raw) is terminal
    if raw != 42:
        assert raw_phase(name) == raw


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Opaque:
    def __eq__(self, other):
        return isinstance(other, Opaque)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -5,
        2**62,
        1.5,
        "hé",
        True,
        False,
        None,
        [1, [2, "x"]],
        {"a": {"b": [1, 2]}},
        dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC),
        dt.timedelta(minutes=3),
        b"\x00\x01",
    ],
)
def test_literals_round_trip(value):
    assert from_literal(to_literal(value)) == value


def test_dataclass_is_msgpack_like_the_sdk():
    lit = to_literal(Point(1, 2.0))
    assert lit.scalar.binary.tag == "msgpack"
    assert from_literal(lit) == {"x": 1, "y": 2.0}


def test_other_objects_are_pickled():
    lit = to_literal(Opaque())
    assert lit.scalar.binary.tag == PICKLE and from_literal(lit) == Opaque()


def test_unpicklable_input_names_the_input():
    with pytest.raises(ConversionError, match="input 'gen'"):
        to_inputs({"gen": (i for i in range(3))})


def test_corrupt_msgpack_is_a_clear_error():
    lit = to_literal({"a": 1})
    lit.scalar.binary.value = b"\xc1"
    with pytest.raises(ConversionError, match="msgpack"):
        from_literal(lit)


@pytest.mark.parametrize(
    ("raw", "target", "scheme"),
    [
        ("localhost:8090", "localhost:8090", "https"),
        ("dns:///flyte.io:443", "flyte.io:443", "https"),
        ("http://127.0.0.1:30080", "127.0.0.1:30080", "http"),
        ("https://flyte.example.com", "flyte.example.com:443", "https"),
        ("[::1]:9000", "[::1]:9000", "https"),
    ],
)
def test_endpoint_forms(raw, target, scheme):
    e = parse_endpoint(raw)
    assert (e.target, e.scheme) == (target, scheme)


def test_loopback_is_plain_text_remote_is_tls():
    assert build_config("localhost:1").insecure is True
    assert build_config("flyte.example.com:443").insecure is False
    assert build_config("http://flyte.example.com").insecure is True


def test_config_file_is_read(tmp_path, monkeypatch):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "admin:\n  endpoint: dns:///flyte.example.com\n  insecure: true\n"
        "task:\n  project: ml\n  domain: staging\n  org: acme\n"
    )
    monkeypatch.chdir(tmp_path)
    c = build_config()
    assert (c.endpoint.target, c.insecure, c.project, c.domain, c.org) == (
        "flyte.example.com:443",
        True,
        "ml",
        "staging",
        "acme",
    )
    assert c.source.endswith("config.yaml")


def test_broken_config_file_says_which(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("admin: [unclosed\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"config\.yaml"):
        build_config()


def test_flytectl_config_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYTECTL_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="FLYTECTL_CONFIG"):
        build_config()


class Thing:
    def __init__(self):
        self.loops = []

    @_loop.syncify
    async def where(self, x):
        self.loops.append(asyncio.get_running_loop())
        return x * 2

    @_loop.syncify
    async def count(self, n):
        for i in range(n):
            yield i


def test_sync_and_aio_twins_share_one_background_loop():
    t = Thing()
    assert t.where(2) == 4
    assert asyncio.run(t.where.aio(3)) == 6
    assert t.loops[0] is t.loops[1] is _loop.get_loop()
    assert list(t.count(3)) == [0, 1, 2]

    async def collect():
        return [i async for i in t.count.aio(3)]

    assert asyncio.run(collect()) == [0, 1, 2]


def test_sync_call_on_the_background_loop_is_refused():
    t = Thing()

    async def inner():
        return t.where(1)

    with pytest.raises(RuntimeError, match=r"\.aio\(\)"):
        _loop.run_sync(inner())
