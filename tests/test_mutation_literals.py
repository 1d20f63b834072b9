"""Literals beyond tests/test_units.py: the edges of each conversion, every literal kind the
service or the SDK may send back, and the public flyte SDK reading what we write (docs/mutation.md
lists the mutants these kill)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import time

import pytest
from flyteidl2.core import literals_pb2 as lp
from flyteidl2.core import types_pb2
from google.protobuf import struct_pb2

from flyte_run_widget.errors import ConversionError
from flyte_run_widget.remote.literals import (
    MSGPACK,
    PICKLE,
    from_literal,
    from_named,
    literal_type,
    to_inputs,
    to_literal,
)

SDK_PYTHON = os.environ.get("FRW_SDK_PYTHON", "")


# -- Python -> literal -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 2**62, -(2**62)])
def test_a_64_bit_int_is_an_integer_primitive(value):
    lit = to_literal(value)
    assert lit.scalar.primitive.WhichOneof("value") == "integer"
    assert lit.scalar.primitive.integer == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 3**63, 2**64, -(2**64)])
def test_an_int_beyond_64_bits_is_pickled_and_comes_back(value):
    lit = to_literal(value)
    assert lit.scalar.binary.tag == PICKLE
    assert from_literal(lit) == value


def test_none_is_a_void_scalar_as_the_sdk_writes_it():
    # the SDK's reader rejects a None literal without none_type (see the SDK test below)
    assert to_literal(None).scalar.WhichOneof("value") == "none_type"


@pytest.fixture
def eastern_time(monkeypatch):
    """The process's local time zone is five hours behind UTC (POSIX TZ, no tz database)."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    assert time.timezone == 5 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_datetime_is_utc_whatever_the_local_zone(eastern_time):
    back = from_literal(to_literal(dt.datetime(2025, 5, 1, 12, 0)))
    assert back == dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert back.utcoffset() == dt.timedelta(0)


def test_an_aware_datetime_keeps_its_instant(eastern_time):
    plus_two = dt.timezone(dt.timedelta(hours=2))
    lit = to_literal(dt.datetime(2025, 5, 1, 12, 0, tzinfo=plus_two))
    assert from_literal(lit) == dt.datetime(2025, 5, 1, 10, 0, tzinfo=dt.UTC)
    assert lit.scalar.primitive.datetime.seconds == 1746093600


def test_bytes_inside_a_dict_stay_bytes():
    value = {"blob": b"\xff\x00\xfe", "text": "x"}
    lit = to_literal(value)
    assert lit.scalar.binary.tag == MSGPACK
    assert from_literal(lit) == value
    assert isinstance(from_literal(lit)["blob"], bytes)


def test_int_keys_of_a_dict_come_back():
    value = {1: "one", 2: {3: [4]}}
    assert from_literal(to_literal(value)) == value


@dataclasses.dataclass
class Stamped:
    when: dt.datetime


def test_a_dict_or_dataclass_msgpack_cannot_hold_is_pickled_whole():
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for value in ({"when": when}, Stamped(when)):
        lit = to_literal(value)
        assert lit.scalar.binary.tag == PICKLE
        assert from_literal(lit) == value


def test_an_object_that_cannot_be_pickled_says_what_to_pass_instead():
    with pytest.raises(ConversionError) as info:
        to_literal(i for i in range(3))
    message = str(info.value)
    assert message.startswith("cannot convert a generator to a Flyte literal (")
    assert message.endswith("); pass numbers, strings, lists, dicts, dataclasses or picklable objects")
    # The pickling error is kept as the cause (the project's rule: raise ... from e).
    assert isinstance(info.value.__cause__, TypeError)


def test_a_corrupt_value_names_its_tag_size_and_likely_cause():
    lit = to_literal({"a": 1})
    lit.scalar.binary.value = b"\xc1\xc1\xc1"
    with pytest.raises(ConversionError) as info:
        from_literal(lit)
    message = str(info.value)
    assert message.startswith("a msgpack value of 3 bytes cannot be decoded (")
    assert message.endswith("); it was written by a different library version or is corrupt")


def test_inputs_keep_names_order_and_values():
    values = {"b": 1, "a": "x", "c": [1.5, None], "d": {"k": True}}
    inputs = to_inputs(values)
    assert [n.name for n in inputs.literals] == ["b", "a", "c", "d"]
    assert [from_literal(n.value) for n in inputs.literals] == list(values.values())
    assert from_named(inputs.literals) == values
    assert to_inputs({}).literals == []


@pytest.mark.parametrize(
    ("annotation", "simple"),
    [
        (int, types_pb2.INTEGER),
        (float, types_pb2.FLOAT),
        (str, types_pb2.STRING),
        (bool, types_pb2.BOOLEAN),
        (dt.datetime, types_pb2.DATETIME),
        (dt.timedelta, types_pb2.DURATION),
        (type(None), types_pb2.NONE),
        (list[int], types_pb2.BINARY),
        (dict, types_pb2.BINARY),
        (Stamped, types_pb2.BINARY),
    ],
)
def test_literal_type_of_an_annotation(annotation, simple):
    assert literal_type(annotation) == types_pb2.LiteralType(simple=simple)


# -- literal -> Python: every kind a service or the SDK may send -----------------------------


def test_a_literal_map_is_a_dict():
    lit = lp.Literal(map=lp.LiteralMap(literals={"a": to_literal(1), "b": to_literal([2, "x"])}))
    assert from_literal(lit) == {"a": 1, "b": [2, "x"]}


def test_offloaded_metadata_comes_back_as_the_proto():
    meta = lp.LiteralOffloadedMetadata(uri="s3://bucket/big", size_bytes=7)
    got = from_literal(lp.Literal(offloaded_metadata=meta))
    assert got == meta


def test_an_empty_literal_is_returned_as_is():
    assert from_literal(lp.Literal()) == lp.Literal()


def test_an_empty_primitive_is_none():
    assert from_literal(lp.Literal(scalar=lp.Scalar(primitive=lp.Primitive()))) is None
    assert from_literal(lp.Literal(scalar=lp.Scalar())) is None


def test_generic_union_blob_dataset_error_and_schema():
    generic = struct_pb2.Struct()
    generic.update({"a": 1, "b": ["x"]})
    plain = from_literal(lp.Literal(scalar=lp.Scalar(generic=generic)))
    assert type(plain) is dict and plain == {"a": 1.0, "b": ["x"]}  # a dict, not the Struct
    union = lp.Union(value=to_literal("chosen"))
    assert from_literal(lp.Literal(scalar=lp.Scalar(union=union))) == "chosen"
    blob = lp.Blob(uri="s3://bucket/file.csv")
    assert from_literal(lp.Literal(scalar=lp.Scalar(blob=blob))) == "s3://bucket/file.csv"
    dataset = lp.StructuredDataset(uri="s3://bucket/table.parquet")
    assert from_literal(lp.Literal(scalar=lp.Scalar(structured_dataset=dataset))) == dataset.uri
    error = types_pb2.Error(failed_node_id="n0", message="upstream failed")
    assert from_literal(lp.Literal(scalar=lp.Scalar(error=error))) == error
    schema = lp.Schema(uri="s3://bucket/schema")
    assert from_literal(lp.Literal(scalar=lp.Scalar(schema=schema))) == schema


def test_a_binary_with_another_tag_is_its_bytes():
    lit = lp.Literal(scalar=lp.Scalar(binary=lp.Binary(value=b"\x01\x02", tag="bytes")))
    assert from_literal(lit) == b"\x01\x02"


# -- the public flyte SDK reads what we write -------------------------------------------------

SDK_READER = """
import asyncio, datetime as dt, json, sys
from flyte.types import TypeEngine
from flyteidl2.task import common_pb2
TYPES = {"none": type(None), "int": int, "float": float, "str": str, "bool": bool,
         "datetime": dt.datetime, "timedelta": dt.timedelta, "list_int": list[int], "dict": dict}
inputs = common_pb2.Inputs.FromString(open(sys.argv[1], "rb").read())
kinds = json.loads(sys.argv[2])
async def main():
    out = {}
    for named in inputs.literals:
        try:
            out[named.name] = repr(await TypeEngine.to_python_value(named.value, TYPES[kinds[named.name]]))
        except Exception as e:
            out[named.name] = f"error: {e}"
    print(json.dumps(out))
asyncio.run(main())
"""


@pytest.mark.skipif(not SDK_PYTHON, reason="FRW_SDK_PYTHON is not set (scripts/test sets it)")
def test_the_flyte_sdk_reads_our_literals(tmp_path, eastern_time):
    cases = {
        "none": (None, "none", "None"),
        "int_max": (2**63 - 1, "int", repr(2**63 - 1)),
        "int_min": (-(2**63), "int", repr(-(2**63))),
        "float": (1.5, "float", "1.5"),
        "str": ("hé <b>", "str", repr("hé <b>")),
        "bool": (True, "bool", "True"),
        "naive": (
            dt.datetime(2025, 5, 1, 12, 0),
            "datetime",
            repr(dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)),
        ),
        "aware": (
            dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "datetime",
            repr(dt.datetime(2025, 5, 1, 10, 0, tzinfo=dt.UTC)),
        ),
        "duration": (dt.timedelta(minutes=3), "timedelta", repr(dt.timedelta(minutes=3))),
        "ints": ([1, 2, 3], "list_int", "[1, 2, 3]"),
        "mapping": ({"a": 1, "b": [1, 2]}, "dict", repr({"a": 1, "b": [1, 2]})),
    }
    path = tmp_path / "inputs.pb"
    path.write_bytes(to_inputs({k: v for k, (v, _, _) in cases.items()}).SerializeToString())
    kinds = json.dumps({k: kind for k, (_, kind, _) in cases.items()})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TZ": "UTC"}
    proc = subprocess.run(
        [SDK_PYTHON, "-c", SDK_READER, str(path), kinds],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {k: shown for k, (_, _, shown) in cases.items()}
