"""The exceptions users see. Each message names the cause and what to do about it.

try:
    Run.get("nope")
except RunNotFoundError as e:
    print(e)
"""

from __future__ import annotations


class FlyteRunWidgetError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(FlyteRunWidgetError, ValueError):
    """The configuration (endpoint, config file, arguments) cannot be used."""


class ArgumentValueError(FlyteRunWidgetError, ValueError):
    """An argument has a value the call cannot use (e.g. ``attempt=0``); the message says
    which values fit."""


class ArgumentTypeError(FlyteRunWidgetError, TypeError):
    """An argument is of a kind the call cannot use (e.g. ``task(42)``, or inputs that do not
    fit the function's signature)."""


class RunNotFinishedError(FlyteRunWidgetError, RuntimeError):
    """The run has not finished, so what was asked for (its outputs) does not exist yet."""


class LoopError(FlyteRunWidgetError, RuntimeError):
    """A blocking call was made where it would block the package's own event loop."""


class ServiceError(FlyteRunWidgetError):
    """The Run service answered with an error. ``code`` is the gRPC status name."""

    def __init__(self, message: str, *, code: str = "", details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class ServiceUnavailableError(ServiceError, ConnectionError):
    """The Run service cannot be reached."""


class NotFoundError(ServiceError, LookupError):
    """The service does not know the thing asked for."""


class RunNotFoundError(NotFoundError):
    """No run has this name in the configured org, project and domain."""


class LogsNotAvailableError(NotFoundError):
    """The attempt has no logs (yet)."""


class AuthenticationError(ServiceError, PermissionError):
    """The service did not accept the credentials (or got none)."""


class PermissionDeniedError(ServiceError, PermissionError):
    """The credentials are valid but may not do this."""


class InvalidArgumentError(ServiceError, ValueError):
    """The service rejected the request as malformed."""


class AlreadyFinishedError(ServiceError):
    """The run already reached a final phase, so it cannot be changed."""


class RunFailedError(FlyteRunWidgetError):
    """A run ended without success (failed, aborted or timed out) where a result was needed."""

    def __init__(self, message: str, *, phase: str, kind: str = "", code: str = "") -> None:
        super().__init__(message)
        self.phase = phase
        self.kind = kind
        self.code = code


class ConversionError(FlyteRunWidgetError, TypeError):
    """A value cannot be converted to or from a Flyte literal."""


class ServeError(FlyteRunWidgetError):
    """The local Run service cannot start as asked (address, port, data folder, token file)."""


class ChildActionError(RunFailedError):
    """A child action (a task called from a running task) ended without a result: failed with an
    error that could not be raised as it was, aborted, timed out, or could not be started."""


class ChildActionUnavailableError(FlyteRunWidgetError, RuntimeError):
    """A task tried to start a child action where no Run service can run one."""
