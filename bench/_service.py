"""Bench helpers: the embedded Run service in a subprocess, machine facts, result files.

with Service(tmp_dir) as svc:
    print(svc.endpoint, svc.pid)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# Full reports, traces, screenshots: not committed (the figures are, see _record.py).
RAW = RESULTS / "raw"


def repo_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class Service:
    """``python -m flyte_run_widget.server --port 0 --data-dir DIR``; endpoint from server.json."""

    def __init__(
        self, data_dir: Path, timeout: float = 30, server: str | None = None, args: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        # "connect" (the default server) or "grpcio" (the former one, for comparison); also
        # $FRW_BENCH_SERVER, so that any bench can run against either.
        server = server or os.environ.get("FRW_BENCH_SERVER")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "service-bench.log"
        server_file = data_dir / "server.json"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flyte_run_widget.server", "--port", "0", "--data-dir", str(data_dir)]
                + (["--server", server] if server else [])
                + list(args or []),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=repo_env(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads(server_file.read_text())
                if info["pid"] == self.proc.pid:
                    self.endpoint = str(info["endpoint"])
                    return
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the Run service did not start:\n{self.log_path.read_text()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """user + system CPU of the service process so far (all threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "?"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from google.protobuf.internal import api_implementation

        pb_impl = api_implementation.Type()
    except Exception:
        pb_impl = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": f"{_version('protobuf')} ({pb_impl})",
        "flyteidl2": _version("flyteidl2"),
        "os": platform.platform(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def machine_line(m: dict[str, str]) -> str:
    return (
        f"nproc {m['nproc']}, {m['cpu']}, Python {m['python']}, grpcio {m['grpcio']}, "
        f"protobuf {m['protobuf']}, flyteidl2 {m['flyteidl2']}, load avg at start {m['loadavg']}"
    )


def save(name: str, text: str, data: object) -> Path:
    RAW.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    md = RAW / f"{name}-{stamp}.md"
    md.write_text(text)
    (RAW / f"{name}-{stamp}.json").write_text(json.dumps(data, indent=2))
    return md
