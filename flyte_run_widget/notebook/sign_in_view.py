"""The sign-in panel in a notebook: while a device login waits, a small widget in the running
cell shows the verification link and the user code (RunWidgets already on screen show the same
panel through their ``sign_in`` trait).

    install()      # at import, in an IPython kernel: prompts appear in the cell that caused them
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from ..client import sign_in

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent.parent / "static"
_installed: list[Any] = []  # the remover of the listener, once installed
_shown: list[Any] = []  # the SignInWidget on screen, if any


def as_trait(prompt: sign_in.SignInPrompt | None) -> dict[str, str]:
    """What the front end gets: the link, the user code and the service; never a secret."""
    if prompt is None:
        return {}
    return {"url": prompt.url, "code": prompt.code, "endpoint": prompt.endpoint}


def _widget_class() -> Any:
    import anywidget
    import traitlets as t

    class SignInWidget(anywidget.AnyWidget):
        _esm = _STATIC / "widget.js"
        _css = _STATIC / "widget.css"
        view = t.Unicode("sign_in").tag(sync=True)
        sign_in = t.Dict().tag(sync=True)

    return SignInWidget


def _on_prompt(prompt: sign_in.SignInPrompt | None) -> None:
    if prompt is None:
        while _shown:  # answered: the panel hides (its output stays, empty)
            _shown.pop().sign_in = {}
        return
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return  # a terminal: the prompt was printed
    from IPython.display import display

    widget = _widget_class()(sign_in=as_trait(prompt))
    _shown.append(widget)
    display(widget)


def install() -> None:
    if not _installed:
        _installed.append(sign_in.add_listener(_on_prompt))
