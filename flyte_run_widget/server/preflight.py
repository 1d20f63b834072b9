"""What the service checks before it creates anything, so that a start that cannot succeed
leaves no folder, token or server.json behind.

    check_data_dir(data_dir)                     # ServeError: a file, or a folder we cannot make
    port = bind(server, "127.0.0.1", 0, tls)     # ServeError naming why, e.g. the port is in use
    created = make_data_dir(data_dir)            # the top folder it made, for undo on failure
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import grpc

from ..errors import ServeError


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_data_dir(data_dir: Path) -> None:
    """ServeError when ``data_dir`` cannot be the data folder; creates nothing."""
    fix = "choose another --data-dir"
    if data_dir.exists():
        if not data_dir.is_dir():
            raise ServeError(f"the data folder {data_dir} is a file, not a folder; {fix}")
        if not os.access(data_dir, os.W_OK | os.X_OK):
            raise ServeError(f"the data folder {data_dir} is not writable by this user; {fix}")
        return
    existing = _nearest_existing(data_dir)
    if not existing.is_dir():
        raise ServeError(f"cannot make the data folder {data_dir}: {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ServeError(f"cannot make the data folder {data_dir}: {existing} is not writable; {fix}")


def make_data_dir(data_dir: Path) -> Path | None:
    """Make ``data_dir`` and missing parents; the topmost folder made (None: it existed)."""
    top = None if data_dir.is_dir() else _nearest_existing(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        created = _first_below(top, data_dir) if top is not None else None
        if created is not None and created.is_dir():
            remove_tree(created)
        raise ServeError(
            f"cannot make the data folder {data_dir}: {e.strerror or e}; choose another --data-dir"
        ) from e
    return _first_below(top, data_dir) if top is not None else None


def _first_below(ancestor: Path, path: Path) -> Path:
    """The child of ``ancestor`` on the way to ``path``."""
    return ancestor / path.relative_to(ancestor).parts[0]


def remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _stderr_into(sink: IO[bytes]) -> Iterator[None]:
    """gRPC's C core writes its own log lines to fd 2 while binding (a warning even on success
    when 127.0.0.1 also resolves to ::ffff:127.0.0.1): keep them, say it better ourselves."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def bind(server: grpc.aio.Server, host: str, port: int, tls: tuple[bytes, bytes] | None) -> int:
    """Listen on ``host:port``; the port bound, or ServeError saying why not and what to do."""
    address = f"{host}:{port}"
    with tempfile.TemporaryFile() as grpc_log:
        try:
            with _stderr_into(grpc_log):
                if tls:
                    bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
                else:
                    bound = server.add_insecure_port(address)
        except RuntimeError as e:  # grpc says only "Failed to bind to address"
            grpc_log.seek(0)
            raise ServeError(_why_not(host, port, grpc_log.read().decode(errors="replace"))) from e
    if not bound:
        raise ServeError(_why_not(host, port, ""))
    return bound


def listen(host: str, port: int) -> socket.socket:
    """A listening socket for the ASGI server (so the port is known before serving starts), or
    ServeError saying why not and what to do."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(1024)
    except (OSError, OverflowError) as e:
        sock.close()
        if isinstance(e, OSError) and not isinstance(e, socket.gaierror) and e.errno is not None:
            raise ServeError(_explain(host, port, e)) from e
        raise ServeError(_why_not(host, port, str(e))) from e
    return sock


def _why_not(host: str, port: int, grpc_said: str) -> str:
    """Why listening failed, found by trying the same with a plain socket."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        return (
            f"cannot listen on {host}: the name does not resolve ({e}); pass an address of this"
            " machine to --host"
        )
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as e:
                return _explain(host, port, e)
    detail = grpc_said.strip().splitlines()[-1] if grpc_said.strip() else "no reason given"
    return f"cannot listen on {host}:{port} ({detail}); try another --port, or --port 0 for a free one"


def _explain(host: str, port: int, e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use by another program; choose another --port, or"
            " --port 0 for a free one"
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine; pass one of its own addresses to --host,"
            " or leave --host out to listen on 127.0.0.1"
        )
    if e.errno == errno.EACCES:
        return (
            f"this user may not listen on port {port} (ports below 1024 need extra rights); choose"
            " a --port from 1024 to 65535, or --port 0 for a free one"
        )
    return f"cannot listen on {host}:{port}: {e.strerror or e}; check --host and --port"
