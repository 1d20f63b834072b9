"""The error both client transports raise for a failed call (kept apart from ``connect_transport`` so that
importing the client does not import connectrpc and pyqwest when gRPC is the transport)."""

from __future__ import annotations

import grpc


class CallError(Exception):
    """A failed call, with its status in gRPC's terms (so one mapping serves both transports)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
