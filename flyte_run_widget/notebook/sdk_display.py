"""The flyte SDK's own run objects shown as the live widget.

After ``import flyte_run_widget`` in IPython (or ``%load_ext flyte_run_widget``), a
``flyte.remote.Run`` or ``flyte.remote.Action`` that ends a cell or goes to ``display()`` renders
as a RunWidget:

    run = flyte.run(main, x=1)
    run                                  # the widget, not the SDK's text

    frw.display_sdk_runs(False)          # back to the SDK's own text (True: the widget again)
    FLYTE_RUN_WIDGET_SDK_DISPLAY=0       # in the environment: `import flyte_run_widget` registers nothing

IPython's mimebundle formatter holds the printer under the type's dotted name
(``for_type_by_name``): nothing here imports ``flyte`` or the widget until such an object is
shown, so a kernel without the SDK pays nothing. Runs the SDK made locally (``flyte.run`` without
a cluster: subclasses of ``Run`` that exist on no service) keep the SDK's own text.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any

ENV = "FLYTE_RUN_WIDGET_SDK_DISPLAY"
#: (module, class name) of the SDK objects shown as the widget, as IPython matches them.
SDK_TYPES = (("flyte.remote._run", "Run"), ("flyte.remote._action", "Action"))
_OFF = {"0", "false", "no", "off"}

# One widget per SDK object, like Run.widget(): showing `run` twice gives two views of one
# widget. Keyed by id() (the SDK's dataclasses are unhashable), checked through a weak reference.
_widgets: dict[int, tuple[weakref.ref[Any], Any]] = {}


def display_sdk_runs(enabled: bool = True, shell: Any = None) -> bool:
    """Show the flyte SDK's ``Run`` and ``Action`` objects as the live widget (``True``) or as the
    SDK's own text (``False``) in this IPython shell. Returns False when there is no IPython shell."""
    shell = shell if shell is not None else _current_shell()
    if shell is None:
        return False
    formatter = shell.display_formatter.mimebundle_formatter
    for module, name in SDK_TYPES:
        if enabled:
            formatter.for_type_by_name(module, name, _mimebundle)
        else:
            formatter.pop(f"{module}.{name}", None)
    return True


def register_on_import() -> None:
    """At ``import flyte_run_widget``: register in the running IPython shell, if there is one and
    the environment does not say otherwise."""
    if os.environ.get(ENV, "").strip().lower() in _OFF:
        return
    shell = _current_shell()
    if shell is not None:
        display_sdk_runs(True, shell)


def _current_shell() -> Any:
    ipython = sys.modules.get("IPython")  # not imported: not in IPython, and no cost
    return ipython.get_ipython() if ipython is not None else None


def is_sdk_object(obj: Any) -> bool:
    """A ``flyte.remote.Run`` or ``Action`` itself, not a subclass the SDK makes for local runs."""
    cls = type(obj)
    return (cls.__module__, cls.__name__) in SDK_TYPES


def widget_for(obj: Any) -> Any:
    """The widget showing the SDK object ``obj``, made on first use."""
    from .widget import RunWidget

    key = id(obj)
    entry = _widgets.get(key)
    if entry is not None and entry[0]() is obj and not entry[1]._closed:
        return entry[1]
    widget = RunWidget(obj)
    _widgets[key] = (weakref.ref(obj, lambda _ref: _widgets.pop(key, None)), widget)
    return widget


def _mimebundle(obj: Any) -> Any:
    if not is_sdk_object(obj):
        return None  # IPython goes on to the other formatters: the SDK's own text
    return widget_for(obj)._repr_mimebundle_()
