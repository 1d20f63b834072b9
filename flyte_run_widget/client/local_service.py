"""Finding the local Run service for a data folder, starting it when none runs.

    endpoint = ensure_service(Path("~/.flyte-run-widget").expanduser())   # "127.0.0.1:53123"

The service is a detached process (its own session), so it outlives the caller, e.g. a
notebook kernel that restarts; the next caller finds it through ``DIR/server.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import site
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import IO

from ..common.data_dir import SERVER_FILE
from ..common.pids import pid_alive
from ..errors import ServiceUnavailableError
from .config import API_KEY_ENV

_LAUNCH_LOCK = "launch.lock"
_LOG_FILE = "server.log"
TOKEN_FILE = "service.token"
# Started services, kept referenced so that Popen does not warn about a running child.
_started: list[subprocess.Popen[bytes]] = []


def _accepts(endpoint: str, timeout: float = 1.0) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def running_endpoint(data_dir: Path) -> str | None:
    """The endpoint of a live service for ``data_dir``, or None."""
    try:
        info = json.loads((data_dir / SERVER_FILE).read_text())
        endpoint, pid = str(info["endpoint"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid_alive(pid) and _accepts(endpoint):
        return endpoint
    return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _site_dirs() -> set[str]:
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    with contextlib.suppress(AttributeError):  # virtualenvs of old make lack these
        dirs.update(site.getsitepackages())
        dirs.add(site.getusersitepackages())
    return {str(Path(d).resolve()) for d in dirs}


def _spawn(data_dir: Path) -> subprocess.Popen[bytes]:
    # The service outlives this kernel and never needs the notebook's key to a remote service.
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    # Let the child import this very copy of the package even when it is not installed (a
    # source checkout); an installed copy needs nothing, and putting site-packages on
    # PYTHONPATH would let it shadow the standard library.
    package_parent = str(Path(__file__).resolve().parents[2])
    if package_parent not in _site_dirs():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "flyte_run_widget.server", "--data-dir", str(data_dir), "--port", "0"]
    # Loopback is open to every local user: the token keeps them from running commands as the
    # notebook's user. Only the owner can read the file (auth.load_token).
    argv += ["--token-file", str(data_dir / TOKEN_FILE)]
    with open(data_dir / _LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _started.append(proc)
    return proc


def _lock(lock: IO[str], deadline: float, data_dir: Path) -> None:
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ServiceUnavailableError(
                    f"another process has been starting the local Run service in {data_dir} for too"
                    f" long; see {data_dir / _LOG_FILE}",
                    code="UNAVAILABLE",
                ) from None
            time.sleep(0.05)


def ensure_service(data_dir: Path, timeout: float = 20) -> str:
    """The endpoint (``host:port``) of the local Run service for ``data_dir``, started if
    needed. Never starts a second one: a lock file in ``data_dir`` serialises callers."""
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    for proc in _started:
        proc.poll()  # reap services of ours that have ended, so no zombie lingers
    with open(data_dir / _LAUNCH_LOCK, "a+") as lock:
        _lock(lock, deadline, data_dir)
        endpoint = running_endpoint(data_dir)
        if endpoint:
            return endpoint
        with contextlib.suppress(FileNotFoundError):
            (data_dir / SERVER_FILE).unlink()
        proc = _spawn(data_dir)
        log_path = data_dir / _LOG_FILE
        while time.monotonic() < deadline:
            try:
                info = json.loads((data_dir / SERVER_FILE).read_text())
                if int(info["pid"]) == proc.pid:
                    return str(info["endpoint"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if proc.poll() is not None:
                raise ServiceUnavailableError(
                    f"the local Run service exited with code {proc.returncode} while starting;"
                    f" see {log_path}:\n{_log_tail(log_path)}",
                    code="UNAVAILABLE",
                )
            time.sleep(0.05)
        raise ServiceUnavailableError(
            f"the local Run service did not start within {timeout:g} s; see {log_path}:\n"
            f"{_log_tail(log_path)}",
            code="UNAVAILABLE",
        )


def embedded_token(data_dir: Path) -> str | None:
    """The bearer token of the service ``ensure_service`` started for ``data_dir`` (None for a
    service started without one)."""
    try:
        return (Path(data_dir).expanduser().resolve() / TOKEN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None
