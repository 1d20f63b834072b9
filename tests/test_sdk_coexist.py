"""The public flyte SDK and this package installed and imported in one interpreter.

``scripts/test`` builds each SDK environment with one ``pip install`` of the SDK and this package
(``.venv-sdk212``: ``flyte==2.12.1``; ``.venv-sdk``: ``flyte==2.0.*``); a pin on either side
that excludes the other makes that install, or these checks, fail.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

from packaging.requirements import Requirement
from sdk_env import require_flyte

flyte = require_flyte()


def _requirement(dist: str, name: str) -> Requirement:
    for text in md.requires(dist) or []:
        req = Requirement(text)
        if req.name == name and not req.marker:
            return req
    raise AssertionError(f"{dist} does not require {name}")


def test_both_import_and_every_requirement_holds() -> None:
    import flyte.remote

    import flyte_run_widget as frw

    assert flyte.remote.Run is not None and frw.Run is not None
    pip = [sys.executable, "-m", "pip", "check"]
    check = subprocess.run(pip, capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"pip check: {check.stdout}{check.stderr}"


def test_the_flyteidl2_the_sdk_pins_is_in_our_range() -> None:
    installed = md.version("flyteidl2")
    sdk_pin = _requirement("flyte", "flyteidl2")
    ours = _requirement("flyte-run-widget", "flyteidl2")
    assert sdk_pin.specifier.contains(installed), (sdk_pin, installed)
    assert ours.specifier.contains(installed), f"flyte {md.version('flyte')} pins {sdk_pin}, we ask {ours}"
