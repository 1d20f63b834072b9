"""Why a connection to the Run service failed, in words, found with a plain TCP connect: both
transports' errors (a gRPC channel's TRANSIENT_FAILURE, an HTTP client's "connection closed")
say too little for a user to act on.

    why, final = diagnose(config.endpoint, config.insecure, "gRPC")
"""

from __future__ import annotations

import socket

from .config import Endpoint


def diagnose(endpoint: Endpoint, insecure: bool, protocol: str) -> tuple[str, bool]:
    """Why ``protocol`` could not talk to ``endpoint``; True when that is final (retrying cannot
    help), False when the service may just be starting."""
    host = endpoint.host.strip("[]")
    try:
        socket.getaddrinfo(host, endpoint.port)
    except (socket.gaierror, UnicodeError):
        return f"the host name {endpoint.host!r} does not resolve", True
    try:
        with socket.create_connection((host, endpoint.port), timeout=1.0):
            pass
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on port {endpoint.port}", False
    except OSError as e:
        return f"cannot connect: {e.strerror or e}", False
    other = "TLS" if insecure else "plain text"
    return (
        f"the connection opened but the {protocol} exchange failed: the service may expect"
        f" {other}, or may not be a {protocol} service",
        False,
    )
