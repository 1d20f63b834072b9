"""What ``Run.listall(...)`` returns: an iterator of runs that, shown in a notebook cell, is the
live runs table (``notebook/runs_table.py``) instead of ``<generator object ...>``.

    for run in Run.listall(in_phase=["running"]): ...
    Run.listall(limit=500)          # as a cell's last expression: the table
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..client.loop import _Bound, syncify_classmethod

if TYPE_CHECKING:
    from .run import Run


class RunList(Iterator["Run"]):
    """Iterates like the generator it wraps. Shown in a notebook (once, or again: the same
    table), it takes the runs not iterated yet and shows them as a live table that follows the
    runs the same query would return."""

    def __init__(self, runs: Iterator[Run], query: dict[str, Any]) -> None:
        self._runs = runs
        self.query = query
        self._table: Any = None

    def __iter__(self) -> RunList:
        return self

    def __next__(self) -> Run:
        return next(self._runs)

    def __repr__(self) -> str:
        return f"<RunList {self.query!r}: iterate it, or show it in a notebook cell as a table>"

    def table(self) -> Any:
        """The live runs table of the runs not iterated yet (made once)."""
        if self._table is None:
            from ..notebook.runs_table import table_of_listing

            self._table = table_of_listing([run.pb2 for run in self._runs], self.query)
        return self._table

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.table()._repr_mimebundle_(**kwargs)


class _BoundListing(_Bound[Any]):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(self._fn).bind(self._owner, *args, **kwargs)
        bound.apply_defaults()
        query = dict(list(bound.arguments.items())[1:])
        return RunList(super().__call__(*args, **kwargs), query)


class listing(syncify_classmethod[Any]):
    """``syncify_classmethod`` for a listing: the sync call returns a ``RunList``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__(fn)

    def __get__(self, obj: object | None, objtype: type | None = None) -> _Bound[Any]:
        return _BoundListing(self._fn, objtype if objtype is not None else type(obj))
