"""Flyte's container templates (``{{.Inputs}}``, ``{{ .Outputs }}``, ...) in command and args.

    render(["run", "{{.Inputs}}"], {"inputs": "/data/inputs.pb"})  # -> ["run", "/data/inputs.pb"]

Names match case-insensitively; templates this service does not know stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_TEMPLATE = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    lowered = {k.lower(): v for k, v in values.items()}

    def sub(match: re.Match[str]) -> str:
        return lowered.get(match.group(1).lower(), match.group(0))

    return [_TEMPLATE.sub(sub, arg) for arg in argv]
