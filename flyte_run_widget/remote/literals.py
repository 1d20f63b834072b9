"""Python values <-> flyteidl2 literals, the way the Flyte SDK writes them.

lit = to_literal({"a": 1})        # Binary(tag="msgpack"), as the SDK encodes dicts
from_literal(lit)                 # {'a': 1}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import cloudpickle
import msgpack
from flyteidl2.core import literals_pb2, types_pb2
from flyteidl2.task import common_pb2
from google.protobuf import json_format

from ..errors import ConversionError

MSGPACK = "msgpack"
PICKLE = "cloudpickle"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _scalar(**kw: Any) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(**kw))


def _primitive(**kw: Any) -> literals_pb2.Literal:
    return _scalar(primitive=literals_pb2.Primitive(**kw))


def to_literal(value: Any) -> literals_pb2.Literal:
    """Convert a Python value. Dicts and dataclasses become msgpack ``Binary`` (as the SDK does);
    other objects become a cloudpickle ``Binary`` so a local task can return anything."""
    if value is None:
        return _scalar(none_type=literals_pb2.Void())
    if isinstance(value, bool):
        return _primitive(boolean=value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            return _pickled(value)
        return _primitive(integer=value)
    if isinstance(value, float):
        return _primitive(float_value=value)
    if isinstance(value, str):
        return _primitive(string_value=value)
    if isinstance(value, dt.datetime):
        lit = _primitive()
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        lit.scalar.primitive.datetime.FromDatetime(aware.astimezone(dt.UTC))
        return lit
    if isinstance(value, dt.timedelta):
        lit = _primitive()
        lit.scalar.primitive.duration.FromTimedelta(value)
        return lit
    if isinstance(value, list | tuple):
        return literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(literals=[to_literal(v) for v in value])
        )
    if isinstance(value, bytes):
        return _scalar(binary=literals_pb2.Binary(value=value, tag="bytes"))
    if isinstance(value, Mapping) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        plain = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)  # type: ignore[arg-type]
        try:
            packed = msgpack.packb(plain, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return _pickled(value)
        return _scalar(binary=literals_pb2.Binary(value=packed, tag=MSGPACK))
    return _pickled(value)


def _pickled(value: Any) -> literals_pb2.Literal:
    try:
        data = cloudpickle.dumps(value)
    except Exception as e:
        raise ConversionError(
            f"cannot convert a {type(value).__name__} to a Flyte literal ({e}); "
            "pass numbers, strings, lists, dicts, dataclasses or picklable objects"
        ) from e
    return _scalar(binary=literals_pb2.Binary(value=data, tag=PICKLE))


def from_literal(lit: literals_pb2.Literal) -> Any:
    """Convert a literal to the nearest Python value; unknown shapes come back as the proto."""
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return [from_literal(v) for v in lit.collection.literals]
    if kind == "map":
        return {k: from_literal(v) for k, v in lit.map.literals.items()}
    if kind == "offloaded_metadata":
        return lit.offloaded_metadata
    if kind != "scalar":
        return lit
    return _from_scalar(lit.scalar)


def _from_scalar(s: literals_pb2.Scalar) -> Any:
    kind = s.WhichOneof("value")
    if kind == "primitive":
        p = s.primitive
        which = p.WhichOneof("value")
        if which == "datetime":
            return p.datetime.ToDatetime(tzinfo=dt.UTC)
        if which == "duration":
            return p.duration.ToTimedelta()
        return getattr(p, which) if which else None
    if kind == "none_type" or kind is None:
        return None
    if kind == "binary":
        return _from_binary(s.binary)
    if kind == "generic":
        return json_format.MessageToDict(s.generic)
    if kind == "union":
        return from_literal(s.union.value)
    if kind == "blob":
        return s.blob.uri
    if kind == "structured_dataset":
        return s.structured_dataset.uri
    if kind == "error":
        return s.error
    return getattr(s, kind)


def _from_binary(b: literals_pb2.Binary) -> Any:
    try:
        if b.tag == MSGPACK:
            return msgpack.unpackb(b.value, raw=False, strict_map_key=False)
        if b.tag == PICKLE:
            return cloudpickle.loads(b.value)
    except Exception as e:
        raise ConversionError(
            f"a {b.tag} value of {len(b.value)} bytes cannot be decoded ({e}); it was written by "
            "a different library version or is corrupt"
        ) from e
    return b.value


def to_inputs(values: Mapping[str, Any]) -> common_pb2.Inputs:
    literals = []
    for name, value in values.items():
        try:
            literal = to_literal(value)
        except ConversionError as e:
            raise ConversionError(f"input {name!r}: {e}") from e
        literals.append(common_pb2.NamedLiteral(name=name, value=literal))
    return common_pb2.Inputs(literals=literals)


def from_named(literals: Iterable[common_pb2.NamedLiteral]) -> dict[str, Any]:
    return {n.name: from_literal(n.value) for n in literals}


_SIMPLE: dict[Any, int] = {
    int: types_pb2.INTEGER,
    float: types_pb2.FLOAT,
    str: types_pb2.STRING,
    bool: types_pb2.BOOLEAN,
    dt.datetime: types_pb2.DATETIME,
    dt.timedelta: types_pb2.DURATION,
    type(None): types_pb2.NONE,
}


def literal_type(annotation: Any) -> types_pb2.LiteralType:
    """A LiteralType for a Python annotation; anything not simple is a BINARY."""
    simple = _SIMPLE.get(annotation)
    if simple is not None:
        return types_pb2.LiteralType(simple=simple)
    return types_pb2.LiteralType(simple=types_pb2.BINARY)
