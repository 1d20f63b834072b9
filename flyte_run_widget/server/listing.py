"""Turning a ListRequest (filters, sort, limit, page token) into a store Query.

query = build_query(request.request, scope_where, scope_params)
"""

from __future__ import annotations

from flyteidl2.common import list_pb2

from ..common import phase as phases
from ..common.idl import value_not_in
from .faults import invalid
from .store import Query

MAX_PAGE = 100

_F = list_pb2.Filter
# ListRequest field name -> column; only the fields the Flyte SDK filters on.
_FIELDS = {
    "phase": "r.phase",
    "task_name": "r.task_name",
    "task_version": "r.task_version",
    "created_by": "r.created_by",
    "name": "r.name",
}
_SORTS = {"created_at": "r.created_at", "name": "r.name", "phase": "r.phase"}


def _phase_value(value: str) -> int:
    # The SDK sends enum numbers; accept names too ("RUNNING", "ACTION_PHASE_RUNNING").
    try:
        return int(value)
    except ValueError:
        try:
            return phases.raw_phase(value)
        except ValueError as exc:
            raise invalid(f"filter on phase: {exc}") from None


def _condition(flt: list_pb2.Filter) -> tuple[str, list[object]]:
    column = _FIELDS.get(flt.field)
    if column is None:
        known = ", ".join(sorted(_FIELDS))
        raise invalid(f"cannot filter runs on {flt.field!r}; filterable fields: {known}")
    values: list[object] = [_phase_value(v) if flt.field == "phase" else v for v in flt.values]
    if not values:
        raise invalid(f"the filter on {flt.field!r} has no values")
    fn = flt.function
    if fn == _F.EQUAL and len(values) == 1:
        return f"{column} = ?", values
    if fn in (_F.VALUE_IN, _F.EQUAL):
        return f"{column} IN ({','.join('?' * len(values))})", values
    if fn == _F.NOT_EQUAL and len(values) == 1:
        return f"{column} != ?", values
    if fn in (value_not_in(), _F.NOT_EQUAL):
        return f"{column} NOT IN ({','.join('?' * len(values))})", values
    if fn == _F.CONTAINS and flt.field != "phase":
        return f"instr({column}, ?) > 0", values[:1]
    name = _F.Function.Name(fn) if fn in _F.Function.values() else str(fn)
    raise invalid(f"filter function {name} is not supported on {flt.field!r}; use EQUAL or VALUE_IN")


def _order(request: list_pb2.ListRequest) -> str:
    sort = request.sort_by if request.HasField("sort_by") else None
    if sort is None and request.sort_by_fields:
        sort = request.sort_by_fields[0]
    key = (sort.key if sort else "") or "created_at"
    column = _SORTS.get(key)
    if column is None:
        raise invalid(f"cannot sort runs by {key!r}; use one of: {', '.join(sorted(_SORTS))}")
    # Without any sort the newest runs come first, as proto3's default direction says.
    ascending = sort is not None and sort.direction == list_pb2.Sort.ASCENDING
    direction = "ASC" if ascending else "DESC"
    tie = "" if column == "r.name" else f", r.name {direction}"
    return f"{column} {direction}{tie}"


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        offset = int(token, 16)
    except ValueError:
        raise invalid(f"page token {token!r} is not one this service issued") from None
    if offset < 0:
        raise invalid(f"page token {token!r} is not one this service issued")
    return offset


def build_query(request: list_pb2.ListRequest, where: list[str], params: list[object]) -> Query:
    where, params = list(where), list(params)
    for flt in request.filters:
        sql, values = _condition(flt)
        where.append(sql)
        params.extend(values)
    limit = min(request.limit or MAX_PAGE, MAX_PAGE)
    return Query(where, params, _order(request), _offset(request.token), limit)
