"""What both ends of a gRPC connection agree on: which hosts are loopback, how big a message may be."""

from __future__ import annotations

import ipaddress

#: The largest message either side accepts (a page of runs, a batch of long log lines).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
