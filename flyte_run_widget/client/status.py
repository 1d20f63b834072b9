"""A failed call's gRPC status (from either transport) turned into the exception that says what
to do: ``flyte_run_widget.errors``, with the service's own words kept in ``details``."""

from __future__ import annotations

import grpc

from ..errors import (
    AlreadyFinishedError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ServiceUnavailableError,
)
from .call_error import CallError
from .config import Config

CONNECT_TIMEOUT = 5.0


def status_of(e: grpc.aio.AioRpcError | CallError) -> tuple[grpc.StatusCode, str]:
    if isinstance(e, CallError):
        return e.code, e.details
    return e.code(), e.details() or ""


def unreachable(cfg: Config, detail: str = "") -> ServiceUnavailableError:
    target = cfg.endpoint.target
    hint = (
        "the embedded service is not answering; run `flyte-run-widget serve` to see why"
        if cfg.embedded
        else "check that the service runs and the endpoint is right"
    )
    tls = "plain text" if cfg.insecure else "TLS"
    if not cfg.insecure:
        hint += "; if the service speaks plain text, pass insecure=True"
    elif not cfg.endpoint.is_loopback:
        hint += "; if the service needs TLS, pass insecure=False"
    msg = f"cannot reach the Flyte Run service at {target} over {tls} within {CONNECT_TIMEOUT:g} s"
    if detail:
        msg += f" ({detail})"
    return ServiceUnavailableError(f"{msg}: {hint}", code="UNAVAILABLE", details=detail)


def map_status(cfg: Config, code: grpc.StatusCode | None, details: str, *, what: str = "") -> ServiceError:
    name = code.name if code is not None else "UNKNOWN"
    subject = what or "the request"
    target = cfg.endpoint.target
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFoundError(
            f"{subject} was not found at {target} ({details}); check the name, "
            f"project {cfg.project!r} and domain {cfg.domain!r}",
            code=name,
            details=details,
        )
    if code == grpc.StatusCode.UNAVAILABLE:
        return unreachable(cfg, details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        creds = cfg.credentials
        fix = (
            f"the {creds.auth_type} credentials from {creds.source} got a token it refuses: check"
            " that they are for this service and not revoked"
            if creds is not None
            else "pass api_key= to init() (a Flyte API key, or this service's token) or set"
            " FLYTE_API_KEY (a Flyte API key) or FLYTE_RUN_WIDGET_API_KEY (a token), or set"
            " admin.authType in the Flyte config"
        )
        return AuthenticationError(
            f"the service at {target} did not accept our credentials ({details}); {fix}",
            code=name,
            details=details,
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDeniedError(
            f"not allowed: {subject} ({details}); ask an admin for access to project {cfg.project!r}",
            code=name,
            details=details,
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError(f"the service rejected {subject}: {details}", code=name, details=details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return AlreadyFinishedError(f"{subject}: {details}", code=name, details=details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServiceUnavailableError(
            f"{subject} timed out at {target}; the service is slow or overloaded, try again",
            code=name,
            details=details,
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ServiceError(
            f"the service at {target} does not implement {subject}; it may be an older Flyte",
            code=name,
            details=details,
        )
    return ServiceError(f"{subject} failed at {target}: {name}: {details}", code=name, details=details)
