"""What a person must do to sign in (open a link, enter a code), told to the terminal and to
whoever listens (the notebook's widgets).

    remove = add_listener(lambda prompt: print(prompt))   # a SignInPrompt, then None when done

The user code of a device flow is meant to be shown; the device code, secrets and tokens never
come here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignInPrompt:
    endpoint: str  # the service the sign-in is for
    url: str  # where to go (the verification link, or the authorization page)
    code: str  # the user code to enter ("" when the link carries it, as in PKCE)

    @property
    def text(self) -> str:
        if self.code:
            return f"To sign in to {self.endpoint}, open {self.url} and enter the code {self.code}"
        return f"To sign in to {self.endpoint}, open {self.url} in a browser on this machine"


Listener = Callable[["SignInPrompt | None"], None]
_listeners: list[Listener] = []
_current: SignInPrompt | None = None


def add_listener(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with each prompt and with None once it is answered; it is called at once
    with the prompt that is waiting now, if any. Returns the function that removes it."""
    _listeners.append(listener)
    if _current is not None:
        _call(listener, _current)

    def remove() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return remove


def current() -> SignInPrompt | None:
    return _current


def announce(prompt: SignInPrompt) -> None:
    global _current
    _current = prompt
    print(prompt.text, file=sys.stderr, flush=True)
    for listener in list(_listeners):
        _call(listener, prompt)


def answered() -> None:
    global _current
    if _current is None:
        return
    _current = None
    for listener in list(_listeners):
        _call(listener, None)


def _call(listener: Listener, prompt: SignInPrompt | None) -> None:
    try:
        listener(prompt)
    except Exception:  # a broken view must not stop the sign-in
        logger.exception("a sign-in listener failed")
