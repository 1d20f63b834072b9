"""``import flyte_run_widget`` registers the SDK printers by type name and imports neither the
flyte SDK nor the widget; outside IPython it registers nothing. Runs in every environment, with
or without the SDK installed (each case in a fresh interpreter: imports are what is measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

IN_SHELL = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
import flyte_run_widget as frw
fmt = shell.display_formatter.mimebundle_formatter
def registered():
    return sorted(".".join(k) for k in fmt.deferred_printers if k[0].startswith("flyte."))
def resolved():
    names = (f"{c.__module__}.{c.__name__}" for c in fmt.type_printers)
    return sorted(n for n in names if n.startswith("flyte."))
heavy = ("flyte", "ipywidgets", "anywidget")
new = set(sys.modules) - before
report = {
    "new_modules": sorted(m for m in new if m.split(".")[0] in heavy or m == "flyte_run_widget.widget"),
    "registered": registered(),
    "resolved": resolved(),
}
report["off"] = frw.display_sdk_runs(False)
report["after_off"] = registered()
frw.display_sdk_runs(True)
report["after_on"] = registered()
frw.unload_ipython_extension(shell)
report["after_unload"] = registered()
shell.run_line_magic("load_ext", "flyte_run_widget")
report["after_load_ext"] = registered()
print(json.dumps(report))
"""

NO_SHELL = """
import json, sys
import flyte_run_widget as frw
print(json.dumps({"ipython": "IPython" in sys.modules, "flyte": "flyte" in sys.modules,
                  "switched": frw.display_sdk_runs(False)}))
"""

SDK_TYPES = ["flyte.remote._action.Action", "flyte.remote._run.Run"]


def _run(code: str, **env: str) -> dict[str, object]:
    full = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    full.pop("FLYTE_RUN_WIDGET_SDK_DISPLAY", None)
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_in_ipython_registers_by_name_and_imports_no_flyte() -> None:
    report = _run(IN_SHELL)
    assert report["new_modules"] == [], f"import flyte_run_widget imported {report['new_modules']}"
    assert report["registered"] == SDK_TYPES
    assert report["resolved"] == [], "a printer was bound to a class: the SDK was imported to find it"
    assert report["off"] is True and report["after_off"] == []
    assert report["after_on"] == SDK_TYPES
    assert report["after_unload"] == []
    assert report["after_load_ext"] == SDK_TYPES


def test_environment_switch_keeps_the_sdk_text() -> None:
    report = _run(IN_SHELL, FLYTE_RUN_WIDGET_SDK_DISPLAY="0")
    assert report["registered"] == [], "FLYTE_RUN_WIDGET_SDK_DISPLAY=0 still registered the printers"
    # The explicit switches still work.
    assert report["after_on"] == SDK_TYPES


def test_outside_ipython_nothing_is_registered_or_imported() -> None:
    report = _run(NO_SHELL)
    assert report == {"ipython": False, "flyte": False, "switched": False}
