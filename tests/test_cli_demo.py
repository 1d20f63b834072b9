"""``flyte-run-widget demo`` from a built wheel, outside the source tree: the wheel ships the
notebook and its tasks.py, ``demo`` copies them to a folder of the user's (keeping their edits)
and ``demo --terminal`` runs the quickstart task on the embedded service."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import REPO

SHIPPED = ("flyte_run_widget/demo/quickstart.ipynb", "flyte_run_widget/demo/tasks.py")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package as the wheel installs it (unpacked: a wheel is a zip of site-packages),
    built by pip from this checkout; its dependencies come from the test's environment."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("flyte_run_widget-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert set(SHIPPED) <= names, sorted(n for n in names if "demo" in n)
        site = out / "site-packages"
        zf.extractall(site)
    yield site


def _run(site: Path, home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FLYTE_RUN_WIDGET_DATA", "FLYTECTL_CONFIG")}
    env["PYTHONPATH"] = str(site)  # the unpacked wheel only: no source checkout on the path
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / "data")
    return subprocess.run(
        [sys.executable, *args], cwd=home, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_wheel_copies_the_notebook_to_the_users_folder_and_keeps_edits(
    installed: Path, tmp_path: Path
) -> None:
    code = (
        "import flyte_run_widget.cli_demo as d, sys\n"
        "assert d.__file__.startswith(sys.argv[1]), d.__file__\n"
        "print(d.demo_folder(None))\n"
    )
    done = _run(installed, tmp_path, "-c", code, str(installed))
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.splitlines()[-1])
    assert folder == tmp_path / "flyte-run-widget-demo"
    for name in ("quickstart.ipynb", "tasks.py"):
        assert (folder / name).read_bytes() == (REPO / "examples" / name).read_bytes()
    (folder / "quickstart.ipynb").write_text("my edits")
    done = _run(installed, tmp_path, "-c", code, str(installed))
    assert done.returncode == 0, done.stderr
    assert (folder / "quickstart.ipynb").read_text() == "my edits"


def test_demo_terminal_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    try:
        done = _run(installed, tmp_path, "-m", "flyte_run_widget", "demo", "--terminal", "--epochs", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "outputs: {'o0': {'epochs': 1.0" in done.stdout
    finally:
        _run(installed, tmp_path, "-m", "flyte_run_widget", "stop")
