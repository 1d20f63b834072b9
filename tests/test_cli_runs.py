"""``flyte-run-widget runs``, ``logs``, ``abort`` and ``open`` against a real service: output, exit
codes, error paths, and untrusted text (task names, log lines, the run name typed) printed as
inert text."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import GATED, cli
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.workflow import run_service_pb2

from flyte_run_widget.common.phase import is_terminal

# Escapes a terminal would act on: set the window title (OSC), clear the screen, overwrite the
# line (CR, BS), ring (BEL), reverse the text's direction (U+202E).
HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\r\x08\u202e"
HOSTILE_TASK = f"t.ev{HOSTILE}[bold]il[/bold]"


def _print(text: str) -> str:
    """Python code printing ``text`` (any characters) on one line."""
    return f"print({text!a})"


@pytest.fixture
def svc(service: LocalService, tmp_path: Path) -> Iterator[tuple[LocalService, ServiceClient, list[str]]]:
    client = ServiceClient(service.endpoint)
    try:
        yield service, client, ["--data-dir", str(service.data_dir), "--project", "proj"]
    finally:
        client.close()


def _finished(client: ServiceClient, code: str, name: str = "tests.task") -> str:
    run = client.create(python_task(code, name=name))
    last = client.wait(run.action.id)
    assert is_terminal(last.status.phase)
    return run.action.id.run.name


def test_runs_lists_runs_newest_first_with_phase_filter_limit_and_json(svc, tmp_path: Path) -> None:
    _, client, where = svc
    ok = _finished(client, "print('ok')", name="tests.good")
    bad = _finished(client, "raise SystemExit(3)", name="tests.bad")

    done = cli("runs", *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["name", "task", "phase", "started", "duration", "created", "by"]
    assert [ln.split()[:3] for ln in lines[1:]] == [[bad, "bad", "failed"], [ok, "good", "succeeded"]]
    assert "\x1b" not in done.stdout  # piped: plain text, no colour codes

    done = cli("runs", *where, "--phase", "FAILED", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert bad in done.stdout and ok not in done.stdout
    done = cli("runs", *where, "--phase", "failed", "--phase", "succeeded", "--limit", "1", cwd=tmp_path)
    assert [ln.split()[0] for ln in done.stdout.splitlines()[1:]] == [bad]
    done = cli("runs", *where, "--phase", "running", cwd=tmp_path)
    assert done.returncode == 0 and "no runs in phase running" in done.stdout

    done = cli("runs", *where, "--json", cwd=tmp_path)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["name"], r["phase"], r["task"]) for r in rows] == [
        (bad, "failed", "bad"),
        (ok, "succeeded", "good"),
    ]
    assert all(r["duration"] is not None and r["duration"] >= 0 for r in rows)
    assert rows[0]["url"].endswith(f"/v2/domain/development/project/proj/runs/{bad}")

    # The same service named by its endpoint instead of its data folder.
    service = svc[0]
    done = cli("runs", "--endpoint", service.endpoint, "--project", "proj", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["name"] for line in done.stdout.splitlines()] == [bad, ok]


def test_an_endpoint_that_does_not_answer_exits_3(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        done = cli("runs", "--endpoint", f"127.0.0.1:{port}", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert f"cannot reach the Flyte Run service at 127.0.0.1:{port}" in done.stderr


def test_bad_phase_and_limit_are_usage_errors_naming_the_fix(svc, tmp_path: Path) -> None:
    _, _, where = svc
    done = cli("runs", *where, "--phase", "finished", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown phase 'finished'" in done.stderr and "succeeded" in done.stderr
    done = cli("runs", *where, "--limit", "0", cwd=tmp_path)
    assert done.returncode == 2 and "1 or more" in done.stderr


def test_no_service_exits_3_for_every_run_command(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path / "none")]
    for args in (["runs"], ["logs", "r1"], ["abort", "r1"], ["open", "r1", "--print"]):
        done = cli(*args, *where, cwd=tmp_path)
        assert done.returncode == 3, (args, done.stderr)
        assert "no Run service is running" in done.stderr and "flyte-run-widget serve" in done.stderr
    # Asking about runs never starts a service.
    assert not (tmp_path / "none" / "server.json").exists()


def test_unknown_run_exits_4_naming_the_run_and_the_fix(svc, tmp_path: Path) -> None:
    _, _, where = svc
    typed = f"nope{HOSTILE}"
    for command in ("logs", "abort", "open"):
        done = cli(command, typed, *where, cwd=tmp_path)
        assert done.returncode == 4, (command, done.stderr)
        assert "no run named" in done.stderr and "flyte-run-widget runs" in done.stderr
        assert "project 'proj'" in done.stderr
        # What the user typed comes back escaped, not as escapes.
        assert "\x1b" not in done.stderr and "\r" not in done.stderr and "\u202e" not in done.stderr
        assert "\\x1b]0;PWNED" in done.stderr


def test_logs_of_a_finished_run_and_hostile_lines_stay_text(svc, tmp_path: Path) -> None:
    _, client, where = svc
    line = f"\x1b[31mred\x1b[0m plain {HOSTILE} [bold]b[/bold] :x:"
    name = _finished(client, _print(line) + "\n" + _print("second"))
    done = cli("logs", name, *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "red plain \\x1b]0;PWNED\\x07\\x1b[2J\\x0d\\x08\\u202e [bold]b[/bold] :x:\n" in out
    assert "second\n" in out
    assert "exited with code 0" in out  # the service's own line
    for raw in ("\x1b", "\x07", "\r", "\x08", "\u202e"):
        assert raw not in out, repr(raw)

    done = cli("logs", name, *where, "--no-system", "--timestamps", cwd=tmp_path)
    assert "exited with code" not in done.stdout
    assert all(ln[:4].isdigit() and "T" in ln.split()[0] for ln in done.stdout.splitlines())

    # On a terminal the colours stay (re-emitted by rich), every other escape is still text.
    colour = cli("logs", name, *where, cwd=tmp_path, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert colour.returncode == 0, colour.stderr
    assert "\x1b[31mred" in colour.stdout
    for raw in ("\x1b]0;", "\x1b[2J", "\x07", "\r", "\x08", "\u202e"):
        assert raw not in colour.stdout, repr(raw)
    assert "\\x1b]0;PWNED" in colour.stdout

    done = cli("logs", name, *where, "--attempt", "2", cwd=tmp_path)
    assert done.returncode == 4 and "attempt 2" in done.stderr and "--attempt" in done.stderr


def test_runs_table_shows_a_hostile_task_name_as_text(svc, tmp_path: Path) -> None:
    _, client, where = svc
    _finished(client, "print(1)", name=HOSTILE_TASK)
    for env in ({}, {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "300"}):
        done = cli("runs", *where, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert "\\x1b]0;PWNED\\x07\\x1b[2J\\x0d\\x08\\u202e[bold]il[/bold]" in done.stdout
        for raw in ("\x1b]", "\x1b[2J", "\x07", "\r", "\x08", "\u202e"):
            assert raw not in done.stdout, (env, repr(raw))


def test_logs_open_with_the_started_line_a_hostile_task_name_in_it_as_text(svc, tmp_path: Path) -> None:
    _, client, where = svc
    name = _finished(client, "import os; print('pid', os.getpid())", name=HOSTILE_TASK)
    for env in ({}, {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "300"}):
        done = cli("logs", name, *where, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        first, printed = done.stdout.splitlines()[:2]
        pid = printed.split()[1]
        shown = "t.ev\\x1b]0;PWNED\\x07\\x1b[2J\\r\\x08\\u202e[bold]il[/bold]"
        assert first == f"started {shown}, attempt 1, pid {pid}", (env, done.stdout)


def test_logs_without_follow_returns_while_the_run_runs_and_follow_reads_to_the_end(
    svc, tmp_path: Path
) -> None:
    _, client, where = svc
    gate = tmp_path / "gate"
    run = client.create(python_task(GATED, str(gate)))
    name = run.action.id.run.name
    try:
        # Each call returns on its own while the task waits at its gate: it prints what the
        # log holds, it does not follow.
        for _ in range(60):
            done = cli("logs", name, *where, cwd=tmp_path, timeout=30)
            assert done.returncode == 0, done.stderr
            if "before 2" in done.stdout:
                break
        else:
            raise AssertionError(f"the log never held 'before 2': {done.stdout!r}")
        assert "after" not in done.stdout
        assert done.stdout.index("before 0") < done.stdout.index("before 2")
        details = client.runs.GetRunDetails(run_service_pb2.GetRunDetailsRequest(run_id=run.action.id.run))
        assert not is_terminal(details.details.action.status.phase)
    finally:
        gate.touch()
    done = cli("logs", name, *where, "--follow", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("before 2") < out.index("after") < out.index("exited with code 0")


def test_abort_a_running_run_then_again(svc, tmp_path: Path) -> None:
    _, client, where = svc
    gate = tmp_path / "never"
    name = client.create(python_task(GATED, str(gate))).action.id.run.name
    done = cli("abort", name, *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["run", name, "aborted"]
    done = cli("runs", *where, "--json", cwd=tmp_path)
    assert [(r["name"], r["phase"]) for r in map(json.loads, done.stdout.splitlines())] == [(name, "aborted")]
    done = cli("abort", name, *where, cwd=tmp_path)
    assert done.returncode == 5
    assert f"run {name!r} already ended (aborted)" in done.stderr
    done = cli("logs", name, *where, cwd=tmp_path)
    assert "aborted: Aborted from the flyte-run-widget command line" in done.stdout


def test_open_hands_the_run_page_to_the_browser(svc, tmp_path: Path) -> None:
    service, client, where = svc
    name = _finished(client, "print(1)")
    seen = tmp_path / "seen"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}.tmp && mv {seen}.tmp {seen}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    url = f"http://{service.endpoint}/v2/domain/development/project/proj/runs/{name}"
    done = cli("open", name, *where, "--print", cwd=tmp_path, env={"BROWSER": str(browser)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == url
    assert not seen.exists()
    done = cli("open", name, *where, cwd=tmp_path, env={"BROWSER": str(browser)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == url
    # webbrowser starts the browser in the background: wait for its file.
    for _ in range(600):
        if seen.exists():
            break
        time.sleep(0.05)
    assert seen.read_text() == url
