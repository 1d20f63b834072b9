"""HTTP/2 keepalive pings: how often the client sends them and how often the embedded service
accepts them, in one place so that the two cannot disagree.

    grpc.aio.insecure_channel(target, options=client_options())
    grpc.aio.server(options=server_options())

A server that receives pings more often than it allows answers GOAWAY ``too_many_pings`` and
drops the connection, with every stream on it.
"""

from __future__ import annotations

import os

#: Tests only: every interval below is multiplied by this factor (e.g. 0.01), in the client and
#: in a service started with it in its environment, so a test sees in seconds what takes
#: minutes in production.
SCALE_ENV = "_FLYTE_RUN_WIDGET_KEEPALIVE_SCALE"

# The client pings a connection whose calls have been quiet this long. Servers that set no ping
# policy (gRPC's default, in C core as in Go) allow one ping per 5 minutes while they send
# nothing, and answer the third early ping with GOAWAY; 10% above that leaves room for timers
# that fire a little early. A dead connection on a quiet stream is noticed within 5.5 min plus
# gRPC's 20 s ping timeout; one that breaks loudly (the service ends) at once, ping or not.
CLIENT_PING_MS = 330_000
# The embedded service accepts a ping every 20 s, even on a connection without calls: the Flyte
# SDK's own clients ping every 30 s, idle or not, and must not be cut off either.
SERVER_MIN_PING_MS = 20_000


def _scaled(ms: int) -> int:
    raw = os.environ.get(SCALE_ENV)
    return max(1, round(ms * float(raw))) if raw else ms


def client_options() -> list[tuple[str, int]]:
    return [
        ("grpc.keepalive_time_ms", _scaled(CLIENT_PING_MS)),
        ("grpc.keepalive_permit_without_calls", 0),  # an idle channel has nothing to lose
        # gRPC otherwise stops after two pings without data and then pings once a minute: a
        # stream quiet for hours would have no dead-connection check, or one too frequent.
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options() -> list[tuple[str, int]]:
    return [
        ("grpc.http2.min_ping_interval_without_data_ms", _scaled(SERVER_MIN_PING_MS)),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
