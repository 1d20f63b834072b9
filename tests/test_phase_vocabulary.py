"""One phase vocabulary: common/phase.py decides names, final phases and tones; the terminal
(remote/console.py) uses it directly, and the browser's copy (js/src/badge.js, theme.css), which
cannot import Python, is held to it here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flyteidl2.common import phase_pb2

from flyte_run_widget.common.phase import TERMINAL_PHASES, friendly_phase, tone
from flyte_run_widget.remote import console

JS = Path(__file__).resolve().parents[1] / "js" / "src"
ALL = sorted({*phase_pb2.ActionPhase.values(), 9, 10})  # 9 and 10 arrive in later IDL versions


def _badge() -> tuple[dict[str, bool], set[str]]:
    source = (JS / "badge.js").read_text()
    table = re.search(r"const PHASES = \{(.*?)\n\}", source, re.S)
    terminal = re.search(r"TERMINAL_PHASES = new Set\(\[(.*?)\]\)", source)
    assert table and terminal, "badge.js no longer has PHASES / TERMINAL_PHASES where this test looks"
    active = {
        name: flag == "true" for name, flag in re.findall(r"(\w+): \['[^']*', (true|false)\]", table.group(1))
    }
    return active, set(re.findall(r"'(\w+)'", terminal.group(1)))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, "idle"),
        (1, "active"),
        (2, "active"),
        (3, "active"),
        (4, "active"),
        (5, "success"),
        (6, "failure"),
        (7, "stopped"),
        (8, "failure"),
        (9, "idle"),
        (10, "success"),
        (42, "idle"),
    ],
)
def test_tone(raw: int, expected: str) -> None:
    assert tone(raw) == expected


def test_the_terminal_has_a_style_for_every_tone() -> None:
    assert {tone(raw) for raw in [*ALL, 42]} == set(console._STYLE)


def test_the_badge_knows_every_phase_and_pulses_only_for_active_ones() -> None:
    active, _ = _badge()
    assert active == {friendly_phase(raw): tone(raw) == "active" for raw in ALL}


def test_the_badge_ends_on_the_same_phases() -> None:
    _, terminal = _badge()
    assert terminal == {friendly_phase(raw) for raw in TERMINAL_PHASES}


def test_the_theme_colours_every_phase() -> None:
    css = (JS / "theme.css").read_text()
    coloured = set(re.findall(r"\.frw-phase-(\w+)", css))
    assert {friendly_phase(raw) for raw in ALL} | {"unknown"} <= coloured
