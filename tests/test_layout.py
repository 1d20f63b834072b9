"""The package's layout holds: the client side never loads the service, the service imports nothing
from the client side, and what both need lives in ``common/``, which imports neither."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "flyte_run_widget"

# What runs in the caller's process (client/, remote/, notebook/) or a task's (task/).
CALLER_SIDE = ("client", "remote", "notebook", "task")


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    env["HOME"] = str(cwd)  # no ~/.flyte/config.yaml of this machine's user
    env.pop("FLYTECTL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _loaded(code: str, cwd: Path) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it sets ``out``, printed as JSON with the package's modules."""
    done = _run(
        f"{code}\nimport json, sys\n"
        "out['modules'] = sorted(m for m in sys.modules if m.startswith('flyte_run_widget'))\n"
        "print(json.dumps(out))",
        cwd,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def _server_modules(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if m == "flyte_run_widget.server" or m.startswith("flyte_run_widget.server.")]


def test_init_against_a_remote_endpoint_loads_no_server_module(tmp_path: Path) -> None:
    out = _loaded(
        "import flyte_run_widget as frw\n"
        "from flyte_run_widget.client import rpc\n"
        "cfg = frw.init('dns:///flyte.example.com', project='ml', domain='development')\n"
        "out = {'target': cfg.endpoint.target, 'embedded': cfg.embedded,\n"
        "       'connected': rpc.get_client()._channel is not None}",
        tmp_path,
    )
    assert out["target"] == "flyte.example.com:443" and out["embedded"] is False
    assert out["connected"] is False  # init only configures: no RPC went out
    assert "flyte_run_widget.client.rpc" in out["modules"]  # the probe did see the package
    assert _server_modules(out["modules"]) == []


def test_every_caller_side_module_loads_without_the_server(tmp_path: Path) -> None:
    out = _loaded(
        "import importlib, pkgutil\n"
        "out = {'imported': []}\n"
        f"for side in {CALLER_SIDE!r}:\n"
        "    package = importlib.import_module('flyte_run_widget.' + side)\n"
        "    for info in pkgutil.iter_modules(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "        out['imported'].append(info.name)",
        tmp_path,
    )
    assert "flyte_run_widget.client.local_service" in out["imported"]
    assert "flyte_run_widget.notebook.widget" in out["imported"]
    assert _server_modules(out["modules"]) == []


def test_starting_the_embedded_service_loads_no_server_module(tmp_path: Path) -> None:
    """The client starts the service as ``python -m flyte_run_widget.server`` and reads its
    server.json; the kernel itself never loads the service."""
    data_dir = tmp_path / "svc"
    try:
        out = _loaded(
            "import flyte_run_widget as frw\n"
            f"cfg = frw.init(data_dir={str(data_dir)!r})\n"
            "out = {'embedded': cfg.embedded, 'target': cfg.endpoint.target}",
            tmp_path,
        )
        assert out["embedded"] is True
        info = json.loads((data_dir / "server.json").read_text())
        assert out["target"] == info["endpoint"]
        assert "flyte_run_widget.server" in " ".join(psutil.Process(info["pid"]).cmdline())
        assert _server_modules(out["modules"]) == []
    finally:
        server_file = data_dir / "server.json"
        if server_file.exists():
            try:
                proc = psutil.Process(int(json.loads(server_file.read_text())["pid"]))
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
            except psutil.NoSuchProcess:
                pass


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere (also inside functions), relative ones resolved."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from .. import phase`` names a module too
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "flyte_run_widget" or m.startswith("flyte_run_widget.")}


def _own(folder: str) -> list[Path]:
    files = sorted((PACKAGE / folder).glob("*.py"))
    assert files, folder
    return files


def _outside(imports: set[str], allowed: tuple[str, ...]) -> set[str]:
    """Imports of the package's modules outside the ``allowed`` folders. ``flyte_run_widget.errors``
    is neutral like ``common/`` (exception classes only, importing nothing of the package: see
    test_errors_is_a_leaf); ``from flyte_run_widget import __version__`` names no module."""
    bad = set()
    for module in imports:
        parts = module.split(".")
        if len(parts) < 2 or parts[1] in allowed or parts[1] == "errors":
            continue
        if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file():
            bad.add(module)
    return bad


def test_errors_is_a_leaf() -> None:
    assert _outside(_imports(PACKAGE / "errors.py"), ()) == set()
    assert not any(m.startswith("flyte_run_widget") for m in _imports(PACKAGE / "errors.py"))


@pytest.mark.parametrize("path", _own("server"), ids=lambda p: p.name)
def test_the_server_imports_only_itself_and_common(path: Path) -> None:
    assert _outside(_imports(path), ("server", "common")) == set()


@pytest.mark.parametrize("path", _own("common"), ids=lambda p: p.name)
def test_common_imports_neither_side(path: Path) -> None:
    assert _outside(_imports(path), ("common",)) == set()


@pytest.mark.parametrize(
    "path", [p for side in CALLER_SIDE for p in _own(side)], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_the_caller_side_imports_nothing_from_the_server(path: Path) -> None:
    assert not any(m.split(".")[1:2] == ["server"] for m in _imports(path))


@pytest.mark.parametrize("folder", ["common", *CALLER_SIDE, "server"])
def test_subpackage_init_is_a_docstring_and_imports_nothing(folder: str) -> None:
    tree = ast.parse((PACKAGE / folder / "__init__.py").read_text())
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), folder
    assert ast.get_docstring(tree), folder
